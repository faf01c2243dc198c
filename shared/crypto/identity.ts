// Identity (Ed25519) and key-agreement (X25519) keys, and the signed binding between them
// that the directory publishes (docs/PROTOCOL.md §Keys and directory).
import { CTX, PUBLIC_KEY_BYTES } from '../protocol.ts';
import { assertBytes, encodeFields } from './bytes.ts';
import { generateSigningKeyPair, signWithContext, signingKeyPairFromSecret, verifyWithContext, type SigningKeyPair } from './sign.ts';
import { sodium } from './sodium.ts';

export interface AgreementKeyPair {
  publicKey: Uint8Array; // 32-byte X25519
  secretKey: Uint8Array; // 32-byte X25519
}

export interface IdentityKeys {
  signing: SigningKeyPair;
  agreement: AgreementKeyPair;
}

/** What the directory publishes for a user; every field is checked by verifyPublicKeys. */
export interface PublicKeys {
  username: string;
  identityKey: Uint8Array;
  x25519Key: Uint8Array;
  x25519Sig: Uint8Array;
}

export function generateIdentity(): IdentityKeys {
  const kp = sodium().crypto_box_keypair();
  return { signing: generateSigningKeyPair(), agreement: { publicKey: kp.publicKey, secretKey: kp.privateKey } };
}

export function identityFromSecrets(signingSecret: Uint8Array, agreementSecret: Uint8Array): IdentityKeys {
  assertBytes(agreementSecret, 32, 'X25519 secret key');
  return {
    signing: signingKeyPairFromSecret(signingSecret),
    agreement: { publicKey: sodium().crypto_scalarmult_base(agreementSecret), secretKey: agreementSecret },
  };
}

function bindingMessage(username: string, x25519Key: Uint8Array): Uint8Array {
  return encodeFields([username, assertBytes(x25519Key, PUBLIC_KEY_BYTES, 'X25519 public key')]);
}

/** The identity key's signature over (username, X25519 public key). */
export function signAgreementKey(identity: IdentityKeys, username: string): Uint8Array {
  return signWithContext(identity.signing.secretKey, CTX.x25519Binding, bindingMessage(username, identity.agreement.publicKey));
}

export function publicKeysOf(identity: IdentityKeys, username: string): PublicKeys {
  return {
    username,
    identityKey: identity.signing.publicKey,
    x25519Key: identity.agreement.publicKey,
    x25519Sig: signAgreementKey(identity, username),
  };
}

/** True when the X25519 key is signed by the identity key for this exact username. */
export function verifyPublicKeys(keys: PublicKeys): boolean {
  if (keys.x25519Key.length !== PUBLIC_KEY_BYTES) return false;
  let message: Uint8Array;
  try {
    message = bindingMessage(keys.username, keys.x25519Key);
  } catch {
    return false;
  }
  return verifyWithContext(keys.identityKey, CTX.x25519Binding, message, keys.x25519Sig);
}
