// Our libsodium-based crypto checked against an independent implementation (@noble/*) on the
// same random inputs, primitive by primitive and then for whole constructions.
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { argon2id } from '@noble/hashes/argon2.js';
import { blake2b } from '@noble/hashes/blake2.js';
import { sha512 } from '@noble/hashes/sha2.js';
import sodium from 'libsodium-wrappers-sumo';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  CTX,
  PROTOCOL_VERSION,
  SAFETY_ITERATIONS,
  SUITE_XCHACHA20_ED25519,
  concatBytes,
  dangerousTestOnlySealWithNonce,
  deriveAccountKeys,
  deriveMasterKey,
  encodeFields,
  fingerprintDigits,
  initCrypto,
  messageAd,
  openAead,
  rosterHash,
  sealAead,
  sealEnvelope,
  signWithContext,
  utf8,
  verifyWithContext,
  wrapConversationKeyForAll,
  type EnvelopeHeader,
} from '../../shared/index.ts';
import { fromHex, toHex, type AeadVector, type Ed25519ReferenceVector, type MasterKeyVector, type VectorFile } from '../vectors/format.ts';

const RUNS = { numRuns: 200 } as const;
/** noble's Ed25519 and X25519 are pure JS and slower; fewer runs keep the file quick. */
const CURVE_RUNS = { numRuns: 100 } as const;
const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });
const key32 = bytes(32);

function load<V>(name: string): V[] {
  return (JSON.parse(readFileSync(new URL(`../vectors/${name}`, import.meta.url), 'utf8')) as VectorFile<V>).vectors;
}

/** The bytes our signatures cover: utf8(context) || 0x00 || message (shared/crypto/sign.ts). */
function framed(context: string, message: Uint8Array): Uint8Array {
  return concatBytes(utf8(context), Uint8Array.of(0), message);
}

beforeAll(async () => {
  await initCrypto();
  await sodium.ready;
});

describe('XChaCha20-Poly1305 against @noble/ciphers', () => {
  const input = fc.record({ key: key32, nonce: bytes(24), plaintext: fc.uint8Array({ maxLength: 300 }), ad: fc.uint8Array({ maxLength: 64 }) });

  it('noble seals, we open; and our fixed-nonce seal is byte-identical to noble', () => {
    fc.assert(
      fc.property(input, ({ key, nonce, plaintext, ad }) => {
        const sealed = concatBytes(nonce, xchacha20poly1305(key, nonce, ad).encrypt(plaintext));
        expect(toHex(openAead(key, sealed, ad))).toBe(toHex(plaintext));
        expect(toHex(dangerousTestOnlySealWithNonce(key, nonce, plaintext, ad))).toBe(toHex(sealed));
      }),
      RUNS,
    );
  });

  it('we seal with our own nonce, noble opens', () => {
    fc.assert(
      fc.property(input, ({ key, plaintext, ad }) => {
        const sealed = sealAead(key, plaintext, ad);
        const opened = xchacha20poly1305(key, sealed.subarray(0, 24), ad).decrypt(sealed.subarray(24));
        expect(toHex(opened)).toBe(toHex(plaintext));
      }),
      RUNS,
    );
  });

  it('noble reproduces the draft-irtf-cfrg-xchacha-03 vector typed into aead.json', () => {
    const refs = load<AeadVector>('aead.json').filter((v) => v.reference !== undefined);
    expect(refs.length).toBeGreaterThan(0);
    for (const v of refs) {
      const out = xchacha20poly1305(fromHex(v.key), fromHex(v.nonce), fromHex(v.ad)).encrypt(fromHex(v.plaintext));
      expect(v.nonce + toHex(out)).toBe(v.sealed);
    }
  });
});

