// Changes to a room's membership as a member's client makes them: the next signed link of the
// chain with the epoch keys and resealed settings it brings, posted as one request, and built
// again on the newest chain when another change got there first (docs/PROTOCOL.md §Rooms).
import { z } from 'zod';
import {
  ConversationSummary,
  UmbraError,
  equalBytes,
  isAdmin,
  nextLink,
  randomKey,
  sealRoomMeta,
  signStatement,
  toB64,
  wipe,
  wrapConversationKey,
  wrapConversationKeyForAll,
  type ChainMember,
  type RoomMeta,
  type RoomOp,
  type SealedMeta,
  type SealedMetaWire,
  type WrappedKey,
  type WrappedKeyWire,
} from '../../shared/index.ts';
import type { Contact } from './directory.ts';
import type { RoomView } from './room-view.ts';
import type { TimelineDeps } from './timeline.ts';

/** What posting a change needs from the room it changes. */
export interface ChangeTarget {
  readonly id: string;
  readonly deps: TimelineDeps;
  /** The verified view; throws when the room has a problem or this user is not in it. */
  current(): RoomView;
  /** Fetches and verifies the room again. */
  reload(): Promise<void>;
  /** Verifies and takes the summary the relay answered with. */
  take(summary: ConversationSummary): Promise<void>;
}

/** One change: the link's body, the wrapped keys and the sealed settings that go with it. */
export interface Change {
  body: RoomOp;
  keys: WrappedKeyWire[];
  meta: SealedMetaWire | null;
}

/** Builds the change against a view of the room; null when there is nothing left to do. */
export type Plan = (view: RoomView) => Promise<Change | null>;

/** Attempts at one change when others keep moving the chain (409). */
const ATTEMPTS = 4;

/**
 * Signs and posts the change `plan` builds against the newest verified chain. On `conflict` (the
 * chain moved) it refetches, re-verifies and builds again, up to ATTEMPTS times, then gives up with
 * `conflict` ("someone else changed the room at the same moment; try again"). Resolves false when
 * the plan found nothing left to do.
 */
export async function postChange(t: ChangeTarget, plan: Plan): Promise<boolean> {
  for (let attempt = 1; ; attempt++) {
    const view = t.current();
    const change = await plan(view);
    if (!change) return false;
    const me = t.deps.me;
    const signed = signStatement(
      { v: 1, kind: 'room-statement', conv: t.id, ...nextLink(view.chain), actor: me.username, at: t.deps.now(), body: change.body },
      me.keys.signing.secretKey,
    );
    try {
      const body = { statement: { statement: signed.statement, sig: toB64(signed.sig) }, keys: change.keys, meta: change.meta };
      const res = await t.deps.http.post(`/api/rooms/${t.id}/statements`, body, z.unknown());
      // The change is in. An answer that is not a summary is not trusted for anything: fetch the room.
      const summary = ConversationSummary.safeParse(res);
      await (summary.success ? t.take(summary.data) : t.reload());
      return true;
    } catch (err) {
      if (!(err instanceof UmbraError && err.code === 'conflict')) throw err;
      if (attempt >= ATTEMPTS) throw new UmbraError('conflict', 'someone else changed the room at the same moment; try again');
      await t.reload();
    }
  }
}

function requireAdmin(view: RoomView, me: string): ChainMember {
  const mine = view.chain.head.members.get(me);
  if (!mine || !isAdmin(mine.role)) throw new UmbraError('forbidden', 'only an admin of this room can do that');
  return mine;
}

/** Adds `contact` (whose keys the caller verified) with the current epoch key wrapped for them. */
export function addPlan(t: ChangeTarget, contact: Contact, role: 'admin' | 'member', via: 'invite' | 'join'): Plan {
  return async (view) => {
    const me = t.deps.me;
    requireAdmin(view, me.username);
    const head = view.chain.head;
    if (head.members.has(contact.username)) return null;
    const key = view.keys.get(head.epoch);
    if (!key) throw new UmbraError('verification_failed', 'you hold no key for the room’s current epoch');
    const context = { conv: t.id, epoch: head.epoch, recipient: contact.username, wrappedBy: me.username };
    const wrapped = wrapConversationKey(key, contact.x25519Key, context, me.keys.signing.secretKey);
    return {
      body: { op: 'add', member: { username: contact.username, identityKey: toB64(contact.identityKey) }, role, via },
      keys: [keyWire(wrapped)],
      meta: null,
    };
  };
}

/** Removes a member and moves every other member to a new epoch key in the same step. */
export function removePlan(t: ChangeTarget, username: string): Plan {
  return async (view) => {
    const mine = requireAdmin(view, t.deps.me.username);
    const head = view.chain.head;
    const target = head.members.get(username);
    if (!target) return null;
    if (target.role === 'owner') throw new UmbraError('forbidden', 'the owner cannot be removed');
    if (target.role === 'admin' && mine.role !== 'owner') throw new UmbraError('forbidden', 'only the owner can remove an admin');
    const remaining = [...head.members.values()].filter((m) => m.username !== username);
    return renewKey(t, view, remaining, { op: 'remove', member: username, epoch: head.epoch + 1 });
  };
}

