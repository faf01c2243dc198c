// Schemas for every HTTP body and WebSocket frame, shared by relay and client
// (docs/PROTOCOL.md §Endpoints and §Frames). Binary values travel as unpadded base64url.
import { z } from 'zod';
import { isCanonicalB64 } from './crypto/bytes.ts';
import { ERROR_CODES } from './errors.ts';
import { MAX_TIMER_MS, MIN_TIMER_MS } from './expiry.ts';
import { ENVELOPE_TYPES, LIMITS, ROOM_NAME_MAX_CHARS, ROOM_TOPIC_MAX_CHARS, SALT_BYTES, USERNAME_PATTERN } from './protocol.ts';

const B64URL = /^[A-Za-z0-9_-]*$/;

/** base64url text that decodes to exactly `bytes` bytes. */
export function b64Exact(bytes: number) {
  const chars = Math.ceil((bytes * 4) / 3);
  return z.string().length(chars).regex(B64URL, 'must be unpadded base64url').refine(isCanonicalB64, 'must be canonical base64url');
}

/** base64url text that decodes to at most `bytes` bytes. */
export function b64Max(bytes: number) {
  return z
    .string()
    .min(1)
    .max(Math.ceil((bytes * 4) / 3))
    .regex(B64URL, 'must be unpadded base64url')
    .refine(isCanonicalB64, 'must be canonical base64url');
}

export const Username = z.string().regex(USERNAME_PATTERN, 'username: 3 to 32 of a-z 0-9 _ . -, starting with a letter or digit');
export const PublicKey = b64Exact(32);
export const Signature = b64Exact(64);
export const ConvId = b64Exact(16);
export const ClientMsgId = b64Exact(16);
export const Seq = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
export const Epoch = z.number().int().min(0).max(2 ** 31);
export const Timestamp = z.number().int().min(0).max(8.64e15);

export const KdfParamsSchema = z.strictObject({
  alg: z.literal('argon2id13'),
  ops: z.number().int().min(1).max(100),
  memKiB: z.number().int().min(8).max(4 * 1024 * 1024),
});

// ---- HTTP bodies -------------------------------------------------------------------------

export const SaltRequest = z.strictObject({ username: Username });
export const SaltResponse = z.strictObject({ salt: b64Exact(SALT_BYTES), kdf: KdfParamsSchema });

export const PublicKeysWire = z.strictObject({
  username: Username,
  identityKey: PublicKey,
  x25519Key: PublicKey,
  x25519Sig: Signature,
});
export type PublicKeysWire = z.infer<typeof PublicKeysWire>;

export const SignupRequest = z.strictObject({
  username: Username,
  salt: b64Exact(SALT_BYTES),
  kdf: KdfParamsSchema,
  authKey: b64Exact(32),
  keys: PublicKeysWire,
  vault: b64Max(LIMITS.maxVaultBytes),
});
export type SignupRequest = z.infer<typeof SignupRequest>;

export const LoginRequest = z.strictObject({ username: Username, authKey: b64Exact(32) });

export const AccountResponse = z.strictObject({
  username: Username,
  vault: b64Max(LIMITS.maxVaultBytes),
  vaultVersion: z.number().int().min(1),
});
export type AccountResponse = z.infer<typeof AccountResponse>;

export const VaultUpdateRequest = z.strictObject({
  vault: b64Max(LIMITS.maxVaultBytes),
  /** The version the client last saw; the update is refused (409) if the vault moved on. */
  expectedVersion: z.number().int().min(1),
});
export const VaultUpdateResponse = z.strictObject({ vaultVersion: z.number().int().min(1) });

export const OkResponse = z.strictObject({ ok: z.literal(true) });

export const WrappedKeyWire = z.strictObject({
  conv: ConvId,
  epoch: Epoch,
  recipient: Username,
  wrappedBy: Username,
  wrapped: b64Exact(32 + 24 + 32 + 16),
  sig: Signature,
});
export type WrappedKeyWire = z.infer<typeof WrappedKeyWire>;

