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
export interface ChainState {
  seq: number;
  /** Hash of this link's statement text: the next link's `prev`. */
  hash: Uint8Array;
  statement: RoomStatement;
  epoch: number;
  members: ReadonlyMap<string, ChainMember>;
  /** rosterHash() of the members: what messages sent at this point carry. */
  rosterHash: Uint8Array;
  /** After a leave, until an admin rotates: the departed member still holds the epoch key. */
  needsRotation: boolean;
}

export interface Chain {
  conv: string;
  states: ChainState[];
  head: ChainState;
}

export function isAdmin(role: Role | undefined): boolean {
  return role === 'owner' || role === 'admin';
}

/**
 * Verifies every link (hash chain, signature by the actor's key as the chain itself recorded it,
 * and the actor's right to make that change at that point) and returns the states. Throws
 * `verification_failed` naming the first bad link. The caller compares identity keys with its pins.
 */
export function replayRoomChain(conv: string, links: readonly SignedStatement[]): Chain {
  if (links.length === 0) throw chainError(0, 'the room has no membership record');
  const states: ChainState[] = [];
  let members = new Map<string, ChainMember>();
  let epoch = 0;
  let needsRotation = false;
  let prevHash: Uint8Array | null = null;
  links.forEach((link, seq) => {
    const st = parseStatement(link.statement);
    if (!st) throw chainError(seq, 'is malformed');
    if (st.conv !== conv) throw chainError(seq, 'belongs to another room');
    if (st.seq !== seq) throw chainError(seq, `claims position ${st.seq}`);
    const prev = st.prev === null ? null : fromB64(st.prev);
    if (prevHash === null ? prev !== null : prev === null || !equalBytes(prev, prevHash)) {
      throw chainError(seq, 'does not follow the link before it');
    }
    const next = new Map(members);
    const actor = members.get(st.actor);
    const body = st.body;
    let signerKey: Uint8Array | undefined = actor?.identityKey;
    switch (body.op) {
      case 'create': {
        if (seq !== 0 || body.owner.username !== st.actor) throw chainError(seq, 'creates the room out of place');
        signerKey = fromB64(body.owner.identityKey);
        next.set(st.actor, { username: st.actor, identityKey: signerKey, role: 'owner' });
        break;
      }
      case 'add': {
        requireAdmin(seq, actor, st.actor);
        if (members.has(body.member.username)) throw chainError(seq, `adds ${body.member.username}, who is already a member`);
        if (members.size >= LIMITS.maxMembers) throw chainError(seq, 'adds a member past the room size limit');
        next.set(body.member.username, { username: body.member.username, identityKey: fromB64(body.member.identityKey), role: body.role });
        break;
      }
      case 'remove': {
        requireAdmin(seq, actor, st.actor);
        const target = members.get(body.member);
        if (!target || target.role === 'owner') throw chainError(seq, `cannot remove ${body.member}`);
        if (target.role === 'admin' && actor!.role !== 'owner') throw chainError(seq, 'only the owner removes an admin');
        if (body.epoch !== epoch + 1) throw chainError(seq, `moves to epoch ${body.epoch}, expected ${epoch + 1}`);
        next.delete(body.member);
        epoch = body.epoch;
        needsRotation = false;
        break;
      }
      case 'leave': {
        if (!actor) throw chainError(seq, `is a leave by ${st.actor}, who is not a member`);
        if (actor.role === 'owner') throw chainError(seq, 'the owner cannot leave');
        next.delete(st.actor);
        needsRotation = true;
        break;
      }
      case 'rotate': {
        requireAdmin(seq, actor, st.actor);
        if (body.epoch !== epoch + 1) throw chainError(seq, `moves to epoch ${body.epoch}, expected ${epoch + 1}`);
        epoch = body.epoch;
        needsRotation = false;
        break;
      }
      case 'role': {
        requireAdmin(seq, actor, st.actor);
        const target = members.get(body.member);
        if (!target || target.role === 'owner' || target.role === body.role) throw chainError(seq, `cannot make ${body.member} ${body.role}`);
        if (body.role === 'member' && actor!.role !== 'owner') throw chainError(seq, 'only the owner demotes an admin');
        next.set(body.member, { ...target, role: body.role });
        break;
      }
      default:
        missingCase(body);
    }
    if (!signerKey || !verifyStatementSignature(link, signerKey)) throw chainError(seq, `is not signed by ${st.actor}`);
    members = next;
    prevHash = statementHash(link.statement);
    states.push({
      seq,
      hash: prevHash,
      statement: st,
      epoch,
      members,
      rosterHash: rosterHash(conv, [...members.values()]),
      needsRotation,
    });
  });
  return { conv, states, head: states[states.length - 1]! };
}

function requireAdmin(seq: number, actor: ChainMember | undefined, name: string): void {
  if (!actor || !isAdmin(actor.role)) throw chainError(seq, `is signed by ${name}, who is not an admin at that point`);
}

function chainError(seq: number, what: string): UmbraError {
  return new UmbraError('verification_failed', `membership record #${seq} ${what}`);
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