describe('Ed25519 against @noble/curves', () => {
  const input = fc.record({
    seed: key32,
    context: fc.constantFrom(...Object.values(CTX)),
    message: fc.uint8Array({ maxLength: 200 }),
  });

  it('noble verifies our context signatures over utf8(context) || 0x00 || message, and signs the same bytes', () => {
    fc.assert(
      fc.property(input, ({ seed, context, message }) => {
        const kp = sodium.crypto_sign_seed_keypair(seed);
        expect(toHex(ed25519.getPublicKey(seed))).toBe(toHex(kp.publicKey));
        const sig = signWithContext(kp.privateKey, context, message);
        expect(ed25519.verify(sig, framed(context, message), kp.publicKey, { zip215: false })).toBe(true);
        // Ed25519 is deterministic (RFC 8032 §5.1.6): both libraries produce the same signature.
        expect(toHex(ed25519.sign(framed(context, message), seed))).toBe(toHex(sig));
        expect(ed25519.verify(sig, message, kp.publicKey)).toBe(false);
      }),
      CURVE_RUNS,
    );
  });

  it('sodium verifies noble signatures through verifyWithContext', () => {
    fc.assert(
      fc.property(input, ({ seed, context, message }) => {
        const sig = ed25519.sign(framed(context, message), seed);
        const pk = ed25519.getPublicKey(seed);
        expect(verifyWithContext(pk, context, message, sig)).toBe(true);
        expect(verifyWithContext(pk, context, message, ed25519.sign(message, seed))).toBe(false);
      }),
      CURVE_RUNS,
    );
  });

  it('noble reproduces the RFC 8032 vector typed into ed25519-rfc8032.json', () => {
    for (const v of load<Ed25519ReferenceVector>('ed25519-rfc8032.json')) {
      expect(toHex(ed25519.getPublicKey(fromHex(v.seed)))).toBe(v.publicKey);
      expect(toHex(ed25519.sign(fromHex(v.message), fromHex(v.seed)))).toBe(v.signature);
    }
  });
});

describe('X25519 against @noble/curves', () => {
  it('crypto_scalarmult_base and crypto_scalarmult agree with noble x25519, both ways round', () => {
    fc.assert(
      fc.property(key32, key32, (a, b) => {
        const A = sodium.crypto_scalarmult_base(a);
        const B = sodium.crypto_scalarmult_base(b);
        expect(toHex(A)).toBe(toHex(x25519.getPublicKey(a)));
        expect(toHex(B)).toBe(toHex(x25519.getPublicKey(b)));
        const shared = sodium.crypto_scalarmult(a, B);
        expect(toHex(shared)).toBe(toHex(x25519.getSharedSecret(a, B)));
        expect(toHex(shared)).toBe(toHex(x25519.getSharedSecret(b, A)));
      }),
      CURVE_RUNS,
    );
  });
});

describe('BLAKE2b and SHA-512 against @noble/hashes', () => {
  it('crypto_generichash unkeyed and keyed, any output length', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 300 }),
        fc.integer({ min: 16, max: 64 }),
        fc.uint8Array({ minLength: 16, maxLength: 64 }),
        (message, dkLen, key) => {
          expect(toHex(sodium.crypto_generichash(dkLen, message, null))).toBe(toHex(blake2b(message, { dkLen })));
          expect(toHex(sodium.crypto_generichash(dkLen, message, key))).toBe(toHex(blake2b(message, { dkLen, key })));
        },
      ),
      RUNS,
    );
  });

  it('crypto_hash_sha512', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (message) => {
        expect(toHex(sodium.crypto_hash_sha512(message))).toBe(toHex(sha512(message)));
      }),
      RUNS,
    );
  });
});

