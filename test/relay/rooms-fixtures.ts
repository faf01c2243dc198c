// Fixtures for the relay's room tests: people signed up through the SDK whose private keys the test
// holds, and a room whose chain links, wrapped keys and sealed settings are built with shared crypto.
import crypto from 'node:crypto';
import { MemoryStore, UmbraClient } from '../../client/sdk/index.ts';
import { nodePlatform } from '../../client/sdk/node.ts';
import {
  identityFromSecrets,
  randomKey,
  sealRoomMeta,
  signJoinRequest,
  signStatement,
  statementHash,
  toB64,
  wrapConversationKey,
  type IdentityKeys,
  type RoomOp,
  type SealedMetaWire,
  type SignedStatement,
  type WrappedKeyWire,
} from '../../shared/index.ts';
import { PASSWORD, WsProbe, api, queryDb, uniqueName, type ApiResponse } from '../helpers/relay.ts';

/** Someone who can sign as a user the relay knows. */
export interface Signer {
  name: string;
  keys: IdentityKeys;
}

/** A user signed up through the SDK, with the session cookie and the private keys. */
export interface Person extends Signer {
  cookie: string;
}

/** Signs up through the SDK and reads the account's private keys from the SDK's own store. */
export async function signUpPerson(relay: { url: string }, prefix: string): Promise<Person> {
  const store = new MemoryStore();
  const client = new UmbraClient({ baseUrl: relay.url, platform: { ...nodePlatform(), store } });
  const name = uniqueName(prefix);
  await client.signUp(name, PASSWORD);
  const account = await store.get<{ signingSecret: Uint8Array; agreementSecret: Uint8Array }>('account');
  if (!account) throw new Error('the SDK stored no account');
  client.disconnect();
  return { name, cookie: client.http.cookieHeader()!, keys: identityFromSecrets(account.signingSecret, account.agreementSecret) };
}

export interface StatementWire {
  statement: string;
  sig: string;
}

export function wire(s: SignedStatement): StatementWire {
  return { statement: s.statement, sig: toB64(s.sig) };
}

export function memberRef(p: Signer): { username: string; identityKey: string } {
  return { username: p.name, identityKey: toB64(p.keys.signing.publicKey) };
}

export const ROOM_META = { name: 'placeholder', topic: '', policy: 'private' } as const;

/**
 * A room as its honest admins' clients would build it: each link follows the last one accepted,
 * each epoch has a fresh key. `accept` records a link once the relay took it.
 */
export class RoomBuilder {
  readonly links: SignedStatement[] = [];
  readonly epochKeys: Uint8Array[] = [randomKey()];
  private at = Date.now();

  constructor(
    readonly owner: Signer,
    private readonly meta: { name: string; topic: string; policy: 'open' | 'private' } = { ...ROOM_META },
    readonly id: string = toB64(crypto.randomBytes(16)),
  ) {}

  get epoch(): number {
    return this.epochKeys.length - 1;
  }

  /** The body of POST /api/rooms, and the first link in it (to `accept` once the relay took it). */
  createBody(nameHash: Uint8Array): { body: Record<string, any>; genesis: SignedStatement } {
    const genesis = this.sign(this.owner, { op: 'create', owner: memberRef(this.owner) }, 0, null);
    const body = { id: this.id, nameHash: toB64(nameHash), genesis: wire(genesis), keys: [this.wrap(this.owner, this.owner, 0)], meta: this.sealMeta(this.owner, 0) };
    return { body, genesis };
  }

  /** Signs a link by `by` at the next position (or at the one given, for stale or forged links). */
  sign(by: Signer, body: RoomOp, seq = this.links.length, prev: string | null = this.headHash()): SignedStatement {
    return signStatement({ v: 1, kind: 'room-statement', conv: this.id, seq, prev, actor: by.name, at: this.at++, body }, by.keys.signing.secretKey);
  }

  headHash(): string | null {
    const last = this.links[this.links.length - 1];
    return last ? toB64(statementHash(last.statement)) : null;
  }