/** Moves the room to a new epoch key; with `onlyIfNeeded`, only while a leave waits for it. */
export function rotatePlan(t: ChangeTarget, onlyIfNeeded: boolean): Plan {
  return async (view) => {
    const head = view.chain.head;
    if (onlyIfNeeded && !head.needsRotation) return null;
    requireAdmin(view, t.deps.me.username);
    return renewKey(t, view, [...head.members.values()], { op: 'rotate', epoch: head.epoch + 1 });
  };
}

export function leavePlan(t: ChangeTarget): Plan {
  return async (view) => {
    const mine = view.chain.head.members.get(t.deps.me.username);
    if (!mine) return null;
    if (mine.role === 'owner') throw new UmbraError('forbidden', 'the owner cannot leave the room');
    return { body: { op: 'leave' }, keys: [], meta: null };
  };
}

/** Promotes a member to admin, or (the owner only) demotes an admin to member. */
export function rolePlan(t: ChangeTarget, username: string, role: 'admin' | 'member'): Plan {
  return async (view) => {
    const mine = requireAdmin(view, t.deps.me.username);
    const target = view.chain.head.members.get(username);
    if (!target) throw new UmbraError('not_found', `${username} is not in this room`);
    if (target.role === role) return null;
    if (target.role === 'owner') throw new UmbraError('forbidden', 'the owner’s role cannot change');
    if (role === 'member' && mine.role !== 'owner') throw new UmbraError('forbidden', 'only the owner can demote an admin');
    return { body: { op: 'role', member: username, role }, keys: [], meta: null };
  };
}

/**
 * A new epoch key wrapped for each of `members`, with the settings resealed under it. Each
 * member's agreement key comes from the directory, and is used only if the directory's identity
 * key for them is the one the chain records: otherwise the change stops with `identity_changed`.
 */
async function renewKey(t: ChangeTarget, view: RoomView, members: ChainMember[], body: RoomOp & { epoch: number }): Promise<Change> {
  if (!view.meta) throw new UmbraError('verification_failed', 'the room’s settings could not be read, so they cannot be sealed under a new key');
  const me = t.deps.me;
  const others = members.filter((m) => m.username !== me.username);
  const found = await t.deps.directory.lookupMany(others.map((m) => m.username));
  const recipients = members.map((m) => {
    if (m.username === me.username) return { username: m.username, x25519Key: me.keys.agreement.publicKey };
    const c = found.get(m.username);
    if (c instanceof UmbraError) throw c;
    if (!c || !equalBytes(c.identityKey, m.identityKey)) {
      throw new UmbraError('identity_changed', `${m.username}'s key in the directory is not the one in the room’s record`);
    }
    return { username: m.username, x25519Key: c.x25519Key };
  });
  const epoch = view.chain.head.epoch + 1;
  const sealed = sealRekey(t.id, epoch, recipients, view.meta, { username: me.username, signingSecret: me.keys.signing.secretKey });
  return { body, keys: sealed.keys, meta: sealed.meta };
}

/**
 * The crypto of a rotation, pure: a fresh epoch key wrapped for every recipient's agreement key
 * as one set (one ephemeral key, one signature; docs/PROTOCOL.md §Key wrapping) and the settings
 * sealed under it, signed by `me`. The key itself is wiped before returning.
 */
export function sealRekey(
  conv: string,
  epoch: number,
  recipients: readonly { username: string; x25519Key: Uint8Array }[],
  meta: RoomMeta,
  me: { username: string; signingSecret: Uint8Array },
): { keys: WrappedKeyWire[]; meta: SealedMetaWire } {
  const key = randomKey();
  try {
    const keys = wrapConversationKeyForAll(
      key,
      recipients.map((r) => ({ recipient: r.username, x25519: r.x25519Key })),
      { conv, epoch, wrappedBy: me.username },
      me.signingSecret,
    ).map(keyWire);
    return { keys, meta: metaWire(sealRoomMeta(meta, conv, epoch, me.username, key, me.signingSecret)) };
  } finally {
    wipe(key);
  }
}

export function keyWire(w: WrappedKey): WrappedKeyWire {
  return { conv: w.conv, epoch: w.epoch, recipient: w.recipient, wrappedBy: w.wrappedBy, wrapped: toB64(w.wrapped), sig: toB64(w.sig) };
}

export function metaWire(m: SealedMeta): SealedMetaWire {
  return { epoch: m.epoch, author: m.author, sealed: toB64(m.sealed), sig: toB64(m.sig) };
}
