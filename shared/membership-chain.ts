// Replays a room's signed membership chain into the member list at every link, so each client
// decides for itself who is in the room, with which role and epoch (docs/PROTOCOL.md §Rooms).
import { UmbraError, missingCase } from './errors.ts';
import { LIMITS, type Role } from './protocol.ts';
import { equalBytes, fromB64, toB64 } from './crypto/bytes.ts';
import type { SignedStatement } from './crypto/membership.ts';
import { rosterHash } from './crypto/roster.ts';
import { parseStatement, statementHash, verifyStatementSignature } from './crypto/room.ts';
import type { RoomStatement } from './schemas.ts';

export interface ChainMember {
  username: string;
  identityKey: Uint8Array;
  role: Role;
}

/** The room as it stood right after one link. */
export interface ChainState extends LinkState {
  statement: RoomStatement;
  /** rosterHash() of the members: what messages sent at this point carry (computed on first use). */
  readonly rosterHash: Uint8Array;
}

export interface Chain {
  conv: string;
  states: ChainState[];
  head: ChainState;
}

export function isAdmin(role: Role | undefined): boolean {
  return role === 'owner' || role === 'admin';
}

/** The room right after a link: all a next link is checked against. */
export interface LinkState {
  seq: number;
  /** Hash of this link's statement text: the next link's `prev`. */
  hash: Uint8Array;
  epoch: number;
  members: ReadonlyMap<string, ChainMember>;
  needsRotation: boolean;
}

/**
 * The one-link step of the chain rules: checks `link` as the link after `head` (null: the first)
 * and returns the state after it, leaving `head` untouched. Throws UmbraError `conflict` when the
 * link does not follow the head (position or `prev`), `forbidden` when its signer lacks the right
 * to make that change, `bad_request` for anything else (including a bad signature).
 */
export function applyLink(conv: string, head: LinkState | null, link: SignedStatement, parsed?: RoomStatement): LinkState {
  const st = parsed ?? parseStatement(link.statement);
  if (!st) throw invalid('is not a room statement');
  if (st.conv !== conv) throw invalid('belongs to another room');
  const seq = head ? head.seq + 1 : 0;
  const prev = st.prev === null ? null : fromB64(st.prev);
  if (st.seq !== seq || (head === null ? prev !== null : prev === null || !equalBytes(prev, head.hash))) {
    // A client whose post meets this at the relay was beaten to the position by another change: it
    // rebuilds its change on the newer chain. In a replayed chain it means the record is broken.
    throw new UmbraError('conflict', 'statement does not follow the record before it');
  }
  const members = head?.members ?? new Map<string, ChainMember>();
  const next = new Map(members);
  const actor = members.get(st.actor);
  let epoch = head?.epoch ?? 0;
  let needsRotation = head?.needsRotation ?? false;
  let signerKey = actor?.identityKey;
  const body = st.body;
  switch (body.op) {
    case 'create': {
      if (head !== null || body.owner.username !== st.actor) throw invalid('creates the room out of place');
      signerKey = fromB64(body.owner.identityKey);
      next.set(st.actor, { username: st.actor, identityKey: signerKey, role: 'owner' });
      break;
    }
    case 'add': {
      requireAdmin(actor, st.actor);
      if (members.has(body.member.username)) throw invalid(`adds ${body.member.username}, who is already a member`);
      if (members.size >= LIMITS.maxMembers) throw invalid('adds a member past the room size limit');
      next.set(body.member.username, { username: body.member.username, identityKey: fromB64(body.member.identityKey), role: body.role });
      break;
    }
    case 'remove': {
      requireAdmin(actor, st.actor);
      const target = members.get(body.member);
      if (!target || target.role === 'owner') throw invalid(`cannot remove ${body.member}`);
      if (target.role === 'admin' && actor!.role !== 'owner') throw forbidden('only the owner removes an admin');
      if (body.epoch !== epoch + 1) throw invalid(`moves to epoch ${body.epoch}, expected ${epoch + 1}`);
      next.delete(body.member);
      epoch = body.epoch;
      needsRotation = false;
      break;
    }
    case 'leave': {
      if (!actor) throw forbidden(`is a leave by ${st.actor}, who is not a member`);
      if (actor.role === 'owner') throw invalid('the owner cannot leave');
      next.delete(st.actor);
      needsRotation = true;
      break;
    }
    case 'rotate': {
      requireAdmin(actor, st.actor);
      if (body.epoch !== epoch + 1) throw invalid(`moves to epoch ${body.epoch}, expected ${epoch + 1}`);
      epoch = body.epoch;
      needsRotation = false;
      break;
    }
    case 'role': {
      requireAdmin(actor, st.actor);
      const target = members.get(body.member);
      if (!target || target.role === 'owner' || target.role === body.role) throw invalid(`cannot make ${body.member} ${body.role}`);
      if (body.role === 'member' && actor!.role !== 'owner') throw forbidden('only the owner demotes an admin');
      next.set(body.member, { ...target, role: body.role });
      break;
    }
    default:
      missingCase(body);
  }
  if (!signerKey || !verifyStatementSignature(link, signerKey)) throw invalid(`is not signed by ${st.actor}`);
  return { seq, hash: statementHash(link.statement), epoch, members: next, needsRotation };
}

