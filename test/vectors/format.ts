// The shape of the golden-vector files in this folder and the hex and field codecs they use.
import type { Field } from '../../shared/index.ts';

/** How to rebuild every file in this folder; quoted in each file's "source". */
export const REGENERATE_COMMAND =
  "UMBRA_TEST_VECTORS=1 node --input-type=module -e \"await (await import('vite')).runnerImport('./test/vectors/generate.ts', { configFile: false })\"";

/** Every vector file: where its bytes come from, then the vectors. */
export interface VectorFile<V> {
  source: string;
  vectors: V[];
}

/** A canonical-encoding field written as JSON: {"s"}tring, {"b"}ytes (hex), {"u"}int, {"l"}ist or null. */
export type FieldJson = null | { s: string } | { b: string } | { u: number } | { l: FieldJson[] };

export interface EncodeFieldsVector {
  name: string;
  fields: FieldJson[];
  encoded: string;
}

export interface AeadVector {
  name: string;
  /** Set when the bytes come from an outside document rather than from our generator. */
  reference?: string;
  key: string;
  nonce: string;
  plaintext: string;
  ad: string;
  /** nonce || ciphertext || tag */
  sealed: string;
}

export interface Ed25519ReferenceVector {
  name: string;
  reference: string;
  seed: string;
  publicKey: string;
  message: string;
  signature: string;
}

export interface SignVector {
  name: string;
  /** libsodium's 64-byte secret key: seed || public key. */
  secretKey: string;
  publicKey: string;
  context: string;
  message: string;
  /** utf8(context) || 0x00 || message: the bytes Ed25519 actually signs. */
  signedBytes: string;
  signature: string;
}

export interface MasterKeyVector {
  name: string;
  password: string;
  /** A different spelling with the same NFKC form, expected to derive the same key. */
  passwordEquivalent: string;
  salt: string;
  params: { alg: 'argon2id13'; ops: number; memKiB: number };
  masterKey: string;
}

export interface AccountKeysVector {
  name: string;
  masterKey: string;
  username: string;
  authKey: string;
  vaultKey: string;
}

export interface IdentityVector {
  name: string;
  username: string;
  signingSecret: string;
  agreementSecret: string;
  identityKey: string;
  x25519Key: string;
  x25519Sig: string;
}

/** What every wrapped key of one set shares. */
export interface WrapSetContextJson {
  conv: string;
  epoch: number;
  wrappedBy: string;
}

/** One recipient of a wrapped set and the row it gets. */
export interface WrapRecipientJson {
  recipient: string;
  recipientSecret: string;
  recipientX25519: string;
  nonce: string;
  /** ephemeral public key || nonce || sealed key || tag */
  wrapped: string;
}

/** One key wrapped for a set of recipients under one ephemeral key and one signature. */
export interface WrapVector {
  name: string;
  context: WrapSetContextJson;
  convKey: string;
  wrapperSigningSecret: string;
  wrapperIdentityKey: string;
  ephemeralSecret: string;
  ephemeralPublicKey: string;
  /** encodeFields([conv, epoch, wrappedBy, ephemeral public key]), signed under CTX.wrapSetSig */
  sigMessage: string;
  /** the one signature every row of the set carries */
  sig: string;
  recipients: WrapRecipientJson[];
}

export interface EnvelopeHeaderJson {
  v: number;
  suite: number;
  type: 'content' | 'control' | 'setting';
  conv: string;
  epoch: number;
  sender: string;
  rosterHash: string;
  clientMsgId: string;
  counter: number;
  expiresAt: number | null;
  burnAfterMs: number | null;
}

export interface EnvelopeVector {
  name: string;
  header: EnvelopeHeaderJson;
  /** messageAd(header) */
  ad: string;
  plaintext: string;
  epochKey: string;
  senderSigningSecret: string;
  senderIdentityKey: string;
  nonce: string;
  ct: string;
  sig: string;
}

export interface RosterVector {
  name: string;
  conv: string;
  members: { username: string; identityKey: string }[];
  hash: string;
}

