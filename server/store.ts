// The relay's storage operations. Every multi-row write is one SQLite transaction, so a failure
// leaves nothing half-written; reads never return an envelope past its expiry.
import type { Selectable } from 'kysely';
import {
  UmbraError,
  type ConversationSummary,
  type EnvelopeWire,
  type SealedMetaWire,
  type StoredEnvelope,
} from '../shared/index.ts';
import { toB64 } from '../shared/crypto/bytes.ts';
import type Database from 'better-sqlite3';
import { APPEND_SQL, appendEnvelope, type AppendOutcome, type AppendRow } from './append.ts';
import { SYNCHRONOUS_LEVEL, type DB, type OpenedDb } from './db.ts';

type UserRow = Selectable<DB['users']>;
type EnvelopeRow = Selectable<DB['envelopes']>;
type ConversationRow = Selectable<DB['conversations']>;
type SignedStatementWire = ConversationSummary['genesis'];

export interface NewUser {
  username: string;
  salt: Uint8Array;
  kdfOps: number;
  kdfMemKiB: number;
  authHash: Uint8Array;
  identityKey: Uint8Array;
  x25519Key: Uint8Array;
  x25519Sig: Uint8Array;
  vault: Uint8Array;
}

export interface NewConversation {
  id: string;
  kind: 'direct';
  directKey: string;
  createdBy: number;
  memberIds: number[];
  genesis: string;
  genesisSig: Uint8Array;
  keys: { epoch: number; recipientId: number; wrappedById: number; wrapped: Uint8Array; sig: Uint8Array }[];
}

export type AppendResult = { seq: number; receivedAt: number; duplicate: boolean };

/** An envelope to store, with its binary fields decoded. */
export interface NewEnvelope {
  env: EnvelopeWire;
  senderId: number;
  ct: Uint8Array;
  sig: Uint8Array;
  rosterHash: Uint8Array;
  opens: readonly number[];
}

/**
 * One sweep batch: deletes up to `limit` (second parameter) envelopes whose deletion time is at or
 * before `now` (first), oldest first. The sweeper runs it through `sweepExpired` when the
 * checkpoint thread is gone; the thread sweeps with the two statements below.
 */
export const SWEEP_SQL =
  'delete from envelopes where (conv_id, seq) in (select conv_id, seq from envelopes where expires_at <= ? order by expires_at limit ?)';

/**
 * The checkpoint thread's sweep (server/checkpointer.ts): it reads the keys of the oldest expired
 * envelopes (`now`, how many), outside the write lock, and deletes them in key order, one by one
 * (conversation, seq, `now`: a row whose deletion time has moved is left alone). Deleting in
 * expiry order would take one row from each of many conversations' pages per batch, so every
 * page was rewritten once for each of its rows; in key order a page's rows go together.
 */
export const SWEEP_READ_SQL = 'select conv_id, seq from envelopes where expires_at <= ? order by expires_at limit ?';
export const SWEEP_DELETE_SQL = 'delete from envelopes where conv_id = ? and seq = ? and expires_at <= ?';

export class RelayStore {
  private sessionAliveStatement: Database.Statement | undefined;
  private hotStatements: Record<'existing' | 'nextSeq' | 'insert' | 'opened' | 'lastSeq' | 'membership' | 'memberIds' | 'sweep', Database.Statement> | undefined;

  /**
   * Member lists of conversations, for the delivery path. Temporary triggers on this connection
   * drop a conversation's entry whenever any statement changes its members, whatever code ran it,
   * and an entry is filled only outside a transaction, so it never holds uncommitted rows.
   */
  private readonly memberCache = new Map<string, { ids: number[]; set: Set<number> }>();
  /** Committed with `deferSync` and not yet released, per conversation, in commit order (see release). */
  private readonly unreleased = new Map<string, number[]>();
  /** Conversations with batches on the writer thread: how many, and the last seq reads may serve (see capInFlight). */
  private readonly inFlight = new Map<string, { batches: number; upTo: number }>();

