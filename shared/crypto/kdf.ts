// Password to keys: Argon2id master key, then an authentication key (sent to the relay)
// and a vault key (never leaves the client). docs/PROTOCOL.md §Accounts.
import { UmbraError } from '../errors.ts';
import { CTX, KDF_MAX, KDF_MIN, KEY_BYTES, SALT_BYTES } from '../protocol.ts';
import { assertBytes, encodeFields, utf8 } from './bytes.ts';
import { randomBytes } from './aead.ts';
import { sodium } from './sodium.ts';

export interface KdfParams {
  alg: 'argon2id13';
  ops: number;
  memKiB: number;
}

export interface AccountKeys {
  /** Sent at sign-up and log-in; the relay stores only a keyed hash of it. */
  authKey: Uint8Array;
  /** Encrypts the key vault; never leaves the client. */
  vaultKey: Uint8Array;
}

/** Refuses parameters below the OWASP minimum or absurdly high ones a malicious relay could serve. */
export function checkKdfParams(params: KdfParams): void {
  if (params.alg !== 'argon2id13') throw new UmbraError('weak_kdf_params', `unsupported KDF ${params.alg}`);
  if (!Number.isSafeInteger(params.ops) || !Number.isSafeInteger(params.memKiB)) {
    throw new UmbraError('weak_kdf_params', 'Argon2id parameters must be whole numbers');
  }
  if (params.ops < KDF_MIN.ops || params.memKiB < KDF_MIN.memKiB) {
    throw new UmbraError('weak_kdf_params', `Argon2id parameters below the minimum (${KDF_MIN.ops} passes, ${KDF_MIN.memKiB} KiB)`);
  }
  if (params.ops > KDF_MAX.ops || params.memKiB > KDF_MAX.memKiB) {
    throw new UmbraError('weak_kdf_params', 'Argon2id parameters above the supported maximum');
  }
}

/** Passwords are NFKC-normalised so the same password typed on any keyboard derives the same key. */
export function normalisePassword(password: string): string {
  return password.normalize('NFKC');
}

/** Argon2id(password, salt) → 32-byte master key. Slow by design. */
export function deriveMasterKey(password: string, salt: Uint8Array, params: KdfParams): Uint8Array {
  checkKdfParams(params);
  assertBytes(salt, SALT_BYTES, 'Argon2id salt');
  const s = sodium();
  return s.crypto_pwhash(
    KEY_BYTES,
    utf8(normalisePassword(password)),
    salt,
    params.ops,
    params.memKiB * 1024,
    s.crypto_pwhash_ALG_ARGON2ID13,
  );
}

/** Splits the master key into the authentication key and the vault key (BLAKE2b keyed by the master key). */
export function deriveAccountKeys(masterKey: Uint8Array, username: string): AccountKeys {
  assertBytes(masterKey, KEY_BYTES, 'master key');
  const s = sodium();
  const authKey = s.crypto_generichash(KEY_BYTES, encodeFields([CTX.authKey, username]), masterKey);
  const vaultKey = s.crypto_generichash(KEY_BYTES, encodeFields([CTX.vaultKey, username]), masterKey);
  return { authKey, vaultKey };
}

export function randomSalt(): Uint8Array {
  return randomBytes(SALT_BYTES);
}

/** Keeps the value below the byte budget the relay accepts for a password field: not sent anyway. */
export function passwordBytes(password: string): number {
  return utf8(normalisePassword(password)).length;
}