export interface SafetyVector {
  name: string;
  a: { username: string; identityKey: string };
  b: { username: string; identityKey: string };
  fingerprintA: string;
  fingerprintB: string;
  safetyNumber: string;
}

export interface VaultVector {
  name: string;
  username: string;
  vaultKey: string;
  contents: { signingSecret: string; agreementSecret: string; pins: Record<string, string> };
  /** The exact JSON text sealVault encrypts for these contents. */
  plaintextJson: string;
  /** nonce || ciphertext || tag, under AD encodeFields([CTX.vaultAd, username]) */
  sealed: string;
}

/** One link of a room's membership chain; a file's vectors, in order, are one chain. */
export interface RoomStatementVector {
  name: string;
  conv: string;
  /** The link's actor, who signs it. */
  actor: string;
  signingSecret: string;
  identityKey: string;
  /** The exact JSON text signStatement writes: what is signed and hashed (never re-serialised). */
  statement: string;
  /** encodeFields([CTX.statementHash, utf8(statement)]): what BLAKE2b-256 hashes. */
  hashInput: string;
  /** statementHash(statement): the next link's `prev` (base64url there). */
  hash: string;
  /** Ed25519 over utf8(CTX.membershipSig) || 0x00 || utf8(statement). */
  signature: string;
  /** The room right after this link, as replayRoomChain computes it. */
  state: {
    epoch: number;
    needsRotation: boolean;
    /** Sorted by username. */
    members: { username: string; role: 'owner' | 'admin' | 'member' }[];
    rosterHash: string;
  };
}

export interface JoinRequestVector {
  name: string;
  username: string;
  signingSecret: string;
  identityKey: string;
  /** The exact JSON text signJoinRequest writes. */
  request: string;
  /** Ed25519 over utf8(CTX.joinRequestSig) || 0x00 || utf8(request). */
  signature: string;
}

export interface RoomMetaVector {
  name: string;
  conv: string;
  epoch: number;
  author: string;
  authorSigningSecret: string;
  authorIdentityKey: string;
  epochKey: string;
  meta: { name: string; topic: string; policy: 'open' | 'private' };
  /** The exact JSON text sealRoomMeta encrypts. */
  plaintextJson: string;
  /** encodeFields([CTX.roomMetaAd, conv, epoch, author]) */
  ad: string;
  nonce: string;
  /** nonce || ciphertext || tag */
  sealed: string;
  /** Ed25519 over utf8(CTX.roomMetaSig) || 0x00 || ad || sealed. */
  sig: string;
}

export interface RoomNameVector {
  name: string;
  /** Spellings that normalise to `normalised`, so to the same hash. */
  spellings: string[];
  normalised: string;
  /** BLAKE2b-128 of utf8(CTX.roomName): the fixed, public Argon2id salt. */
  salt: string;
  params: { alg: 'argon2id13'; ops: number; memKiB: number };
  /** Argon2id(utf8(normalised), salt): the `nameHash` the relay indexes rooms by. */
  hash: string;
}

export function toHex(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}

export function fromHex(hex: string): Uint8Array {
  if (hex.length % 2 !== 0 || !/^[0-9a-f]*$/.test(hex)) throw new RangeError(`not lowercase hex: ${hex.slice(0, 16)}`);
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function fieldFromJson(f: FieldJson): Field {
  if (f === null) return null;
  if ('s' in f) return f.s;
  if ('b' in f) return fromHex(f.b);
  if ('u' in f) return f.u;
  return f.l.map(fieldFromJson);
}

export function fieldToJson(f: Field): FieldJson {
  if (f === null) return null;
  if (typeof f === 'string') return { s: f };
  if (typeof f === 'number') return { u: f };
  if (f instanceof Uint8Array) return { b: toHex(f) };
  return { l: f.map(fieldToJson) };
}

/** A copy of `bytes` with the bits of `mask` flipped at `index`. */
export function flipped(bytes: Uint8Array, index: number, mask = 0x01): Uint8Array {
  const copy = bytes.slice();
  copy[index] = copy[index]! ^ mask;
  return copy;
}
