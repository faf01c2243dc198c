// Writes the golden vectors in test/vectors/*.json from fixed inputs. Regenerate with:
//
//   UMBRA_TEST_VECTORS=1 node --input-type=module -e "await (await import('vite')).runnerImport('./test/vectors/generate.ts', { configFile: false })"
//
// Every input is derived from fixed bytes (BLAKE2b of a label), so a run rewrites the same
// files byte for byte unless a construction changed — which is exactly what the vectors exist to
// catch; regenerate only when a protocol change is intended. The outside references (RFC 8032,
// draft-irtf-cfrg-xchacha-03) are typed from the documents and checked against libsodium here.
import { writeFileSync } from 'node:fs';
import sodium from 'libsodium-wrappers-sumo';
import {
  CTX,
  KDF_DEFAULT,
  PROTOCOL_VERSION,
  ROOM_NAME_KDF,
  SUITE_XCHACHA20_ED25519,
  dangerousTestOnlySealEnvelope,
  dangerousTestOnlySealRoomMeta,
  dangerousTestOnlySealWithNonce,
  dangerousTestOnlyWrap,
  deriveAccountKeys,
  deriveMasterKey,
  encodeFields,
  equalBytes,
  fingerprintDigits,
  identityFromSecrets,
  initCrypto,
  messageAd,
  normaliseRoomName,
  openAead,
  openRoomMeta,
  openVault,
  replayRoomChain,
  roomNameHash,
  rosterHash,
  safetyNumber,
  sealVault,
  signAgreementKey,
  signJoinRequest,
  signStatement,
  signWithContext,
  statementHash,
  toB64,
  unwrapConversationKey,
  utf8,
  verifyJoinRequest,
  verifyStatementSignature,
  type EnvelopeHeader,
  type Field,
  type KdfParams,
  type RoomMeta,
  type RoomOp,
  type SignedStatement,
  type VaultContents,
} from '../../shared/index.ts';
import {
  REGENERATE_COMMAND,
  fieldToJson,
  fromHex,
  toHex,
  type AccountKeysVector,
  type AeadVector,
  type Ed25519ReferenceVector,
  type EncodeFieldsVector,
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
} from './format.ts';

if (process.env.UMBRA_TEST_VECTORS !== '1') {
  throw new Error('set UMBRA_TEST_VECTORS=1 to regenerate the golden vectors');
}

await initCrypto();
await sodium.ready;

/** `n` fixed bytes named by `label`: BLAKE2b-n("umbra/test-vectors/" + label), in 64-byte blocks past 64. */
function fixed(label: string, n: number): Uint8Array {
  if (n <= 64) return sodium.crypto_generichash(n, utf8(`umbra/test-vectors/${label}`), null);
  const out = new Uint8Array(n);
  for (let i = 0; i * 64 < n; i++) out.set(fixed(`${label}#${i}`, Math.min(64, n - i * 64)), i * 64);
  return out;
}

function signingSecret(label: string): Uint8Array {
  return sodium.crypto_sign_seed_keypair(fixed(`${label}/signing-seed`, 32)).privateKey;
}

function ownSource(what: string): string {
  return `Umbra's own construction (${what}); golden outputs from fixed inputs, written by test/vectors/generate.ts: ${REGENERATE_COMMAND}`;
}

function write<V>(name: string, file: VectorFile<V>): void {
  // Non-ASCII text is written as \u escapes so look-alike spellings stay visible in review.
  const json = JSON.stringify(file, null, 2).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  writeFileSync(new URL(`./${name}`, import.meta.url), `${json}\n`);
  console.log(`wrote test/vectors/${name} (${file.vectors.length} vectors)`);
}

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`generator self-check failed: ${what}`);
}

// ---- encodeFields ------------------------------------------------------------------------