  constructor(
    readonly db: OpenedDb,
    private readonly now: () => number,
  ) {
    db.sqlite.function('umbra_members_changed', { deterministic: false }, (conv: unknown) => {
      if (typeof conv === 'string') this.memberCache.delete(conv);
      else this.memberCache.clear();
      return null;
    });
    db.sqlite.exec(`
      create temp trigger if not exists umbra_members_ai after insert on main.members begin select umbra_members_changed(new.conv_id); end;
      create temp trigger if not exists umbra_members_ad after delete on main.members begin select umbra_members_changed(old.conv_id); end;
      create temp trigger if not exists umbra_members_au after update on main.members begin select umbra_members_changed(old.conv_id); select umbra_members_changed(new.conv_id); end;
    `);
  }

  private get q() {
    return this.db.kysely;
  }

  // ---- users and sessions ---------------------------------------------------------------

  userByName(username: string): UserRow | undefined {
    return this.db.first(this.q.selectFrom('users').selectAll().where('username', '=', username));
  }

  userCount(): number {
    return Number(this.db.first(this.q.selectFrom('users').select((eb) => eb.fn.countAll().as('n')))?.n ?? 0);
  }

  userById(id: number): UserRow | undefined {
    return this.db.first(this.q.selectFrom('users').selectAll().where('id', '=', id));
  }

  /** Throws `username_taken` if the name exists. */
  createUser(u: NewUser): number {
    return this.db.sqlite.transaction(() => {
      if (this.userByName(u.username)) throw new UmbraError('username_taken', 'that username is taken');
      const r = this.db.run(
        this.q.insertInto('users').values({
          username: u.username,
          salt: Buffer.from(u.salt),
          kdf_ops: u.kdfOps,
          kdf_mem_kib: u.kdfMemKiB,
          auth_hash: Buffer.from(u.authHash),
          identity_key: Buffer.from(u.identityKey),
          x25519_key: Buffer.from(u.x25519Key),
          x25519_sig: Buffer.from(u.x25519Sig),
          vault: Buffer.from(u.vault),
          vault_version: 1,
          created_at: this.now(),
        }),
      );
      return Number(r.lastInsertRowid);
    }).immediate();
  }

  /** Replaces the vault only if it is still at `expectedVersion`; returns the new version. */
  updateVault(userId: number, vault: Uint8Array, expectedVersion: number): number {
    const r = this.db.run(
      this.q
        .updateTable('users')
        .set({ vault: Buffer.from(vault), vault_version: expectedVersion + 1 })
        .where('id', '=', userId)
        .where('vault_version', '=', expectedVersion),
    );
    if (r.changes !== 1) throw new UmbraError('conflict', 'the vault changed on another device; reload and retry');
    return expectedVersion + 1;
  }

  createSession(tokenHash: Uint8Array, userId: number, ttlMs: number): void {
    const now = this.now();
    this.db.run(
      this.q.insertInto('sessions').values({ token_hash: Buffer.from(tokenHash), user_id: userId, created_at: now, expires_at: now + ttlMs }),
    );
  }

  sessionUser(tokenHash: Uint8Array): UserRow | undefined {
    return this.db.first(
      this.q
        .selectFrom('sessions')
        .innerJoin('users', 'users.id', 'sessions.user_id')
        .selectAll('users')
        .where('sessions.token_hash', '=', Buffer.from(tokenHash))
        .where('sessions.expires_at', '>', this.now()),
    );
  }

  /**
   * The id and name behind a live session, and nothing else: a WebSocket upgrade and each
   * keepalive round need only these, and reading the whole row would read the user's vault too.
   */
  sessionIdentity(tokenHash: Uint8Array): { id: number; username: string } | undefined {
    return this.db.first(
      this.q
        .selectFrom('sessions')
        .innerJoin('users', 'users.id', 'sessions.user_id')
        .select(['users.id', 'users.username'])
        .where('sessions.token_hash', '=', Buffer.from(tokenHash))
        .where('sessions.expires_at', '>', this.now()),
    );
  }

  /** Whether a session is still live (the keepalive's check; one prepared lookup by key). */
  sessionAlive(tokenHash: Uint8Array): boolean {
    this.sessionAliveStatement ??= this.db.sqlite.prepare('select 1 from sessions where token_hash = ? and expires_at > ?').pluck();
    return this.sessionAliveStatement.get(Buffer.from(tokenHash), this.now()) !== undefined;
  }

