// Opens the relay's SQLite file with its durability settings and brings the schema up to date.
import Database from 'better-sqlite3';
import { Kysely, Migrator, SqliteDialect, type Compilable, type Generated, type MigrationProvider } from 'kysely';
import fs from 'node:fs';
import path from 'node:path';
import { migrations } from '../migrations/index.ts';

/** Tables as Kysely sees them (docs/PROTOCOL.md §Tables). */
export interface DB {
  users: {
    id: Generated<number>;
    username: string;
    salt: Buffer;
    kdf_ops: number;
    kdf_mem_kib: number;
    auth_hash: Buffer;
    identity_key: Buffer;
    x25519_key: Buffer;
    x25519_sig: Buffer;
    vault: Buffer;
    vault_version: number;
    created_at: number;
  };
  sessions: { token_hash: Buffer; user_id: number; created_at: number; expires_at: number };
  conversations: {
    id: string;
    kind: string;
    direct_key: string | null;
    created_by: number;
    created_at: number;
    last_seq: number;
    genesis: Buffer;
    genesis_sig: Buffer;
    /** Rooms: the Argon2id hash of the normalised name (unique); null for direct conversations. */
    name_hash: Buffer | null;
    /** Rooms: the newest sealed settings and their author; null for direct conversations. */
    meta_epoch: number | null;
    meta_author_id: number | null;
    meta_sealed: Buffer | null;
    meta_sig: Buffer | null;
  };
  /** `role` is the relay's replay of the room's chain: owner, admin or member (always member in a direct conversation). */
  members: { conv_id: string; user_id: number; joined_at: number; role: Generated<string> };
  /** A room's membership chain: each link's exact signed text and its signature. */
  statements: { conv_id: string; seq: number; body: Buffer; sig: Buffer };
  /** One request per user and room; `request` is the signed JoinRequest text. */
  join_requests: { conv_id: string; user_id: number; request: Buffer; sig: Buffer; status: string; created_at: number };
  wrapped_keys: {
    conv_id: string;
    epoch: number;
    recipient_id: number;
    wrapped_by_id: number;
    wrapped: Buffer;
    sig: Buffer;
  };
  envelopes: {
    conv_id: string;
    seq: number;
    sender_id: number;
    client_msg_id: string;
    v: number;
    suite: number;
    type: string;
    epoch: number;
    counter: number;
    roster_hash: Buffer;
    /** When the sweeper deletes it: the signed expiry, brought forward once a burn-after-reading message is opened. */
    expires_at: number | null;
    /** The expiry the sender signed (docs/PROTOCOL.md §Envelopes). */
    env_expires_at: number | null;
    /** Burn after reading: milliseconds from the first opening to deletion; signed. */
    burn_after_ms: number | null;
    opened_at: number | null;
    received_at: number;
    ct: Buffer;
    sig: Buffer;
  };
}

/**
 * `synchronous = FULL`: with WAL, a commit is on disk (fsync) before the relay acknowledges it,
 * so an acknowledged envelope survives a power loss, not only a process crash.
 */
export const SYNCHRONOUS_LEVEL = 2; // FULL

export interface OpenedDb {
  sqlite: Database.Database;
  kysely: Kysely<DB>;
  /** Runs a compiled Kysely query synchronously with a cached prepared statement. */
  all<R>(query: Compilable<R>): R[];
  first<R>(query: Compilable<R>): R | undefined;
  run(query: Compilable<unknown>): Database.RunResult;
  /**
   * fsyncs the WAL file off the event loop (libuv's thread pool). Group commits write with
   * `synchronous = OFF` and are acknowledged only after this reports success, which makes them as
   * durable as a FULL commit without the event loop waiting for the disk (docs/PROTOCOL.md §Delivery).
   */
  syncWal(done: (err: Error | null) => void): void;
  close(): Promise<void>;
}

export const DB_FILE = 'umbra.db';

export async function openDb(dataDir: string): Promise<OpenedDb> {
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const sqlite = new Database(path.join(dataDir, DB_FILE));
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma(`synchronous = ${SYNCHRONOUS_LEVEL}`);
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('secure_delete = ON');
  sqlite.pragma('busy_timeout = 5000');
  assertPragma(sqlite, 'journal_mode', 'wal');
  assertPragma(sqlite, 'synchronous', SYNCHRONOUS_LEVEL);
  assertPragma(sqlite, 'foreign_keys', 1);
  assertPragma(sqlite, 'secure_delete', 1);

  const kysely = new Kysely<DB>({ dialect: new SqliteDialect({ database: sqlite }) });
  const provider: MigrationProvider = { getMigrations: async () => migrations };
  const { error, results } = await new Migrator({ db: kysely, provider }).migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new Error(`migration ${failed} failed: ${String(error)}`);
  }

  const statements = new Map<string, Database.Statement>();
  const prepare = (q: Compilable<unknown>) => {
    const compiled = q.compile();
    let stmt = statements.get(compiled.sql);
    if (!stmt) {
      stmt = sqlite.prepare(compiled.sql);
      statements.set(compiled.sql, stmt);
    }
    return { stmt, params: compiled.parameters as unknown[] };
  };

  const walFile = path.join(dataDir, DB_FILE) + '-wal';
  let walFd: number | null = null;
  let syncing: Promise<void> = Promise.resolve();
  const syncWal = (done: (err: Error | null) => void) => {
    try {
      // The WAL exists once the first commit wrote it; SQLite keeps the file (and so this
      // descriptor's inode) until its last connection closes.
      walFd ??= fs.openSync(walFile, 'r');
    } catch (err) {
      return done(err as Error);
    }
    const fd = walFd;
    syncing = new Promise((resolve) =>
      fs.fsync(fd, (err) => {
        resolve();
        done(err);
      }),
    );
  };

  return {
    sqlite,
    kysely,
    syncWal,
    all: <R>(q: Compilable<R>) => {
      const { stmt, params } = prepare(q);
      return stmt.all(...params) as R[];
    },
    first: <R>(q: Compilable<R>) => {
      const { stmt, params } = prepare(q);
      return stmt.get(...params) as R | undefined;
    },
    run: (q) => {
      const { stmt, params } = prepare(q);
      return stmt.run(...params);
    },
    close: async () => {
      await syncing;
      if (walFd !== null) fs.closeSync(walFd);
      walFd = null;
      await kysely.destroy();
      if (sqlite.open) sqlite.close();
    },
  };
}

function assertPragma(db: Database.Database, name: string, expected: string | number): void {
  const actual = db.pragma(name, { simple: true });
  if (actual !== expected) throw new Error(`SQLite pragma ${name} is ${String(actual)}, expected ${expected}`);
}
