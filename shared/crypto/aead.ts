// XChaCha20-Poly1305 with a managed nonce: callers never choose one (docs/PROTOCOL.md §AEAD).
import { UmbraError } from '../errors.ts';
import { KEY_BYTES, TAG_BYTES, XNONCE_BYTES } from '../protocol.ts';
import { assertBytes, concatBytes } from './bytes.ts';
import { sodium } from './sodium.ts';
import { assertTestOnly } from './test-only.ts';

/** Output layout: 24-byte random nonce || ciphertext || 16-byte tag. */
export function sealAead(key: Uint8Array, plaintext: Uint8Array, ad: Uint8Array): Uint8Array {
  const nonce = randomBytes(XNONCE_BYTES);
  return sealWithNonce(key, nonce, plaintext, ad);
}

/** Opens what sealAead produced; throws `verification_failed` on any tamper or wrong key. */
export function openAead(key: Uint8Array, sealed: Uint8Array, ad: Uint8Array): Uint8Array {
  assertBytes(key, KEY_BYTES, 'XChaCha20-Poly1305 key');
  if (sealed.length < XNONCE_BYTES + TAG_BYTES) {
    throw new UmbraError('verification_failed', `sealed box too short: ${sealed.length} bytes`);
  }
  const nonce = sealed.subarray(0, XNONCE_BYTES);
  const body = sealed.subarray(XNONCE_BYTES);
  try {
    return sodium().crypto_aead_xchacha20poly1305_ietf_decrypt(null, body, ad, nonce, key);
  } catch {
    throw new UmbraError('verification_failed', 'ciphertext failed authentication');
  }
}

/** Deterministic seal for golden vectors only; throws outside the test runner. */
export function dangerousTestOnlySealWithNonce(
  key: Uint8Array,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  ad: Uint8Array,
): Uint8Array {
  assertTestOnly('dangerousTestOnlySealWithNonce');
  return sealWithNonce(key, nonce, plaintext, ad);
}

function sealWithNonce(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, ad: Uint8Array): Uint8Array {
  assertBytes(key, KEY_BYTES, 'XChaCha20-Poly1305 key');
  assertBytes(nonce, XNONCE_BYTES, 'XChaCha20 nonce');
  const body = sodium().crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, ad, null, nonce, key);
  return concatBytes(nonce, body);
}

/** A fresh random 32-byte symmetric key. */
export function randomKey(): Uint8Array {
  return randomBytes(KEY_BYTES);
}

/**
 * `n` bytes from the platform's CSPRNG (Web Crypto `getRandomValues`, in browsers and in Node 20),
 * the same source libsodium.js draws from; called directly it costs a few microseconds where
 * `randombytes_buf` cost about 70 per call (bench D-crypto).
 */
export function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  // getRandomValues fills at most 65,536 bytes per call.
  for (let i = 0; i < n; i += 65_536) globalThis.crypto.getRandomValues(out.subarray(i, Math.min(n, i + 65_536)));
  return out;
}

/** Overwrites secret bytes in place. */
export function wipe(secret: Uint8Array): void {
  sodium().memzero(secret);
}