  deleteSession(tokenHash: Uint8Array): void {
    this.db.run(this.q.deleteFrom('sessions').where('token_hash', '=', Buffer.from(tokenHash)));
  }

  deleteExpiredSessions(): number {
    return this.db.run(this.q.deleteFrom('sessions').where('expires_at', '<=', this.now())).changes;
  }

  // ---- conversations ---------------------------------------------------------------------

  conversationExists(id: string): boolean {
    return this.db.first(this.q.selectFrom('conversations').select('id').where('id', '=', id)) !== undefined;
  }

  isMember(convId: string, userId: number): boolean {
    return this.membership(convId, userId) === 'member';
  }

  /** One look-up for the delivery path: does the conversation exist, and is `userId` in it? */
  membership(convId: string, userId: number): 'member' | 'not_member' | 'no_conversation' {
    const cached = this.memberCache.get(convId);
    if (cached) return cached.set.has(userId) ? 'member' : 'not_member';
    const row = this.hot.membership.get(userId, convId) as number | undefined;
    if (row === undefined) return 'no_conversation';
    this.cachedMembers(convId);
    return row ? 'member' : 'not_member';
  }

  memberIds(convId: string): readonly number[] {
    return this.cachedMembers(convId).ids;
  }

  private cachedMembers(convId: string): { ids: number[]; set: Set<number> } {
    const cached = this.memberCache.get(convId);
    if (cached) return cached;
    const ids = this.hot.memberIds.all(convId) as number[];
    const entry = { ids, set: new Set(ids) };
    if (!this.db.sqlite.inTransaction && ids.length > 0) this.memberCache.set(convId, entry);
    return entry;
  }

  /** Throws `conflict` for a taken id or an existing direct conversation between the same two people. */
  createConversation(c: NewConversation): void {
    this.db.sqlite.transaction(() => {
      if (this.conversationExists(c.id)) throw new UmbraError('conflict', 'a conversation with this id exists');
      const direct = this.db.first(this.q.selectFrom('conversations').select('id').where('direct_key', '=', c.directKey));
      if (direct) throw new UmbraError('conflict', 'a conversation with this person already exists');
      const now = this.now();
      this.db.run(
        this.q.insertInto('conversations').values({
          id: c.id,
          kind: c.kind,
          direct_key: c.directKey,
          created_by: c.createdBy,
          created_at: now,
          last_seq: 0,
          genesis: Buffer.from(c.genesis, 'utf8'),
          genesis_sig: Buffer.from(c.genesisSig),
        }),
      );
      for (const userId of c.memberIds) {
        this.db.run(this.q.insertInto('members').values({ conv_id: c.id, user_id: userId, joined_at: now }));
      }
      for (const k of c.keys) {
        this.db.run(
          this.q.insertInto('wrapped_keys').values({
            conv_id: c.id,
            epoch: k.epoch,
            recipient_id: k.recipientId,
            wrapped_by_id: k.wrappedById,
            wrapped: Buffer.from(k.wrapped),
            sig: Buffer.from(k.sig),
          }),
        );
      }
    }).immediate();
  }

  conversationIdsOf(userId: number): { conv: string; lastSeq: number }[] {
    return this.db
      .all(
        this.q
          .selectFrom('members')
          .innerJoin('conversations', 'conversations.id', 'members.conv_id')
          .select(['conversations.id as conv', 'conversations.last_seq as lastSeq'])
          .where('members.user_id', '=', userId)
          .orderBy('conversations.created_at'),
      );
  }

