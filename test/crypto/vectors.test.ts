// Golden vectors: every frozen output in test/vectors/*.json is reproduced exactly and opens or
// verifies; every copy with one byte flipped (ciphertext, tag, nonce, AD, signature, key) fails.
import { readFileSync } from 'node:fs';
import sodium from 'libsodium-wrappers-sumo';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  CTX,
  UmbraError,
  concatBytes,
  dangerousTestOnlySealEnvelope,
  dangerousTestOnlySealWithNonce,
  dangerousTestOnlyWrap,
  deriveAccountKeys,
  deriveMasterKey,
  encodeFields,
  fingerprintDigits,
  fromUtf8,
  identityFromSecrets,
  initCrypto,
  messageAd,
  openAead,
  openEnvelope,
  openVault,
  rosterHash,
  safetyNumber,
  sealVault,
  signAgreementKey,
  signWithContext,
  signingKeyPairFromSecret,
  unwrapConversationKey,
  utf8,
  verifyEnvelopeSignature,
  verifyPublicKeys,
  verifyWithContext,
  verifyWrappedKey,
  type EnvelopeHeader,
  type Field,
  type SealedEnvelope,
  type WrappedKey,
} from '../../shared/index.ts';
import {
  REGENERATE_COMMAND,
  fieldFromJson,
  flipped,
  fromHex,
  toHex,
  type AccountKeysVector,
  type AeadVector,
  type Ed25519ReferenceVector,
  type EncodeFieldsVector,
  type EnvelopeHeaderJson,
  type EnvelopeVector,
  type IdentityVector,
  type MasterKeyVector,
  type RosterVector,
  type SafetyVector,
  type SignVector,
  type VaultVector,
  type VectorFile,
  type WrapVector,
} from '../vectors/format.ts';

function load<V>(name: string): VectorFile<V> {
  return JSON.parse(readFileSync(new URL(`../vectors/${name}`, import.meta.url), 'utf8')) as VectorFile<V>;
}

const files = {
  encodeFields: load<EncodeFieldsVector>('encode-fields.json'),
  aead: load<AeadVector>('aead.json'),
  ed25519: load<Ed25519ReferenceVector>('ed25519-rfc8032.json'),
  sign: load<SignVector>('sign-with-context.json'),
  masterKey: load<MasterKeyVector>('master-key.json'),
  accountKeys: load<AccountKeysVector>('account-keys.json'),
  identity: load<IdentityVector>('identity-binding.json'),
  wrap: load<WrapVector>('wrap.json'),
  envelope: load<EnvelopeVector>('envelope.json'),
  roster: load<RosterVector>('roster.json'),
  safety: load<SafetyVector>('safety-number.json'),
  vault: load<VaultVector>('vault.json'),
};

/** Runs `fn` and requires the one error the protocol allows for a forgery: `verification_failed`. */
function expectVerificationFailed(fn: () => unknown, what: string): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, `${what} must be rejected`).toBeInstanceOf(UmbraError);
  expect((caught as UmbraError).code, what).toBe('verification_failed');
}

/** Every index of `bytes`, so each test flips each byte once. */
function indices(bytes: Uint8Array): number[] {
  return Array.from(bytes.keys());
}

/** A different string of the same length: the last code unit moved by one (or "x" for ""). */
function alteredString(s: string): string {
  if (s.length === 0) return 'x';
  const last = s.charCodeAt(s.length - 1);
  return s.slice(0, -1) + String.fromCharCode(last === 0x7a ? 0x79 : last + 1);
}

function headerFromJson(h: EnvelopeHeaderJson): EnvelopeHeader {
  return { ...h, rosterHash: fromHex(h.rosterHash) };
}

beforeAll(async () => {
  await initCrypto();
  await sodium.ready;
});