const fieldCases: [string, Field[]][] = [
  ['empty list', []],
  ['null', [null]],
  ['zero', [0]],
  ['largest safe integer', [Number.MAX_SAFE_INTEGER]],
  ['empty string', ['']],
  ['ascii string', ['umbra']],
  ['non-ascii string', ['é😀 ﬁ']],
  ['empty bytes', [new Uint8Array(0)]],
  ['bytes', [Uint8Array.of(0x00, 0xff, 0x10)]],
  ['string and bytes with the same content differ', ['ab', utf8('ab')]],
  ['split strings', ['a', 'b']],
  ['nested lists', [[], [null, [1, 'x']], 'tail']],
  ['message-ad shape', [CTX.messageAd, 1, 1, 'content', 'conv', 0, 'alice', fixed('fields/roster', 32), 'id', 1, null]],
  ['docs/PROTOCOL.md example 1', ['umbra/v1/auth-key', 'alice']],
  ['docs/PROTOCOL.md example 2', [null, 5, Uint8Array.of(0xab, 0xcd), 'hé', ['x', 1]]],
];
// The examples in docs/PROTOCOL.md §Canonical encoding, typed from the document.
check(
  toHex(encodeFields(['umbra/v1/auth-key', 'alice'])) === '0300000011756d6272612f76312f617574682d6b65790300000005616c696365',
  'docs/PROTOCOL.md example 1',
);
check(
  toHex(encodeFields([null, 5, Uint8Array.of(0xab, 0xcd), 'hé', ['x', 1]])) ===
    '00' + '010000000000000005' + '0200000002abcd' + '030000000368c3a9' + '0400000002' + '030000000178' + '010000000000000001',
  'docs/PROTOCOL.md example 2',
);
write<EncodeFieldsVector>('encode-fields.json', {
  source: ownSource('encodeFields, shared/crypto/bytes.ts'),
  vectors: fieldCases.map(([name, fields]) => ({ name, fields: fields.map(fieldToJson), encoded: toHex(encodeFields(fields)) })),
});

// ---- AEAD --------------------------------------------------------------------------------

const XCHACHA_DRAFT_REFERENCE =
  'draft-irtf-cfrg-xchacha-03 §A.3.1 (AEAD_XChaCha20_Poly1305 example), typed from the document; sealed = IV || ciphertext || tag';
const xchachaDraft: AeadVector = {
  name: 'draft-irtf-cfrg-xchacha-03 A.3.1',
  reference: XCHACHA_DRAFT_REFERENCE,
  key: '808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f',
  nonce: '404142434445464748494a4b4c4d4e4f5051525354555657',
  plaintext: toHex(
    utf8("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it."),
  ),
  ad: '50515253c0c1c2c3c4c5c6c7',
  sealed:
    '404142434445464748494a4b4c4d4e4f5051525354555657' +
    'bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b7' +
    '2e1213b4522f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff921f9664c97637da9768812f615c68b13b52e' +
    'c0875924c1c7987947deafd8780acf49',
};
check(
  toHex(dangerousTestOnlySealWithNonce(fromHex(xchachaDraft.key), fromHex(xchachaDraft.nonce), fromHex(xchachaDraft.plaintext), fromHex(xchachaDraft.ad))) ===
    xchachaDraft.sealed,
  'libsodium reproduces draft-irtf-cfrg-xchacha-03 A.3.1',
);

function aeadVector(name: string, plaintext: Uint8Array, ad: Uint8Array): AeadVector {
  const key = fixed(`aead/${name}/key`, 32);
  const nonce = fixed(`aead/${name}/nonce`, 24);
  const sealed = dangerousTestOnlySealWithNonce(key, nonce, plaintext, ad);
  return { name, key: toHex(key), nonce: toHex(nonce), plaintext: toHex(plaintext), ad: toHex(ad), sealed: toHex(sealed) };
}
write<AeadVector>('aead.json', {
  source: `${ownSource('sealAead layout nonce || ciphertext || tag, shared/crypto/aead.ts')}. The vector with a "reference" field comes from that document instead.`,
  vectors: [
    aeadVector('empty plaintext, empty ad', new Uint8Array(0), new Uint8Array(0)),
    aeadVector('short text', utf8('hello bob'), encodeFields(['ad'])),
    aeadVector('one block and a bit', fixed('aead/long-plaintext', 64 + 7), fixed('aead/long-ad', 40)),
    xchachaDraft,
  ],
});

