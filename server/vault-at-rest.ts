// The key vault is already sealed by the client under a password-derived key. The relay seals it
// once more under its own secret before storing it, so a copy of the database alone (a backup, a
// leaked file) gives nothing to run password guesses against (docs/THREAT-MODEL.md §Stolen database).
import crypto from 'node:crypto';
import { UmbraError } from '../shared/index.ts';
import { hmac } from './secrets.ts';

const LABEL = 'umbra/relay/vault-at-rest';
const NONCE = 12;
const TAG = 16;

function key(secret: Buffer): Buffer {
  return hmac(secret, LABEL, 'aes-256-gcm');
}

/** nonce (12) || AES-256-GCM ciphertext || tag (16), bound to the username. */
export function sealVaultAtRest(secret: Buffer, username: string, vault: Uint8Array): Buffer {
  const nonce = crypto.randomBytes(NONCE);
  const cipher = crypto.createCipheriv('aes-256-gcm', key(secret), nonce, { authTagLength: TAG });
  cipher.setAAD(Buffer.from(username, 'utf8'));
  const body = Buffer.concat([cipher.update(vault), cipher.final()]);
  return Buffer.concat([nonce, body, cipher.getAuthTag()]);
}

/** Throws `internal` if the stored vault does not open: a wrong relay secret or a damaged row. */
export function openVaultAtRest(secret: Buffer, username: string, stored: Uint8Array): Buffer {
  const buf = Buffer.from(stored);
  if (buf.length < NONCE + TAG) throw new UmbraError('internal', 'stored vault is damaged');
  try {
    const decipher = crypto.createDecipheriv('aes-256-gcm', key(secret), buf.subarray(0, NONCE), { authTagLength: TAG });
    decipher.setAAD(Buffer.from(username, 'utf8'));
    decipher.setAuthTag(buf.subarray(buf.length - TAG));
    return Buffer.concat([decipher.update(buf.subarray(NONCE, buf.length - TAG)), decipher.final()]);
  } catch {
    throw new UmbraError('internal', 'stored vault does not open with this relay secret');
  }
}