export const SignedStatementWire = z.strictObject({
  statement: z.string().min(2).max(256 * 1024),
  sig: Signature,
});

export const GenesisStatementSchema = z.strictObject({
  v: z.literal(1),
  kind: z.literal('genesis'),
  conv: ConvId,
  convKind: z.literal('direct'),
  createdBy: Username,
  createdAt: Timestamp,
  members: z.array(z.strictObject({ username: Username, identityKey: PublicKey })).min(2).max(LIMITS.maxMembers),
});
export type GenesisStatement = z.infer<typeof GenesisStatementSchema>;

export const CreateConversationRequest = z.strictObject({
  id: ConvId,
  kind: z.literal('direct'),
  members: z.array(Username).min(2).max(LIMITS.maxMembers),
  genesis: SignedStatementWire,
  keys: z.array(WrappedKeyWire).min(1).max(LIMITS.maxMembers),
});
export type CreateConversationRequest = z.infer<typeof CreateConversationRequest>;

// ---- Rooms (docs/PROTOCOL.md §Rooms) ------------------------------------------------------

export const MemberRef = z.strictObject({ username: Username, identityKey: PublicKey });

/** One membership change. Who may sign which is checked by replayRoomChain. */
export const RoomOp = z.discriminatedUnion('op', [
  /** seq 0: the creator becomes owner at epoch 0. */
  z.strictObject({ op: z.literal('create'), owner: MemberRef }),
  /** An admin adds a member (invited, or admitting a join request) with the current epoch key. */
  z.strictObject({ op: z.literal('add'), member: MemberRef, role: z.enum(['admin', 'member']), via: z.enum(['invite', 'join']) }),
  /** An admin removes a member and rotates to `epoch` (the previous epoch + 1) in the same step. */
  z.strictObject({ op: z.literal('remove'), member: Username, epoch: Epoch }),
  /** The signer leaves; an admin must rotate before anyone sends again. */
  z.strictObject({ op: z.literal('leave') }),
  /** An admin moves the room to `epoch` (the previous epoch + 1), wrapped for the current members. */
  z.strictObject({ op: z.literal('rotate'), epoch: Epoch }),
  /** An admin promotes a member to admin, or (the owner) demotes an admin to member. */
  z.strictObject({ op: z.literal('role'), member: Username, role: z.enum(['admin', 'member']) }),
]);
export type RoomOp = z.infer<typeof RoomOp>;

/** A signed link in a room's membership chain; `prev` is the hash of the link before it. */
export const RoomStatementSchema = z.strictObject({
  v: z.literal(1),
  kind: z.literal('room-statement'),
  conv: ConvId,
  seq: z.number().int().min(0).max(1_000_000),
  prev: b64Exact(32).nullable(),
  actor: Username,
  at: Timestamp,
  body: RoomOp,
});
export type RoomStatement = z.infer<typeof RoomStatementSchema>;

/** What a would-be member signs to ask to join a room found by name. */
export const JoinRequestSchema = z.strictObject({
  v: z.literal(1),
  kind: z.literal('join-request'),
  conv: ConvId,
  username: Username,
  identityKey: PublicKey,
  at: Timestamp,
});
export type JoinRequest = z.infer<typeof JoinRequestSchema>;

/** Room settings, sealed under an epoch key: the relay never reads them. */
export const RoomMetaSchema = z.strictObject({
  name: z.string().min(1).max(ROOM_NAME_MAX_CHARS),
  topic: z.string().max(ROOM_TOPIC_MAX_CHARS),
  /** `open`: any online admin's client admits join requests; `private`: an admin approves each. */
  policy: z.enum(['open', 'private']),
});
export type RoomMeta = z.infer<typeof RoomMetaSchema>;

/** The sealed settings as stored: epoch, sealed bytes, and the admin who signed them. */
export const SealedMetaWire = z.strictObject({
  epoch: Epoch,
  author: Username,
  sealed: b64Max(4096),
  sig: Signature,
});
export type SealedMetaWire = z.infer<typeof SealedMetaWire>;

