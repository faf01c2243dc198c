// Wrapping a conversation key for one member's X25519 key, signed by the member who wraps it
// (docs/PROTOCOL.md §Key wrapping). Ephemeral-static X25519, BLAKE2b KDF, XChaCha20-Poly1305.
import { UmbraError } from '../errors.ts';
import { CTX, KEY_BYTES, PUBLIC_KEY_BYTES } from '../protocol.ts';
import { openAead, randomBytes, sealAead, dangerousTestOnlySealWithNonce } from './aead.ts';
import { assertBytes, concatBytes, encodeFields } from './bytes.ts';
import { signWithContext, verifyWithContext } from './sign.ts';
import { sodium } from './sodium.ts';
import { assertTestOnly } from './test-only.ts';

/** Who a key is wrapped for and by whom; all of it is bound into the AEAD and the signature. */
export interface WrapContext {
  conv: string;
  epoch: number;
  recipient: string;
  wrappedBy: string;
}

export interface WrappedKey extends WrapContext {
  /** ephemeral X25519 public key (32) || nonce (24) || sealed key (32 + 16). */
  wrapped: Uint8Array;
  /** Ed25519 signature of `wrappedBy` over the context and `wrapped`. */
  sig: Uint8Array;
}

export const WRAPPED_KEY_BYTES = 32 + 24 + KEY_BYTES + 16;

function wrapKey(shared: Uint8Array, epk: Uint8Array, rpk: Uint8Array): Uint8Array {
  return sodium().crypto_generichash(KEY_BYTES, encodeFields([CTX.wrapKdf, epk, rpk]), shared);
}

function wrapAd(c: WrapContext): Uint8Array {
  return encodeFields([CTX.wrapAd, c.conv, c.epoch, c.recipient, c.wrappedBy]);
}

function wrapSigMessage(c: WrapContext, wrapped: Uint8Array): Uint8Array {
  return encodeFields([c.conv, c.epoch, c.recipient, c.wrappedBy, wrapped]);
}

/**
 * Wraps `convKey` for `recipientX25519`. The wrapper signs the result with its identity key so a
 * recipient accepts keys only from members it trusts, never from the relay.
 */
export function wrapConversationKey(
  convKey: Uint8Array,
  recipientX25519: Uint8Array,
  context: WrapContext,
  wrapperSigningSecret: Uint8Array,
): WrappedKey {
  const ephemeralSecret = randomBytes(KEY_BYTES);
  try {
    return wrapWithEphemeral(convKey, recipientX25519, context, wrapperSigningSecret, ephemeralSecret, false);
  } finally {
    sodium().memzero(ephemeralSecret);
  }
}

/** Deterministic wrap for golden vectors only; throws outside the test runner. */
export function dangerousTestOnlyWrap(
  convKey: Uint8Array,
  recipientX25519: Uint8Array,
  context: WrapContext,
  wrapperSigningSecret: Uint8Array,
  ephemeralSecret: Uint8Array,
  nonce: Uint8Array,
): WrappedKey {
  assertTestOnly('dangerousTestOnlyWrap');
  return wrapWithEphemeral(convKey, recipientX25519, context, wrapperSigningSecret, ephemeralSecret, nonce);
}

function wrapWithEphemeral(
  convKey: Uint8Array,
  recipientX25519: Uint8Array,
  context: WrapContext,
  wrapperSigningSecret: Uint8Array,
  ephemeralSecret: Uint8Array,
  fixedNonce: Uint8Array | false,
): WrappedKey {
  assertBytes(convKey, KEY_BYTES, 'conversation key');
  assertBytes(recipientX25519, PUBLIC_KEY_BYTES, 'X25519 public key');
  const s = sodium();
  const epk = s.crypto_scalarmult_base(ephemeralSecret);
  const shared = s.crypto_scalarmult(ephemeralSecret, recipientX25519);
  const k = wrapKey(shared, epk, recipientX25519);
  const ad = wrapAd(context);
  const sealed = fixedNonce ? dangerousTestOnlySealWithNonce(k, fixedNonce, convKey, ad) : sealAead(k, convKey, ad);
  s.memzero(shared);
  s.memzero(k);
  const wrapped = concatBytes(epk, sealed);
  const sig = signWithContext(wrapperSigningSecret, CTX.wrapSig, wrapSigMessage(context, wrapped));
  return { ...context, wrapped, sig };
}

/** True when `wrapperIdentityKey` signed this wrapped key for exactly this context. */
export function verifyWrappedKey(w: WrappedKey, wrapperIdentityKey: Uint8Array): boolean {
  let message: Uint8Array;
  try {
    message = wrapSigMessage(w, w.wrapped);
  } catch {
    return false; // a field the encoding refuses (negative epoch, lone surrogate) never verifies
  }
  return verifyWithContext(wrapperIdentityKey, CTX.wrapSig, message, w.sig);
}

/**
 * Verifies the wrapper's signature, then unwraps with the recipient's X25519 secret.
 * Throws `verification_failed` if either step fails.
 */
export function unwrapConversationKey(
  w: WrappedKey,
  recipientSecret: Uint8Array,
  wrapperIdentityKey: Uint8Array,
): Uint8Array {
  if (!verifyWrappedKey(w, wrapperIdentityKey)) {
    throw new UmbraError('verification_failed', `wrapped key for epoch ${w.epoch} is not signed by ${w.wrappedBy}`);
  }
  if (w.wrapped.length !== WRAPPED_KEY_BYTES) {
    throw new UmbraError('verification_failed', `expected ${WRAPPED_KEY_BYTES}-byte wrapped key, got ${w.wrapped.length}`);
  }
  assertBytes(recipientSecret, 32, 'X25519 secret key');
  const s = sodium();
  const epk = w.wrapped.subarray(0, 32);
  const rpk = s.crypto_scalarmult_base(recipientSecret);
  let shared: Uint8Array;
  try {
    shared = s.crypto_scalarmult(recipientSecret, epk);
  } catch {
    throw new UmbraError('verification_failed', 'invalid ephemeral key in wrapped key');
  }
  const k = wrapKey(shared, epk, rpk);
  try {
    return openAead(k, w.wrapped.subarray(32), wrapAd(w));
  } finally {
    s.memzero(shared);
    s.memzero(k);
  }
}
