// The head of a room's membership chain as the relay tracks it. A new link is checked with the
// shared one-link step (shared/membership-chain.ts applyLink) against the cached head, so the relay
// checks a change in time proportional to the room, not to the room times its history.
import {
  applyLink,
  parseStatement,
  UmbraError,
  type Chain,
  type LinkState,
  type RoomStatement,
  type SignedStatement,
} from '../../shared/index.ts';

/** The room right after its newest link: what the next link is checked against. */
export type RoomHead = LinkState;

/** The head of a chain the shared replay verified. */
export function headOf(chain: Chain): RoomHead {
  const { seq, hash, epoch, members, needsRotation } = chain.head;
  return { seq, hash, epoch, members, needsRotation };
}

/**
 * Checks `link` (already parsed as `st`) as the link after `head` (null: the first link) and returns
 * the head after it. Throws `conflict` when the link does not follow the head, `forbidden` when its
 * actor lacks the right, `bad_request` for anything else.
 */
export function advanceHead(conv: string, head: RoomHead | null, link: SignedStatement, st: RoomStatement): RoomHead {
  return applyLink(conv, head, link, st);
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

function bad(what: string): UmbraError {
  return new UmbraError('bad_request', `statement ${what}`);
}