// ---- Ed25519 reference and signWithContext -----------------------------------------------

const rfc8032Test1: Ed25519ReferenceVector = {
  name: 'RFC 8032 §7.1 TEST 1',
  reference: 'RFC 8032 §7.1 TEST 1 (empty message), typed from the RFC; seed is the 32-byte SECRET KEY of the RFC',
  seed: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
  publicKey: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
  message: '',
  signature:
    'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
};
{
  const kp = sodium.crypto_sign_seed_keypair(fromHex(rfc8032Test1.seed));
  check(toHex(kp.publicKey) === rfc8032Test1.publicKey, 'libsodium derives the RFC 8032 TEST 1 public key');
  check(toHex(sodium.crypto_sign_detached(fromHex(rfc8032Test1.message), kp.privateKey)) === rfc8032Test1.signature, 'libsodium reproduces RFC 8032 TEST 1');
}
write<Ed25519ReferenceVector>('ed25519-rfc8032.json', {
  source: `Outside reference, not our construction: RFC 8032 §7.1, typed from the RFC and checked against libsodium by test/vectors/generate.ts (${REGENERATE_COMMAND}).`,
  vectors: [rfc8032Test1],
});

function signVector(name: string, who: string, context: string, message: Uint8Array): SignVector {
  const sk = signingSecret(who);
  return {
    name,
    secretKey: toHex(sk),
    publicKey: toHex(sk.subarray(32)),
    context,
    message: toHex(message),
    signedBytes: toHex(encodeSignedBytes(context, message)),
    signature: toHex(signWithContext(sk, context, message)),
  };
}
function encodeSignedBytes(context: string, message: Uint8Array): Uint8Array {
  const c = utf8(context);
  const out = new Uint8Array(c.length + 1 + message.length);
  out.set(c, 0);
  out.set(message, c.length + 1);
  return out;
}
write<SignVector>('sign-with-context.json', {
  source: `${ownSource('signWithContext: Ed25519 over utf8(context) || 0x00 || message, shared/crypto/sign.ts')}`,
  vectors: [
    signVector('empty message', 'alice', CTX.messageSig, new Uint8Array(0)),
    signVector('membership statement', 'alice', CTX.membershipSig, utf8('{"v":1,"kind":"genesis"}')),
    // Any context string exercises the framing; this one is the retired per-recipient wrap context,
    // kept so this file stays as it was.
    signVector('binary message', 'bob', 'umbra/v1/wrap-sig', fixed('sign/binary', 48)),
  ],
});

// ---- KDF ---------------------------------------------------------------------------------

function masterKeyVector(name: string, password: string, passwordEquivalent: string, params: KdfParams): MasterKeyVector {
  const salt = fixed(`kdf/${name}/salt`, 16);
  const masterKey = deriveMasterKey(password, salt, params);
  check(equalBytes(masterKey, deriveMasterKey(passwordEquivalent, salt, params)), `NFKC-equivalent passwords agree (${name})`);
  return { name, password, passwordEquivalent, salt: toHex(salt), params: { ...params }, masterKey: toHex(masterKey) };
}
const masterVectors = [
  masterKeyVector('default parameters, NFKC-sensitive password', 'correct horse ﬁve crème', 'correct horse five cre\u0300me', { ...KDF_DEFAULT }),
  masterKeyVector('three passes, 20 MiB', 'Tr0ub4dor&3', 'Tr0ub4dor&3', { alg: 'argon2id13', ops: 3, memKiB: 20 * 1024 }),
];
write<MasterKeyVector>('master-key.json', {
  source: `${ownSource('deriveMasterKey: Argon2id13 over the NFKC-normalised password, shared/crypto/kdf.ts')}`,
  vectors: masterVectors,
});

