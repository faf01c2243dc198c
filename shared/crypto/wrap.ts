// Wrapping a conversation key for a set of members' X25519 keys, signed once by the member who
// wraps it (docs/PROTOCOL.md §Key wrapping). One ephemeral X25519 key per set, BLAKE2b KDF per
// recipient, XChaCha20-Poly1305 per recipient, one Ed25519 signature over the ephemeral key.
import { UmbraError } from '../errors.ts';
import { CTX, KEY_BYTES, PUBLIC_KEY_BYTES } from '../protocol.ts';
import { openAead, randomBytes, sealAead, dangerousTestOnlySealWithNonce } from './aead.ts';
import { assertBytes, concatBytes, encodeFields } from './bytes.ts';
import { signWithContext, verifyWithContext } from './sign.ts';
import { sodium } from './sodium.ts';
import { assertTestOnly } from './test-only.ts';

/** Who a key is wrapped for and by whom; all of it is bound into the AEAD, all but `recipient` into the signature. */
export interface WrapContext {
  conv: string;
  epoch: number;
  recipient: string;
  wrappedBy: string;
}

/** What every wrapped key of one set shares: the conversation, the epoch and the wrapper. */
export type WrapSetContext = Omit<WrapContext, 'recipient'>;

/** One recipient of a set: the username and the X25519 key (verified by the caller) to wrap for. */
export interface WrapRecipient {
  recipient: string;
  x25519: Uint8Array;
}

export interface WrappedKey extends WrapContext {
  /** ephemeral X25519 public key (32) || nonce (24) || sealed key (32 + 16). */
  wrapped: Uint8Array;
  /** Ed25519 signature of `wrappedBy` over conv, epoch, wrappedBy and the ephemeral key; the same for the whole set. */
  sig: Uint8Array;
}

export const WRAPPED_KEY_BYTES = PUBLIC_KEY_BYTES + 24 + KEY_BYTES + 16;

function wrapKey(shared: Uint8Array, epk: Uint8Array, rpk: Uint8Array): Uint8Array {
  return sodium().crypto_generichash(KEY_BYTES, encodeFields([CTX.wrapKdf, epk, rpk]), shared);
}

function wrapAd(c: WrapContext): Uint8Array {
  return encodeFields([CTX.wrapAd, c.conv, c.epoch, c.recipient, c.wrappedBy]);
}

function wrapSetSigMessage(c: WrapSetContext, epk: Uint8Array): Uint8Array {
  return encodeFields([c.conv, c.epoch, c.wrappedBy, epk]);
}

/**
 * Wraps `convKey` for every recipient under one fresh ephemeral key and one signature by the
 * wrapper's identity key, so a recipient accepts keys only from members it trusts, never from the
 * relay. Returns one `WrappedKey` per recipient, in order; each carries the same `sig`. Per
 * recipient this costs one X25519, one BLAKE2b and one AEAD seal. Throws `RangeError` for a
 * wrong-length key; an empty list returns `[]` without signing.
 */
export function wrapConversationKeyForAll(
  convKey: Uint8Array,
  recipients: readonly WrapRecipient[],
  base: WrapSetContext,
  wrapperSigningSecret: Uint8Array,
): WrappedKey[] {
  if (recipients.length === 0) return [];
  const ephemeralSecret = randomBytes(KEY_BYTES);
  try {
    return wrapSet(convKey, recipients, base, wrapperSigningSecret, ephemeralSecret, null);
  } finally {
    sodium().memzero(ephemeralSecret);
  }
}

/** Wraps `convKey` for one recipient: `wrapConversationKeyForAll` with a set of one. */
export function wrapConversationKey(
  convKey: Uint8Array,
  recipientX25519: Uint8Array,
  context: WrapContext,
  wrapperSigningSecret: Uint8Array,
): WrappedKey {
  const { recipient, ...base } = context;
  return wrapConversationKeyForAll(convKey, [{ recipient, x25519: recipientX25519 }], base, wrapperSigningSecret)[0]!;
}

/**
 * Deterministic set wrap for golden vectors only: the caller supplies the ephemeral secret and one
 * nonce per recipient. Throws outside the test runner.
 */
