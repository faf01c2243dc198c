// Golden vectors: every frozen output in test/vectors/*.json is reproduced exactly and opens or
// verifies; every copy with one byte flipped (ciphertext, tag, nonce, AD, signature, key) fails.
import { readFileSync } from 'node:fs';
import sodium from 'libsodium-wrappers-sumo';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  CTX,
  ROOM_NAME_KDF,
  ROOM_NAME_MAX_CHARS,
  UmbraError,
  concatBytes,
  dangerousTestOnlySealEnvelope,
  dangerousTestOnlySealRoomMeta,
  dangerousTestOnlySealWithNonce,
  dangerousTestOnlyWrap,
  deriveAccountKeys,
  deriveMasterKey,
  encodeFields,
  fingerprintDigits,
  fromB64,
  fromUtf8,
  identityFromSecrets,
  initCrypto,
  messageAd,
  normaliseRoomName,
  openAead,
  openEnvelope,
  openRoomMeta,
  openVault,
  parseStatement,
  replayRoomChain,
  rosterHash,
  roomNameHash,
  safetyNumber,
  sealRoomMeta,
  sealVault,
  signAgreementKey,
  signJoinRequest,
  signStatement,
  signWithContext,
  signingKeyPairFromSecret,
  statementHash,
  toB64,
  unwrapConversationKey,
  utf8,
  verifyEnvelopeSignature,
  verifyJoinRequest,
  verifyPublicKeys,
  verifyStatementSignature,
  verifyWithContext,
  verifyWrappedKey,
  type EnvelopeHeader,
  type Field,
  type JoinRequest,
  type SealedEnvelope,
  type SealedMeta,
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
  type JoinRequestVector,
  type MasterKeyVector,
  type RoomMetaVector,
  type RoomNameVector,
  type RoomStatementVector,
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
  roomStatement: load<RoomStatementVector>('room-statement.json'),
  joinRequest: load<JoinRequestVector>('join-request.json'),
  roomMeta: load<RoomMetaVector>('room-meta.json'),
  roomName: load<RoomNameVector>('room-name.json'),
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

