// The relay's own secret (auth-key hashing, decoy salts, vaults at rest): in the data folder unless
// RELAY_SECRET_FILE puts it elsewhere.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export const SECRET_FILE = 'relay-secret';

/** Where the secret lives unless RELAY_SECRET_FILE says otherwise. */
export function defaultSecretFile(dataDir: string): string {
  return path.join(dataDir, SECRET_FILE);
}

/**
 * Reads the relay secret, creating a random 32-byte one (mode 0600) on first start. Keep it out of
 * the database's backups (RELAY_SECRET_FILE): with it, a copy of the database reveals more.
 * `hasAccounts`: the database already holds accounts, so a missing secret is a mistake (a wrong
 * path, a lost file) and a fresh one would lock every account out; refuse to start instead.
 */
export function loadRelaySecret(file: string, hasAccounts: boolean): Buffer {
  try {
    const existing = fs.readFileSync(file);
    if (existing.length !== 32) throw new Error(`${file} must hold 32 bytes, found ${existing.length}`);
    return existing;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    if (hasAccounts) {
      throw new Error(`relay secret ${file} is missing but the database has accounts; restore it (or fix RELAY_SECRET_FILE)`);
    }
    const secret = crypto.randomBytes(32);
    fs.writeFileSync(file, secret, { mode: 0o600, flag: 'wx' });
    return secret;
  }
}

export function hmac(secret: Buffer, label: string, data: Uint8Array | string): Buffer {
  return crypto.createHmac('sha256', secret).update(label).update('\0').update(data).digest();
}
