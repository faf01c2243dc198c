// Migrations on a real SQLite file: a database at 0001 holding a direct conversation moves to 0002
// with every row intact and every member a plain 'member'; 0002 goes down and up again.
import Database from 'better-sqlite3';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Kysely, Migrator, SqliteDialect } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { migrations } from '../migrations/index.ts';
import { DB_FILE, openDb } from '../server/db.ts';

const OLD_TABLES = ['users', 'sessions', 'conversations', 'members', 'wrapped_keys', 'envelopes'];
const dirs: string[] = [];

afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function openFile() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'umbra-migrations-'));
  dirs.push(dir);
  const sqlite = new Database(path.join(dir, DB_FILE));
  sqlite.pragma('foreign_keys = ON');
  const db = new Kysely<any>({ dialect: new SqliteDialect({ database: sqlite }) });
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } });
  return { dir, sqlite, db, migrator };
}

/** Every row of every table, in primary-key order, as plain values. */
function dump(sqlite: Database.Database, tables: string[]): Record<string, unknown[]> {
  const out: Record<string, unknown[]> = {};
  for (const t of tables) out[t] = sqlite.prepare(`select * from ${t} order by 1, 2`).all();
  return out;
}

function columns(sqlite: Database.Database, table: string): string[] {
  return (sqlite.prepare(`pragma table_info(${table})`).all() as { name: string }[]).map((c) => c.name);
}

function tables(sqlite: Database.Database): string[] {
  return (sqlite.prepare("select name from sqlite_master where type = 'table' and name not like 'kysely%' order by name").all() as { name: string }[]).map((r) => r.name);
}

/** Two users with a session, a direct conversation with both as members, their keys and one envelope. */
function seedDirect(sqlite: Database.Database): string {
  const user = sqlite.prepare(
    `insert into users (username, salt, kdf_ops, kdf_mem_kib, auth_hash, identity_key, x25519_key, x25519_sig, vault, vault_version, created_at)
     values (?, ?, 2, 19456, ?, ?, ?, ?, ?, 1, ?)`,
  );
  const ids = ['alice', 'bob'].map(
    (name) =>
      Number(
        user.run(name, crypto.randomBytes(16), crypto.randomBytes(32), crypto.randomBytes(32), crypto.randomBytes(32), crypto.randomBytes(64), crypto.randomBytes(90), 1_700_000_000_000)
          .lastInsertRowid,
      ),
  ) as [number, number];
  sqlite.prepare('insert into sessions values (?, ?, ?, ?)').run(crypto.randomBytes(32), ids[0], 1, 2);
  const conv = crypto.randomBytes(16).toString('base64url');
  sqlite
    .prepare('insert into conversations (id, kind, direct_key, created_by, created_at, last_seq, genesis, genesis_sig) values (?, ?, ?, ?, ?, ?, ?, ?)')
    .run(conv, 'direct', 'alice\nbob', ids[0], 1_700_000_000_001, 1, Buffer.from('{"v":1,"kind":"genesis"}'), crypto.randomBytes(64));
  for (const id of ids) {
    sqlite.prepare('insert into members (conv_id, user_id, joined_at) values (?, ?, ?)').run(conv, id, 1_700_000_000_002);
    sqlite.prepare('insert into wrapped_keys values (?, 0, ?, ?, ?, ?)').run(conv, id, ids[0], crypto.randomBytes(104), crypto.randomBytes(64));
  }
  sqlite
    .prepare(
      `insert into envelopes (conv_id, seq, sender_id, client_msg_id, v, suite, type, epoch, counter, roster_hash, expires_at, received_at, ct, sig)
       values (?, 1, ?, ?, 1, 1, 'content', 0, 1, ?, null, ?, ?, ?)`,
    )
    .run(conv, ids[0], 'AAAAAAAAAAAAAAAAAAAAAA', crypto.randomBytes(32), 1_700_000_000_003, crypto.randomBytes(60), crypto.randomBytes(64));
  return conv;
}

