// The address a request comes from, for per-address throttles and connection limits. The TCP peer,
// unless the peer is a reverse proxy the operator listed (`TRUSTED_PROXIES`): then the address that
// proxy put in `X-Forwarded-For`. Read from the right: each trusted proxy appends the address it
// received the request from, so the right-most entry that is not a trusted proxy is the client;
// anything left of it was written by the client and is ignored. An entry that is not a bare IP
// address stops the walk at the last trusted hop, so a malformed header never lets a client choose
// its own address (docs/PROTOCOL.md §Accounts, throttles).
import { isIP } from 'node:net';

/** `::ffff:192.0.2.1` (an IPv4 peer on a dual-stack socket) as `192.0.2.1`; IPv6 in lower case. */
export function normaliseAddress(address: string): string {
  const lower = address.toLowerCase();
  if (lower.startsWith('::ffff:') && isIP(lower.slice(7)) === 4) return lower.slice(7);
  return lower;
}

/** The trusted proxies' addresses, checked and normalised; throws on an entry that is not an IP address. */
export function trustedProxySet(addresses: readonly string[]): ReadonlySet<string> {
  for (const a of addresses) {
    if (isIP(a) === 0) throw new Error(`TRUSTED_PROXIES: "${a}" is not an IP address (list each proxy's address, comma-separated)`);
  }
  return new Set(addresses.map(normaliseAddress));
}

/**
 * @param peer the socket's remote address (undefined once the socket is gone)
 * @param forwardedFor the request's X-Forwarded-For header(s), as Node gives them
 * @param trusted the trusted proxies (trustedProxySet)
 */
export function clientAddressOf(peer: string | undefined, forwardedFor: string | string[] | undefined, trusted: ReadonlySet<string>): string {
  if (peer === undefined) return 'unknown';
  let hop = normaliseAddress(peer);
  if (!trusted.has(hop) || forwardedFor === undefined) return hop;
  const entries = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor).split(',');
  for (let i = entries.length - 1; i >= 0; i--) {
    const entry = entries[i]!.trim();
    if (isIP(entry) === 0) return hop;
    hop = normaliseAddress(entry);
    if (!trusted.has(hop)) return hop;
  }
  return hop;
}
