// What a member's client accepts of a room as the relay serves it: the membership chain replayed
// and checked against pinned keys, the epoch keys an admin of that epoch wrapped for this member,
// and the settings an admin sealed (docs/PROTOCOL.md §Rooms).
import {
  UmbraError,
  equalBytes,
  fromB64,
  isAdmin,
  mayAuthorMeta,
  mayWrap,
  openRoomMeta,
  replayRoomChain,
  statementHash,
  unwrapConversationKey,
  type Chain,
  type ChainMember,
  type ConversationSummary,
  type IdentityKeys,
  type RoomMeta,
  type SealedMetaWire,
} from '../../shared/index.ts';
import type { Directory } from './directory.ts';

/** A room's verified state at one moment. */
export interface RoomView {
  chain: Chain;
  /** Epoch keys this member verified, including every one it held before: keys are never given back. */
  keys: Map<number, Uint8Array>;
  /** The newest settings an admin of their epoch signed, or null if none could be opened. */
  meta: RoomMeta | null;
  /** The sealed settings `meta` came from. */
  sealedMeta: SealedMetaWire | null;
  /** Names the relay lists as members that no admin signed in: they get nothing from honest clients. */
  unsigned: string[];
}

export interface ViewContext {
  me: { username: string; keys: IdentityKeys };
  directory: Directory;
  /** The view this one replaces; the new chain must extend its chain. */
  previous: RoomView | null;
}

function fail(why: string): never {
  throw new UmbraError('verification_failed', why);
}

/**
 * Verifies a room's summary. Throws `verification_failed` (the room then shows a problem) when a
 * link does not verify, the chain does not extend the one verified before, or a member's key in
 * it differs from the pinned key; network failures are thrown as they are.
 */
export async function verifyRoomView(summary: ConversationSummary, ctx: ViewContext): Promise<RoomView> {
  if (summary.kind !== 'room') fail('the relay serves this room as another kind of conversation');
  const links = summary.statements.map((s) => ({ statement: s.statement, sig: fromB64(s.sig) }));
  const previous = ctx.previous;
  let chain: Chain;
  if (previous && sameChain(previous.chain, links)) {
    chain = previous.chain;
  } else {
    if (previous) {
      if (links.length < previous.chain.states.length) fail('the relay served an older membership record than the one you verified');
      previous.chain.states.forEach((s, i) => {
        if (!equalBytes(s.hash, statementHash(links[i]!.statement))) fail(`the relay changed membership record #${i} after you verified it`);
      });
    }
    chain = replayRoomChain(summary.id, links);
    await checkKeysAgainstPins(chain, ctx);
  }
  const me = ctx.me.username;
  const keys = new Map(previous?.keys ?? []);
  for (const w of summary.keys) {
    if (w.recipient !== me || w.conv !== summary.id || keys.has(w.epoch)) continue;
    // Only an admin of that epoch wraps its key, only for a member of it; the wrapper's key comes from the chain.
    if (!mayWrap(chain, w.epoch, w.wrappedBy, me)) continue;
    const wrapper = adminAt(chain, w.epoch, w.wrappedBy)!;
    try {
      const key = unwrapConversationKey(
        { conv: w.conv, epoch: w.epoch, recipient: w.recipient, wrappedBy: w.wrappedBy, wrapped: fromB64(w.wrapped), sig: fromB64(w.sig) },
        ctx.me.keys.agreement.secretKey,
        wrapper.identityKey,
      );
      keys.set(w.epoch, key);
    } catch {
      // An unverifiable wrapped key is ignored: messages under that epoch will be rejected.
    }
  }
  const head = new Set(chain.head.members.keys());
  const unsigned = summary.members.filter((m) => !head.has(m));
  const opened = openMeta(summary, chain, keys, previous);
  return { chain, keys, meta: opened.meta, sealedMeta: opened.sealed, unsigned };
}

function sameChain(chain: Chain, links: { statement: string }[]): boolean {
  return links.length === chain.states.length && equalBytes(chain.head.hash, statementHash(links[links.length - 1]!.statement));
}

/**
 * Every member the chain ever named must carry the key this client pinned for them (its own key
 * for itself). Unpinned names are looked up, which pins them on first sight.
 */
async function checkKeysAgainstPins(chain: Chain, ctx: ViewContext): Promise<void> {
  const named: { username: string; identityKey: Uint8Array }[] = [];
  for (const s of chain.states) {
    const b = s.statement.body;
    if (b.op === 'create') named.push({ username: b.owner.username, identityKey: fromB64(b.owner.identityKey) });
    if (b.op === 'add') named.push({ username: b.member.username, identityKey: fromB64(b.member.identityKey) });
  }
  const me = ctx.me.username;
  const unpinned = named.filter((m) => m.username !== me && !ctx.directory.pinned(m.username)).map((m) => m.username);
  if (unpinned.length) await ctx.directory.lookupMany(unpinned);
  for (const m of named) {
    if (m.username === me) {
      if (!equalBytes(m.identityKey, ctx.me.keys.signing.publicKey)) fail('the room’s membership record has a different key for you');
      continue;
    }
    const pinned = ctx.directory.pinned(m.username);
    if (!pinned || !equalBytes(pinned, m.identityKey)) fail(`the room’s membership record has a key for ${m.username} that you have not verified`);
  }
}

/** `user` as the chain recorded them at a point where they were an admin during `epoch`. */
export function adminAt(chain: Chain, epoch: number, user: string): ChainMember | undefined {
  for (const s of chain.states) {
    const m = s.members.get(user);
    if (s.epoch === epoch && m && isAdmin(m.role)) return m;
  }
  return undefined;
}

function openMeta(
  summary: ConversationSummary,
  chain: Chain,
  keys: Map<number, Uint8Array>,
  previous: RoomView | null,
): { meta: RoomMeta | null; sealed: SealedMetaWire | null } {
  const kept = { meta: previous?.meta ?? null, sealed: previous?.sealedMeta ?? null };
  const m = summary.meta;
  if (!m) return kept;
  if (kept.sealed && (m.epoch < kept.sealed.epoch || (m.sealed === kept.sealed.sealed && m.sig === kept.sealed.sig))) return kept;
  const key = keys.get(m.epoch);
  // Only an admin of that epoch sets the settings; the key that checks them comes from the chain.
  if (!key || !mayAuthorMeta(chain, m.epoch, m.author)) return kept;
  try {
    const author = adminAt(chain, m.epoch, m.author)!;
    const meta = openRoomMeta({ epoch: m.epoch, author: m.author, sealed: fromB64(m.sealed), sig: fromB64(m.sig) }, summary.id, key, author.identityKey);
    return { meta, sealed: m };
  } catch {
    return kept;
  }
}