function accountKeysVector(name: string, masterKey: Uint8Array, username: string): AccountKeysVector {
  const { authKey, vaultKey } = deriveAccountKeys(masterKey, username);
  return { name, masterKey: toHex(masterKey), username, authKey: toHex(authKey), vaultKey: toHex(vaultKey) };
}
const derivedMaster = fromHex(masterVectors[0]!.masterKey);
write<AccountKeysVector>('account-keys.json', {
  source: `${ownSource('deriveAccountKeys: BLAKE2b keyed by the master key over encodeFields([context, username]), shared/crypto/kdf.ts')}`,
  vectors: [
    accountKeysVector('alice from the derived master key', derivedMaster, 'alice'),
    accountKeysVector('bob from the same master key', derivedMaster, 'bob'),
    accountKeysVector('fixed master key', fixed('kdf/master', 32), 'carol.k-9'),
  ],
});

// ---- identity binding --------------------------------------------------------------------

function identityVector(name: string, who: string): IdentityVector {
  const identity = identityFromSecrets(signingSecret(who), fixed(`${who}/agreement`, 32));
  return {
    name,
    username: who,
    signingSecret: toHex(identity.signing.secretKey),
    agreementSecret: toHex(identity.agreement.secretKey),
    identityKey: toHex(identity.signing.publicKey),
    x25519Key: toHex(identity.agreement.publicKey),
    x25519Sig: toHex(signAgreementKey(identity, who)),
  };
}
write<IdentityVector>('identity-binding.json', {
  source: `${ownSource('signAgreementKey / verifyPublicKeys: identity key signs encodeFields([username, X25519 key]), shared/crypto/identity.ts')}`,
  vectors: [identityVector('alice', 'alice'), identityVector('bob', 'bob')],
});

// ---- key wrapping ------------------------------------------------------------------------

function wrapVector(name: string, wrapper: string, recipients: readonly string[], epoch: number): WrapVector {
  const wrapperId = identityFromSecrets(signingSecret(wrapper), fixed(`${wrapper}/agreement`, 32));
  const recipientIds = recipients.map((who) => identityFromSecrets(signingSecret(who), fixed(`${who}/agreement`, 32)));
  const base = { conv: toB64(fixed('conv/1', 16)), epoch, wrappedBy: wrapper };
  const convKey = fixed(`wrap/${name}/conv-key`, 32);
  const ephemeralSecret = fixed(`wrap/${name}/ephemeral`, 32);
  const nonces = recipients.map((who) => fixed(`wrap/${name}/nonce/${who}`, 24));
  const set = recipients.map((who, i) => ({ recipient: who, x25519: recipientIds[i]!.agreement.publicKey }));
  const rows = dangerousTestOnlyWrap(convKey, set, base, wrapperId.signing.secretKey, ephemeralSecret, nonces);
  const epk = sodium.crypto_scalarmult_base(ephemeralSecret);
  const sigMessage = encodeFields([base.conv, base.epoch, base.wrappedBy, epk]);
  check(rows.every((w) => equalBytes(w.sig, rows[0]!.sig) && equalBytes(w.wrapped.subarray(0, 32), epk)), `one ephemeral key and one signature per set (${name})`);
  check(rows.every((w, i) => equalBytes(unwrapConversationKey(w, recipientIds[i]!.agreement.secretKey, wrapperId.signing.publicKey), convKey)), `every recipient unwraps (${name})`);
  return {
    name,
    context: base,
    convKey: toHex(convKey),
    wrapperSigningSecret: toHex(wrapperId.signing.secretKey),
    wrapperIdentityKey: toHex(wrapperId.signing.publicKey),
    ephemeralSecret: toHex(ephemeralSecret),
    ephemeralPublicKey: toHex(epk),
    sigMessage: toHex(sigMessage),
    sig: toHex(rows[0]!.sig),
    recipients: rows.map((w, i) => ({
      recipient: w.recipient,
      recipientSecret: toHex(recipientIds[i]!.agreement.secretKey),
      recipientX25519: toHex(recipientIds[i]!.agreement.publicKey),
      nonce: toHex(nonces[i]!),
      wrapped: toHex(w.wrapped),
    })),
  };
}
write<WrapVector>('wrap.json', {
  source: `${ownSource('wrapConversationKeyForAll: one ephemeral X25519 key per set, BLAKE2b KDF and XChaCha20-Poly1305 per recipient, one Ed25519 signature over encodeFields([conv, epoch, wrappedBy, epk]); shared/crypto/wrap.ts, via dangerousTestOnlyWrap')}`,
  vectors: [
    wrapVector('alice wraps for alice, bob and carol, epoch 3', 'alice', ['alice', 'bob', 'carol'], 3),
    wrapVector('alice wraps for bob alone, epoch 0', 'alice', ['bob'], 0),
  ],
});

