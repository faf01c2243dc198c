// Plays a malicious relay in tests: edits what the relay serves straight in its SQLite file, and
// sits between a client and the relay's WebSocket to watch, drop, rewrite or inject frames; and
// gives a test file its relay with that hold on it (`tamperedRelay`).
import type Database from 'better-sqlite3';
import { afterAll, beforeAll } from 'vitest';
import { UmbraClient, type Conversation, type Platform, type RejectReason, type SecurityStats, type SocketLike } from '../../client/sdk/index.ts';
import { nodePlatform } from '../../client/sdk/node.ts';
import type { DB } from '../../server/db.ts';
import type { PublicKeys, SealedEnvelope } from '../../shared/index.ts';
import { PASSWORD, bodyOf, startTestRelay, uniqueName, waitFor, type TestRelay } from './relay.ts';

export type EnvelopeRow = DB['envelopes'];

/** A wrapped key as the relay stores it, with the wrapper named. */
export interface WrappedKeyRow {
  epoch: number;
  wrappedBy: string;
  wrapped: Uint8Array;
  sig: Uint8Array;
}

/** Direct writes into the relay's database: what a compromised relay can do to stored data. */
export class RelayTamper {
  private readonly relay: () => TestRelay;

  /** `relay` may be given as a function, for a tamper made before its relay starts (see `tamperedRelay`). */
  constructor(relay: TestRelay | (() => TestRelay)) {
    this.relay = typeof relay === 'function' ? relay : () => relay;
  }

  private get sql(): Database.Database {
    return this.relay().db.sqlite;
  }

  userId(username: string): number {
    const row = this.sql.prepare('SELECT id FROM users WHERE username = ?').get(username) as { id: number } | undefined;
    if (!row) throw new Error(`no user ${username}`);
    return row.id;
  }

  lastSeq(conv: string): number {
    return (this.sql.prepare('SELECT last_seq FROM conversations WHERE id = ?').get(conv) as { last_seq: number }).last_seq;
  }

  /** The stored envelopes of a conversation, by seq. */
  rows(conv: string): EnvelopeRow[] {
    return this.sql.prepare('SELECT * FROM envelopes WHERE conv_id = ? ORDER BY seq').all(conv) as EnvelopeRow[];
  }

  row(conv: string, seq: number): EnvelopeRow {
    const row = this.sql.prepare('SELECT * FROM envelopes WHERE conv_id = ? AND seq = ?').get(conv, seq) as EnvelopeRow | undefined;
    if (!row) throw new Error(`no envelope ${conv}#${seq}`);
    return row;
  }

  /** Every stored envelope, in all conversations. */
  envelopeCount(): number {
    return (this.sql.prepare('SELECT count(*) AS n FROM envelopes').get() as { n: number }).n;
  }

  /** Stores `row` in `conv` under the next seq, as the relay would serve a new message; returns that seq. */
  append(conv: string, row: EnvelopeRow): number {
    return this.sql.transaction(() => {
      const seq = this.lastSeq(conv) + 1;
      const values: EnvelopeRow = { ...row, conv_id: conv, seq };
      const columns = Object.keys(values);
      this.sql
        .prepare(`INSERT INTO envelopes (${columns.join(', ')}) VALUES (${columns.map((c) => '@' + c).join(', ')})`)
        .run(values);
      this.sql.prepare('UPDATE conversations SET last_seq = ? WHERE id = ?').run(seq, conv);
      return seq;
    })();
  }

  /** Stores an envelope sealed outside the SDK, as if its sender had sent it; returns its seq. */
  appendSealed(env: SealedEnvelope): number {
    return this.append(env.conv, {
      conv_id: env.conv,
      seq: 0,
      sender_id: this.userId(env.sender),
      client_msg_id: env.clientMsgId,
      v: env.v,
      suite: env.suite,
      type: env.type,
      epoch: env.epoch,
      counter: env.counter,
      roster_hash: Buffer.from(env.rosterHash),
      expires_at: env.expiresAt,
      env_expires_at: env.expiresAt,
      burn_after_ms: env.burnAfterMs,
      opened_at: null,
      received_at: Date.now(),
      ct: Buffer.from(env.ct),
      sig: Buffer.from(env.sig),
    });
  }