describe('vector files', () => {
  it('each file names its source and the regeneration command, and holds vectors', () => {
    for (const [name, file] of Object.entries(files)) {
      expect(file.vectors.length, name).toBeGreaterThan(0);
      expect(file.source, name).toContain(REGENERATE_COMMAND);
    }
    expect(files.ed25519.source).toContain('RFC 8032');
    expect(files.aead.vectors.some((v) => v.reference?.includes('draft-irtf-cfrg-xchacha-03'))).toBe(true);
  });
});

describe('encodeFields', () => {
  /** Each leaf of the list altered in turn: a string's last unit, a byte, a number. */
  function mutations(fields: readonly Field[]): Field[][] {
    const out: Field[][] = [];
    const walk = (list: readonly Field[], rebuild: (l: Field[]) => Field[]): void => {
      list.forEach((f, i) => {
        const put = (g: Field): Field[] => rebuild(list.map((x, j) => (j === i ? g : x)));
        if (f === null) out.push(put(0));
        else if (typeof f === 'number') out.push(put(f === 0 ? 1 : f - 1));
        else if (typeof f === 'string') out.push(put(alteredString(f)));
        else if (f instanceof Uint8Array) out.push(put(f.length === 0 ? Uint8Array.of(0) : flipped(f, 0)));
        else {
          out.push(put([...f, null]));
          walk(f, (l) => put(l));
        }
      });
    };
    walk(fields, (l) => l);
    return out;
  }

  for (const v of files.encodeFields.vectors) {
    it(`${v.name}: reproduced, and any altered field encodes differently`, () => {
      const fields = v.fields.map(fieldFromJson);
      expect(toHex(encodeFields(fields))).toBe(v.encoded);
      const altered = mutations(fields);
      if (fields.length > 0) expect(altered.length).toBeGreaterThan(0);
      for (const m of altered) expect(toHex(encodeFields(m))).not.toBe(v.encoded);
      expect(toHex(encodeFields([...fields, null]))).not.toBe(v.encoded);
    });
  }
});

describe('AEAD: XChaCha20-Poly1305, nonce || ciphertext || tag', () => {
  for (const v of files.aead.vectors) {
    it(`${v.name}: reproduced and opened; every flipped byte of nonce, ciphertext, tag, AD or key is rejected`, () => {
      const key = fromHex(v.key);
      const nonce = fromHex(v.nonce);
      const plaintext = fromHex(v.plaintext);
      const ad = fromHex(v.ad);
      const sealed = fromHex(v.sealed);
      expect(toHex(dangerousTestOnlySealWithNonce(key, nonce, plaintext, ad))).toBe(v.sealed);
      expect(sealed.length).toBe(24 + plaintext.length + 16);
      expect(toHex(sealed.subarray(0, 24))).toBe(v.nonce);
      expect(toHex(openAead(key, sealed, ad))).toBe(v.plaintext);
      for (const i of indices(sealed)) {
        const region = i < 24 ? 'nonce' : i < sealed.length - 16 ? 'ciphertext' : 'tag';
        expectVerificationFailed(() => openAead(key, flipped(sealed, i), ad), `${region} byte ${i} flipped`);
      }
      for (const i of indices(ad)) expectVerificationFailed(() => openAead(key, sealed, flipped(ad, i)), `AD byte ${i} flipped`);
      expectVerificationFailed(() => openAead(key, sealed, concatBytes(ad, Uint8Array.of(0))), 'AD extended');
      for (const i of indices(key)) expectVerificationFailed(() => openAead(flipped(key, i), sealed, ad), `key byte ${i} flipped`);
    });
  }
});

