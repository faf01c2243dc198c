// Room fixtures: signed membership chains built straight from shared crypto, people on a real relay
// (SDK users, and raw accounts whose keys the test holds to play a malicious member), a malicious
// relay's edits to the room tables, readers of those tables, and small readers of a Room's state.
import { UmbraClient, type Platform, type Room } from '../../client/sdk/index.ts';
import { nodePlatform } from '../../client/sdk/node.ts';
import {
  KDF_DEFAULT,
  deriveAccountKeys,
  deriveMasterKey,
  fromB64,
  generateIdentity,
  identityFromSecrets,
  publicKeysOf,
  randomSalt,
  sealVault,
  encodeEvent,
  randomBytes,
  sealEnvelope,
  unwrapConversationKey,
  ConversationSummary as ConversationSummarySchema,
  type ConversationSummary,
  type EnvelopeWire,
  type SealedEnvelope,
  nextLink,
  replayRoomChain,
  signStatement,
  statementHash,
  toB64,
  type Chain,
  type IdentityKeys,
  type RoomOp,
  type RoomStatement,
  type SignedStatement,
} from '../../shared/index.ts';
import { PASSWORD, bodyOf, api, queryDb, sessionTokenOf, uniqueName, waitFor, type TestRelay } from './relay.ts';

/** A test-held identity with a name. */
export interface Actor {
  name: string;
  keys: IdentityKeys;
}

export function actor(name: string, keys: IdentityKeys = generateIdentity()): Actor {
  return { name, keys };
}

export function ref(a: Actor): { username: string; identityKey: string } {
  return { username: a.name, identityKey: toB64(a.keys.signing.publicKey) };
}

/**
 * Builds a room's chain link by link, signing each with the acting identity. Every method
 * appends exactly what an honest client would; `raw` appends a statement as given (for forgeries).
 */
export class ChainBuilder {
  readonly links: SignedStatement[] = [];
  epoch = 0;
  private at = 1_700_000_000_000;

  constructor(
    readonly conv: string,
    readonly owner: Actor,
  ) {
    this.sign(owner, { op: 'create', owner: ref(owner) });
  }

  /** The statement the next honest link would carry (seq, prev, conv), with `body` by `by`. */
  statement(by: Actor, body: RoomOp): RoomStatement {
    const seq = this.links.length;
    const prev = seq === 0 ? null : toB64(statementHash(this.links[seq - 1]!.statement));
    return { v: 1, kind: 'room-statement', conv: this.conv, seq, prev, actor: by.name, at: this.at++, body };
  }

  sign(by: Actor, body: RoomOp): SignedStatement {
    return this.raw(signStatement(this.statement(by, body), by.keys.signing.secretKey));
  }

  raw(link: SignedStatement): SignedStatement {
    this.links.push(link);
    return link;
  }

  add(by: Actor, member: Actor, role: 'admin' | 'member' = 'member', via: 'invite' | 'join' = 'invite'): this {
    this.sign(by, { op: 'add', member: ref(member), role, via });
    return this;
  }
  remove(by: Actor, member: Actor): this {
    this.sign(by, { op: 'remove', member: member.name, epoch: ++this.epoch });
    return this;
  }
  leave(by: Actor): this {
    this.sign(by, { op: 'leave' });
    return this;
  }
  rotate(by: Actor): this {
    this.sign(by, { op: 'rotate', epoch: ++this.epoch });
    return this;
  }
  role(by: Actor, member: Actor, role: 'admin' | 'member'): this {
    this.sign(by, { op: 'role', member: member.name, role });
    return this;
  }

  replay(): Chain {
    return replayRoomChain(this.conv, this.links);
  }

  /** The next link's seq and prev as replayRoomChain computes them. */
  next(): { seq: number; prev: string } {
    return nextLink(this.replay());
  }
}

/** The bodies of the text messages a room shows, in order. */
export function roomBodies(room: Room): string[] {
  return room.messages.value.map((m) => bodyOf(m.event));
}

/** The room's members as `name:role`, sorted by name. */
export function roster(room: Room): string[] {
  return room.members.value.map((m) => `${m.username}:${m.role}`).sort();
}

// ---- people on a real relay ----------------------------------------------------------------

/** A signed-up SDK user on a platform the test can look into (its store holds the device's keys). */
export interface Person {
  client: UmbraClient;
  name: string;
  platform: Platform;
}

export async function signUpPerson(relay: TestRelay, prefix: string, platform: Platform = nodePlatform()): Promise<Person> {
  const client = new UmbraClient({ baseUrl: relay.url, platform });
  const name = uniqueName(prefix);
  await client.signUp(name, PASSWORD);
  return { client, name, platform };
}

/** The private keys a device keeps in its store while logged in. */
export async function deviceKeys(p: Person): Promise<IdentityKeys> {
  const stored = await p.platform.store.get<{ signingSecret: Uint8Array; agreementSecret: Uint8Array }>('account');
  if (!stored) throw new Error(`${p.name} is not logged in`);
  return identityFromSecrets(stored.signingSecret, stored.agreementSecret);
}