describe('wrapConversationKeyForAll', () => {
  for (const v of files.wrap.vectors) {
    it(`${v.name}: reproduced, one ephemeral key and one signature for the set, unwrapped by each recipient; every flipped byte, swapped recipient or changed context is rejected`, () => {
      const convKey = fromHex(v.convKey);
      const wrapperSecret = fromHex(v.wrapperSigningSecret);
      const wrapperKey = fromHex(v.wrapperIdentityKey);
      const c = v.context;
      const set = v.recipients.map((r) => ({ recipient: r.recipient, x25519: fromHex(r.recipientX25519) }));
      const rows = dangerousTestOnlyWrap(convKey, set, c, wrapperSecret, fromHex(v.ephemeralSecret), v.recipients.map((r) => fromHex(r.nonce)));
      expect(rows.map((w) => toHex(w.wrapped))).toEqual(v.recipients.map((r) => r.wrapped));
      expect(rows.map((w) => toHex(w.sig))).toEqual(v.recipients.map(() => v.sig));
      expect(rows.map((w) => ({ conv: w.conv, epoch: w.epoch, recipient: w.recipient, wrappedBy: w.wrappedBy }))).toEqual(v.recipients.map((r) => ({ ...c, recipient: r.recipient })));

      // The one signed statement of the set: encodeFields([conv, epoch, wrappedBy, epk]) under CTX.wrapSetSig.
      const epk = fromHex(v.ephemeralPublicKey);
      expect(toHex(sodium.crypto_scalarmult_base(fromHex(v.ephemeralSecret)))).toBe(v.ephemeralPublicKey);
      const sigMessage = (e: Uint8Array): Uint8Array => encodeFields([c.conv, c.epoch, c.wrappedBy, e]);
      expect(toHex(sigMessage(epk))).toBe(v.sigMessage);
      const sig = fromHex(v.sig);
      expect(sodium.crypto_sign_verify_detached(sig, concatBytes(utf8(CTX.wrapSetSig), Uint8Array.of(0), sigMessage(epk)), wrapperKey)).toBe(true);

      const keys: WrappedKey[] = v.recipients.map((r) => ({ ...c, recipient: r.recipient, wrapped: fromHex(r.wrapped), sig }));
      const secrets = v.recipients.map((r) => fromHex(r.recipientSecret));
      const region = (i: number): string => (i < 32 ? 'ephemeral key' : i < 56 ? 'nonce' : i < 88 ? 'sealed key' : 'tag');
      v.recipients.forEach((r, n) => {
        const key = keys[n]!;
        const secret = secrets[n]!;
        const unwrap = (k: WrappedKey, s = secret, by = wrapperKey) => unwrapConversationKey(k, s, by);
        expect(key.wrapped.length).toBe(32 + 24 + 32 + 16);
        expect(toHex(key.wrapped.subarray(0, 32))).toBe(v.ephemeralPublicKey);
        expect(toHex(key.wrapped.subarray(32, 56))).toBe(r.nonce);
        expect(toHex(sodium.crypto_scalarmult_base(secret))).toBe(r.recipientX25519);
        expect(verifyWrappedKey(key, wrapperKey)).toBe(true);
        expect(toHex(unwrap(key))).toBe(v.convKey);

        for (const i of indices(key.wrapped)) {
          const bad = flipped(key.wrapped, i);
          // The ephemeral key is signed; the nonce, sealed key and tag are held by the AEAD.
          expectVerificationFailed(() => unwrap({ ...key, wrapped: bad }), `${r.recipient}: ${region(i)} byte ${i}`);
          if (i < 32) {
            // Even with a flipped ephemeral key re-signed by the wrapper, the KDF and the AEAD refuse it.
            const resigned = signWithContext(wrapperSecret, CTX.wrapSetSig, sigMessage(bad.subarray(0, 32)));
            expectVerificationFailed(() => unwrap({ ...key, wrapped: bad, sig: resigned }), `${r.recipient}: re-signed ephemeral key byte ${i}`);
          }
        }
        for (const i of indices(sig)) expectVerificationFailed(() => unwrap({ ...key, sig: flipped(sig, i) }), `${r.recipient}: sig byte ${i}`);
        expectVerificationFailed(() => unwrap({ ...key, wrapped: key.wrapped.subarray(0, 103) }), `${r.recipient}: truncated`);

        const contexts: Partial<WrappedKey>[] = [
          { conv: alteredString(c.conv) },
          { epoch: c.epoch + 1 },
          { recipient: alteredString(r.recipient) },
          { wrappedBy: alteredString(c.wrappedBy) },
        ];
        for (const change of contexts) expectVerificationFailed(() => unwrap({ ...key, ...change }), `${r.recipient}: ${JSON.stringify(change)}`);
        // Swapped recipients: another member's row relabelled as this one's, or this row opened by another member.
        v.recipients.forEach((o, m) => {
          if (m === n) return;
          expectVerificationFailed(() => unwrap({ ...keys[m]!, recipient: r.recipient }), `${o.recipient}'s row relabelled for ${r.recipient}`);
          expectVerificationFailed(() => unwrap(key, secrets[m]), `${r.recipient}'s row opened by ${o.recipient}`);
          expectVerificationFailed(() => unwrap({ ...key, recipient: o.recipient }, secrets[m]), `${r.recipient}'s row relabelled and opened by ${o.recipient}`);
        });
        expectVerificationFailed(() => unwrap(key, flipped(secret, 5)), `${r.recipient}: wrong recipient secret`);
        expectVerificationFailed(() => unwrap(key, secret, fromHex(files.identity.vectors[1]!.identityKey)), `${r.recipient}: wrong wrapper key`);
      });
    });
  }

  it('the vectors cover a set of at least three recipients sharing one ephemeral key and one signature', () => {
    const largest = Math.max(...files.wrap.vectors.map((v) => v.recipients.length));
    expect(largest).toBeGreaterThanOrEqual(3);
    for (const v of files.wrap.vectors) {
      for (const r of v.recipients) expect(r.wrapped.slice(0, 64)).toBe(v.ephemeralPublicKey);
      expect(new Set(v.recipients.map((r) => r.nonce)).size).toBe(v.recipients.length);
    }
  });
});

