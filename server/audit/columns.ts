// Every column the relay stores, classified: what kind of value it holds and what shape that value
// must have (docs/PROTOCOL.md §Tables, docs/THREAT-MODEL.md "Fields the relay must see, and why").
// The type of COLUMNS makes a column added to `DB` fail to compile until it is classified here; a
// column found in a database but not here is an audit finding, so drift is caught both ways.
import type { DB } from '../db.ts';
import {
  ENVELOPE_TYPES,
  LIMITS,
  PUBLIC_KEY_BYTES,
  ROLES,
  SALT_BYTES,
  SIGNATURE_BYTES,
  SUITE_XCHACHA20_ED25519,
  TAG_BYTES,
  USERNAME_PATTERN,
  XNONCE_BYTES,
} from '../../shared/index.ts';

export type ColumnClass =
  | 'routing'
  | 'ciphertext'
  | 'public-key'
  | 'signature'
  | 'hash'
  | 'verifier'
  | 'timestamp'
  | 'kdf-parameter'
  | 'signed-statement'
  | 'bookkeeping';

export const CLASS_LABELS: Record<ColumnClass, string> = {
  routing: 'routing metadata',
  ciphertext: 'ciphertext',
  'public-key': 'public key',
  signature: 'signature',
  hash: 'hash',
  verifier: 'secret-derived verifier',
  timestamp: 'timestamp',
  'kdf-parameter': 'KDF parameter',
  'signed-statement': 'signed statement (clear by design)',
  bookkeeping: 'schema bookkeeping',
};

/** SQLite storage classes a column may hold (besides NULL where `nullable`). */
export type StorageType = 'integer' | 'text' | 'blob';

/** How a ciphertext's bytes are laid out: `prefix ‖ nonce ‖ encrypted bytes ‖ tag`. */
export interface Framing {
  name: string;
  /** Public bytes before the nonce (an ephemeral public key). */
  prefix: number;
  nonce: number;
  tag: number;
  /** Shortest and longest well-formed value, in bytes. */
  min: number;
  max: number;
}

export interface ColumnSpec {
  class: ColumnClass;
  type: StorageType;
  nullable?: boolean;
  /** Blobs of one size (keys, signatures, hashes): the exact length. */
  bytes?: number;
  /** Text of a fixed form (ids, names, enums), so the column cannot carry free text. */
  pattern?: RegExp;
  /** Ciphertext: its framing; `envelope-suite` picks it by the row's `suite` (ENVELOPE_SUITES). */
  framing?: Framing | 'envelope-suite';
  /** Signed statements: the JSON `kind`s the stored text may carry. */
  statementKinds?: readonly string[];
}

/** AEAD of docs/PROTOCOL.md §AEAD: `nonce (24) ‖ ciphertext ‖ tag (16)`. */
function xchacha(max: number): Framing {
  return { name: 'XChaCha20-Poly1305', prefix: 0, nonce: XNONCE_BYTES, tag: TAG_BYTES, min: XNONCE_BYTES + TAG_BYTES, max };
}

/** Envelope ciphertext framing per cipher suite (docs/PROTOCOL.md §Envelopes). */
export const ENVELOPE_SUITES: Readonly<Record<number, Framing>> = {
  [SUITE_XCHACHA20_ED25519]: xchacha(LIMITS.maxCiphertextBytes),
};

/** The relay's outer layer on the vault (server/vault-at-rest.ts): AES-256-GCM around the client's AEAD. */
const VAULT_AT_REST_OVERHEAD = 12 + 16;
const VAULT_AT_REST: Framing = {
  name: 'AES-256-GCM around XChaCha20-Poly1305',
  prefix: 0,
  nonce: 12,
  tag: 16,
  min: VAULT_AT_REST_OVERHEAD + XNONCE_BYTES + TAG_BYTES,
  max: VAULT_AT_REST_OVERHEAD + LIMITS.maxVaultBytes,
};

/** A wrapped conversation key (docs/PROTOCOL.md §Key wrapping): `epk (32) ‖ nonce ‖ key (32) ‖ tag`, 104 bytes. */
const WRAPPED_KEY_BYTES = PUBLIC_KEY_BYTES + XNONCE_BYTES + 32 + TAG_BYTES;
const WRAPPED_KEY: Framing = {
  name: 'X25519 + XChaCha20-Poly1305',
  prefix: PUBLIC_KEY_BYTES,
  nonce: XNONCE_BYTES,
  tag: TAG_BYTES,
  min: WRAPPED_KEY_BYTES,
  max: WRAPPED_KEY_BYTES,
};

/** Room settings as sealed (docs/PROTOCOL.md §Rooms, `SealedMetaWire.sealed`: at most 4096 bytes). */
const ROOM_META = xchacha(4096);

const NAME = USERNAME_PATTERN.source.replace(/^\^|\$$/g, '');
const ID = /^[A-Za-z0-9_-]{22}$/;
const oneOf = (values: readonly string[]): RegExp => new RegExp(`^(?:${values.join('|')})$`);