/** Waits until `client` knows room `id` and it satisfies `check`; returns it. */
export async function roomOf(client: UmbraClient, id: string, check: (r: Room) => boolean = (r) => r.state.value === 'member', ms = 5000): Promise<Room> {
  await waitFor(() => {
    const r = client.room(id);
    return r !== undefined && check(r);
  }, ms, `room ${id} on ${client.me.value}`);
  return client.room(id)!;
}

/**
 * An account whose keys the test holds, made over the raw API: it plays a member (or outsider)
 * that does not run the SDK, so it can sign, wrap and send whatever it likes.
 */
export interface RawUser extends Actor {
  cookie: string;
}

export async function signUpRaw(relay: TestRelay, prefix: string): Promise<RawUser> {
  const name = uniqueName(prefix);
  const keys = generateIdentity();
  const salt = randomSalt();
  const master = deriveMasterKey(PASSWORD, salt, KDF_DEFAULT);
  const { authKey, vaultKey } = deriveAccountKeys(master, name);
  const pub = publicKeysOf(keys, name);
  const vault = sealVault(vaultKey, name, { signingSecret: keys.signing.secretKey, agreementSecret: keys.agreement.secretKey, pins: {} });
  const res = await api(relay, 'POST', '/api/auth/signup', {
    body: {
      username: name,
      salt: toB64(salt),
      kdf: { ...KDF_DEFAULT },
      authKey: toB64(authKey),
      keys: { username: name, identityKey: toB64(pub.identityKey), x25519Key: toB64(pub.x25519Key), x25519Sig: toB64(pub.x25519Sig) },
      vault: toB64(vault),
    },
  });
  if (res.status !== 201) throw new Error(`raw sign-up answered ${res.status}: ${res.text}`);
  return { name, keys, cookie: `umbra_session=${sessionTokenOf(res)}` };
}

/** A raw user's request to the relay with its session. */
export function rawApi(relay: TestRelay, who: RawUser, method: string, path: string, body?: unknown) {
  return api(relay, method, path, { cookie: who.cookie, body });
}

/** The epoch keys the relay serves `who` in room `conv`, unwrapped with its own secret (no checks of who wrapped them). */
export function rawRoomKeys(who: Actor, summary: ConversationSummary): Map<number, Uint8Array> {
  const out = new Map<number, Uint8Array>();
  const chain = replayRoomChain(summary.id, summary.statements.map((s) => ({ statement: s.statement, sig: fromB64(s.sig) })));
  for (const w of summary.keys) {
    if (w.recipient !== who.name) continue;
    const wrapper = chain.states.map((s) => s.members.get(w.wrappedBy)).find((m) => m)?.identityKey;
    if (!wrapper) continue;
    out.set(
      w.epoch,
      unwrapConversationKey({ ...w, wrapped: fromB64(w.wrapped), sig: fromB64(w.sig) }, who.keys.agreement.secretKey, wrapper),
    );
  }
  return out;
}

// ---- a malicious relay's edits to rooms ------------------------------------------------------

/** Direct writes to the relay's room tables: what a compromised relay can serve. */
export class RoomTamper {
  constructor(private readonly relay: TestRelay) {}

  private get sql() {
    return this.relay.db.sqlite;
  }

  private userId(username: string): number {
    return (this.sql.prepare('SELECT id FROM users WHERE username = ?').get(username) as { id: number }).id;
  }

  /** The stored chain, oldest first. */
  links(conv: string): SignedStatement[] {
    return (this.sql.prepare('SELECT body, sig FROM statements WHERE conv_id = ? ORDER BY seq').all(conv) as { body: Buffer; sig: Buffer }[]).map(
      (r) => ({ statement: r.body.toString('utf8'), sig: new Uint8Array(r.sig) }),
    );
  }

  /** Serves one more link at the end of the chain, whatever it says. */
  appendLink(conv: string, link: SignedStatement): void {
    const seq = this.links(conv).length;
    this.sql.prepare('INSERT INTO statements (conv_id, seq, body, sig) VALUES (?, ?, ?, ?)').run(conv, seq, Buffer.from(link.statement, 'utf8'), Buffer.from(link.sig));
  }

  replaceLink(conv: string, seq: number, link: SignedStatement): void {
    this.sql.prepare('UPDATE statements SET body = ?, sig = ? WHERE conv_id = ? AND seq = ?').run(Buffer.from(link.statement, 'utf8'), Buffer.from(link.sig), conv, seq);
  }

  dropLastLink(conv: string): void {
    this.sql.prepare('DELETE FROM statements WHERE conv_id = ? AND seq = (SELECT max(seq) FROM statements WHERE conv_id = ?)').run(conv, conv);
  }

