// The signed-in account as a device keeps it (IndexedDB in the browser, memory in Node), and the
// contact pins it saves into the vault at the relay (docs/PROTOCOL.md §Vault).
import { AccountResponse, UmbraError, VaultUpdateResponse, fromB64, openVault, sealVault, toB64 } from '../../shared/index.ts';
import type { HttpApi } from './http.ts';
import type { KeyValueStore } from './platform.ts';

/** What is kept in the platform store (IndexedDB in the browser) while logged in. */
export interface StoredAccount {
  username: string;
  signingSecret: Uint8Array;
  agreementSecret: Uint8Array;
  vaultKey: Uint8Array;
  vaultVersion: number;
  pins: Record<string, Uint8Array>;
}

export const ACCOUNT_KEY = 'account';

/** Saves pins locally and in the vault, merging with changes made on other devices (three tries). */
export async function savePins(account: StoredAccount, pins: Record<string, Uint8Array>, store: KeyValueStore, http: HttpApi): Promise<void> {
  account.pins = { ...account.pins, ...pins };
  await store.set(ACCOUNT_KEY, account);
  for (let attempt = 0; attempt < 3; attempt++) {
    const sealed = sealVault(account.vaultKey, account.username, {
      signingSecret: account.signingSecret,
      agreementSecret: account.agreementSecret,
      pins: account.pins,
    });
    try {
      const res = await http.put('/api/vault', { vault: toB64(sealed), expectedVersion: account.vaultVersion }, VaultUpdateResponse);
      account.vaultVersion = res.vaultVersion;
      await store.set(ACCOUNT_KEY, account);
      return;
    } catch (err) {
      if (!(err instanceof UmbraError && err.code === 'conflict')) throw err;
      const latest = await http.get('/api/me', AccountResponse);
      const theirs = openVault(account.vaultKey, account.username, fromB64(latest.vault));
      // Merge: other devices' pins are kept; the pins this call sets win for their usernames.
      account.pins = { ...theirs.pins, ...pins };
      account.vaultVersion = latest.vaultVersion;
    }
  }
  throw new UmbraError('conflict', 'could not save contact keys to your vault; try again');
}