describe('whole constructions rebuilt from noble primitives', () => {
  const name = fc.stringMatching(/^[a-z0-9][a-z0-9_.-]{2,31}$/);

  it('deriveAccountKeys = keyed BLAKE2b-256 over encodeFields([context, username])', () => {
    fc.assert(
      fc.property(key32, name, (master, username) => {
        const keys = deriveAccountKeys(master, username);
        expect(toHex(keys.authKey)).toBe(toHex(blake2b(encodeFields([CTX.authKey, username]), { key: master, dkLen: 32 })));
        expect(toHex(keys.vaultKey)).toBe(toHex(blake2b(encodeFields([CTX.vaultKey, username]), { key: master, dkLen: 32 })));
      }),
      RUNS,
    );
  });

  it('rosterHash = BLAKE2b-256 over the members sorted by username', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.record({ username: name, identityKey: key32 }), { selector: (m) => m.username, minLength: 1, maxLength: 6 }), name, (members, conv) => {
        const sorted = [...members].sort((x, y) => (x.username < y.username ? -1 : 1));
        const expected = blake2b(encodeFields([CTX.roster, conv, sorted.map((m) => [m.username, m.identityKey])]), { dkLen: 32 });
        expect(toHex(rosterHash(conv, members))).toBe(toHex(expected));
      }),
      RUNS,
    );
  });

  it('fingerprintDigits = iterated SHA-512, six 40-bit chunks mod 100000', () => {
    fc.assert(
      fc.property(key32, name, (identityKey, username) => {
        let h = sha512(encodeFields([CTX.safetyNumber, identityKey, username]));
        for (let i = 0; i < SAFETY_ITERATIONS; i++) h = sha512(concatBytes(h, identityKey));
        let digits = '';
        for (let c = 0; c < 6; c++) {
          const n = h.subarray(c * 5, c * 5 + 5).reduce((acc, b) => acc * 256 + b, 0);
          digits += String(n % 100000).padStart(5, '0');
        }
        expect(fingerprintDigits(username, identityKey)).toBe(digits);
      }),
      { numRuns: 8 },
    );
  });

  it('noble verifies and decrypts our sealed envelopes', () => {
    const header = fc.record({
      v: fc.constant(PROTOCOL_VERSION),
      suite: fc.constant(SUITE_XCHACHA20_ED25519),
      type: fc.constantFrom('content' as const, 'control' as const),
      conv: name,
      epoch: fc.nat({ max: 2 ** 31 }),
      sender: name,
      rosterHash: key32,
      clientMsgId: name,
      counter: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
      expiresAt: fc.option(fc.maxSafeNat(), { nil: null }),
      burnAfterMs: fc.option(fc.integer({ min: 1000, max: 365 * 86_400_000 }), { nil: null }),
    }) as fc.Arbitrary<EnvelopeHeader>;
    fc.assert(
      fc.property(header, fc.uint8Array({ maxLength: 200 }), key32, key32, (h, plaintext, epochKey, seed) => {
        const kp = sodium.crypto_sign_seed_keypair(seed);
        const env = sealEnvelope(h, plaintext, epochKey, kp.privateKey);
        const ad = messageAd(h);
        expect(ed25519.verify(env.sig, framed(CTX.messageSig, concatBytes(ad, env.ct)), kp.publicKey, { zip215: false })).toBe(true);
        const opened = xchacha20poly1305(epochKey, env.ct.subarray(0, 24), ad).decrypt(env.ct.subarray(24));
        expect(toHex(opened)).toBe(toHex(plaintext));
      }),
      { numRuns: 100 },
    );
  });

  it('noble unwraps our wrapped sets: one X25519 ephemeral and one signature, BLAKE2b KDF and XChaCha20-Poly1305 per recipient', () => {
    const base = fc.record({ conv: name, epoch: fc.nat({ max: 2 ** 31 }), wrappedBy: name });
    const recipients = fc.uniqueArray(fc.record({ recipient: name, secret: key32 }), { minLength: 1, maxLength: 3, selector: (r) => r.recipient });
    fc.assert(
      fc.property(key32, key32, base, recipients, (convKey, wrapperSeed, c, rs) => {
        const wrapper = sodium.crypto_sign_seed_keypair(wrapperSeed);
        const set = rs.map((r) => ({ recipient: r.recipient, x25519: x25519.getPublicKey(r.secret) }));
        const rows = wrapConversationKeyForAll(convKey, set, c, wrapper.privateKey);
        const epk = rows[0]!.wrapped.subarray(0, 32);
        const signed = framed(CTX.wrapSetSig, encodeFields([c.conv, c.epoch, c.wrappedBy, epk]));
        rows.forEach((w, n) => {
          expect(toHex(w.wrapped.subarray(0, 32))).toBe(toHex(epk));
          expect(ed25519.verify(w.sig, signed, wrapper.publicKey, { zip215: false })).toBe(true);
          const rpk = set[n]!.x25519;
          const k = blake2b(encodeFields([CTX.wrapKdf, epk, rpk]), { key: x25519.getSharedSecret(rs[n]!.secret, epk), dkLen: 32 });
          const ad = encodeFields([CTX.wrapAd, c.conv, c.epoch, w.recipient, c.wrappedBy]);
          const opened = xchacha20poly1305(k, w.wrapped.subarray(32, 56), ad).decrypt(w.wrapped.subarray(56));
          expect(toHex(opened)).toBe(toHex(convKey));
        });
      }),
      { numRuns: 50 },
    );
  });

  it('deriveMasterKey = Argon2id (v1.3, one lane) over the NFKC password, as noble computes it', () => {
    const v = load<MasterKeyVector>('master-key.json')[0]!;
    const salt = fromHex(v.salt);
    const ours = deriveMasterKey(v.password, salt, v.params);
    const theirs = argon2id(utf8(v.password.normalize('NFKC')), salt, { t: v.params.ops, m: v.params.memKiB, p: 1, dkLen: 32, version: 0x13 });
    expect(toHex(ours)).toBe(toHex(theirs));
    expect(toHex(ours)).toBe(v.masterKey);
  });
});