describe('Ed25519 (RFC 8032) through libsodium', () => {
  for (const v of files.ed25519.vectors) {
    it(`${v.name}: public key and signature reproduced; flipped signature, key or message rejected`, () => {
      const kp = sodium.crypto_sign_seed_keypair(fromHex(v.seed));
      expect(toHex(kp.publicKey)).toBe(v.publicKey);
      expect(toHex(signingKeyPairFromSecret(kp.privateKey).publicKey)).toBe(v.publicKey);
      const message = fromHex(v.message);
      const sig = fromHex(v.signature);
      const pk = fromHex(v.publicKey);
      expect(toHex(sodium.crypto_sign_detached(message, kp.privateKey))).toBe(v.signature);
      expect(sodium.crypto_sign_verify_detached(sig, message, pk)).toBe(true);
      for (const i of indices(sig)) expect(sodium.crypto_sign_verify_detached(flipped(sig, i), message, pk), `sig byte ${i}`).toBe(false);
      for (const i of indices(pk)) expect(verifyRaw(sig, message, flipped(pk, i)), `key byte ${i}`).toBe(false);
      expect(sodium.crypto_sign_verify_detached(sig, concatBytes(message, Uint8Array.of(0)), pk)).toBe(false);
    });
  }

  /** libsodium throws on some malformed keys; a throw is a rejection too. */
  function verifyRaw(sig: Uint8Array, message: Uint8Array, pk: Uint8Array): boolean {
    try {
      return sodium.crypto_sign_verify_detached(sig, message, pk);
    } catch {
      return false;
    }
  }
});

describe('signWithContext', () => {
  for (const v of files.sign.vectors) {
    it(`${v.name}: signs utf8(context) || 0x00 || message; flipped signature, message, key or context rejected`, () => {
      const sk = fromHex(v.secretKey);
      const pk = fromHex(v.publicKey);
      const message = fromHex(v.message);
      const sig = fromHex(v.signature);
      expect(toHex(signingKeyPairFromSecret(sk).publicKey)).toBe(v.publicKey);
      expect(toHex(concatBytes(utf8(v.context), Uint8Array.of(0), message))).toBe(v.signedBytes);
      expect(toHex(signWithContext(sk, v.context, message))).toBe(v.signature);
      expect(sodium.crypto_sign_verify_detached(sig, fromHex(v.signedBytes), pk)).toBe(true);
      expect(verifyWithContext(pk, v.context, message, sig)).toBe(true);
      for (const i of indices(sig)) expect(verifyWithContext(pk, v.context, message, flipped(sig, i)), `sig byte ${i}`).toBe(false);
      for (const i of indices(pk)) expect(verifyWithContext(flipped(pk, i), v.context, message, sig), `key byte ${i}`).toBe(false);
      for (const i of indices(message)) expect(verifyWithContext(pk, v.context, flipped(message, i), sig), `message byte ${i}`).toBe(false);
      expect(verifyWithContext(pk, v.context, concatBytes(message, Uint8Array.of(0)), sig)).toBe(false);
      expect(verifyWithContext(pk, alteredString(v.context), message, sig)).toBe(false);
      expect(verifyWithContext(pk, v.context.slice(0, -1), message, sig)).toBe(false);
      for (const other of Object.values(CTX)) {
        if (other !== v.context) expect(verifyWithContext(pk, other, message, sig), other).toBe(false);
      }
    });
  }
});

describe('deriveMasterKey (Argon2id)', () => {
  for (const v of files.masterKey.vectors) {
    it(`${v.name}: reproduced, also from the NFKC-equivalent spelling; a flipped salt byte or password character differs`, () => {
      const salt = fromHex(v.salt);
      expect(toHex(deriveMasterKey(v.password, salt, v.params))).toBe(v.masterKey);
      expect(toHex(deriveMasterKey(v.passwordEquivalent, salt, v.params))).toBe(v.masterKey);
      expect(toHex(deriveMasterKey(v.password, flipped(salt, salt.length - 1), v.params))).not.toBe(v.masterKey);
      expect(toHex(deriveMasterKey(alteredString(v.password), salt, v.params))).not.toBe(v.masterKey);
    });
  }
});