  /**
   * The caller's view of a conversation: members, genesis, its own wrapped keys (every epoch) and
   * counters; for a room also the membership chain and the newest sealed settings.
   */
  summary(convId: string, userId: number): ConversationSummary | undefined {
    const conv = this.db.first(this.q.selectFrom('conversations').selectAll().where('id', '=', convId));
    if (!conv) return undefined;
    const members = this.db
      .all(
        this.q
          .selectFrom('members')
          .innerJoin('users', 'users.id', 'members.user_id')
          .select('users.username')
          .where('members.conv_id', '=', convId)
          .orderBy('users.username'),
      )
      .map((r) => r.username);
    const keys = this.db.all(
      this.q
        .selectFrom('wrapped_keys as k')
        .innerJoin('users as r', 'r.id', 'k.recipient_id')
        .innerJoin('users as w', 'w.id', 'k.wrapped_by_id')
        .select(['k.epoch', 'k.wrapped', 'k.sig', 'r.username as recipient', 'w.username as wrappedBy'])
        .where('k.conv_id', '=', convId)
        .where('k.recipient_id', '=', userId)
        .orderBy('k.epoch'),
    );
    const counter = this.db.first(
      this.q
        .selectFrom('envelopes')
        .select((eb) => eb.fn.max('counter').as('c'))
        .where('conv_id', '=', convId)
        .where('sender_id', '=', userId),
    );
    const room = conv.kind === 'room' ? this.roomView(conv) : null;
    return {
      id: conv.id,
      kind: room ? 'room' : 'direct',
      members,
      genesis: room?.statements[0] ?? { statement: conv.genesis.toString('utf8'), sig: toB64(conv.genesis_sig) },
      keys: keys.map((k) => ({
        conv: convId,
        epoch: k.epoch,
        recipient: k.recipient,
        wrappedBy: k.wrappedBy,
        wrapped: toB64(k.wrapped),
        sig: toB64(k.sig),
      })),
      lastSeq: conv.last_seq,
      myLastCounter: Number(counter?.c ?? 0),
      createdAt: conv.created_at,
      statements: room?.statements ?? [],
      meta: room?.meta ?? null,
    };
  }

  /** A room's whole membership chain, oldest first, and its newest sealed settings. */
  private roomView(conv: ConversationRow): { statements: SignedStatementWire[]; meta: SealedMetaWire | null } {
    const statements = this.db
      .all(this.q.selectFrom('statements').select(['body', 'sig']).where('conv_id', '=', conv.id).orderBy('seq'))
      .map((r) => ({ statement: r.body.toString('utf8'), sig: toB64(r.sig) }));
    const author = conv.meta_author_id === null ? undefined : this.userById(conv.meta_author_id);
    const meta =
      author && conv.meta_epoch !== null && conv.meta_sealed && conv.meta_sig
        ? { epoch: conv.meta_epoch, author: author.username, sealed: toB64(conv.meta_sealed), sig: toB64(conv.meta_sig) }
        : null;
    return { statements, meta };
  }

  // ---- envelopes -------------------------------------------------------------------------

  /**
   * Stores every envelope of `batch` with the next sequence numbers in one transaction; a refused
   * envelope leaves the others standing (every refusal comes before that envelope's first write,
   * so there is nothing to undo and no savepoint per envelope). A retry with the same
   * client message id and ciphertext returns the first result; a different ciphertext under a used
   * id is `duplicate_message`. With `deferSync` the commit does not wait for the disk, and the new
   * envelopes stay unreadable until the caller releases them (server/ws/commit-queue.ts). Returns, in order, each
   * envelope's result or the error that refused it; throws (having stored nothing) only if the
   * commit itself fails.
   */
  appendEnvelopes(batch: readonly NewEnvelope[], o: { deferSync?: boolean } = {}): (AppendResult | UmbraError)[] {
    if (o.deferSync) this.db.sqlite.pragma('synchronous = OFF');
    let results: (AppendResult | UmbraError)[];
    try {
      const h = this.hot;
      const now = this.now();
      results = this.db.sqlite.transaction(() => batch.map((e) => outcomeOf(appendEnvelope(h, appendRowOf(e), now)))).immediate();
    } finally {
      if (o.deferSync) this.db.sqlite.pragma(`synchronous = ${SYNCHRONOUS_LEVEL}`);
    }
    if (o.deferSync) this.holdUnreleased(batch, results);
    return results;
  }

