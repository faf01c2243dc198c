// Contacts' public keys: fetched from the relay, verified, pinned on first use, and compared
// with the pin every time after (docs/PROTOCOL.md §Keys and directory).
import { signal, type ReadonlySignal } from '@preact/signals-core';
import {
  PublicKeysWire,
  UmbraError,
  equalBytes,
  fromB64,
  safetyNumber,
  verifyPublicKeys,
  type PublicKeys,
} from '../../shared/index.ts';
import type { HttpApi } from './http.ts';

/** A contact whose relay-served identity key differs from the pinned one. */
export interface IdentityAlert {
  username: string;
  pinnedKey: Uint8Array;
  servedKey: Uint8Array;
}

export interface Contact {
  username: string;
  identityKey: Uint8Array;
  x25519Key: Uint8Array;
}

export interface PinStore {
  pins(): Record<string, Uint8Array>;
  /** Persists new or replaced pins (locally and in the vault). */
  savePins(pins: Record<string, Uint8Array>): Promise<void>;
}

export class Directory {
  private readonly cache = new Map<string, Contact>();
  private readonly alertsSignal = signal<IdentityAlert[]>([]);

  constructor(
    private readonly http: HttpApi,
    private readonly pinStore: PinStore,
  ) {}

  get alerts(): ReadonlySignal<IdentityAlert[]> {
    return this.alertsSignal;
  }

  hasAlert(username: string): boolean {
    return this.alertsSignal.value.some((a) => a.username === username);
  }

  /** The pinned identity key, if any. */
  pinned(username: string): Uint8Array | undefined {
    return this.pinStore.pins()[username];
  }

  /**
   * Fetches and verifies a user's keys. First sight pins the identity key; a different key later
   * raises an IdentityAlert and throws `identity_changed` until the user accepts it.
   */
  async lookup(username: string, fresh = false): Promise<Contact> {
    if (!fresh) {
      const cached = this.cache.get(username);
      if (cached) return this.checkPinned(cached);
    }
    const wire = await this.http.get(`/api/users/${encodeURIComponent(username)}`, PublicKeysWire);
    const keys: PublicKeys = {
      username: wire.username,
      identityKey: fromB64(wire.identityKey),
      x25519Key: fromB64(wire.x25519Key),
      x25519Sig: fromB64(wire.x25519Sig),
    };
    if (keys.username !== username || !verifyPublicKeys(keys)) {
      throw new UmbraError('verification_failed', `the relay served keys for ${username} that do not verify`);
    }
    const contact: Contact = { username, identityKey: keys.identityKey, x25519Key: keys.x25519Key };
    this.cache.set(username, contact);
    const pin = this.pinned(username);
    if (!pin) {
      await this.pinStore.savePins({ [username]: keys.identityKey });
      return contact;
    }
    return this.checkPinned(contact);
  }

  private checkPinned(contact: Contact): Contact {
    const pin = this.pinned(contact.username);
    if (pin && !equalBytes(pin, contact.identityKey)) {
      if (!this.hasAlert(contact.username)) {
        this.alertsSignal.value = [...this.alertsSignal.value, { username: contact.username, pinnedKey: pin, servedKey: contact.identityKey }];
      }
      throw new UmbraError('identity_changed', `${contact.username}'s security key changed; verify it before sending`);
    }
    return contact;
  }

  /** The user checked the new key out of band: pin it and lift the alert. */
  async acceptNewKey(username: string): Promise<void> {
    const alert = this.alertsSignal.value.find((a) => a.username === username);
    if (!alert) return;
    await this.pinStore.savePins({ [username]: alert.servedKey });
    this.alertsSignal.value = this.alertsSignal.value.filter((a) => a.username !== username);
  }

  safetyNumberWith(me: { username: string; identityKey: Uint8Array }, username: string): { digits: string; qr: string } {
    const key = this.pinned(username);
    if (!key) throw new UmbraError('not_found', `no key pinned for ${username} yet`);
    const digits = safetyNumber(me, { username, identityKey: key });
    return { digits, qr: `umbra-safety:1:${digits}` };
  }
}
