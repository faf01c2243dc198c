// What one posted chain link may carry and what it does to the relay's tables: the link must follow
// the head and be signed by the caller with the right to make it, and the wrapped keys and settings
// must be exactly those the change needs. Pure: the tables are read through the lookups passed in.
import {
  UmbraError,
  equalBytes,
  fromB64,
  missingCase,
  parseStatement,
  type PostStatementRequest,
  type RoomStatement,
  type SealedMetaWire,
  type SignedStatement,
  type WrappedKeyWire,
} from '../../shared/index.ts';
import { decodeB64, type UserRow } from '../context.ts';
import { advanceHead, type RoomHead } from './chain.ts';

export interface NewWrappedKey {
  epoch: number;
  recipientId: number;
  wrapped: Uint8Array;
  sig: Uint8Array;
}

export interface NewMeta {
  epoch: number;
  sealed: Uint8Array;
  sig: Uint8Array;
}

/** A checked change, ready to be written in one transaction. */
export interface RoomChange {
  statement: RoomStatement;
  link: SignedStatement;
  head: RoomHead;
  /** The member row to insert ('add'). */
  added: { userId: number; role: 'admin' | 'member' } | null;
  /** The member row to delete ('remove', 'leave'). */
  removedId: number | null;
  /** The member row whose role changes ('role'). */
  roleChange: { userId: number; role: 'admin' | 'member' } | null;
  /** Wrapped by the caller. */
  keys: NewWrappedKey[];
  /** Authored by the caller; null leaves the stored settings as they are. */
  meta: NewMeta | null;
}

/** How the checks read the relay's tables. */
export interface ChangeLookups {
  userByName(username: string): UserRow | undefined;
  /** The room's current members: username → user id. */
  memberIds(): ReadonlyMap<string, number>;
}

/**
 * Checks a posted link and what it carries against the head (docs/PROTOCOL.md §Rooms):
 * `add` brings one key, of the current epoch, for the new member; `remove` and `rotate` bring the
 * new epoch's key for exactly every remaining member and the new epoch's settings; `leave` and
 * `role` bring nothing. Throws `bad_request`, `forbidden` (not the caller's own link, not a member,
 * no right) or `conflict` (the link does not follow the head).
 */
export function checkChange(conv: string, head: RoomHead, caller: UserRow, req: PostStatementRequest, lookups: ChangeLookups): RoomChange {
  const link = { statement: req.statement.statement, sig: decodeB64(req.statement.sig, 'statement.sig') };
  const st = parseStatement(link.statement);
  if (!st) throw new UmbraError('bad_request', 'statement: not a room statement');
  if (st.conv !== conv) throw new UmbraError('bad_request', 'statement: belongs to another room');
  if (st.actor !== caller.username) throw new UmbraError('forbidden', 'statement.actor must be you');
  if (!head.members.has(caller.username)) throw new UmbraError('forbidden', 'you are not a member of this room');
  const next = advanceHead(conv, head, link, st);
  const change: RoomChange = { statement: st, link, head: next, added: null, removedId: null, roleChange: null, keys: [], meta: null };
  const body = st.body;
  switch (body.op) {
    case 'create':
      // advanceHead refuses a create after the first link.
      throw new UmbraError('bad_request', 'statement: a room is created once');
    case 'add': {
      const user = lookups.userByName(body.member.username);
      if (!user) throw new UmbraError('bad_request', `statement adds ${body.member.username}, who has no account`);
      if (!equalBytes(fromB64(body.member.identityKey), user.identity_key)) {
        throw new UmbraError('bad_request', `statement adds ${body.member.username} with an identity key that is not theirs`);
      }
      requireNoMeta(req.meta, 'an add');
      change.added = { userId: user.id, role: body.role };
      change.keys = keysFor(conv, req.keys, next.epoch, new Map([[user.username, user.id]]), caller);
      break;
    }
    case 'remove':
    case 'rotate': {
      const ids = lookups.memberIds();
      if (body.op === 'remove') change.removedId = memberId(ids, body.member);
      const remaining = new Map<string, number>();
      for (const name of next.members.keys()) remaining.set(name, memberId(ids, name));
      change.keys = keysFor(conv, req.keys, next.epoch, remaining, caller);
      change.meta = metaFor(req.meta, next.epoch, caller, `a ${body.op}`);
      break;
    }
    case 'leave': {
      requireNoKeys(req.keys, 'a leave');
      requireNoMeta(req.meta, 'a leave');
      change.removedId = caller.id;
      break;
    }
    case 'role': {
      requireNoKeys(req.keys, 'a role change');
      requireNoMeta(req.meta, 'a role change');
      change.roleChange = { userId: memberId(lookups.memberIds(), body.member), role: body.role };
      break;
    }
    default:
      missingCase(body);
  }
  return change;
}

/** One key per recipient, each of `epoch` in this room and wrapped by the caller; none missing, none extra. */
function keysFor(conv: string, keys: WrappedKeyWire[], epoch: number, recipients: ReadonlyMap<string, number>, caller: UserRow): NewWrappedKey[] {
  const seen = new Set<string>();
  const out: NewWrappedKey[] = [];
  for (const k of keys) {
    if (k.conv !== conv || k.epoch !== epoch || k.wrappedBy !== caller.username) {
      throw new UmbraError('bad_request', `keys: each must be for epoch ${epoch} of this room, wrapped by you`);
    }
    const recipientId = recipients.get(k.recipient);
    if (recipientId === undefined) throw new UmbraError('bad_request', `keys: ${k.recipient} is not to receive a key in this change`);
    if (seen.has(k.recipient)) throw new UmbraError('bad_request', `keys: ${k.recipient} is listed twice`);
    seen.add(k.recipient);
    out.push({ epoch, recipientId, wrapped: decodeB64(k.wrapped, 'keys.wrapped'), sig: decodeB64(k.sig, 'keys.sig') });
  }
  if (seen.size !== recipients.size) {
    const missing = [...recipients.keys()].find((name) => !seen.has(name));
    throw new UmbraError('bad_request', `keys: one for every member of epoch ${epoch} (none for ${missing})`);
  }
  return out;
}

function metaFor(meta: SealedMetaWire | null, epoch: number, caller: UserRow, what: string): NewMeta {
  if (!meta) throw new UmbraError('bad_request', `meta: ${what} must carry the settings sealed for epoch ${epoch}`);
  if (meta.epoch !== epoch || meta.author !== caller.username) {
    throw new UmbraError('bad_request', `meta: must be sealed for epoch ${epoch} by you`);
  }
  return { epoch, sealed: decodeB64(meta.sealed, 'meta.sealed'), sig: decodeB64(meta.sig, 'meta.sig') };
}

function requireNoKeys(keys: WrappedKeyWire[], what: string): void {
  if (keys.length > 0) throw new UmbraError('bad_request', `keys: ${what} carries no keys`);
}

function requireNoMeta(meta: SealedMetaWire | null, what: string): void {
  if (meta !== null) throw new UmbraError('bad_request', `meta: ${what} carries no settings`);
}

/** The member's user id; the members table and the chain's head always agree. */
function memberId(ids: ReadonlyMap<string, number>, username: string): number {
  const id = ids.get(username);
  if (id === undefined) throw new Error(`the members table has no row for a member the chain shows`);
  return id;
}