describe('0002_rooms', () => {
  it('keeps a 0001 database’s rows and makes every member a plain member', async () => {
    const { dir, sqlite, db, migrator } = openFile();
    const first = await migrator.migrateTo('0001_initial');
    expect(first.error).toBeUndefined();
    expect(first.results).toEqual([{ migrationName: '0001_initial', direction: 'Up', status: 'Success' }]);
    const conv = seedDirect(sqlite);
    const before = dump(sqlite, OLD_TABLES);
    const beforeTables = tables(sqlite);
    expect(before.envelopes).toHaveLength(1);

    const second = await migrator.migrateTo('0002_rooms');
    expect(second.error).toBeUndefined();
    expect(second.results).toEqual([{ migrationName: '0002_rooms', direction: 'Up', status: 'Success' }]);
    const after = dump(sqlite, OLD_TABLES);
    for (const t of ['users', 'sessions', 'wrapped_keys', 'envelopes']) expect(after[t], t).toEqual(before[t]);
    expect(after.members).toEqual(before.members!.map((m) => ({ ...(m as object), role: 'member' })));
    expect(after.conversations).toEqual(
      before.conversations!.map((c) => ({ ...(c as object), name_hash: null, meta_epoch: null, meta_author_id: null, meta_sealed: null, meta_sig: null })),
    );
    expect(columns(sqlite, 'statements')).toEqual(['conv_id', 'seq', 'body', 'sig']);
    expect(columns(sqlite, 'join_requests')).toEqual(['conv_id', 'user_id', 'request', 'sig', 'status', 'created_at']);

    // Names are unique among rooms; direct conversations, with no name, do not collide.
    const room = sqlite.prepare(
      "insert into conversations (id, kind, created_by, created_at, genesis, genesis_sig, name_hash) values (?, 'room', 1, 1, x'00', x'00', ?)",
    );
    const nameHash = crypto.randomBytes(32);
    room.run('room-one', nameHash);
    expect(() => room.run('room-two', nameHash)).toThrow(/UNIQUE/);
    // A member's role is required; a chain link is unique per position; removing a room takes its rows.
    expect(() => sqlite.prepare("insert into members (conv_id, user_id, joined_at, role) values ('room-one', 1, 1, null)").run()).toThrow(/NOT NULL/);
    sqlite.prepare("insert into statements values ('room-one', 0, x'7b7d', x'00')").run();
    expect(() => sqlite.prepare("insert into statements values ('room-one', 0, x'7b7d', x'00')").run()).toThrow(/UNIQUE|PRIMARY/);
    sqlite.prepare("insert into join_requests values ('room-one', 2, x'7b7d', x'00', 'pending', 1)").run();

    // Down is refused while a room exists, and leaves the schema at 0002.
    const refused = await migrator.migrateDown();
    expect(String(refused.error)).toMatch(/rooms exist/);
    expect(columns(sqlite, 'members')).toContain('role');
    sqlite.prepare("delete from conversations where id = 'room-one'").run();
    expect(sqlite.prepare('select count(*) as n from statements').get()).toEqual({ n: 0 });
    expect(sqlite.prepare('select count(*) as n from join_requests').get()).toEqual({ n: 0 });

    const down = await migrator.migrateDown();
    expect(down.error).toBeUndefined();
    expect(down.results).toEqual([{ migrationName: '0002_rooms', direction: 'Down', status: 'Success' }]);
    expect(tables(sqlite)).toEqual(beforeTables);
    expect(dump(sqlite, OLD_TABLES)).toEqual(before);

    const up = await migrator.migrateToLatest();
    expect(up.error).toBeUndefined();
    expect(dump(sqlite, OLD_TABLES).members).toEqual(after.members);
    await db.destroy();

    // The relay opens the migrated file and reads the conversation as it was.
    const opened = await openDb(dir);
    try {
      const rows = opened.sqlite.prepare('select user_id, role from members where conv_id = ? order by user_id').all(conv);
      expect(rows).toEqual([
        { user_id: 1, role: 'member' },
        { user_id: 2, role: 'member' },
      ]);
    } finally {
      await opened.close();
    }
  });
});