const id = (pattern: RegExp = ID): ColumnSpec => ({ class: 'routing', type: 'text', pattern });
const ref: ColumnSpec = { class: 'routing', type: 'integer' };
const count: ColumnSpec = { class: 'routing', type: 'integer' };
const time: ColumnSpec = { class: 'timestamp', type: 'integer' };
const signature: ColumnSpec = { class: 'signature', type: 'blob', bytes: SIGNATURE_BYTES };
const publicKey: ColumnSpec = { class: 'public-key', type: 'blob', bytes: PUBLIC_KEY_BYTES };

type Classified<T> = { readonly [C in keyof T]-?: ColumnSpec };

/** The relay's own tables (server/db.ts `DB`), column by column. */
export const COLUMNS: { readonly [T in keyof DB]: Classified<DB[T]> } = {
  users: {
    id: ref,
    username: id(USERNAME_PATTERN),
    salt: { class: 'kdf-parameter', type: 'blob', bytes: SALT_BYTES },
    kdf_ops: { class: 'kdf-parameter', type: 'integer' },
    kdf_mem_kib: { class: 'kdf-parameter', type: 'integer' },
    auth_hash: { class: 'verifier', type: 'blob', bytes: 32 },
    identity_key: publicKey,
    x25519_key: publicKey,
    x25519_sig: signature,
    vault: { class: 'ciphertext', type: 'blob', framing: VAULT_AT_REST },
    vault_version: count,
    created_at: time,
  },
  sessions: {
    token_hash: { class: 'verifier', type: 'blob', bytes: 32 },
    user_id: ref,
    created_at: time,
    expires_at: time,
  },
  conversations: {
    id: id(),
    kind: id(/^(?:direct|room)$/),
    direct_key: { class: 'routing', type: 'text', nullable: true, pattern: new RegExp(`^${NAME}\\n${NAME}$`) },
    created_by: ref,
    created_at: time,
    last_seq: count,
    // A direct conversation's genesis statement, or link 0 of a room's chain.
    genesis: { class: 'signed-statement', type: 'blob', statementKinds: ['genesis', 'room-statement'] },
    genesis_sig: signature,
    name_hash: { class: 'hash', type: 'blob', nullable: true, bytes: 32 },
    meta_epoch: { ...count, nullable: true },
    meta_author_id: { ...ref, nullable: true },
    meta_sealed: { class: 'ciphertext', type: 'blob', nullable: true, framing: ROOM_META },
    meta_sig: { ...signature, nullable: true },
  },
  members: {
    conv_id: id(),
    user_id: ref,
    joined_at: time,
    role: id(oneOf(ROLES)),
  },
  statements: {
    conv_id: id(),
    seq: count,
    body: { class: 'signed-statement', type: 'blob', statementKinds: ['room-statement'] },
    sig: signature,
  },
  join_requests: {
    conv_id: id(),
    user_id: ref,
    request: { class: 'signed-statement', type: 'blob', statementKinds: ['join-request'] },
    sig: signature,
    // A short lower-case word (pending, declined, …): it cannot carry free text.
    status: id(/^[a-z]{1,16}$/),
    created_at: time,
  },
  wrapped_keys: {
    conv_id: id(),
    epoch: count,
    recipient_id: ref,
    wrapped_by_id: ref,
    wrapped: { class: 'ciphertext', type: 'blob', framing: WRAPPED_KEY },
    sig: signature,
  },
  envelopes: {
    conv_id: id(),
    seq: count,
    sender_id: ref,
    client_msg_id: id(),
    v: count,
    suite: count,
    type: id(oneOf(ENVELOPE_TYPES)),
    epoch: count,
    counter: count,
    roster_hash: { class: 'hash', type: 'blob', bytes: 32 },
    expires_at: { ...time, nullable: true },
    env_expires_at: { ...time, nullable: true },
    burn_after_ms: { ...count, nullable: true },
    opened_at: { ...time, nullable: true },
    received_at: time,
    ct: { class: 'ciphertext', type: 'blob', framing: 'envelope-suite' },
    sig: signature,
  },
};

/** Kysely's migration bookkeeping, which lives in the same file. */
export const BOOKKEEPING_COLUMNS: Readonly<Record<string, Readonly<Record<string, ColumnSpec>>>> = {
  kysely_migration: {
    name: { class: 'bookkeeping', type: 'text', pattern: /^\d{4}_[a-z0-9_]+$/ },
    timestamp: { class: 'timestamp', type: 'text', pattern: /^\d{4}-\d\d-\d\dT[\d:.]+Z$/ },
  },
  kysely_migration_lock: {
    id: { class: 'bookkeeping', type: 'text', pattern: /^[a-z_]{1,32}$/ },
    is_locked: { class: 'bookkeeping', type: 'integer' },
  },
};

/** Every classified table, the relay's first. */
export const ALL_TABLES: Readonly<Record<string, Readonly<Record<string, ColumnSpec>>>> = { ...COLUMNS, ...BOOKKEEPING_COLUMNS };
