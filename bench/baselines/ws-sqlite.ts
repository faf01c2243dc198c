// Baseline 2: the raw relay plus durability done simply. Every frame is inserted (one prepared
// statement, its own transaction) into SQLite in WAL mode with synchronous = FULL, exactly the
// durability Umbra promises, before it is forwarded.
import Database from 'better-sqlite3';
import path from 'node:path';
import { startRawWs, type Baseline } from './raw-ws.ts';

export const WS_SQLITE_DB = 'ws-sqlite.db';

export async function startWsSqlite(dataDir: string, port = 0): Promise<Baseline> {
  const db = new Database(path.join(dataDir, WS_SQLITE_DB));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec('create table if not exists frames (room text not null, seq integer not null, received_at integer not null, body blob not null, primary key (room, seq)) without rowid');
  const insert = db.prepare('insert into frames (room, seq, received_at, body) values (?, ?, ?, ?)');
  const seqs = new Map<string, number>();
  const relay = await startRawWs(port, (room, data) => {
    const seq = (seqs.get(room) ?? 0) + 1;
    seqs.set(room, seq);
    insert.run(room, seq, Date.now(), data);
  });
  return {
    port: relay.port,
    close: async () => {
      await relay.close();
      db.close();
    },
  };
}