  /**
   * Envelopes committed without waiting for the disk (here with `deferSync`, or on the writer
   * thread) stay unreadable until released: every read of their conversation stops before the
   * oldest of them.
   */
  holdUnreleased(batch: readonly NewEnvelope[], results: readonly (AppendResult | UmbraError)[]): void {
    batch.forEach((e, i) => {
      const r = results[i]!;
      if (r instanceof UmbraError || r.duplicate) return;
      const list = this.unreleased.get(e.env.conv);
      if (list) list.push(r.seq);
      else this.unreleased.set(e.env.conv, [r.seq]);
    });
  }

  /**
   * These envelopes (appended with `deferSync`) may now be read: they are committed, and the
   * commit queue has pushed them or is about to. Until then every read of their conversation
   * stops before the oldest of them, so a read never serves what the queue has not released.
   */
  release(items: readonly { conv: string; seq: number }[]): void {
    for (const { conv, seq } of items) {
      const list = this.unreleased.get(conv);
      if (!list) continue;
      const at = list.indexOf(seq);
      if (at >= 0) list.splice(at, 1);
      if (list.length === 0) this.unreleased.delete(conv);
    }
  }

  /**
   * A batch goes to the writer thread, which may commit it before the relay hears back: until it
   * does, reads of the batch's conversations stop at the last seq the relay knows the fate of.
   * For a conversation with nothing in flight that is its `last_seq` now (every earlier batch has
   * come back, and its envelopes are released or held); later batches raise it as they land.
   */
  capInFlight(batch: readonly NewEnvelope[]): void {
    for (const conv of new Set(batch.map((e) => e.env.conv))) {
      const cap = this.inFlight.get(conv);
      if (cap) cap.batches++;
      else this.inFlight.set(conv, { batches: 1, upTo: (this.hot.lastSeq.get(conv) as number | undefined) ?? 0 });
    }
  }

  /**
   * A batch sent with `capInFlight` is back (`results`, held with `holdUnreleased` first), or will
   * never be (null: its thread died; call this only once a WAL sync after the death is through).
   */
  uncapInFlight(batch: readonly NewEnvelope[], results: readonly (AppendResult | UmbraError)[] | null): void {
    const newest = new Map<string, number>();
    batch.forEach((e, i) => {
      const r = results?.[i];
      if (!r || r instanceof UmbraError || r.duplicate) return;
      newest.set(e.env.conv, Math.max(newest.get(e.env.conv) ?? 0, r.seq));
    });
    for (const conv of new Set(batch.map((e) => e.env.conv))) {
      const cap = this.inFlight.get(conv);
      if (!cap) continue;
      if (--cap.batches === 0) this.inFlight.delete(conv);
      else cap.upTo = Math.max(cap.upTo, newest.get(conv) ?? 0);
    }
  }

  /**
   * Statements on the delivery path, prepared once: each envelope costs a handful of index
   * look-ups and no SQL compilation (docs/PROTOCOL.md §Delivery).
   */
  private get hot() {
    this.hotStatements ??= {
      existing: this.db.sqlite.prepare(APPEND_SQL.existing),
      nextSeq: this.db.sqlite.prepare(APPEND_SQL.nextSeq).pluck(),
      insert: this.db.sqlite.prepare(APPEND_SQL.insert),
      opened: this.db.sqlite.prepare(APPEND_SQL.opened),
      lastSeq: this.db.sqlite.prepare('select last_seq from conversations where id = ?').pluck(),
      membership: this.db.sqlite.prepare(
        'select (m.user_id is not null) as member from conversations c left join members m on m.conv_id = c.id and m.user_id = ? where c.id = ?',
      ).pluck(),
      memberIds: this.db.sqlite.prepare('select user_id from members where conv_id = ?').pluck(),
      sweep: this.db.sqlite.prepare(SWEEP_SQL),
    };
    return this.hotStatements;
  }

  /**
   * Moves every conversation's next seq `n` further on (after an unclean stop, see
   * server/run-marker.ts); returns how many conversations there are.
   */
  skipSeqs(n: number): number {
    return this.db.sqlite.prepare('update conversations set last_seq = last_seq + ?').run(n).changes;
  }