// ---- roster hash -------------------------------------------------------------------------

function member(who: string): { username: string; identityKey: Uint8Array } {
  return { username: who, identityKey: sodium.crypto_sign_seed_keypair(fixed(`${who}/signing-seed`, 32)).publicKey };
}
function rosterVector(name: string, conv: string, members: { username: string; identityKey: Uint8Array }[]): RosterVector {
  return {
    name,
    conv,
    members: members.map((m) => ({ username: m.username, identityKey: toHex(m.identityKey) })),
    hash: toHex(rosterHash(conv, members)),
  };
}
const conv1 = toB64(fixed('conv/1', 16));
const directRoster = [member('alice'), member('bob')];
write<RosterVector>('roster.json', {
  source: `${ownSource('rosterHash: BLAKE2b-256 over encodeFields([context, conv, members sorted by username]), shared/crypto/roster.ts')}`,
  vectors: [
    rosterVector('direct conversation', conv1, directRoster),
    rosterVector('three members given out of order', toB64(fixed('conv/2', 16)), [member('carol'), member('alice'), member('bob')]),
  ],
});

// ---- envelopes ---------------------------------------------------------------------------

function envelopeVector(name: string, header: EnvelopeHeader, plaintext: Uint8Array): EnvelopeVector {
  const senderSecret = signingSecret(header.sender);
  const epochKey = fixed(`envelope/${name}/epoch-key`, 32);
  const nonce = fixed(`envelope/${name}/nonce`, 24);
  const env = dangerousTestOnlySealEnvelope(header, plaintext, epochKey, senderSecret, nonce);
  return {
    name,
    header: { ...header, rosterHash: toHex(header.rosterHash) },
    ad: toHex(messageAd(header)),
    plaintext: toHex(plaintext),
    epochKey: toHex(epochKey),
    senderSigningSecret: toHex(senderSecret),
    senderIdentityKey: toHex(senderSecret.subarray(32)),
    nonce: toHex(nonce),
    ct: toHex(env.ct),
    sig: toHex(env.sig),
  };
}
const roster1 = rosterHash(conv1, directRoster);
write<EnvelopeVector>('envelope.json', {
  source: `${ownSource('messageAd and sealEnvelope: AEAD under the epoch key with AD messageAd(header), then Ed25519 over context "umbra/v1/message-sig" and ad || ct; shared/crypto/envelope.ts, via dangerousTestOnlySealEnvelope')}`,
  vectors: [
    envelopeVector(
      'text without expiry',
      {
        v: PROTOCOL_VERSION,
        suite: SUITE_XCHACHA20_ED25519,
        type: 'content',
        conv: conv1,
        epoch: 0,
        sender: 'alice',
        rosterHash: roster1,
        clientMsgId: toB64(fixed('envelope/msg-1', 16)),
        counter: 1,
        expiresAt: null,
        burnAfterMs: null,
      },
      utf8('{"kind":"text","body":"hello bob"}'),
    ),
    envelopeVector(
      'control with expiry',
      {
        v: PROTOCOL_VERSION,
        suite: SUITE_XCHACHA20_ED25519,
        type: 'control',
        conv: conv1,
        epoch: 3,
        sender: 'bob',
        rosterHash: roster1,
        clientMsgId: toB64(fixed('envelope/msg-2', 16)),
        counter: 42,
        expiresAt: 1_767_225_600_000,
        burnAfterMs: 30_000,
      },
      new Uint8Array(0),
    ),
  ],
});

