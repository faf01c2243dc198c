// The head of a room's membership chain as the relay tracks it, and the one-link step that moves it
// on. The step applies replayRoomChain's rules (shared/membership-chain.ts) to a single new link, so
// the relay checks a change in time proportional to the room, not to the room times its history.
import {
  LIMITS,
  UmbraError,
  equalBytes,
  fromB64,
  isAdmin,
  missingCase,
  parseStatement,
  statementHash,
  verifyStatementSignature,
  type Chain,
  type ChainMember,
  type RoomStatement,
  type SignedStatement,
} from '../../shared/index.ts';

/** The room right after its newest link: what the next link is checked against. */
export interface RoomHead {
  seq: number;
  /** Hash of the newest link's text: the next link's `prev`. */
  hash: Uint8Array;
  epoch: number;
  members: ReadonlyMap<string, ChainMember>;
  needsRotation: boolean;
}

/** The head of a chain the shared replay verified. */
export function headOf(chain: Chain): RoomHead {
  const { seq, hash, epoch, members, needsRotation } = chain.head;
  return { seq, hash, epoch, members, needsRotation };
}

/**
 * Checks `link` (already parsed as `st`) as the link after `head` (null: the first link) and returns
 * the head after it; `head` is left untouched. Mirrors one iteration of replayRoomChain and agrees
 * with it on every link (test/relay/rooms-chain.test.ts). Throws `conflict` when the link does not
 * follow the head, `forbidden` when its actor lacks the right, `bad_request` for anything else.
 */
export function advanceHead(conv: string, head: RoomHead | null, link: SignedStatement, st: RoomStatement): RoomHead {
  if (st.conv !== conv) throw bad('belongs to another room');
  const seq = head ? head.seq + 1 : 0;
  const prev = st.prev === null ? null : fromB64(st.prev);
  if (st.seq !== seq || (head === null ? prev !== null : prev === null || !equalBytes(prev, head.hash))) {
    throw new UmbraError('conflict', 'the room changed; reload and retry');
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
      if (head !== null || body.owner.username !== st.actor) throw bad('creates the room out of place');
      signerKey = fromB64(body.owner.identityKey);
      next.set(st.actor, { username: st.actor, identityKey: signerKey, role: 'owner' });
      break;
    }
    case 'add': {
      requireAdmin(actor, st.actor);
      if (members.has(body.member.username)) throw bad(`adds ${body.member.username}, who is already a member`);
      if (members.size >= LIMITS.maxMembers) throw bad('adds a member past the room size limit');
      next.set(body.member.username, { username: body.member.username, identityKey: fromB64(body.member.identityKey), role: body.role });
      break;
    }
    case 'remove': {
      requireAdmin(actor, st.actor);
      const target = members.get(body.member);
      if (!target || target.role === 'owner') throw bad(`cannot remove ${body.member}`);
      if (target.role === 'admin' && actor!.role !== 'owner') throw forbidden('only the owner removes an admin');
      if (body.epoch !== epoch + 1) throw bad(`moves to epoch ${body.epoch}, expected ${epoch + 1}`);
      next.delete(body.member);
      epoch = body.epoch;
      needsRotation = false;
      break;
    }
    case 'leave': {
      if (!actor) throw forbidden(`is a leave by ${st.actor}, who is not a member`);
      if (actor.role === 'owner') throw bad('the owner cannot leave');
      next.delete(st.actor);
      needsRotation = true;
      break;
    }
    case 'rotate': {
      requireAdmin(actor, st.actor);
      if (body.epoch !== epoch + 1) throw bad(`moves to epoch ${body.epoch}, expected ${epoch + 1}`);
      epoch = body.epoch;
      needsRotation = false;
      break;
    }
    case 'role': {
      requireAdmin(actor, st.actor);
      const target = members.get(body.member);
      if (!target || target.role === 'owner' || target.role === body.role) throw bad(`cannot make ${body.member} ${body.role}`);
      if (body.role === 'member' && actor!.role !== 'owner') throw forbidden('only the owner demotes an admin');
      next.set(body.member, { ...target, role: body.role });
      break;
    }
    default:
      missingCase(body);
  }
  if (!signerKey || !verifyStatementSignature(link, signerKey)) throw bad(`is not signed by ${st.actor}`);
  return { seq, hash: statementHash(link.statement), epoch, members: next, needsRotation };
}

/** Parses and checks every link in turn; the head after the last. Throws as advanceHead does. */
export function headFromLinks(conv: string, links: readonly SignedStatement[]): RoomHead {
  let head: RoomHead | null = null;
  for (const link of links) {
    const st = parseStatement(link.statement);
    if (!st) throw bad('is not a room statement');
    head = advanceHead(conv, head, link, st);
  }
  if (!head) throw bad('the room has no membership record');
  return head;
}

/**
 * Heads of recently used rooms, so a change is checked against the head instead of a replay of the
 * whole chain. An entry is used only if it is at the sequence number the database holds.
 */
export class RoomHeads {
  private readonly heads = new Map<string, RoomHead>();

  constructor(private readonly capacity = 512) {}

  /** The head at `seq`: cached, or rebuilt from `links()` (every link checked again). */
  at(conv: string, seq: number, links: () => SignedStatement[]): RoomHead {
    const cached = this.heads.get(conv);
    if (cached && cached.seq === seq) {
      this.heads.delete(conv);
      this.heads.set(conv, cached);
      return cached;
    }
    let head: RoomHead;
    try {
      head = headFromLinks(conv, links());
    } catch (err) {
      // Every stored link passed this check when it was appended; failing now means the file changed.
      throw new Error(`stored membership chain of a room fails its check: ${(err as Error).message}`);
    }
    if (head.seq !== seq) throw new Error(`stored membership chain ends at ${head.seq}, expected ${seq}`);
    this.set(conv, head);
    return head;
  }

  set(conv: string, head: RoomHead): void {
    this.heads.delete(conv);
    this.heads.set(conv, head);
    if (this.heads.size > this.capacity) this.heads.delete(this.heads.keys().next().value!);
  }
}

function requireAdmin(actor: ChainMember | undefined, name: string): void {
  if (!actor || !isAdmin(actor.role)) throw forbidden(`is signed by ${name}, who is not an admin`);
}

function bad(what: string): UmbraError {
  return new UmbraError('bad_request', `statement ${what}`);
}

function forbidden(what: string): UmbraError {
  return new UmbraError('forbidden', `statement ${what}`);
}
