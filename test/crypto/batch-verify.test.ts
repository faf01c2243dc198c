// The batch verifier (shared/crypto/batch-verify.ts) against libsodium's crypto_sign_verify_detached:
// the same verdict on honest, tampered and deliberately odd signatures, including the ones where
// the platform's Ed25519 alone would disagree. And VerifiedEnvelopes: an envelope is opened without
// a second check only for the exact bytes and key that were checked.
import sodium from 'libsodium-wrappers-sumo';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  CTX,
  PROTOCOL_VERSION,
  SUITE_XCHACHA20_ED25519,
  UmbraError,
  VerifiedEnvelopes,
  concatBytes,
  createBatchVerifier,
  initCrypto,
  isCanonicalScalar,
  openEnvelope,
  randomKey,
  sealEnvelope,
  signWithContext,
  signedBytes,
  utf8,
  verifyEnvelopeSignature,
  verifyWithContext,
  type BatchVerifier,
  type EnvelopeHeader,
  type SignatureCheck,
} from '../../shared/index.ts';

const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });
const L = (1n << 252n) + 27742317777372353535851937790883648493n;
const P = (1n << 255n) - 19n;

function le32(n: bigint): Uint8Array {
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++, n >>= 8n) out[i] = Number(n & 0xffn);
  return out;
}
function fromLe(b: Uint8Array): bigint {
  let n = 0n;
  for (let i = b.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(b[i]!);
  return n;
}

/** The clamped secret scalar of an Ed25519 seed (RFC 8032 §5.1.5), reduced mod L. */
function secretScalar(seed: Uint8Array): Uint8Array {
  const h = sodium.crypto_hash_sha512(seed).slice(0, 32);
  h[0]! &= 248;
  h[31]! &= 127;
  h[31]! |= 64;
  return le32(fromLe(h) % L);
}

/** k = SHA-512(R || A || M) mod L, over the framed message the project signs. */
function challenge(r: Uint8Array, a: Uint8Array, context: string, message: Uint8Array): Uint8Array {
  return sodium.crypto_core_ed25519_scalar_reduce(sodium.crypto_hash_sha512(concatBytes(r, a, signedBytes(context, message))));
}

/**
 * A signature only the key's holder can make, with R the neutral element: S = k·a, so that
 * [S]B - [k]A is the neutral element. The cofactorless equation holds; libsodium refuses R for its
 * small order.
 */
function neutralRSignature(seed: Uint8Array, publicKey: Uint8Array, context: string, message: Uint8Array): Uint8Array {
  const r = le32(1n);
  const s = sodium.crypto_core_ed25519_scalar_mul(challenge(r, publicKey, context, message), secretScalar(seed));
  return concatBytes(r, s);
}

/** An honest-looking signature under `publicKey` (which may differ from a·B) by the holder of `seed`. */
function signAs(seed: Uint8Array, publicKey: Uint8Array, context: string, message: Uint8Array): Uint8Array {
  const r = sodium.crypto_core_ed25519_scalar_random();
  const R = sodium.crypto_scalarmult_ed25519_base_noclamp(r);
  const s = sodium.crypto_core_ed25519_scalar_add(r, sodium.crypto_core_ed25519_scalar_mul(challenge(R, publicKey, context, message), secretScalar(seed)));
  return concatBytes(R, s);
}

const libsodiumVerdict = (c: SignatureCheck) => verifyWithContext(c.publicKey, c.context, c.message, c.signature);

let native: BatchVerifier;
let fallback: BatchVerifier;

beforeAll(async () => {
  await initCrypto();
  await sodium.ready;
  native = await createBatchVerifier();
  fallback = await createBatchVerifier({ native: false });
});

describe('createBatchVerifier', () => {
  it("uses the platform's Ed25519 in Node 20, and libsodium when asked not to", () => {
    expect(native.kind).toBe('native');
    expect(fallback.kind).toBe('libsodium');
  });

  it('the order L is the one libsodium reduces by', () => {
    expect(isCanonicalScalar(le32(L - 1n))).toBe(true);
    expect(isCanonicalScalar(le32(L))).toBe(false);
    expect(isCanonicalScalar(le32(L + 1n))).toBe(false);
    // libsodium maps L to 0 and L - 1 to itself.
    expect(fromLe(sodium.crypto_core_ed25519_scalar_reduce(concatBytes(le32(L), new Uint8Array(32))))).toBe(0n);
    expect(fromLe(sodium.crypto_core_ed25519_scalar_reduce(concatBytes(le32(L - 1n), new Uint8Array(32))))).toBe(L - 1n);
  });
});

describe('the same verdicts as libsodium', () => {
  it('honest signatures, and each with one bit flipped in the signature, message or key', async () => {
    await fc.assert(
      fc.asyncProperty(bytes(32), fc.string({ maxLength: 20 }), fc.uint8Array({ maxLength: 300 }), fc.nat(), async (seed, context, message, flip) => {
        fc.pre(!context.includes('\0'));
        const kp = sodium.crypto_sign_seed_keypair(seed);
        const signature = signWithContext(kp.privateKey, context, message);
        const honest: SignatureCheck = { publicKey: kp.publicKey, context, message, signature };
        const badSig = signature.slice();
        badSig[flip % 64]! ^= 1 << (flip % 8);
        const badKey = kp.publicKey.slice();
        badKey[flip % 32]! ^= 1 << (flip % 8);
        const badMessage = concatBytes(message, Uint8Array.of(flip & 0xff));
        const checks: SignatureCheck[] = [honest, { ...honest, signature: badSig }, { ...honest, publicKey: badKey }, { ...honest, message: badMessage }];
        const expected = checks.map(libsodiumVerdict);
        expect(expected[0]).toBe(true);
        expect(await native.verifyMany(checks)).toEqual(expected);
        expect(await fallback.verifyMany(checks)).toEqual(expected);
      }),
      { numRuns: 150 },
    );
  });

  it('refuses S + L and an R of the neutral element, which the platform alone would accept', async () => {
    const subtle = globalThis.crypto.subtle;
    const seed = new Uint8Array(32).fill(3);
    const kp = sodium.crypto_sign_seed_keypair(seed);
    const context = CTX.messageSig;
    const message = utf8('odd signatures');
    const honest = signWithContext(kp.privateKey, context, message);
    const sPlusL = concatBytes(honest.subarray(0, 32), le32(fromLe(honest.subarray(32)) + L));
    const neutral = neutralRSignature(seed, kp.publicKey, context, message);
    const neutralSignBit = neutral.slice();
    neutralSignBit[31]! |= 0x80;

    const platformKey = await subtle.importKey('raw', kp.publicKey.slice(), { name: 'Ed25519' }, false, ['verify']);
    const platform = (sig: Uint8Array) => subtle.verify({ name: 'Ed25519' }, platformKey, sig.slice(), signedBytes(context, message).slice());
    // Without the checks in front of it, the platform takes the neutral-R signature: the case they exist for.
    expect(await platform(neutral)).toBe(true);
    expect(await platform(honest)).toBe(true);

    const checks = [honest, sPlusL, neutral, neutralSignBit].map((signature) => ({ publicKey: kp.publicKey, context, message, signature }));
    expect(checks.map(libsodiumVerdict)).toEqual([true, false, false, false]);
    expect(await native.verifyMany(checks)).toEqual([true, false, false, false]);
  });

  it('keys outside the prime-order subgroup are left to libsodium, with its verdicts', async () => {
    const seed = new Uint8Array(32).fill(9);
    const kp = sodium.crypto_sign_seed_keypair(seed);
    // A + T, T the point of order 2 (y = p - 1): a key with a torsion part, which libsodium takes.
    const mixed = sodium.crypto_core_ed25519_add(kp.publicKey, le32(P - 1n));
    expect(sodium.crypto_core_ed25519_is_valid_point(mixed)).toBe(false);
    const context = CTX.messageSig;
    const checks: SignatureCheck[] = [];
    for (let i = 0; i < 24; i++) {
      const message = utf8(`torsion ${i}`);
      checks.push({ publicKey: mixed, context, message, signature: signAs(seed, mixed, context, message) });
    }
    // T itself as the key, with R = T and S = 0: [0]B - [k]T = T for odd k. The equation holds, so
    // the platform takes it; libsodium refuses a key (and an R) of small order.
    const t = le32(P - 1n);
    let odd = 0;
    while ((challenge(t, t, context, utf8(`small ${odd}`))[0]! & 1) === 0) odd++;
    const smallOrder = { publicKey: t, context, message: utf8(`small ${odd}`), signature: concatBytes(t, new Uint8Array(32)) };
    checks.push(smallOrder);
    const subtle = globalThis.crypto.subtle;
    const platformKey = await subtle.importKey('raw', t.slice(), { name: 'Ed25519' }, false, ['verify']);
    expect(await subtle.verify({ name: 'Ed25519' }, platformKey, smallOrder.signature.slice(), signedBytes(context, smallOrder.message).slice())).toBe(true);

    const expected = checks.map(libsodiumVerdict);
    // Cofactorless: [S]B - [k](A + T) = R - [k]T, so about half of these hold (k even) and half do not.
    expect(expected.slice(0, 24)).toContain(true);
    expect(expected.slice(0, 24)).toContain(false);
    expect(expected[24]).toBe(false);
    expect(await native.verifyMany(checks)).toEqual(expected);
  });

  it('wrong lengths and a context with NUL are false, as in verifyWithContext', async () => {
    const kp = sodium.crypto_sign_keypair();
    const signature = signWithContext(kp.privateKey, 'c', utf8('m'));
    const checks: SignatureCheck[] = [
      { publicKey: kp.publicKey.subarray(1), context: 'c', message: utf8('m'), signature },
      { publicKey: kp.publicKey, context: 'c', message: utf8('m'), signature: signature.subarray(1) },
      { publicKey: kp.publicKey, context: 'c\0', message: utf8('m'), signature },
    ];
    expect(await native.verifyMany(checks)).toEqual([false, false, false]);
  });

  it('a batch larger than one wave keeps every verdict in its place', async () => {
    const kp = sodium.crypto_sign_keypair();
    const checks: SignatureCheck[] = [];
    for (let i = 0; i < 600; i++) {
      const message = utf8(`m${i}`);
      const signature = signWithContext(kp.privateKey, 'c', message);
      if (i % 7 === 0) signature[40]! ^= 4;
      checks.push({ publicKey: kp.publicKey, context: 'c', message, signature });
    }
    const verdicts = await native.verifyMany(checks);
    expect(verdicts).toEqual(checks.map((_, i) => i % 7 !== 0));
  });
});

describe('VerifiedEnvelopes', () => {
  const header = (sender: string): EnvelopeHeader => ({
    v: PROTOCOL_VERSION,
    suite: SUITE_XCHACHA20_ED25519,
    type: 'content',
    conv: 'c_batch',
    epoch: 1,
    sender,
    rosterHash: new Uint8Array(32).fill(1),
    clientMsgId: 'AAAAAAAAAAEAAAAAAAAAAA',
    counter: 1,
    expiresAt: null,
    burnAfterMs: null,
  });

  it('opens a checked page without a second check, and refuses what fails', async () => {
    const key = randomKey();
    const alice = sodium.crypto_sign_keypair();
    const envs = [0, 1, 2].map((i) => sealEnvelope(header('alice'), utf8(`hello ${i}`), key, alice.privateKey));
    envs[2]!.sig[5]! ^= 1;
    const verified = new VerifiedEnvelopes(native);
    await verified.check(envs.map((env) => ({ env, senderIdentityKey: alice.publicKey })));
    expect(new TextDecoder().decode(openEnvelope(envs[0]!, key, alice.publicKey, verified))).toBe('hello 0');
    expect(verifyEnvelopeSignature(envs[1]!, alice.publicKey, verified)).toBe(true);
    expect(() => openEnvelope(envs[2]!, key, alice.publicKey, verified)).toThrow(UmbraError);
  });

  it('trusts a check only for the bytes and the key it was made with', async () => {
    // A verifier that approves everything stands in for one that was wrong once: what it approved
    // opens, and nothing else does.
    const approvesAll: BatchVerifier = { kind: 'native', verifyMany: async (checks) => checks.map(() => true) };
    const key = randomKey();
    const alice = sodium.crypto_sign_keypair();
    const mallory = sodium.crypto_sign_keypair();
    const forged = sealEnvelope(header('alice'), utf8('forged'), key, mallory.privateKey);
    const verified = new VerifiedEnvelopes(approvesAll);
    await verified.check([{ env: forged, senderIdentityKey: alice.publicKey }]);
    expect(new TextDecoder().decode(openEnvelope(forged, key, alice.publicKey, verified))).toBe('forged');

    // Another key: checked again, and refused.
    expect(() => openEnvelope(forged, key, sodium.crypto_sign_keypair().publicKey, verified)).toThrow(UmbraError);
    // The same object with a header field changed after the check: checked again, and refused.
    const moved = forged;
    moved.counter = 2;
    expect(() => openEnvelope(moved, key, alice.publicKey, verified)).toThrow(UmbraError);
    moved.counter = 1;
    // An equal copy that was never checked: checked again, and refused.
    expect(() => openEnvelope({ ...forged }, key, alice.publicKey, verified)).toThrow(UmbraError);
    // The ciphertext changed in place after the check: checked again, and refused.
    forged.ct[forged.ct.length - 1]! ^= 1;
    expect(() => openEnvelope(forged, key, alice.publicKey, verified)).toThrow(UmbraError);
    // Without `verified`, the forgery never opens.
    forged.ct[forged.ct.length - 1]! ^= 1;
    expect(() => openEnvelope(forged, key, alice.publicKey)).toThrow(UmbraError);
    expect(new TextDecoder().decode(openEnvelope(forged, key, alice.publicKey, verified))).toBe('forged');
  });
});
