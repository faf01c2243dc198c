// Ed25519 signatures under a purpose-specific context (docs/PROTOCOL.md §Signatures).
import { PUBLIC_KEY_BYTES, SIGNATURE_BYTES } from '../protocol.ts';
import { assertBytes, concatBytes, utf8 } from './bytes.ts';
import { sodium } from './sodium.ts';

export interface SigningKeyPair {
  publicKey: Uint8Array; // 32 bytes
  secretKey: Uint8Array; // 64 bytes (libsodium's seed || public key)
}

export function generateSigningKeyPair(): SigningKeyPair {
  const kp = sodium().crypto_sign_keypair();
  return { publicKey: kp.publicKey, secretKey: kp.privateKey };
}

/** Rebuilds the key pair from libsodium's 64-byte secret key. */
export function signingKeyPairFromSecret(secretKey: Uint8Array): SigningKeyPair {
  assertBytes(secretKey, 64, 'Ed25519 secret key');
  return { publicKey: sodium().crypto_sign_ed25519_sk_to_pk(secretKey), secretKey };
}

/** The signed bytes: context || 0x00 || message. The NUL keeps contexts prefix-free. */
export function signedBytes(context: string, message: Uint8Array): Uint8Array {
  if (context.includes('\0')) throw new RangeError('signature context must not contain NUL');
  return concatBytes(utf8(context), Uint8Array.of(0), message);
}

export function signWithContext(secretKey: Uint8Array, context: string, message: Uint8Array): Uint8Array {
  assertBytes(secretKey, 64, 'Ed25519 secret key');
  return sodium().crypto_sign_detached(signedBytes(context, message), secretKey);
}

/** True only for a valid signature by `publicKey` over (context, message). Never throws on bad input lengths. */
export function verifyWithContext(
  publicKey: Uint8Array,
  context: string,
  message: Uint8Array,
  signature: Uint8Array,
): boolean {
  if (publicKey.length !== PUBLIC_KEY_BYTES || signature.length !== SIGNATURE_BYTES) return false;
  if (context.includes('\0')) return false;
  try {
    return sodium().crypto_sign_verify_detached(signature, signedBytes(context, message), publicKey);
  } catch {
    return false;
  }
}