// ---- safety numbers ----------------------------------------------------------------------

function safetyVector(name: string, a: { username: string; identityKey: Uint8Array }, b: { username: string; identityKey: Uint8Array }): SafetyVector {
  return {
    name,
    a: { username: a.username, identityKey: toHex(a.identityKey) },
    b: { username: b.username, identityKey: toHex(b.identityKey) },
    fingerprintA: fingerprintDigits(a.username, a.identityKey),
    fingerprintB: fingerprintDigits(b.username, b.identityKey),
    safetyNumber: safetyNumber(a, b),
  };
}
write<SafetyVector>('safety-number.json', {
  source: `${ownSource('fingerprintDigits / safetyNumber: 5200 iterations of SHA-512, six 5-digit chunks per party; shared/crypto/safety.ts')}`,
  vectors: [safetyVector('alice and bob', member('alice'), member('bob')), safetyVector('bob and carol', member('bob'), member('carol'))],
});

// ---- vault -------------------------------------------------------------------------------

function vaultVector(name: string, username: string, contents: VaultContents): VaultVector {
  const vaultKey = deriveAccountKeys(derivedMaster, username).vaultKey;
  const ad = encodeFields([CTX.vaultAd, username]);
  // sealVault draws its own nonce; open what it sealed to learn its exact plaintext, then
  // freeze that plaintext under a fixed nonce so the file is reproducible.
  const plaintext = openAead(vaultKey, sealVault(vaultKey, username, contents), ad);
  const sealed = dangerousTestOnlySealWithNonce(vaultKey, fixed(`vault/${name}/nonce`, 24), plaintext, ad);
  const reopened = openVault(vaultKey, username, sealed);
  check(equalBytes(reopened.signingSecret, contents.signingSecret), `vault ${name} reopens`);
  return {
    name,
    username,
    vaultKey: toHex(vaultKey),
    contents: {
      signingSecret: toHex(contents.signingSecret),
      agreementSecret: toHex(contents.agreementSecret),
      pins: Object.fromEntries(Object.entries(contents.pins).map(([u, k]) => [u, toHex(k)])),
    },
    plaintextJson: new TextDecoder().decode(plaintext),
    sealed: toHex(sealed),
  };
}
write<VaultVector>('vault.json', {
  source: `${ownSource('sealVault / openVault: XChaCha20-Poly1305 under the vault key with AD encodeFields([context, username]); shared/crypto/vault.ts')}. sealVault draws a random nonce, so the generator freezes sealVault's exact plaintext under a fixed nonce.`,
  vectors: [
    vaultVector('no pins', 'alice', { signingSecret: signingSecret('alice'), agreementSecret: fixed('alice/agreement', 32), pins: {} }),
    vaultVector('two pins', 'bob', {
      signingSecret: signingSecret('bob'),
      agreementSecret: fixed('bob/agreement', 32),
      pins: { alice: member('alice').identityKey, carol: member('carol').identityKey },
    }),
  ],
});

// ---- rooms -------------------------------------------------------------------------------

const room1 = toB64(fixed('room/1', 16));
/** 2026-01-01T00:00:00Z: the clock every room statement below claims, a minute apart. */
const ROOM_AT = 1_767_225_600_000;

function memberRef(who: string): { username: string; identityKey: string } {
  return { username: who, identityKey: toB64(member(who).identityKey) };
}

