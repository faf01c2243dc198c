// Protocol constants: versions, suites, domain-separation strings and limits (docs/PROTOCOL.md).

export const PROTOCOL_VERSION = 1 as const;

/**
 * Cipher suites. Suite 1: XChaCha20-Poly1305 (AEAD), Ed25519 (signatures),
 * X25519 + BLAKE2b (key wrapping). Receivers reject any other value.
 */
export const SUITE_XCHACHA20_ED25519 = 1 as const;
export const SUPPORTED_SUITES: readonly number[] = [SUITE_XCHACHA20_ED25519];

/** Domain-separation constants; each is written once, here (docs/PROTOCOL.md §Constants). */
export const CTX = {
  authKey: 'umbra/v1/auth-key',
  vaultKey: 'umbra/v1/vault-key',
  vaultAd: 'umbra/v1/vault-ad',
  x25519Binding: 'umbra/v1/x25519-binding',
  messageAd: 'umbra/v1/message-ad',
  messageSig: 'umbra/v1/message-sig',
  wrapKdf: 'umbra/v1/wrap-kdf',
  wrapAd: 'umbra/v1/wrap-ad',
  wrapSetSig: 'umbra/v1/wrap-set-sig',
  membershipSig: 'umbra/v1/membership-sig',
  roster: 'umbra/v1/roster',
  safetyNumber: 'umbra/v1/safety-number',
  statementHash: 'umbra/v1/statement-hash',
  joinRequestSig: 'umbra/v1/join-request-sig',
  roomName: 'umbra/v1/room-name',
  roomMetaAd: 'umbra/v1/room-meta-ad',
  roomMetaSig: 'umbra/v1/room-meta-sig',
} as const;

/**
 * Room names are found by a slow, public-salted hash (Argon2id with these parameters), so the relay
 * never holds the name and pays an Argon2id run for every name it guesses (docs/PROTOCOL.md §Rooms).
 */
export const ROOM_NAME_KDF = { ops: 2, memKiB: 19 * 1024 } as const;
export const ROOM_NAME_MAX_CHARS = 64;
export const ROOM_TOPIC_MAX_CHARS = 512;

/** Argon2id parameters for new accounts; clients refuse anything weaker (OWASP minimum). */
export const KDF_DEFAULT = { alg: 'argon2id13', ops: 2, memKiB: 19 * 1024 } as const;
export const KDF_MIN = { ops: 2, memKiB: 19 * 1024 } as const;
export const KDF_MAX = { ops: 10, memKiB: 256 * 1024 } as const;

export const SALT_BYTES = 16;
export const KEY_BYTES = 32;
export const SIGNATURE_BYTES = 64;
export const PUBLIC_KEY_BYTES = 32;
export const XNONCE_BYTES = 24;
export const TAG_BYTES = 16;
export const CLIENT_MSG_ID_BYTES = 16;
export const CONV_ID_BYTES = 16;

export const PASSWORD_MIN_CHARS = 8;
export const PASSWORD_MAX_CHARS = 1024;
export const USERNAME_PATTERN = /^[a-z0-9][a-z0-9_.-]{2,31}$/;

/** Size caps the relay enforces and the SDK respects. */
export const LIMITS = {
  /** Largest ciphertext in one envelope (bytes, before base64). */
  maxCiphertextBytes: 64 * 1024,
  /** Largest WebSocket message the relay accepts (bytes). */
  maxFrameBytes: 128 * 1024,
  /** Largest HTTP body the relay accepts (bytes). */
  maxBodyBytes: 256 * 1024,
  /**
   * Largest body of a room change (`POST /api/rooms/:id/statements`, bytes). A removal or rotation
   * carries one wrapped key per remaining member: up to maxMembers keys of about 400 bytes of JSON
   * each, past maxBodyBytes, so that one route gets this limit (docs/PROTOCOL.md §Limits).
   */
  maxRoomChangeBodyBytes: 512 * 1024,
  /** Largest encrypted vault (bytes, before base64). */
  maxVaultBytes: 128 * 1024,
  /** Most members in one conversation. */
  maxMembers: 1000,
  /** Largest history page. */
  maxPage: 200,
} as const;

/** Kind of a conversation. */
export type ConversationKind = 'direct' | 'room';

/** Roles in a room, strongest first. The owner created it; admins manage members; members talk. */
export const ROLES = ['owner', 'admin', 'member'] as const;
export type Role = (typeof ROLES)[number];

/**
 * Envelope type, bound into the associated data. `content` carries what a
 * person wrote (text, later edits, reactions, attachments); `control` carries
 * protocol events (receipts, "opened"); `setting` carries conversation
 * settings (the disappearing-message timer), so the newest one can be fetched by
 * type. The decrypted event must match it.
 */
export const ENVELOPE_TYPES = ['content', 'control', 'setting'] as const;
export type EnvelopeType = (typeof ENVELOPE_TYPES)[number];

/** WebSocket close codes the relay uses (RFC 6455 §7.4 plus the 4000 private range). */
export const CLOSE = {
  normal: 1000,
  goingAway: 1001,
  protocolError: 1002,
  unsupportedData: 1003,
  policy: 1008,
  tooBig: 1009,
  internal: 1011,
  tryAgainLater: 1013,
  unauthorized: 4401,
  sessionEnded: 4403,
} as const;