describe('deriveAccountKeys', () => {
  for (const v of files.accountKeys.vectors) {
    it(`${v.name}: reproduced; every flipped master-key byte or another username changes both keys`, () => {
      const master = fromHex(v.masterKey);
      const keys = deriveAccountKeys(master, v.username);
      expect(toHex(keys.authKey)).toBe(v.authKey);
      expect(toHex(keys.vaultKey)).toBe(v.vaultKey);
      for (const i of indices(master)) {
        const k = deriveAccountKeys(flipped(master, i), v.username);
        expect(toHex(k.authKey)).not.toBe(v.authKey);
        expect(toHex(k.vaultKey)).not.toBe(v.vaultKey);
      }
      const other = deriveAccountKeys(master, alteredString(v.username));
      expect(toHex(other.authKey)).not.toBe(v.authKey);
      expect(toHex(other.vaultKey)).not.toBe(v.vaultKey);
    });
  }
});

describe('identity binding: signAgreementKey / verifyPublicKeys', () => {
  for (const v of files.identity.vectors) {
    it(`${v.name}: reproduced and verified; flipped keys, signature or another username rejected`, () => {
      const identity = identityFromSecrets(fromHex(v.signingSecret), fromHex(v.agreementSecret));
      expect(toHex(identity.signing.publicKey)).toBe(v.identityKey);
      expect(toHex(identity.agreement.publicKey)).toBe(v.x25519Key);
      expect(toHex(signAgreementKey(identity, v.username))).toBe(v.x25519Sig);
      const keys = { username: v.username, identityKey: fromHex(v.identityKey), x25519Key: fromHex(v.x25519Key), x25519Sig: fromHex(v.x25519Sig) };
      expect(verifyPublicKeys(keys)).toBe(true);
      // The signed statement is encodeFields([username, X25519 key]) under CTX.x25519Binding.
      const signed = concatBytes(utf8(CTX.x25519Binding), Uint8Array.of(0), encodeFields([v.username, keys.x25519Key]));
      expect(sodium.crypto_sign_verify_detached(keys.x25519Sig, signed, keys.identityKey)).toBe(true);
      for (const i of indices(keys.x25519Key)) expect(verifyPublicKeys({ ...keys, x25519Key: flipped(keys.x25519Key, i) }), `x25519 byte ${i}`).toBe(false);
      for (const i of indices(keys.identityKey)) expect(verifyPublicKeys({ ...keys, identityKey: flipped(keys.identityKey, i) }), `identity byte ${i}`).toBe(false);
      for (const i of indices(keys.x25519Sig)) expect(verifyPublicKeys({ ...keys, x25519Sig: flipped(keys.x25519Sig, i) }), `sig byte ${i}`).toBe(false);
      expect(verifyPublicKeys({ ...keys, username: alteredString(v.username) })).toBe(false);
    });
  }
});