  /** Serves a pending join request from `username`, whatever it says and whoever signed it. */
  addJoinRequest(conv: string, username: string, request: SignedStatement): void {
    this.sql
      .prepare("INSERT INTO join_requests (conv_id, user_id, request, sig, status, created_at) VALUES (?, ?, ?, ?, 'pending', ?)")
      .run(conv, this.userId(username), Buffer.from(request.statement, 'utf8'), Buffer.from(request.sig), Date.now());
  }

  /** Serves other sealed settings as the room's newest. */
  setMeta(conv: string, m: { epoch: number; author: string; sealed: Uint8Array; sig: Uint8Array }): void {
    this.sql
      .prepare('UPDATE conversations SET meta_epoch = ?, meta_author_id = ?, meta_sealed = ?, meta_sig = ? WHERE id = ?')
      .run(m.epoch, this.userId(m.author), Buffer.from(m.sealed), Buffer.from(m.sig), conv);
  }

  /** Lists `username` as a member, so the relay lets them read and send, with no link behind it. */
  addMemberRow(conv: string, username: string): void {
    this.sql.prepare("INSERT INTO members (conv_id, user_id, joined_at, role) VALUES (?, ?, ?, 'member')").run(conv, this.userId(username), Date.now());
  }
}

// ---- the room tables, read from the relay's file ------------------------------------------------

/** The id of the newest room `owner` created. */
export function newestRoomOf(relay: { dataDir: string }, owner: string): string {
  const [row] = queryDb<{ id: string }>(
    relay,
    "SELECT c.id FROM conversations c JOIN users u ON u.id = c.created_by WHERE u.username = ? AND c.kind = 'room' ORDER BY c.rowid DESC LIMIT 1",
    owner,
  );
  if (!row) throw new Error(`${owner} created no room`);
  return row.id;
}

/** One link of a room's membership chain as the relay stored it; `member` is a username whatever the op. */
export interface StoredLink {
  actor: string;
  op: string;
  member?: string;
  role?: string;
  epoch?: number;
}

/** The room's membership chain as the relay stored it, oldest first. */
export function storedChain(relay: { dataDir: string }, conv: string): StoredLink[] {
  return queryDb<{ body: Buffer }>(relay, 'SELECT body FROM statements WHERE conv_id = ? ORDER BY seq', conv).map((row) => {
    const st = JSON.parse(row.body.toString('utf8')) as { actor: string; body: { op: string; member?: string | { username: string }; role?: string; epoch?: number } };
    const { op, member, role, epoch } = st.body;
    return { actor: st.actor, op, member: typeof member === 'string' ? member : member?.username, role, epoch };
  });
}

/** Who holds a wrapped key for which epoch of the room, by epoch and then username. */
export function keyHolderRows(relay: { dataDir: string }, conv: string): { username: string; epoch: number }[] {
  return queryDb<{ username: string; epoch: number }>(
    relay,
    'SELECT u.username, k.epoch FROM wrapped_keys k JOIN users u ON u.id = k.recipient_id WHERE k.conv_id = ? ORDER BY k.epoch, u.username',
    conv,
  );
}

/** The next link after the stored chain, signed by `by` (no rule checked). */
export function nextStatement(links: readonly SignedStatement[], conv: string, by: Actor, body: RoomOp): SignedStatement {
  const last = links[links.length - 1]!;
  const statement: RoomStatement = { v: 1, kind: 'room-statement', conv, seq: links.length, prev: toB64(statementHash(last.statement)), actor: by.name, at: Date.now(), body };
  return signStatement(statement, by.keys.signing.secretKey);
}

/** A raw user's view of a room, as the relay serves it. */
export async function rawSummary(relay: TestRelay, who: RawUser, conv: string): Promise<ConversationSummary> {
  const res = await rawApi(relay, who, 'GET', `/api/conversations/${conv}`);
  if (res.status !== 200) throw new Error(`GET conversation answered ${res.status}: ${res.text}`);
  return ConversationSummarySchema.parse(res.json);
}

/** An envelope sealed and signed by a test-held identity, with whatever header it is given. */
export function rawEnvelope(
  who: Actor,
  h: { conv: string; epoch: number; rosterHash: Uint8Array; counter: number; key: Uint8Array },
  body: string,
): SealedEnvelope {
  return sealEnvelope(
    { v: 1, suite: 1, type: 'content', conv: h.conv, epoch: h.epoch, sender: who.name, rosterHash: h.rosterHash, clientMsgId: toB64(randomBytes(16)), counter: h.counter, expiresAt: null, burnAfterMs: null },
    encodeEvent({ kind: 'text', body }),
    h.key,
    who.keys.signing.secretKey,
  );
}

export function envelopeWire(e: SealedEnvelope): EnvelopeWire {
  return { ...e, rosterHash: toB64(e.rosterHash), ct: toB64(e.ct), sig: toB64(e.sig) };
}