  accept(link: SignedStatement): void {
    this.links.push(link);
  }

  /** Draws the next epoch's key; returns the new epoch. */
  nextEpoch(): number {
    this.epochKeys.push(randomKey());
    return this.epoch;
  }

  wrap(recipient: Signer, by: Signer, epoch = this.epoch): WrappedKeyWire {
    const w = wrapConversationKey(this.epochKeys[epoch]!, recipient.keys.agreement.publicKey, { conv: this.id, epoch, recipient: recipient.name, wrappedBy: by.name }, by.keys.signing.secretKey);
    return { conv: w.conv, epoch: w.epoch, recipient: w.recipient, wrappedBy: w.wrappedBy, wrapped: toB64(w.wrapped), sig: toB64(w.sig) };
  }

  sealMeta(by: Signer, epoch = this.epoch): SealedMetaWire {
    const m = sealRoomMeta(this.meta, this.id, epoch, by.name, this.epochKeys[epoch]!, by.keys.signing.secretKey);
    return { epoch: m.epoch, author: m.author, sealed: toB64(m.sealed), sig: toB64(m.sig) };
  }

  joinRequest(who: Signer): StatementWire {
    return wire(signJoinRequest({ v: 1, kind: 'join-request', conv: this.id, username: who.name, identityKey: toB64(who.keys.signing.publicKey), at: this.at++ }, who.keys.signing.secretKey));
  }
}

/** POST /api/rooms with a random name hash; fails unless the relay answers 201. */
export async function createRoom(relay: { url: string }, owner: Person, nameHash: Uint8Array = crypto.randomBytes(32)): Promise<RoomBuilder> {
  const room = new RoomBuilder(owner);
  const { body, genesis } = room.createBody(nameHash);
  const res = await api(relay, 'POST', '/api/rooms', { cookie: owner.cookie, body });
  if (res.status !== 201) throw new Error(`room creation answered ${res.status}: ${res.text}`);
  room.accept(genesis);
  return room;
}

/** The add link for `who` by `by`, with the current epoch's key for `who`; fails unless 201. */
export async function addMember(relay: { url: string }, room: RoomBuilder, by: Person, who: Signer, role: 'admin' | 'member' = 'member'): Promise<void> {
  const link = room.sign(by, { op: 'add', member: memberRef(who), role, via: 'invite' });
  const res = await postChange(relay, room, by, link, [room.wrap(who, by)]);
  if (res.status !== 201) throw new Error(`add answered ${res.status}: ${res.text}`);
}

/** POST /api/rooms/:id/statements; on 201 the builder records the link. */
export async function postChange(
  relay: { url: string },
  room: RoomBuilder,
  by: Person,
  link: SignedStatement,
  keys: WrappedKeyWire[] = [],
  meta: SealedMetaWire | null = null,
): Promise<ApiResponse> {
  const res = await api(relay, 'POST', `/api/rooms/${room.id}/statements`, { cookie: by.cookie, body: { statement: wire(link), keys, meta } });
  if (res.status === 201) room.accept(link);
  return res;
}

/** Rows in every table the relay writes, rooms' included, read from the file. */
export function tableCounts(relay: { dataDir: string }): Record<string, number> {
  const out: Record<string, number> = {};
  for (const table of ['users', 'conversations', 'members', 'wrapped_keys', 'envelopes', 'statements', 'join_requests']) {
    out[table] = queryDb<{ n: number }>(relay, `select count(*) as n from ${table}`)[0]!.n;
  }
  return out;
}

/** A WebSocket that has said hello, so the relay pushes to it. */
export async function liveProbe(relay: { url: string }, p: Person): Promise<WsProbe> {
  const probe = await WsProbe.open(relay, p.cookie);
  const hello = await probe.request({ t: 'hello' });
  if (hello.t !== 'hello') throw new Error(`hello answered ${JSON.stringify(hello)}`);
  return probe;
}