// One chain with every operation, each signed by someone allowed to make it at that point.
const chainSteps: [string, string, RoomOp][] = [
  ['alice creates the room', 'alice', { op: 'create', owner: memberRef('alice') }],
  ['alice invites bob as an admin', 'alice', { op: 'add', member: memberRef('bob'), role: 'admin', via: 'invite' }],
  ['bob admits carol, who asked to join', 'bob', { op: 'add', member: memberRef('carol'), role: 'member', via: 'join' }],
  ['bob promotes carol', 'bob', { op: 'role', member: 'carol', role: 'admin' }],
  ['alice, the owner, demotes carol', 'alice', { op: 'role', member: 'carol', role: 'member' }],
  ['carol leaves: a rotation is due', 'carol', { op: 'leave' }],
  ['bob rotates to epoch 1', 'bob', { op: 'rotate', epoch: 1 }],
  ['bob invites dave', 'bob', { op: 'add', member: memberRef('dave'), role: 'member', via: 'invite' }],
  ['alice removes bob, an admin, and moves to epoch 2', 'alice', { op: 'remove', member: 'bob', epoch: 2 }],
];
const links: SignedStatement[] = [];
const statementVectors: RoomStatementVector[] = [];
for (const [seq, [name, who, body]] of chainSteps.entries()) {
  const sk = signingSecret(who);
  const prev = seq === 0 ? null : toB64(statementHash(links[seq - 1]!.statement));
  const signed = signStatement({ v: 1, kind: 'room-statement', conv: room1, seq, prev, actor: who, at: ROOM_AT + seq * 60_000, body }, sk);
  check(verifyStatementSignature(signed, sk.subarray(32)), `room link ${seq} verifies`);
  links.push(signed);
  const head = replayRoomChain(room1, links).head;
  statementVectors.push({
    name,
    conv: room1,
    actor: who,
    signingSecret: toHex(sk),
    identityKey: toHex(sk.subarray(32)),
    statement: signed.statement,
    hashInput: toHex(encodeFields([CTX.statementHash, utf8(signed.statement)])),
    hash: toHex(statementHash(signed.statement)),
    signature: toHex(signed.sig),
    state: {
      epoch: head.epoch,
      needsRotation: head.needsRotation,
      members: [...head.members.values()]
        .map((m) => ({ username: m.username, role: m.role }))
        .sort((a, b) => (a.username < b.username ? -1 : 1)),
      rosterHash: toHex(head.rosterHash),
    },
  });
}
check(statementVectors.at(-1)!.state.members.map((m) => `${m.username}:${m.role}`).join() === 'alice:owner,dave:member', 'the chain ends with alice and dave');
write<RoomStatementVector>('room-statement.json', {
  source: `${ownSource('room membership chain: signStatement signs the exact JSON text under "umbra/v1/membership-sig"; statementHash is BLAKE2b-256 over encodeFields(["umbra/v1/statement-hash", text]) and is the next link\'s prev; state as replayRoomChain computes it; shared/crypto/room.ts and shared/membership-chain.ts')}. The vectors, in order, are one chain of one room.`,
  vectors: statementVectors,
});

function joinRequestVector(name: string, who: string, conv: string, at: number): JoinRequestVector {
  const sk = signingSecret(who);
  const signed = signJoinRequest({ v: 1, kind: 'join-request', conv, username: who, identityKey: toB64(sk.subarray(32)), at }, sk);
  check(verifyJoinRequest(signed)?.username === who, `join request ${name} verifies`);
  return { name, username: who, signingSecret: toHex(sk), identityKey: toHex(sk.subarray(32)), request: signed.statement, signature: toHex(signed.sig) };
}
write<JoinRequestVector>('join-request.json', {
  source: `${ownSource('signJoinRequest / verifyJoinRequest: Ed25519 by the key the request names, over the exact JSON text under "umbra/v1/join-request-sig"; shared/crypto/room.ts')}`,
  vectors: [
    joinRequestVector('carol asks to join', 'carol', room1, ROOM_AT + 90_000),
    joinRequestVector('erin asks to join another room', 'erin', toB64(fixed('room/2', 16)), ROOM_AT),
  ],
});

