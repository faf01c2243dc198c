// How many WAL frames (pages written) the sweeper's DELETE costs per row, for three orders of the
// same expired rows, on the relay's own schema (its migrations) with `secure_delete` on:
//   scattered   one room, expiry cycling every 1,000 rows, random client message ids
//   sent/random rows in send order (expiry follows seq), random client message ids (old clients)
//   sent/counter rows in send order, ids as clients write them now (`newClientMsgId`)
// node dist/node/bench/sweep-pages.js [rows]   (default 200,000; about 20 s)
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DB_FILE, openDb } from '../server/db.ts';
import { SWEEP_SQL } from '../server/store.ts';
import { newClientMsgId } from '../shared/index.ts';
import { SEED_ENVELOPE_INSERT } from './lib/envelope-insert.ts';

type Order = 'scattered' | 'sent/random' | 'sent/counter';
const BATCH = 500;
/** A WAL frame: a 24-byte header and one 4 KiB page. */
const FRAME_BYTES = 24 + 4096;

async function measure(order: Order, rows: number): Promise<{ framesPerRow: number; ms: number }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'umbra-sweep-pages-'));
  const db = await openDb(dir);
  try {
    const sqlite = db.sqlite;
    sqlite.pragma('foreign_keys = OFF'); // rows only: no users or conversations behind them
    const insert = sqlite.prepare(SEED_ENVELOPE_INSERT);
    const now = Date.now();
    const conv = crypto.randomBytes(16).toString('base64url');
    sqlite.transaction(() => {
      for (let i = 1; i <= rows; i++) {
        const expiresAt = order === 'scattered' ? now - 60_000 + (i % 1000) : now - 600_000 + i;
        const id = order === 'sent/counter' ? newClientMsgId(i, crypto.randomBytes(8)) : crypto.randomBytes(16).toString('base64url');
        insert.run(conv, i, 7, id, i, crypto.randomBytes(32), expiresAt, expiresAt, now - 700_000, crypto.randomBytes(120), crypto.randomBytes(64));
      }
    })();
    sqlite.pragma('wal_checkpoint(TRUNCATE)');
    sqlite.pragma('wal_autocheckpoint = 0');
    const sweep = sqlite.prepare(SWEEP_SQL);
    const t0 = performance.now();
    let deleted = 0;
    for (let n = BATCH; n === BATCH; deleted += n) n = sqlite.transaction(() => sweep.run(Date.now(), BATCH).changes)();
    const ms = performance.now() - t0;
    if (deleted !== rows) throw new Error(`swept ${deleted} of ${rows}`);
    const walBytes = fs.statSync(path.join(dir, `${DB_FILE}-wal`)).size;
    return { framesPerRow: walBytes / FRAME_BYTES / rows, ms };
  } finally {
    await db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const rows = Number(process.argv[2] ?? 200_000);
if (!Number.isInteger(rows) || rows < BATCH) throw new Error(`rows must be an integer of at least ${BATCH}`);
console.log(`| order | WAL frames per deleted row | sweep time (${rows.toLocaleString('en-US')} rows, batches of ${BATCH}) |`);
console.log('|---|---:|---:|');
for (const order of ['scattered', 'sent/random', 'sent/counter'] as const) {
  const r = await measure(order, rows);
  console.log(`| ${order} | ${r.framesPerRow.toFixed(2)} | ${Math.round(r.ms).toLocaleString('en-US')} ms |`);
}