describe('wrapConversationKey', () => {
  for (const v of files.wrap.vectors) {
    it(`${v.name}: reproduced and unwrapped; every flipped byte of the wrapped key or signature, or a changed context, is rejected`, () => {
      const convKey = fromHex(v.convKey);
      const recipientSecret = fromHex(v.recipientSecret);
      const wrapperSecret = fromHex(v.wrapperSigningSecret);
      const wrapperKey = fromHex(v.wrapperIdentityKey);
      const w = dangerousTestOnlyWrap(convKey, fromHex(v.recipientX25519), v.context, wrapperSecret, fromHex(v.ephemeralSecret), fromHex(v.nonce));
      expect(toHex(w.wrapped)).toBe(v.wrapped);
      expect(toHex(w.sig)).toBe(v.sig);
      expect({ conv: w.conv, epoch: w.epoch, recipient: w.recipient, wrappedBy: w.wrappedBy }).toEqual(v.context);
      const wrapped = fromHex(v.wrapped);
      expect(wrapped.length).toBe(32 + 24 + 32 + 16);
      expect(toHex(wrapped.subarray(0, 32))).toBe(toHex(sodium.crypto_scalarmult_base(fromHex(v.ephemeralSecret))));
      expect(toHex(wrapped.subarray(32, 56))).toBe(v.nonce);
      expect(toHex(sodium.crypto_scalarmult_base(recipientSecret))).toBe(v.recipientX25519);
      // The signed statement: encodeFields([conv, epoch, recipient, wrappedBy, wrapped]) under CTX.wrapSig.
      const c = v.context;
      const sigMessage = (bytes: Uint8Array): Uint8Array => encodeFields([c.conv, c.epoch, c.recipient, c.wrappedBy, bytes]);
      const signed = concatBytes(utf8(CTX.wrapSig), Uint8Array.of(0), sigMessage(wrapped));
      expect(sodium.crypto_sign_verify_detached(fromHex(v.sig), signed, wrapperKey)).toBe(true);

      const key: WrappedKey = { ...v.context, wrapped, sig: fromHex(v.sig) };
      expect(verifyWrappedKey(key, wrapperKey)).toBe(true);
      expect(toHex(unwrapConversationKey(key, recipientSecret, wrapperKey))).toBe(v.convKey);

      const region = (i: number): string => (i < 32 ? 'ephemeral key' : i < 56 ? 'nonce' : i < 88 ? 'sealed key' : 'tag');
      for (const i of indices(wrapped)) {
        const bad = flipped(wrapped, i);
        expectVerificationFailed(() => unwrapConversationKey({ ...key, wrapped: bad }, recipientSecret, wrapperKey), `${region(i)} byte ${i}`);
        // Even re-signed by the wrapper, a flipped byte must not get past the AEAD.
        const resigned = signWithContext(wrapperSecret, CTX.wrapSig, sigMessage(bad));
        expectVerificationFailed(() => unwrapConversationKey({ ...key, wrapped: bad, sig: resigned }, recipientSecret, wrapperKey), `re-signed ${region(i)} byte ${i}`);
      }
      for (const i of indices(key.sig)) {
        expectVerificationFailed(() => unwrapConversationKey({ ...key, sig: flipped(key.sig, i) }, recipientSecret, wrapperKey), `sig byte ${i}`);
      }
      const contexts: Partial<WrappedKey>[] = [
        { conv: alteredString(c.conv) },
        { epoch: c.epoch + 1 },
        { recipient: alteredString(c.recipient) },
        { wrappedBy: alteredString(c.wrappedBy) },
      ];
      for (const change of contexts) {
        expectVerificationFailed(() => unwrapConversationKey({ ...key, ...change }, recipientSecret, wrapperKey), JSON.stringify(change));
      }
      expectVerificationFailed(() => unwrapConversationKey(key, flipped(recipientSecret, 5), wrapperKey), 'wrong recipient secret');
      expectVerificationFailed(() => unwrapConversationKey(key, recipientSecret, fromHex(files.identity.vectors[1]!.identityKey)), 'wrong wrapper key');
    });
  }
});

