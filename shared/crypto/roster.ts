// The roster hash: what every message's associated data says the member list was
// (docs/PROTOCOL.md §Roster hash).
import { CTX } from '../protocol.ts';
import { encodeFields } from './bytes.ts';
import { sodium } from './sodium.ts';

export interface RosterMember {
  username: string;
  identityKey: Uint8Array;
}

/** BLAKE2b-256 over the conversation id and the members sorted by username, with their identity keys. Throws on a repeated username. */
export function rosterHash(conv: string, members: readonly RosterMember[]): Uint8Array {
  if (new Set(members.map((m) => m.username)).size !== members.length) throw new RangeError('roster lists a username twice');
  const sorted = [...members].sort((a, b) => (a.username < b.username ? -1 : a.username > b.username ? 1 : 0));
  const list = sorted.map((m) => [m.username, m.identityKey] as const);
  return sodium().crypto_generichash(32, encodeFields([CTX.roster, conv, list]), null);
}
