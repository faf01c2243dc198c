// The key vault: the private keys and contact pins, sealed under the vault key so a fresh
// browser can recover them after log-in (docs/PROTOCOL.md §Vault).
import { UmbraError } from '../errors.ts';
import { CTX } from '../protocol.ts';
import { VaultContentsSchema, type VaultContentsWire } from '../schemas.ts';
import { openAead, sealAead } from './aead.ts';
import { encodeFields, fromB64, fromUtf8, toB64, utf8 } from './bytes.ts';

export interface VaultContents {
  signingSecret: Uint8Array;
  agreementSecret: Uint8Array;
  /** username → pinned identity key */
  pins: Record<string, Uint8Array>;
}

function vaultAd(username: string): Uint8Array {
  return encodeFields([CTX.vaultAd, username]);
}

export function sealVault(vaultKey: Uint8Array, username: string, contents: VaultContents): Uint8Array {
  const wire: VaultContentsWire = {
    v: 1,
    signingSecret: toB64(contents.signingSecret),
    agreementSecret: toB64(contents.agreementSecret),
    pins: Object.fromEntries(Object.entries(contents.pins).map(([u, k]) => [u, toB64(k)])),
  };
  return sealAead(vaultKey, utf8(JSON.stringify(wire)), vaultAd(username));
}

/** Throws `verification_failed` for a wrong key, a tampered vault or malformed contents. */
export function openVault(vaultKey: Uint8Array, username: string, sealed: Uint8Array): VaultContents {
  const plain = openAead(vaultKey, sealed, vaultAd(username));
  let parsed: VaultContentsWire;
  try {
    parsed = VaultContentsSchema.parse(JSON.parse(fromUtf8(plain)));
  } catch {
    throw new UmbraError('verification_failed', 'vault contents are malformed');
  }
  return {
    signingSecret: fromB64(parsed.signingSecret),
    agreementSecret: fromB64(parsed.agreementSecret),
    pins: Object.fromEntries(Object.entries(parsed.pins).map(([u, k]) => [u, fromB64(k)])),
  };
}