describe('envelopes: messageAd and sealEnvelope', () => {
  for (const v of files.envelope.vectors) {
    it(`${v.name}: AD and envelope reproduced and opened; any flipped byte or changed header field is rejected`, () => {
      const header = headerFromJson(v.header);
      const h = v.header;
      expect(toHex(messageAd(header))).toBe(v.ad);
      expect(v.ad).toBe(
        toHex(encodeFields([CTX.messageAd, h.v, h.suite, h.type, h.conv, h.epoch, h.sender, header.rosterHash, h.clientMsgId, h.counter, h.expiresAt, h.burnAfterMs])),
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
        { burnAfterMs: h.burnAfterMs === null ? 1000 : null },
        { burnAfterMs: (h.burnAfterMs ?? 1000) + 1 },
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

describe('room membership chain: signStatement, statementHash, replayRoomChain', () => {
  const vectors = files.roomStatement.vectors;
  const conv = vectors[0]!.conv;
  const links = vectors.map((v) => ({ statement: v.statement, sig: fromHex(v.signature) }));

  it('the vectors are one chain: each prev is the hash of the link before, and the replay reaches every frozen state', () => {
    const chain = replayRoomChain(conv, links);
    expect(chain.states).toHaveLength(vectors.length);
    vectors.forEach((v, i) => {
      const st = parseStatement(v.statement)!;
      expect(st.conv).toBe(conv);
      expect(st.seq).toBe(i);
      expect(st.prev === null ? null : toHex(fromB64(st.prev))).toBe(i === 0 ? null : vectors[i - 1]!.hash);
      const s = chain.states[i]!;
      const members = [...s.members.values()].map((m) => ({ username: m.username, role: m.role })).sort((a, b) => (a.username < b.username ? -1 : 1));
      expect({ epoch: s.epoch, needsRotation: s.needsRotation, members, rosterHash: toHex(s.rosterHash) }, v.name).toEqual(v.state);
      expect(toHex(rosterHash(conv, [...s.members.values()]))).toBe(v.state.rosterHash);
    });
  });

  for (const [i, v] of vectors.entries()) {
    it(`#${i} ${v.name}: text, hash and signature reproduced; every flipped byte of signature, text, key or prev is rejected`, () => {
      const sk = fromHex(v.signingSecret);
      const pk = fromHex(v.identityKey);
      expect(toHex(signingKeyPairFromSecret(sk).publicKey)).toBe(v.identityKey);
      const st = parseStatement(v.statement)!;
      expect(st.actor).toBe(v.actor);
      const signed = signStatement(st, sk);
      expect(signed.statement).toBe(v.statement);
      expect(toHex(signed.sig)).toBe(v.signature);
      const text = utf8(v.statement);
      expect(toHex(encodeFields([CTX.statementHash, text]))).toBe(v.hashInput);
      expect(toHex(sodium.crypto_generichash(32, fromHex(v.hashInput), null))).toBe(v.hash);
      expect(toHex(statementHash(v.statement))).toBe(v.hash);
      const sig = fromHex(v.signature);
      expect(sodium.crypto_sign_verify_detached(sig, concatBytes(utf8(CTX.membershipSig), Uint8Array.of(0), text), pk)).toBe(true);

      const link = { statement: v.statement, sig };
      expect(verifyStatementSignature(link, pk)).toBe(true);
      for (const j of indices(sig)) expect(verifyStatementSignature({ ...link, sig: flipped(sig, j) }, pk), `sig byte ${j}`).toBe(false);
      for (const j of indices(pk)) expect(verifyStatementSignature(link, flipped(pk, j)), `key byte ${j}`).toBe(false);
      for (const j of indices(text)) {
        const bad = fromUtf8(flipped(text, j));
        expect(verifyStatementSignature({ statement: bad, sig }, pk), `text byte ${j}`).toBe(false);
        expect(toHex(statementHash(bad)), `text byte ${j}`).not.toBe(v.hash);
      }
      for (const other of Object.values(CTX)) {
        if (other !== CTX.membershipSig) expect(verifyWithContext(pk, other, text, sig), other).toBe(false);
      }

      // In the chain: a flipped signature fails the replay at this link, and so does a link
      // re-signed with any byte of its prev flipped, or at another position.
      const before = links.slice(0, i);
      expectVerificationFailed(() => replayRoomChain(conv, [...before, { ...link, sig: flipped(sig, 0) }]), 'flipped signature in the chain');
      if (st.prev !== null) {
        const prev = fromB64(st.prev);
        for (const j of indices(prev)) {
          const resigned = signStatement({ ...st, prev: toB64(flipped(prev, j)) }, sk);
          expectVerificationFailed(() => replayRoomChain(conv, [...before, resigned]), `prev byte ${j} flipped`);
          expect(() => replayRoomChain(conv, [...before, resigned])).toThrow(`membership record #${i} does not follow the record before it`);
        }
      }
      expectVerificationFailed(() => replayRoomChain(conv, [...before, signStatement({ ...st, seq: i + 1 }, sk)]), 'another position');
    });
  }
});

describe('join requests: signJoinRequest / verifyJoinRequest', () => {
  for (const v of files.joinRequest.vectors) {
    it(`${v.name}: text and signature reproduced and verified; every flipped byte, another key or another context is rejected`, () => {
      const sk = fromHex(v.signingSecret);
      const pk = fromHex(v.identityKey);
      const request = JSON.parse(v.request) as JoinRequest;
      expect(request.username).toBe(v.username);
      expect(toHex(fromB64(request.identityKey))).toBe(v.identityKey);
      const signed = signJoinRequest(request, sk);
      expect(signed.statement).toBe(v.request);
      expect(toHex(signed.sig)).toBe(v.signature);
      const sig = fromHex(v.signature);
      const text = utf8(v.request);
      expect(sodium.crypto_sign_verify_detached(sig, concatBytes(utf8(CTX.joinRequestSig), Uint8Array.of(0), text), pk)).toBe(true);
      expect(verifyJoinRequest({ statement: v.request, sig })).toEqual(request);

      for (const j of indices(sig)) expect(verifyJoinRequest({ statement: v.request, sig: flipped(sig, j) }), `sig byte ${j}`).toBeNull();
      for (const j of indices(text)) expect(verifyJoinRequest({ statement: fromUtf8(flipped(text, j)), sig }), `text byte ${j}`).toBeNull();
      // The request is checked under the key it names: naming someone else's key does not verify.
      const other = files.roomStatement.vectors.find((s) => s.identityKey !== v.identityKey)!;
      expect(verifyJoinRequest({ statement: v.request.replace(request.identityKey, toB64(fromHex(other.identityKey))), sig })).toBeNull();
      for (const ctx of Object.values(CTX)) {
        if (ctx !== CTX.joinRequestSig) expect(verifyWithContext(pk, ctx, text, sig), ctx).toBe(false);
      }
    });
  }
});

describe('room settings: sealRoomMeta / openRoomMeta', () => {
  for (const v of files.roomMeta.vectors) {
    it(`${v.name}: AD, sealed settings and signature reproduced and opened; every flipped byte, another epoch, author, room or key is rejected`, () => {
      const sk = fromHex(v.authorSigningSecret);
      const pk = fromHex(v.authorIdentityKey);
      const epochKey = fromHex(v.epochKey);
      const ad = encodeFields([CTX.roomMetaAd, v.conv, v.epoch, v.author]);
      expect(toHex(ad)).toBe(v.ad);
      const reproduced = dangerousTestOnlySealRoomMeta(v.meta, v.conv, v.epoch, v.author, epochKey, sk, fromHex(v.nonce));
      expect(toHex(reproduced.sealed)).toBe(v.sealed);
      expect(toHex(reproduced.sig)).toBe(v.sig);
      const sealed = fromHex(v.sealed);
      const sig = fromHex(v.sig);
      expect(toHex(sealed.subarray(0, 24))).toBe(v.nonce);
      expect(fromUtf8(openAead(epochKey, sealed, ad))).toBe(v.plaintextJson);
      expect(JSON.parse(v.plaintextJson)).toEqual(v.meta);
      expect(sodium.crypto_sign_verify_detached(sig, concatBytes(utf8(CTX.roomMetaSig), Uint8Array.of(0), ad, sealed), pk)).toBe(true);
      const m: SealedMeta = { epoch: v.epoch, author: v.author, sealed, sig };
      expect(openRoomMeta(m, v.conv, epochKey, pk)).toEqual(v.meta);
      // sealRoomMeta writes exactly the frozen plaintext under a nonce of its own.
      const fresh = sealRoomMeta(v.meta, v.conv, v.epoch, v.author, epochKey, sk);
      expect(fromUtf8(openAead(epochKey, fresh.sealed, ad))).toBe(v.plaintextJson);
      expect(toHex(fresh.sealed.subarray(0, 24))).not.toBe(v.nonce);

      const resign = (changed: SealedMeta, conv = v.conv): Uint8Array =>
        signWithContext(sk, CTX.roomMetaSig, concatBytes(encodeFields([CTX.roomMetaAd, conv, changed.epoch, changed.author]), changed.sealed));
      const region = (i: number): string => (i < 24 ? 'nonce' : i < sealed.length - 16 ? 'ciphertext' : 'tag');
      for (const i of indices(sealed)) {
        const bad = { ...m, sealed: flipped(sealed, i) };
        expectVerificationFailed(() => openRoomMeta(bad, v.conv, epochKey, pk), `${region(i)} byte ${i}`);
        // Even re-signed by the author, a flipped byte must not get past the AEAD.
        expectVerificationFailed(() => openRoomMeta({ ...bad, sig: resign(bad) }, v.conv, epochKey, pk), `re-signed ${region(i)} byte ${i}`);
      }
      for (const i of indices(sig)) expectVerificationFailed(() => openRoomMeta({ ...m, sig: flipped(sig, i) }, v.conv, epochKey, pk), `sig byte ${i}`);
      const changes: Partial<SealedMeta>[] = [{ epoch: v.epoch + 1 }, { author: alteredString(v.author) }];
      for (const change of changes) {
        const changed = { ...m, ...change };
        expectVerificationFailed(() => openRoomMeta(changed, v.conv, epochKey, pk), JSON.stringify(change));
        expectVerificationFailed(() => openRoomMeta({ ...changed, sig: resign(changed) }, v.conv, epochKey, pk), `re-signed ${JSON.stringify(change)}`);
      }
      const otherConv = alteredString(v.conv);
      expectVerificationFailed(() => openRoomMeta(m, otherConv, epochKey, pk), 'another room');
      expectVerificationFailed(() => openRoomMeta({ ...m, sig: resign(m, otherConv) }, otherConv, epochKey, pk), 're-signed for another room');
      for (const i of indices(epochKey)) expectVerificationFailed(() => openRoomMeta(m, v.conv, flipped(epochKey, i), pk), `epoch key byte ${i}`);
      for (const i of indices(pk)) expectVerificationFailed(() => openRoomMeta(m, v.conv, epochKey, flipped(pk, i)), `author key byte ${i}`);
    });
  }
});

describe('room names: normaliseRoomName and roomNameHash (Argon2id)', () => {
  const argon2id = (name: string, salt: Uint8Array, p: RoomNameVector['params']): string =>
    toHex(sodium.crypto_pwhash(32, utf8(name), salt, p.ops, p.memKiB * 1024, sodium.crypto_pwhash_ALG_ARGON2ID13));

  for (const v of files.roomName.vectors) {
    it(`${v.name}: every spelling normalises and hashes alike; a flipped salt byte or another name differs`, () => {
      expect(v.params).toEqual({ alg: 'argon2id13', ...ROOM_NAME_KDF });
      const salt = fromHex(v.salt);
      expect(toHex(sodium.crypto_generichash(16, utf8(CTX.roomName), null))).toBe(v.salt);
      expect(argon2id(v.normalised, salt, v.params)).toBe(v.hash);
      for (const s of v.spellings) {
        expect(normaliseRoomName(s), JSON.stringify(s)).toBe(v.normalised);
        expect(toHex(roomNameHash(s)), JSON.stringify(s)).toBe(v.hash);
      }
      expect(argon2id(v.normalised, flipped(salt, 0), v.params)).not.toBe(v.hash);
      expect(toHex(roomNameHash(alteredString(v.normalised)))).not.toBe(v.hash);
      // Without the normalisation another spelling would be another room.
      const raw = v.spellings.find((s) => s !== v.normalised);
      if (raw !== undefined) expect(argon2id(raw, salt, v.params)).not.toBe(v.hash);
    });
  }

  it(`refuses a name that is empty or over ${ROOM_NAME_MAX_CHARS} characters once normalised`, () => {
    for (const empty of ['', ' \t\n', '\u3000\u00a0']) {
      expect(() => normaliseRoomName(empty), JSON.stringify(empty)).toThrow(expect.objectContaining({ code: 'bad_request' }));
    }
    const longest = files.roomName.vectors.find((v) => [...v.normalised].length === ROOM_NAME_MAX_CHARS);
    expect(longest, `a vector at the ${ROOM_NAME_MAX_CHARS}-character limit`).toBeDefined();
    expect(() => normaliseRoomName(`${longest!.normalised}x`)).toThrow(expect.objectContaining({ code: 'bad_request' }));
  });
});