export function dangerousTestOnlyWrap(
  convKey: Uint8Array,
  recipients: readonly WrapRecipient[],
  base: WrapSetContext,
  wrapperSigningSecret: Uint8Array,
  ephemeralSecret: Uint8Array,
  nonces: readonly Uint8Array[],
): WrappedKey[] {
  assertTestOnly('dangerousTestOnlyWrap');
  if (nonces.length !== recipients.length) {
    throw new RangeError(`expected one nonce per recipient (${recipients.length}), got ${nonces.length}`);
  }
  return wrapSet(convKey, recipients, base, wrapperSigningSecret, ephemeralSecret, nonces);
}

function wrapSet(
  convKey: Uint8Array,
  recipients: readonly WrapRecipient[],
  base: WrapSetContext,
  wrapperSigningSecret: Uint8Array,
  ephemeralSecret: Uint8Array,
  fixedNonces: readonly Uint8Array[] | null,
): WrappedKey[] {
  assertBytes(convKey, KEY_BYTES, 'conversation key');
  assertBytes(ephemeralSecret, KEY_BYTES, 'X25519 secret key');
  for (const r of recipients) assertBytes(r.x25519, PUBLIC_KEY_BYTES, 'X25519 public key');
  const s = sodium();
  const epk = s.crypto_scalarmult_base(ephemeralSecret);
  const sig = signWithContext(wrapperSigningSecret, CTX.wrapSetSig, wrapSetSigMessage(base, epk));
  return recipients.map((r, i) => {
    const context: WrapContext = { conv: base.conv, epoch: base.epoch, recipient: r.recipient, wrappedBy: base.wrappedBy };
    const shared = s.crypto_scalarmult(ephemeralSecret, r.x25519);
    const k = wrapKey(shared, epk, r.x25519);
    try {
      const ad = wrapAd(context);
      const sealed = fixedNonces ? dangerousTestOnlySealWithNonce(k, fixedNonces[i]!, convKey, ad) : sealAead(k, convKey, ad);
      return { ...context, wrapped: concatBytes(epk, sealed), sig: sig.slice() };
    } finally {
      s.memzero(shared);
      s.memzero(k);
    }
  });
}

/**
 * True when `wrapperIdentityKey` signed the ephemeral key of this wrapped key for its conv, epoch
 * and wrapper. The recipient is bound by the AEAD, not the signature: only opening proves a wrap
 * was made for this recipient. Never throws; a wrong length or a field the encoding refuses
 * (negative epoch, lone surrogate) is `false`.
 */
export function verifyWrappedKey(w: WrappedKey, wrapperIdentityKey: Uint8Array): boolean {
  if (w.wrapped.length !== WRAPPED_KEY_BYTES) return false;
  let message: Uint8Array;
  try {
    message = wrapSetSigMessage(w, w.wrapped.subarray(0, PUBLIC_KEY_BYTES));
  } catch {
    return false;
  }
  return verifyWithContext(wrapperIdentityKey, CTX.wrapSetSig, message, w.sig);
}

/**
 * Checks the length, verifies the wrapper's signature over the ephemeral key, then unwraps with
 * the recipient's X25519 secret (the AEAD binds conv, epoch, recipient and wrapper).
 * Throws `verification_failed` if any step fails.
 */
export function unwrapConversationKey(
  w: WrappedKey,
  recipientSecret: Uint8Array,
  wrapperIdentityKey: Uint8Array,
): Uint8Array {
  if (w.wrapped.length !== WRAPPED_KEY_BYTES) {
    throw new UmbraError('verification_failed', `expected ${WRAPPED_KEY_BYTES}-byte wrapped key, got ${w.wrapped.length}`);
  }
  if (!verifyWrappedKey(w, wrapperIdentityKey)) {
    throw new UmbraError('verification_failed', `wrapped key for epoch ${w.epoch} is not signed by ${w.wrappedBy}`);
  }
  assertBytes(recipientSecret, 32, 'X25519 secret key');
  const s = sodium();
  const epk = w.wrapped.subarray(0, PUBLIC_KEY_BYTES);
  const rpk = s.crypto_scalarmult_base(recipientSecret);
  let shared: Uint8Array;
  try {
    shared = s.crypto_scalarmult(recipientSecret, epk);
  } catch {
    throw new UmbraError('verification_failed', 'invalid ephemeral key in wrapped key');
  }
  const k = wrapKey(shared, epk, rpk);
  try {
    return openAead(k, w.wrapped.subarray(PUBLIC_KEY_BYTES), wrapAd(w));
  } finally {
    s.memzero(shared);
    s.memzero(k);
  }
}