  /** Deletes up to `limit` envelopes past their expiry, oldest expiry first, in one short transaction; returns how many. */
  sweepExpired(limit: number): number {
    const now = this.now();
    // No fsync per batch: a deletion a power cut takes back is simply done again by the next
    // sweep (reads filter by time anyway), and the TRUNCATE checkpoint after the sweep syncs all.
    this.db.sqlite.pragma('synchronous = OFF');
    try {
      return this.db.sqlite.transaction(() => this.hot.sweep.run(now, limit).changes).immediate();
    } finally {
      this.db.sqlite.pragma(`synchronous = ${SYNCHRONOUS_LEVEL}`);
    }
  }

  /** Envelopes past their expiry that the sweeper has not deleted yet (reads already skip them). */
  expiredPending(): number {
    const row = this.db.first(this.q.selectFrom('envelopes').select((eb) => eb.fn.countAll<number>().as('n')).where('expires_at', '<=', this.now()));
    return Number(row?.n ?? 0);
  }

  /** Envelopes with seq > after, oldest first, skipping any past its expiry. */
  envelopesAfter(convId: string, after: number, limit: number): { items: StoredEnvelope[]; more: boolean } {
    const rows = this.db.all(
      this.envelopeQuery(convId).where('e.seq', '>', after).orderBy('e.seq', 'asc').limit(limit + 1),
    );
    return { items: rows.slice(0, limit).map(toStored), more: rows.length > limit };
  }

  /** Envelopes with seq < before (or the newest), newest first, skipping any past its expiry. */
  envelopesBefore(
    convId: string,
    before: number | undefined,
    limit: number,
    senderId?: number,
    type?: EnvelopeWire['type'],
  ): { items: StoredEnvelope[]; more: boolean } {
    let query = this.envelopeQuery(convId);
    if (type !== undefined) query = query.where('e.type', '=', type);
    if (before !== undefined) query = query.where('e.seq', '<', before);
    if (senderId !== undefined) query = query.where('e.sender_id', '=', senderId);
    const rows = this.db.all(query.orderBy('e.seq', 'desc').limit(limit + 1));
    return { items: rows.slice(0, limit).map(toStored), more: rows.length > limit };
  }

  private envelopeQuery(convId: string) {
    const now = this.now();
    const cap = this.inFlight.get(convId);
    const firstUnreleased = Math.min(this.unreleased.get(convId)?.[0] ?? Number.MAX_SAFE_INTEGER, cap ? cap.upTo + 1 : Number.MAX_SAFE_INTEGER);
    return this.q
      .selectFrom('envelopes as e')
      .innerJoin('users as u', 'u.id', 'e.sender_id')
      .selectAll('e')
      .select('u.username as sender')
      .where('e.conv_id', '=', convId)
      .where('e.seq', '<', firstUnreleased)
      .where((eb) => eb.or([eb('e.expires_at', 'is', null), eb('e.expires_at', '>', now)]));
  }
}

function toStored(row: EnvelopeRow & { sender: string }): StoredEnvelope {
  return {
    seq: row.seq,
    receivedAt: row.received_at,
    expiresAt: row.expires_at,
    env: {
      v: row.v,
      suite: row.suite,
      type: row.type as EnvelopeWire['type'],
      conv: row.conv_id,
      epoch: row.epoch,
      sender: row.sender,
      rosterHash: toB64(row.roster_hash),
      clientMsgId: row.client_msg_id,
      counter: row.counter,
      expiresAt: row.env_expires_at,
      burnAfterMs: row.burn_after_ms,
      ct: toB64(row.ct),
      sig: toB64(row.sig),
    },
  };
}

/** The flat row the shared append takes (server/append.ts). */
export function appendRowOf({ env, senderId, ct, sig, rosterHash, opens }: NewEnvelope): AppendRow {
  return {
    conv: env.conv,
    senderId,
    clientMsgId: env.clientMsgId,
    v: env.v,
    suite: env.suite,
    type: env.type,
    epoch: env.epoch,
    counter: env.counter,
    expiresAt: env.expiresAt,
    burnAfterMs: env.burnAfterMs,
    rosterHash,
    ct,
    sig,
    opens,
  };
}

/** The shared append's outcome in the relay's terms: a result, or the error that refused the envelope. */
export function outcomeOf(o: AppendOutcome): AppendResult | UmbraError {
  return 'refused' in o ? new UmbraError(o.refused, o.message) : o;
}