describe('envelopes: messageAd and sealEnvelope', () => {
  for (const v of files.envelope.vectors) {
    it(`${v.name}: AD and envelope reproduced and opened; any flipped byte or changed header field is rejected`, () => {
      const header = headerFromJson(v.header);
      const h = v.header;
      expect(toHex(messageAd(header))).toBe(v.ad);
      expect(v.ad).toBe(
        toHex(encodeFields([CTX.messageAd, h.v, h.suite, h.type, h.conv, h.epoch, h.sender, header.rosterHash, h.clientMsgId, h.counter, h.expiresAt])),
      );
      const epochKey = fromHex(v.epochKey);
      const senderSecret = fromHex(v.senderSigningSecret);
      const senderKey = fromHex(v.senderIdentityKey);
      const sealed = dangerousTestOnlySealEnvelope(header, fromHex(v.plaintext), epochKey, senderSecret, fromHex(v.nonce));
      expect(toHex(sealed.ct)).toBe(v.ct);
      expect(toHex(sealed.sig)).toBe(v.sig);
      const ct = fromHex(v.ct);
      expect(toHex(ct.subarray(0, 24))).toBe(v.nonce);
      expect(toHex(openAead(epochKey, ct, fromHex(v.ad)))).toBe(v.plaintext);
      const signed = concatBytes(utf8(CTX.messageSig), Uint8Array.of(0), fromHex(v.ad), ct);
      expect(sodium.crypto_sign_verify_detached(fromHex(v.sig), signed, senderKey)).toBe(true);

      const env: SealedEnvelope = { ...header, ct, sig: fromHex(v.sig) };
      expect(verifyEnvelopeSignature(env, senderKey)).toBe(true);
      expect(toHex(openEnvelope(env, epochKey, senderKey))).toBe(v.plaintext);

      for (const i of indices(ct)) {
        const bad = flipped(ct, i);
        expectVerificationFailed(() => openEnvelope({ ...env, ct: bad }, epochKey, senderKey), `ct byte ${i}`);
        const resigned = signWithContext(senderSecret, CTX.messageSig, concatBytes(fromHex(v.ad), bad));
        expectVerificationFailed(() => openEnvelope({ ...env, ct: bad, sig: resigned }, epochKey, senderKey), `re-signed ct byte ${i}`);
      }
      for (const i of indices(env.sig)) expectVerificationFailed(() => openEnvelope({ ...env, sig: flipped(env.sig, i) }, epochKey, senderKey), `sig byte ${i}`);
      for (const i of indices(header.rosterHash)) {
        expectVerificationFailed(() => openEnvelope({ ...env, rosterHash: flipped(header.rosterHash, i) }, epochKey, senderKey), `roster hash byte ${i}`);
      }
      const changes: Partial<SealedEnvelope>[] = [
        { v: h.v + 1 },
        { suite: h.suite + 1 },
        { type: h.type === 'content' ? 'control' : 'content' },
        { conv: alteredString(h.conv) },
        { epoch: h.epoch + 1 },
        { sender: alteredString(h.sender) },
        { clientMsgId: alteredString(h.clientMsgId) },
        { counter: h.counter + 1 },
        { expiresAt: h.expiresAt === null ? 0 : null },
        { expiresAt: (h.expiresAt ?? 0) + 1 },
      ];
      for (const change of changes) {
        expectVerificationFailed(() => openEnvelope({ ...env, ...change }, epochKey, senderKey), JSON.stringify(change));
        // Re-signing the changed header still leaves the AEAD bound to the original AD.
        const changed = { ...env, ...change };
        if (change.v === undefined && change.suite === undefined) {
          const resigned = signWithContext(senderSecret, CTX.messageSig, concatBytes(messageAd(changed), ct));
          expectVerificationFailed(() => openEnvelope({ ...changed, sig: resigned }, epochKey, senderKey), `re-signed ${JSON.stringify(change)}`);
        }
      }
      expectVerificationFailed(() => openEnvelope(env, flipped(epochKey, 0), senderKey), 'wrong epoch key');
      const otherSender = files.sign.vectors.find((s) => s.publicKey !== v.senderIdentityKey)!;
      expectVerificationFailed(() => openEnvelope(env, epochKey, fromHex(otherSender.publicKey)), 'wrong sender key');
    });
  }
});