function roomMetaVector(name: string, conv: string, epoch: number, author: string, meta: RoomMeta): RoomMetaVector {
  const sk = signingSecret(author);
  const epochKey = fixed(`room-meta/${name}/epoch-key`, 32);
  const nonce = fixed(`room-meta/${name}/nonce`, 24);
  const sealed = dangerousTestOnlySealRoomMeta(meta, conv, epoch, author, epochKey, sk, nonce);
  const ad = encodeFields([CTX.roomMetaAd, conv, epoch, author]);
  check(JSON.stringify(openRoomMeta(sealed, conv, epochKey, sk.subarray(32))) === JSON.stringify(meta), `room settings ${name} reopen`);
  return {
    name,
    conv,
    epoch,
    author,
    authorSigningSecret: toHex(sk),
    authorIdentityKey: toHex(sk.subarray(32)),
    epochKey: toHex(epochKey),
    meta,
    plaintextJson: new TextDecoder().decode(openAead(epochKey, sealed.sealed, ad)),
    ad: toHex(ad),
    nonce: toHex(nonce),
    sealed: toHex(sealed.sealed),
    sig: toHex(sealed.sig),
  };
}
write<RoomMetaVector>('room-meta.json', {
  source: `${ownSource('sealRoomMeta / openRoomMeta: XChaCha20-Poly1305 under the epoch key with AD encodeFields(["umbra/v1/room-meta-ad", conv, epoch, author]), then Ed25519 by the author over "umbra/v1/room-meta-sig" and ad || sealed; shared/crypto/room.ts, via dangerousTestOnlySealRoomMeta')}`,
  vectors: [
    roomMetaVector('open room, epoch 0, by the owner', room1, 0, 'alice', { name: 'Book Club', topic: '', policy: 'open' }),
    roomMetaVector('private room, epoch 2, by an admin, non-ASCII topic', toB64(fixed('room/2', 16)), 2, 'bob', {
      name: 'Café films',
      topic: 'Films du mercredi — ﬁn de séance 🎬',
      policy: 'private',
    }),
  ],
});

function roomNameVector(name: string, spellings: string[]): RoomNameVector {
  const normalised = normaliseRoomName(spellings[0]!);
  const salt = sodium.crypto_generichash(16, utf8(CTX.roomName), null);
  const hash = roomNameHash(spellings[0]!);
  for (const s of spellings) {
    check(normaliseRoomName(s) === normalised, `"${s}" normalises to "${normalised}"`);
    check(equalBytes(roomNameHash(s), hash), `"${s}" hashes like "${normalised}"`);
  }
  const independent = sodium.crypto_pwhash(32, utf8(normalised), salt, ROOM_NAME_KDF.ops, ROOM_NAME_KDF.memKiB * 1024, sodium.crypto_pwhash_ALG_ARGON2ID13);
  check(equalBytes(independent, hash), `room name ${name}: Argon2id over the normalised name`);
  return { name, spellings, normalised, salt: toHex(salt), params: { alg: 'argon2id13', ...ROOM_NAME_KDF }, hash: toHex(hash) };
}
write<RoomNameVector>('room-name.json', {
  source: `${ownSource('normaliseRoomName (NFKC, trimmed, lower-cased, white space folded to one space) and roomNameHash: Argon2id13 over it with the salt BLAKE2b-128("umbra/v1/room-name"); shared/crypto/room.ts')}`,
  vectors: [
    roomNameVector('case, white space and full-width forms', ['book club', '  Book  Club ', 'BOOK\tCLUB\n', 'Book\u3000Club', '\uff22\uff4f\uff4f\uff4b \uff23\uff4c\uff55\uff42']),
    roomNameVector('combining accent, ligature and no-break space', ['caf\u00e9 films', 'Cafe\u0301 \ufb01lms', 'CAF\u00c9\u00a0FILMS', ' caf\u00e9   films\r\n']),
    roomNameVector('64 characters once folded', [
      'readers of the long winter evenings, north and south chapter 123',
      '  Readers of the Long Winter Evenings,  North and South Chapter 123  ',
    ]),
  ],
});