/**
 * Verifies every link with applyLink (hash chain, signature by the actor's key as the chain itself
 * recorded it, the actor's right to make that change at that point) and returns the state after
 * each. Throws `verification_failed` naming the first bad link. Roster hashes are computed on first
 * use. The caller compares identity keys with its pins.
 */
export function replayRoomChain(conv: string, links: readonly SignedStatement[]): Chain {
  if (links.length === 0) throw new UmbraError('verification_failed', 'membership record #0 is missing: the room has no membership record');
  const states: ChainState[] = [];
  let head: LinkState | null = null;
  for (const link of links) {
    const seq: number = head ? head.seq + 1 : 0;
    const st = parseStatement(link.statement);
    try {
      head = applyLink(conv, head, link, st ?? undefined);
    } catch (err) {
      const what = err instanceof UmbraError ? err.message.replace(/^statement /, '') : String(err);
      throw new UmbraError('verification_failed', `membership record #${seq} ${what}`);
    }
    states.push(chainState(conv, head, st!));
  }
  return { conv, states, head: states[states.length - 1]! };
}

function chainState(conv: string, s: LinkState, statement: RoomStatement): ChainState {
  let hash: Uint8Array | undefined;
  return {
    ...s,
    statement,
    get rosterHash() {
      hash ??= rosterHash(conv, [...s.members.values()]);
      return hash;
    },
  };
}

function requireAdmin(actor: ChainMember | undefined, name: string): void {
  if (!actor || !isAdmin(actor.role)) throw forbidden(`is signed by ${name}, who is not an admin at that point`);
}

function invalid(what: string): UmbraError {
  return new UmbraError('bad_request', `statement ${what}`);
}

function forbidden(what: string): UmbraError {
  return new UmbraError('forbidden', `statement ${what}`);
}

/** True if `wrappedBy` was an admin while `epoch` was current and `recipient` was a member then. */
export function mayWrap(chain: Chain, epoch: number, wrappedBy: string, recipient: string): boolean {
  return chain.states.some((s) => s.epoch === epoch && isAdmin(s.members.get(wrappedBy)?.role) && s.members.has(recipient));
}

/** True if `author` was an admin while `epoch` was current (who may set the room's settings). */
export function mayAuthorMeta(chain: Chain, epoch: number, author: string): boolean {
  return chain.states.some((s) => s.epoch === epoch && isAdmin(s.members.get(author)?.role));
}

/**
 * True if some point of the chain had this epoch, had `sender` as a member, and had exactly this
 * roster hash: messages sent while a change was in flight still verify, a roster the relay
 * invented does not.
 */
export function rosterMatches(chain: Chain, epoch: number, sender: string, hash: Uint8Array): boolean {
  return chain.states.some((s) => s.epoch === epoch && s.members.has(sender) && equalBytes(s.rosterHash, hash));
}

/** The next link's `prev` and `seq`. */
export function nextLink(chain: Chain): { seq: number; prev: string } {
  return { seq: chain.head.seq + 1, prev: toB64(chain.head.hash) };
}
