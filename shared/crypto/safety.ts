// Safety numbers: 60 digits two people compare out of band (docs/PROTOCOL.md §Safety numbers).
import { CTX } from '../protocol.ts';
import { concatBytes, encodeFields } from './bytes.ts';
import { sodium } from './sodium.ts';

export const SAFETY_ITERATIONS = 5200;

/** 30 digits for one party: iterated SHA-512 over its identity key and username. */
export function fingerprintDigits(username: string, identityKey: Uint8Array): string {
  const s = sodium();
  let h = s.crypto_hash_sha512(encodeFields([CTX.safetyNumber, identityKey, username]));
  for (let i = 0; i < SAFETY_ITERATIONS; i++) h = s.crypto_hash_sha512(concatBytes(h, identityKey));
  let out = '';
  for (let chunk = 0; chunk < 6; chunk++) {
    let n = 0;
    for (let j = 0; j < 5; j++) n = n * 256 + h[chunk * 5 + j]!;
    out += String(n % 100000).padStart(5, '0');
  }
  return out;
}

/** The same 60 digits on both sides: the two fingerprints in sorted order. */
export function safetyNumber(
  a: { username: string; identityKey: Uint8Array },
  b: { username: string; identityKey: Uint8Array },
): string {
  const fa = fingerprintDigits(a.username, a.identityKey);
  const fb = fingerprintDigits(b.username, b.identityKey);
  return fa < fb ? fa + fb : fb + fa;
}

/** Groups of five digits, as shown to people. */
export function formatSafetyNumber(digits: string): string {
  return digits.match(/.{1,5}/g)?.join(' ') ?? digits;
}