export const CreateRoomRequest = z.strictObject({
  id: ConvId,
  nameHash: b64Exact(32),
  genesis: SignedStatementWire,
  keys: z.array(WrappedKeyWire).length(1),
  meta: SealedMetaWire,
});
export type CreateRoomRequest = z.infer<typeof CreateRoomRequest>;

export const RoomLookupRequest = z.strictObject({ nameHash: b64Exact(32) });
export const RoomLookupResponse = z.strictObject({ id: ConvId });

export const JoinRoomRequest = SignedStatementWire;

/** A change to the chain, with the wrapped keys and settings it brings (all in one transaction). */
export const PostStatementRequest = z.strictObject({
  statement: SignedStatementWire,
  keys: z.array(WrappedKeyWire).max(LIMITS.maxMembers),
  meta: SealedMetaWire.nullable(),
});
export type PostStatementRequest = z.infer<typeof PostStatementRequest>;

/** For admins: the signed join requests waiting on a room. */
export const PendingJoinRequests = z.strictObject({ requests: z.array(SignedStatementWire) });

/** For a would-be member: the rooms it asked to join and where each request stands. */
export const MyJoinRequests = z.strictObject({
  requests: z.array(z.strictObject({ conv: ConvId, status: z.enum(['pending', 'declined']), at: Timestamp })),
});

export const ConversationSummary = z.strictObject({
  id: ConvId,
  kind: z.enum(['direct', 'room']),
  members: z.array(Username),
  genesis: SignedStatementWire,
  /** Only the wrapped keys addressed to the caller. */
  keys: z.array(WrappedKeyWire),
  lastSeq: Seq,
  /** Highest counter the caller has used here (0 if none); lets a new device continue the count. */
  myLastCounter: z.number().int().min(0),
  createdAt: Timestamp,
  /** Rooms: the whole membership chain, oldest first, and the newest sealed settings. */
  statements: z.array(SignedStatementWire),
  meta: SealedMetaWire.nullable(),
});
export type ConversationSummary = z.infer<typeof ConversationSummary>;

export const ConversationListResponse = z.strictObject({ conversations: z.array(ConversationSummary) });

// ---- Envelopes ---------------------------------------------------------------------------

export const EnvelopeWire = z.strictObject({
  v: z.number().int().min(0).max(255),
  suite: z.number().int().min(0).max(255),
  type: z.enum(ENVELOPE_TYPES),
  conv: ConvId,
  epoch: Epoch,
  sender: Username,
  rosterHash: b64Exact(32),
  clientMsgId: ClientMsgId,
  counter: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
  expiresAt: Timestamp.nullable(),
  burnAfterMs: z.number().int().min(MIN_TIMER_MS).max(MAX_TIMER_MS).nullable(),
  ct: b64Max(LIMITS.maxCiphertextBytes),
  sig: Signature,
});
export type EnvelopeWire = z.infer<typeof EnvelopeWire>;

/**
 * An envelope as the relay stored it: its sequence number, the time it was committed, and when the
 * relay will delete it (the signed expiry, or earlier once a burn-after-reading message was opened).
 */
export const StoredEnvelope = z.strictObject({ seq: Seq.min(1), receivedAt: Timestamp, expiresAt: Timestamp.nullable(), env: EnvelopeWire });
export type StoredEnvelope = z.infer<typeof StoredEnvelope>;

export const HistoryQuery = z.strictObject({
  before: z.coerce.number().int().min(1).optional(),
  after: z.coerce.number().int().min(0).optional(),
  limit: z.coerce.number().int().min(1).max(LIMITS.maxPage).default(50),
  sender: Username.optional(),
  /** Only envelopes of this type (the newest `setting` is how a client learns the current timer). */
  type: z.enum(ENVELOPE_TYPES).optional(),
});
export const HistoryResponse = z.strictObject({ envelopes: z.array(StoredEnvelope), more: z.boolean() });
export type HistoryResponse = z.infer<typeof HistoryResponse>;

