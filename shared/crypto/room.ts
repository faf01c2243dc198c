// Rooms: the name's lookup hash, signed membership statements and join requests, and the room's
// settings sealed under an epoch key (docs/PROTOCOL.md §Rooms).
import { CTX, ROOM_NAME_KDF, ROOM_NAME_MAX_CHARS } from '../protocol.ts';
import {
  JoinRequestSchema,
  RoomMetaSchema,
  RoomStatementSchema,
  type JoinRequest,
  type RoomMeta,
  type RoomStatement,
} from '../schemas.ts';
import { UmbraError } from '../errors.ts';
import { dangerousTestOnlySealWithNonce, openAead, sealAead } from './aead.ts';
import { concatBytes, encodeFields, fromB64, fromUtf8, utf8 } from './bytes.ts';
import type { SignedStatement } from './membership.ts';
import { signWithContext, verifyWithContext } from './sign.ts';
import { sodium } from './sodium.ts';
import { assertTestOnly } from './test-only.ts';

/** NFKC, trimmed, lower-case, inner white space folded to one space: "  Book  Club " → "book club". */
export function normaliseRoomName(name: string): string {
  const n = name.normalize('NFKC').trim().toLowerCase().replace(/\s+/gu, ' ');
  if (n.length === 0) throw new UmbraError('bad_request', 'a room needs a name');
  if ([...n].length > ROOM_NAME_MAX_CHARS) throw new UmbraError('bad_request', `room names are at most ${ROOM_NAME_MAX_CHARS} characters`);
  return n;
}

/**
 * The 32-byte hash the relay indexes rooms by: Argon2id over the normalised name with a fixed,
 * public salt. The relay can test a guessed name, but each guess costs it an Argon2id run.
 */
export function roomNameHash(name: string): Uint8Array {
  const s = sodium();
  const salt = s.crypto_generichash(16, utf8(CTX.roomName), null);
  return s.crypto_pwhash(32, utf8(normaliseRoomName(name)), salt, ROOM_NAME_KDF.ops, ROOM_NAME_KDF.memKiB * 1024, s.crypto_pwhash_ALG_ARGON2ID13);
}

/** Signs a chain link. The JSON text is what is signed and hashed; receivers never re-serialise. */
export function signStatement(statement: RoomStatement, signingSecret: Uint8Array): SignedStatement {
  const text = JSON.stringify(RoomStatementSchema.parse(statement));
  return { statement: text, sig: signWithContext(signingSecret, CTX.membershipSig, utf8(text)) };
}

/** BLAKE2b-256 of the exact statement text: the `prev` of the next link. */
export function statementHash(statementText: string): Uint8Array {
  return sodium().crypto_generichash(32, encodeFields([CTX.statementHash, utf8(statementText)]), null);
}

export function parseStatement(text: string): RoomStatement | null {
  try {
    return RoomStatementSchema.parse(JSON.parse(text));
  } catch {
    return null;
  }
}

export function verifyStatementSignature(signed: SignedStatement, signerKey: Uint8Array): boolean {
  return verifyWithContext(signerKey, CTX.membershipSig, utf8(signed.statement), signed.sig);
}

export function signJoinRequest(request: JoinRequest, signingSecret: Uint8Array): SignedStatement {
  const text = JSON.stringify(JoinRequestSchema.parse(request));
  return { statement: text, sig: signWithContext(signingSecret, CTX.joinRequestSig, utf8(text)) };
}

/** The request, if it parses and its own identity key signed it; the caller still checks the key. */
export function verifyJoinRequest(signed: SignedStatement): JoinRequest | null {
  let request: JoinRequest;
  try {
    request = JoinRequestSchema.parse(JSON.parse(signed.statement));
  } catch {
    return null;
  }
  return verifyWithContext(fromB64(request.identityKey), CTX.joinRequestSig, utf8(signed.statement), signed.sig) ? request : null;
}

export interface SealedMeta {
  epoch: number;
  author: string;
  sealed: Uint8Array;
  sig: Uint8Array;
}

function metaAd(conv: string, epoch: number, author: string): Uint8Array {
  return encodeFields([CTX.roomMetaAd, conv, epoch, author]);
}

/** Seals the room's settings under the epoch key and signs them as their admin author. */
export function sealRoomMeta(meta: RoomMeta, conv: string, epoch: number, author: string, epochKey: Uint8Array, signingSecret: Uint8Array): SealedMeta {
  return sealMeta(meta, conv, epoch, author, epochKey, signingSecret, false);
}

/** Deterministic seal for golden vectors only; throws outside the test runner. */
export function dangerousTestOnlySealRoomMeta(
  meta: RoomMeta,
  conv: string,
  epoch: number,
  author: string,
  epochKey: Uint8Array,
  signingSecret: Uint8Array,
  nonce: Uint8Array,
): SealedMeta {
  assertTestOnly('dangerousTestOnlySealRoomMeta');
  return sealMeta(meta, conv, epoch, author, epochKey, signingSecret, nonce);
}

function sealMeta(
  meta: RoomMeta,
  conv: string,
  epoch: number,
  author: string,
  epochKey: Uint8Array,
  signingSecret: Uint8Array,
  fixedNonce: Uint8Array | false,
): SealedMeta {
  const ad = metaAd(conv, epoch, author);
  const plaintext = utf8(JSON.stringify(RoomMetaSchema.parse(meta)));
  const sealed = fixedNonce ? dangerousTestOnlySealWithNonce(epochKey, fixedNonce, plaintext, ad) : sealAead(epochKey, plaintext, ad);
  const sig = signWithContext(signingSecret, CTX.roomMetaSig, concatBytes(ad, sealed));
  return { epoch, author, sealed, sig };
}

/** Checks the author's signature, then opens; throws `verification_failed`. */
export function openRoomMeta(m: SealedMeta, conv: string, epochKey: Uint8Array, authorKey: Uint8Array): RoomMeta {
  const ad = metaAd(conv, m.epoch, m.author);
  if (!verifyWithContext(authorKey, CTX.roomMetaSig, concatBytes(ad, m.sealed), m.sig)) {
    throw new UmbraError('verification_failed', `room settings are not signed by ${m.author}`);
  }
  try {
    return RoomMetaSchema.parse(JSON.parse(fromUtf8(openAead(epochKey, m.sealed, ad))));
  } catch (err) {
    if (err instanceof UmbraError) throw err;
    throw new UmbraError('verification_failed', 'room settings are malformed');
  }
}
