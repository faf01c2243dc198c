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

/** Directory requests in flight at once when many users are looked up together (a large room). */
const LOOKUP_CONCURRENCY = 8;

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
    const contact = await this.fetchVerified(username);
    const pin = this.pinned(username);
    if (!pin) {
      await this.pinStore.savePins({ [username]: contact.identityKey });
      return contact;
    }
    return this.checkPinned(contact);
  }

  /**
   * lookup() for many users at once (a few requests in flight), pinning every first sight in one
   * vault update. Each name maps to its contact or to the error its lookup raised
   * (`identity_changed`, `not_found`, `verification_failed`); a network failure throws.
   */
  async lookupMany(usernames: readonly string[], fresh = false): Promise<Map<string, Contact | UmbraError>> {
    const names = [...new Set(usernames)];
    const fetched = new Map<string, Contact | UmbraError>();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < names.length) {
        const name = names[next++]!;
        const cached = fresh ? undefined : this.cache.get(name);
        try {
          fetched.set(name, cached ?? (await this.fetchVerified(name)));
        } catch (err) {
          if (!(err instanceof UmbraError) || err.code === 'disconnected' || err.code === 'timeout') throw err;
          fetched.set(name, err);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(LOOKUP_CONCURRENCY, names.length) }, worker));
    const firstSight: Record<string, Uint8Array> = {};
    for (const [name, c] of fetched) if (!(c instanceof UmbraError) && !this.pinned(name)) firstSight[name] = c.identityKey;
    if (Object.keys(firstSight).length) await this.pinStore.savePins(firstSight);
    const out = new Map<string, Contact | UmbraError>();
    for (const name of names) {
      const c = fetched.get(name)!;
      try {
        out.set(name, c instanceof UmbraError ? c : this.checkPinned(c));
      } catch (err) {
        out.set(name, err as UmbraError);
      }
    }
    return out;
  }

  /** Fetches a user's keys and checks the served name and the binding signature; pins nothing. */
  private async fetchVerified(username: string): Promise<Contact> {
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
    return contact;
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