describe('rosterHash', () => {
  for (const v of files.roster.vectors) {
    it(`${v.name}: reproduced in any member order; a flipped key byte, renamed, dropped member or other conversation differs`, () => {
      const members = v.members.map((m) => ({ username: m.username, identityKey: fromHex(m.identityKey) }));
      expect(toHex(rosterHash(v.conv, members))).toBe(v.hash);
      expect(toHex(rosterHash(v.conv, [...members].reverse()))).toBe(v.hash);
      members.forEach((m, k) => {
        for (const i of indices(m.identityKey)) {
          const changed = members.map((x, j) => (j === k ? { ...x, identityKey: flipped(x.identityKey, i) } : x));
          expect(toHex(rosterHash(v.conv, changed)), `${m.username} key byte ${i}`).not.toBe(v.hash);
        }
        const renamed = members.map((x, j) => (j === k ? { ...x, username: alteredString(x.username) } : x));
        expect(toHex(rosterHash(v.conv, renamed))).not.toBe(v.hash);
        expect(toHex(rosterHash(v.conv, members.filter((_, j) => j !== k)))).not.toBe(v.hash);
      });
      expect(toHex(rosterHash(alteredString(v.conv), members))).not.toBe(v.hash);
    });
  }
});

describe('safety numbers', () => {
  for (const v of files.safety.vectors) {
    it(`${v.name}: fingerprints and the 60 digits reproduced from either side; a flipped key byte or other username differs`, () => {
      const a = { username: v.a.username, identityKey: fromHex(v.a.identityKey) };
      const b = { username: v.b.username, identityKey: fromHex(v.b.identityKey) };
      expect(fingerprintDigits(a.username, a.identityKey)).toBe(v.fingerprintA);
      expect(fingerprintDigits(b.username, b.identityKey)).toBe(v.fingerprintB);
      expect(v.safetyNumber).toMatch(/^\d{60}$/);
      expect(safetyNumber(a, b)).toBe(v.safetyNumber);
      expect(safetyNumber(b, a)).toBe(v.safetyNumber);
      for (const i of [0, 15, 31]) {
        expect(fingerprintDigits(a.username, flipped(a.identityKey, i)), `key byte ${i}`).not.toBe(v.fingerprintA);
        expect(safetyNumber({ ...a, identityKey: flipped(a.identityKey, i) }, b)).not.toBe(v.safetyNumber);
      }
      expect(fingerprintDigits(alteredString(a.username), a.identityKey)).not.toBe(v.fingerprintA);
    });
  }
});

describe('vault', () => {
  for (const v of files.vault.vectors) {
    it(`${v.name}: opens to its contents, layout and plaintext reproduced; every flipped byte, another username or key is rejected`, () => {
      const vaultKey = fromHex(v.vaultKey);
      const sealed = fromHex(v.sealed);
      const ad = encodeFields([CTX.vaultAd, v.username]);
      const contents = openVault(vaultKey, v.username, sealed);
      expect(toHex(contents.signingSecret)).toBe(v.contents.signingSecret);
      expect(toHex(contents.agreementSecret)).toBe(v.contents.agreementSecret);
      expect(Object.fromEntries(Object.entries(contents.pins).map(([u, k]) => [u, toHex(k)]))).toEqual(v.contents.pins);
      expect(fromUtf8(openAead(vaultKey, sealed, ad))).toBe(v.plaintextJson);
      expect(toHex(dangerousTestOnlySealWithNonce(vaultKey, sealed.subarray(0, 24), utf8(v.plaintextJson), ad))).toBe(v.sealed);
      // sealVault today writes exactly the frozen plaintext (its nonce is its own).
      const fresh = sealVault(vaultKey, v.username, contents);
      expect(fromUtf8(openAead(vaultKey, fresh, ad))).toBe(v.plaintextJson);
      expect(toHex(fresh.subarray(0, 24))).not.toBe(toHex(sealed.subarray(0, 24)));

      for (const i of indices(sealed)) expectVerificationFailed(() => openVault(vaultKey, v.username, flipped(sealed, i)), `sealed byte ${i}`);
      expectVerificationFailed(() => openVault(vaultKey, alteredString(v.username), sealed), 'another username');
      for (const i of indices(vaultKey)) expectVerificationFailed(() => openVault(flipped(vaultKey, i), v.username, sealed), `key byte ${i}`);
    });
  }
});