  /** Copies envelope `seq` of `from` into `into` (default: the same conversation) under a new seq, with `changes`. */
  copy(from: string, seq: number, changes: Partial<EnvelopeRow> = {}, into = from): number {
    return this.append(into, { ...this.row(from, seq), ...changes });
  }

  /**
   * Serves envelope `seq` a second time, unchanged, under a new seq. The relay's idempotency index
   * forbids such a row, so the relay doing this drops the index first.
   */
  replay(conv: string, seq: number): number {
    this.sql.exec('DROP INDEX IF EXISTS envelopes_idempotency');
    return this.copy(conv, seq);
  }

  delete(conv: string, seq: number): void {
    const r = this.sql.prepare('DELETE FROM envelopes WHERE conv_id = ? AND seq = ?').run(conv, seq);
    if (r.changes !== 1) throw new Error(`no envelope ${conv}#${seq} to delete`);
  }

  /** Serves envelope `a` at seq `b` and the other way round. */
  swapSeq(conv: string, a: number, b: number): void {
    const move = this.sql.prepare('UPDATE envelopes SET seq = ? WHERE conv_id = ? AND seq = ?');
    this.sql.transaction(() => {
      move.run(-1, conv, a);
      move.run(a, conv, b);
      move.run(b, conv, -1);
    })();
  }

  /** Publishes other keys for `username` in the directory. */
  setPublicKeys(username: string, keys: PublicKeys): void {
    this.sql
      .prepare('UPDATE users SET identity_key = ?, x25519_key = ?, x25519_sig = ? WHERE username = ?')
      .run(Buffer.from(keys.identityKey), Buffer.from(keys.x25519Key), Buffer.from(keys.x25519Sig), username);
  }

  x25519Key(username: string): Uint8Array {
    const row = this.sql.prepare('SELECT x25519_key FROM users WHERE username = ?').get(username) as { x25519_key: Buffer };
    return new Uint8Array(row.x25519_key);
  }

  /** Replaces every wrapped conversation key the relay serves to `recipient` with `key`. */
  setWrappedKey(conv: string, recipient: string, key: WrappedKeyRow): void {
    this.sql.transaction(() => {
      this.sql.prepare('DELETE FROM wrapped_keys WHERE conv_id = ? AND recipient_id = ?').run(conv, this.userId(recipient));
      this.addWrappedKey(conv, recipient, key);
    })();
  }

  /** Serves `recipient` one more wrapped conversation key. */
  addWrappedKey(conv: string, recipient: string, key: WrappedKeyRow): void {
    this.sql
      .prepare('INSERT INTO wrapped_keys (conv_id, epoch, recipient_id, wrapped_by_id, wrapped, sig) VALUES (?, ?, ?, ?, ?, ?)')
      .run(conv, key.epoch, this.userId(recipient), this.userId(key.wrappedBy), Buffer.from(key.wrapped), Buffer.from(key.sig));
  }
}

/** A JSON frame as it travels on the wire. */
export type Frame = Record<string, unknown> & { t: string };

/**
 * Decides what the client receives in place of one relay frame: undefined passes it unchanged,
 * [] drops it, several frames inject extra ones.
 */
export type InboundRule = (frame: Frame, link: { close(): void }) => Frame[] | undefined;

/** A man in the middle on a client's WebSocket: records what the client sends and rewrites what it receives. */
export class SocketTap {
  /** Every frame the client sent, in order, over all its connections. */
  readonly sent: Frame[] = [];
  inbound: InboundRule | null = null;
  private live: { deliver(frame: Frame): void } | null = null;

  /** A Node platform whose sockets pass through this tap. */
  platform(): Platform {
    const base = nodePlatform();
    return { ...base, openSocket: (url, headers) => this.wrap(base.openSocket(url, headers)) };
  }

  /** Delivers `frame` to the client's current connection as if the relay had sent it. */
  inject(frame: Frame): void {
    if (!this.live) throw new Error('the client is not connected');
    this.live.deliver(frame);
  }

  /** The `send` frames the client sent. */
  sends(): Frame[] {
    return this.sent.filter((f) => f.t === 'send');
  }