export const ErrorBodySchema = z.strictObject({
  error: z.strictObject({ code: z.enum(ERROR_CODES), message: z.string() }),
});

// ---- WebSocket frames --------------------------------------------------------------------

const RequestId = z.number().int().min(1).max(2 ** 31);

export const ClientFrame = z.discriminatedUnion('t', [
  z.strictObject({ t: z.literal('hello'), id: RequestId }),
  /** `opens`: sequence numbers of burn-after-reading envelopes this member just displayed (§Disappearing messages). */
  z.strictObject({ t: z.literal('send'), id: RequestId, env: EnvelopeWire, opens: z.array(Seq.min(1)).min(1).max(LIMITS.maxPage).optional() }),
  z.strictObject({ t: z.literal('sync'), id: RequestId, conv: ConvId, after: Seq, limit: z.number().int().min(1).max(LIMITS.maxPage) }),
  z.strictObject({ t: z.literal('ping'), id: RequestId }),
]);
export type ClientFrame = z.infer<typeof ClientFrame>;

export const ServerFrame = z.discriminatedUnion('t', [
  z.strictObject({
    t: z.literal('hello'),
    id: RequestId,
    username: Username,
    convs: z.array(z.strictObject({ conv: ConvId, lastSeq: Seq })),
  }),
  z.strictObject({ t: z.literal('ack'), id: RequestId, conv: ConvId, seq: Seq.min(1), clientMsgId: ClientMsgId, receivedAt: Timestamp }),
  z.strictObject({ t: z.literal('batch'), id: RequestId, conv: ConvId, envelopes: z.array(StoredEnvelope), more: z.boolean() }),
  z.strictObject({ t: z.literal('pong'), id: RequestId }),
  z.strictObject({ t: z.literal('env'), conv: ConvId, item: StoredEnvelope }),
  z.strictObject({ t: z.literal('conv'), conv: ConvId }),
  /** A room's membership chain grew (or you were removed): fetch the conversation again. */
  z.strictObject({ t: z.literal('roster'), conv: ConvId }),
  /** To a room's admins: someone asked to join. */
  z.strictObject({ t: z.literal('join-request'), conv: ConvId, username: Username }),
  /** To a would-be member: an admin declined the request. */
  z.strictObject({ t: z.literal('join-declined'), conv: ConvId }),
  z.strictObject({
    t: z.literal('error'),
    id: RequestId.nullable(),
    error: z.strictObject({ code: z.enum(ERROR_CODES), message: z.string() }),
  }),
]);
export type ServerFrame = z.infer<typeof ServerFrame>;

// ---- Plaintext events (inside the ciphertext; the relay never sees these) -----------------

export const VaultContentsSchema = z.strictObject({
  v: z.literal(1),
  signingSecret: b64Exact(64),
  agreementSecret: b64Exact(32),
  pins: z.record(Username, PublicKey),
});
export type VaultContentsWire = z.infer<typeof VaultContentsSchema>;

/**
 * The typed event inside every envelope. Only `text` exists now; edits, reactions, receipts and
 * attachments join this union without any relay change.
 */
export const PlainEvent = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('text'), body: z.string().min(1).max(16 * 1024) }),
  /** Sets the conversation's disappearing-message timer for everyone (null: off). */
  z.strictObject({
    kind: z.literal('timer'),
    ttlMs: z.number().int().min(MIN_TIMER_MS).max(MAX_TIMER_MS).nullable(),
    mode: z.enum(['sent', 'read']),
  }),
  /** Burn after reading: the sender of this event first displayed these messages at `at`. */
  z.strictObject({
    kind: z.literal('opened'),
    refs: z.array(z.strictObject({ sender: Username, clientMsgId: ClientMsgId })).min(1).max(LIMITS.maxPage),
    at: Timestamp,
  }),
]);
export type PlainEvent = z.infer<typeof PlainEvent>;
