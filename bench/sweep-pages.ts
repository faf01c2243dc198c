// How many WAL frames (pages written) the sweep costs per row, for four orders of the same expired
// rows, on the relay's own schema (its migrations) with `secure_delete` on, no load:
//   scattered    one room, expiry cycling every 1,000 rows, random client message ids
//   sent/random  one room, rows in send order (expiry follows seq), random client message ids (old clients)
//   sent/counter one room, rows in send order, ids as clients write them now (`newClientMsgId`)
//   100 rooms    sent/counter, round robin over 100 rooms of 10 senders (E-sweep's backlog)
// and two ways of deleting them:
//   expiry order  `SWEEP_SQL` in batches of 500 on one connection (the relay's own, when the
//                 checkpoint thread is gone)
//   key order     the checkpoint thread's sweep (`Checkpointer.sweepBatch`, the relay's settings):
//                 the oldest expired keys read a window at a time and deleted in key order
// node dist/node/bench/sweep-pages.js [rows]   (default 200,000; about a minute)
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DB_FILE, openDb } from '../server/db.ts';
import { Checkpointer } from '../server/checkpointer.ts';
import { defaultConfig } from '../server/config.ts';
import { createLogger } from '../server/log.ts';
import { SWEEP_DELETE_SQL, SWEEP_READ_SQL, SWEEP_SQL } from '../server/store.ts';
import { SWEEP_CHUNK, SWEEP_WINDOW } from '../server/sweeper.ts';
import { newClientMsgId } from '../shared/index.ts';
import { SEED_ENVELOPE_INSERT } from './lib/envelope-insert.ts';

type Order = 'scattered' | 'sent/random' | 'sent/counter' | '100 rooms';
type Way = 'expiry order' | 'key order';
const BATCH = 500;
/** A WAL frame: a 24-byte header and one 4 KiB page. */
const FRAME_BYTES = 24 + 4096;

async function measure(order: Order, way: Way, rows: number): Promise<{ framesPerRow: number; ms: number }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'umbra-sweep-pages-'));
  const db = await openDb(dir);
  let thread: Checkpointer | null = null;
  try {
    const sqlite = db.sqlite;
    sqlite.pragma('foreign_keys = OFF'); // rows only: no users or conversations behind them
    const insert = sqlite.prepare(SEED_ENVELOPE_INSERT);
    const now = Date.now();
    const rooms = Array.from({ length: order === '100 rooms' ? 100 : 1 }, () => ({ id: crypto.randomBytes(16).toString('base64url'), seq: 0, counters: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0] }));
    sqlite.transaction(() => {
      for (let i = 1; i <= rows; i++) {
        const room = rooms[i % rooms.length]!;
        const sender = Math.floor(i / rooms.length) % 10;
        const counter = order === '100 rooms' ? ++room.counters[sender]! : i;
        const expiresAt = order === 'scattered' ? now - 60_000 + (i % 1000) : now - 600_000 + i;
        const id = order === 'sent/counter' || order === '100 rooms' ? newClientMsgId(counter, crypto.randomBytes(8)) : crypto.randomBytes(16).toString('base64url');
        insert.run(room.id, ++room.seq, order === '100 rooms' ? sender : 7, id, counter, crypto.randomBytes(32), expiresAt, expiresAt, now - 700_000, crypto.randomBytes(120), crypto.randomBytes(64));
      }
    })();
    sqlite.pragma('wal_checkpoint(TRUNCATE)');
    sqlite.pragma('wal_autocheckpoint = 0');
    let deleted = 0;
    let t0 = 0;
    if (way === 'expiry order') {
      const sweep = sqlite.prepare(SWEEP_SQL);
      t0 = performance.now();
      for (let n = BATCH; n === BATCH; deleted += n) n = sqlite.transaction(() => sweep.run(Date.now(), BATCH).changes)();
    } else {
      // The thread copies nothing back on its own here (a long interval), so the WAL keeps every frame.
      const silent = createLogger('silent', undefined);
      thread = new Checkpointer(sqlite, path.join(dir, DB_FILE), { intervalMs: 3_600_000, restartWalBytes: 1 << 30, maxWalBytes: 2 ** 40 }, silent, { readSql: SWEEP_READ_SQL, deleteSql: SWEEP_DELETE_SQL });
      thread.start();
      const relay = defaultConfig().sweep;
      t0 = performance.now();
      for (;;) {
        const r = await thread.sweepBatch(Date.now(), { limit: relay.batch, chunk: SWEEP_CHUNK, window: SWEEP_WINDOW, maxMs: relay.maxBatchMs });
        deleted += r.deleted;
        if (r.exhausted) break;
      }
    }
    const ms = performance.now() - t0;
    if (deleted !== rows) throw new Error(`swept ${deleted} of ${rows}`);
    const walBytes = fs.statSync(path.join(dir, `${DB_FILE}-wal`)).size;
    return { framesPerRow: walBytes / FRAME_BYTES / rows, ms };
  } finally {
    await thread?.stop();
    await db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const rows = Number(process.argv[2] ?? 200_000);
if (!Number.isInteger(rows) || rows < BATCH) throw new Error(`rows must be an integer of at least ${BATCH}`);
console.log(`| order | way | WAL frames per deleted row | sweep time (${rows.toLocaleString('en-US')} rows) |`);
console.log('|---|---|---:|---:|');
for (const order of ['scattered', 'sent/random', 'sent/counter', '100 rooms'] as const) {
  for (const way of ['expiry order', 'key order'] as const) {
    const r = await measure(order, way, rows);
    console.log(`| ${order} | ${way} | ${r.framesPerRow.toFixed(2)} | ${Math.round(r.ms).toLocaleString('en-US')} ms |`);
  }
}