  private wrap(inner: SocketLike): SocketLike {
    const sent = this.sent;
    const outer: SocketLike = {
      get readyState() {
        return inner.readyState;
      },
      send(data) {
        sent.push(JSON.parse(data) as Frame);
        inner.send(data);
      },
      close: (code, reason) => inner.close(code, reason),
      onopen: null,
      onmessage: null,
      onclose: null,
      onerror: null,
    };
    const deliver = (frame: Frame) => outer.onmessage?.({ data: JSON.stringify(frame) });
    const link = { close: () => inner.close(1000, 'cut') };
    inner.onopen = (ev) => {
      this.live = { deliver };
      outer.onopen?.(ev);
    };
    inner.onclose = (ev) => {
      if (this.live?.deliver === deliver) this.live = null;
      outer.onclose?.(ev);
    };
    inner.onerror = (ev) => outer.onerror?.(ev);
    inner.onmessage = (ev) => {
      const frame = JSON.parse(String(ev.data)) as Frame;
      const out = this.inbound?.(frame, link) ?? [frame];
      for (const f of out) deliver(f);
    };
    return outer;
  }
}

/** A client on a new device: nothing but the password, keys and pins come from the vault. */
export async function freshDevice(relay: TestRelay, username: string, platform?: Platform, options: { nativeSignatures?: boolean } = {}): Promise<UmbraClient> {
  const client = new UmbraClient({ baseUrl: relay.url, platform: platform ?? nodePlatform(), ...options });
  await client.logIn(username, PASSWORD);
  return client;
}

/** Rejections counted so far, per reason (reasons with none are left out). */
export function rejectionCounts(stats: SecurityStats): Partial<Record<RejectReason, number>> {
  const counts: Partial<Record<RejectReason, number>> = {};
  for (const r of stats.rejections.value) counts[r.reason] = (counts[r.reason] ?? 0) + 1;
  return counts;
}

/** Two fresh users, alice and bob, with a conversation alice started and bob has opened. */
export interface ChatPair {
  alice: UmbraClient;
  bob: UmbraClient;
  a: string;
  b: string;
  conv: Conversation;
  bobConv: Conversation;
}

export async function chatPair(relay: TestRelay, platforms: { alice?: Platform; bob?: Platform } = {}): Promise<ChatPair> {
  const alice = new UmbraClient({ baseUrl: relay.url, platform: platforms.alice ?? nodePlatform() });
  const bob = new UmbraClient({ baseUrl: relay.url, platform: platforms.bob ?? nodePlatform() });
  const a = uniqueName('alice');
  const b = uniqueName('bob');
  await alice.signUp(a, PASSWORD);
  await bob.signUp(b, PASSWORD);
  const conv = await alice.startConversation(b);
  await waitFor(() => bob.conversation(conv.id) !== undefined, 5000, `${b} opens the conversation`);
  return { alice, bob, a, b, conv, bobConv: bob.conversation(conv.id)! };
}

/** The message bodies a conversation shows, in order. */
export function bodies(conv: Conversation): string[] {
  return conv.messages.value.map((m) => bodyOf(m.event));
}

/** One relay for a test file, a malicious relay's hold on it, and SDK clients disconnected after the file's tests. */
export interface TamperedRelay {
  /** The relay: started before the file's tests, stopped after them. */
  relay(): TestRelay;
  /** Direct edits to what that relay stores and serves. */
  evil: RelayTamper;
  /** `chatPair` on the relay. */
  pair(platforms?: { alice?: Platform; bob?: Platform }): Promise<ChatPair>;
  /** `freshDevice` on the relay. */
  device(username: string, platform?: Platform, options?: { nativeSignatures?: boolean }): Promise<UmbraClient>;
  /** Has `client` disconnected after the file's tests; returns it. */
  keep<T extends UmbraClient>(client: T): T;
}

/** Starts a relay before the file's tests and stops it after them. Call it at the top of a test file. */
export function tamperedRelay(): TamperedRelay {
  let running: TestRelay | undefined;
  const clients: UmbraClient[] = [];
  beforeAll(async () => {
    running = await startTestRelay();
  });
  afterAll(async () => {
    for (const c of clients) c.disconnect();
    await running?.stop();
  });
  const relay = () => {
    if (!running) throw new Error('the relay starts in beforeAll');
    return running;
  };
  const keep = <T extends UmbraClient>(client: T): T => {
    clients.push(client);
    return client;
  };
  return {
    relay,
    evil: new RelayTamper(relay),
    keep,
    pair: async (platforms) => {
      const p = await chatPair(relay(), platforms);
      keep(p.alice);
      keep(p.bob);
      return p;
    },
    device: async (username, platform, options) => keep(await freshDevice(relay(), username, platform, options)),
  };
}
