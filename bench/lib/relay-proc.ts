// Child-process entry: starts one system under test (the real Umbra relay or a baseline) and
// answers the parent's IPC requests for its CPU, memory, event-loop delay and WAL size.
// Forked from compiled JS with --expose-gc; see bench/lib/relay-client.ts for the parent side.
import Database from 'better-sqlite3';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import { defaultConfig } from '../../server/config.ts';
import { DB_FILE } from '../../server/db.ts';
import { startRelay, type RunningRelay } from '../../server/relay.ts';
import { startRawWs, type Baseline } from '../baselines/raw-ws.ts';
import { startWsSqlite, WS_SQLITE_DB } from '../baselines/ws-sqlite.ts';
import { newClientMsgId } from '../../shared/index.ts';
import { SEED_ENVELOPE_INSERT } from './envelope-insert.ts';
import { GapTrace } from './gap-trace.ts';
import type { ExpiredSeed, RelayStats, ToChild, ToParent } from './relay-ipc.ts';

let relay: RunningRelay | null = null;
let baseline: Baseline | null = null;
let gapTrace: GapTrace | null = null;
let walPath = '';
let walMax = 0;
let restartsAt = 0;
let cpuAt = process.cpuUsage();
let wallAt = performance.now();
const eld = monitorEventLoopDelay({ resolution: 1 });
eld.enable();

function send(m: ToParent): void {
  process.send!(m);
}

function walBytes(): number {
  try {
    return walPath ? fs.statSync(walPath).size : 0;
  } catch {
    return 0;
  }
}

const walTimer = setInterval(() => {
  const n = walBytes();
  if (n > walMax) walMax = n;
}, 50);

function stats(): RelayStats {
  const cpu = process.cpuUsage(cpuAt);
  const mem = process.memoryUsage();
  const wal = walBytes();
  return {
    wallMs: performance.now() - wallAt,
    cpuUserMs: cpu.user / 1000,
    cpuSystemMs: cpu.system / 1000,
    rssBytes: mem.rss,
    heapUsedBytes: mem.heapUsed,
    eld: { maxMs: eld.max / 1e6, p99Ms: eld.percentile(99) / 1e6, meanMs: eld.mean / 1e6 },
    walBytes: wal,
    walMaxBytes: Math.max(walMax, wal),
    umbra: relay
      ? {
          longestCommitMs: relay.hub.commits.stats.longestCommitMs,
          longestHoldMs: relay.hub.commits.stats.longestLockWaitMs,
          meanLockWaitMs: relay.hub.commits.stats.lockTurns > 0 ? relay.hub.commits.stats.lockWaitMs / relay.hub.commits.stats.lockTurns : 0,
          walRestarts: relay.checkpointer.stats.restarts - restartsAt,
        }
      : null,
    gaps: gapTrace?.reading() ?? null,
  };
}

function resetStats(): void {
  cpuAt = process.cpuUsage();
  wallAt = performance.now();
  eld.reset();
  gapTrace?.reset();
  walMax = walBytes();
  if (relay) {
    // The relay's "longest" counters start over with the bench's window.
    relay.hub.commits.stats.longestCommitMs = 0;
    relay.hub.commits.stats.longestLockWaitMs = 0;
    relay.hub.commits.stats.lockTurns = 0;
    relay.hub.commits.stats.lockWaitMs = 0;
    restartsAt = relay.checkpointer.stats.restarts;
  }
}

/** Rows per seeding transaction, and rows whose random fields are drawn in one call. */
const SEED_TX_ROWS = 100_000;
const SEED_RANDOM_ROWS = 4096;

/**
 * Already-expired envelopes for the sweeper to find (see `ExpiredSeed` for the two orders). Fast
 * enough for a million rows (about 15 s): one prepared insert, big transactions, random bytes drawn
 * in blocks, and no journal (the folder is a throwaway copy); then back to WAL and synced, so the
 * relay starts on a file at rest with no writeback of the seed competing with its fsyncs. Ids are
 * the ones the client writes (`newClientMsgId`), counters count per sender and room.
 */
function seedExpired(dataDir: string, seed: ExpiredSeed): void {
  const file = path.join(dataDir, DB_FILE);
  const db = new Database(file);
  try {
    db.pragma('journal_mode = OFF');
    db.pragma('synchronous = OFF');
    db.pragma('cache_size = -262144');
    const convs = db.prepare('select id, last_seq from conversations order by id').all() as { id: string; last_seq: number }[];
    if (convs.length === 0) throw new Error('an expired seed needs a seeded room');
    const rooms = (seed.order === 'sent' ? convs : convs.slice(0, 1)).map((c) => ({
      id: c.id,
      seq: c.last_seq,
      senders: (db.prepare('select user_id from members where conv_id = ? order by user_id').all(c.id) as { user_id: number }[]).map((m) => m.user_id),
      counters: new Map<number, number>(),
    }));
    const insert = db.prepare(SEED_ENVELOPE_INSERT);
    // Per row: 8 random bytes of client message id, a 32-byte roster hash, 120 bytes of ciphertext, a 64-byte signature.
    const rowBytes = 8 + 32 + 120 + 64;
    let random = Buffer.alloc(0);
    const now = Date.now();
    const insertRows = db.transaction((from: number, to: number) => {
      for (let i = from; i <= to; i++) {
        const k = (i - 1) % SEED_RANDOM_ROWS;
        if (k === 0) random = crypto.randomBytes(SEED_RANDOM_ROWS * rowBytes);
        const o = k * rowBytes;
        // sent: round robin over rooms and, within a room, over its members; sent 1 ms apart an hour
        // ago on a timer that ran out a minute ago. scattered: one room, expiry cycling over 1 s.
        const room = rooms[i % rooms.length]!;
        const turn = Math.floor(i / rooms.length);
        const sender = room.senders[turn % room.senders.length]!;
        const counter = (room.counters.get(sender) ?? 0) + 1;
        room.counters.set(sender, counter);
        const sentAt = now - 3_600_000 + Math.floor((i * 60_000) / seed.rows);
        const expiresAt = seed.order === 'sent' ? sentAt + 3_540_000 : now - 60_000 + (i % 1000);
        insert.run(room.id, ++room.seq, sender, newClientMsgId(counter, random.subarray(o, o + 8)), counter, random.subarray(o + 8, o + 40), expiresAt, expiresAt, sentAt, random.subarray(o + 40, o + 160), random.subarray(o + 160, o + 224));
      }
    });
    for (let from = 1; from <= seed.rows; from += SEED_TX_ROWS) insertRows(from, Math.min(seed.rows, from + SEED_TX_ROWS - 1));
    const setSeq = db.prepare('update conversations set last_seq = ? where id = ?');
    for (const r of rooms) setSeq.run(r.seq, r.id);
    db.pragma('journal_mode = WAL');
  } finally {
    db.close();
  }
  const fd = fs.openSync(file, 'r+');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

async function start(m: Extract<ToChild, { t: 'start' }>): Promise<number> {
  if (m.traceGaps) gapTrace = GapTrace.start();
  switch (m.system) {
    case 'umbra': {
      if (m.seedExpired) seedExpired(m.dataDir, m.seedExpired);
      walPath = path.join(m.dataDir, `${DB_FILE}-wal`);
      const base = defaultConfig();
      relay = await startRelay(
        defaultConfig({
          dataDir: m.dataDir,
          port: 0,
          webDir: null,
          logLevel: 'warn',
          logStream: new Writable({ write: (chunk: Buffer, _enc, cb) => (process.stderr.write(chunk), cb()) }),
          // BENCH_UMBRA_WRITER=0: group commits on the event loop, to compare with the writer thread.
          limits: { ...base.limits, maxConnectionsPerAddress: 100_000, writerThread: process.env.BENCH_UMBRA_WRITER !== '0' },
          ...(m.sweep ? { sweep: { ...base.sweep, ...m.sweep } } : {}),
        }),
      );
      if (gapTrace) {
        const trace = gapTrace;
        relay.hub.commits.onCommitTimed = (start, ms) => trace.span(start, ms);
      }
      return relay.port;
    }
    case 'raw-ws':
      baseline = await startRawWs(0);
      return baseline.port;
    case 'ws-sqlite':
      walPath = path.join(m.dataDir, `${WS_SQLITE_DB}-wal`);
      baseline = await startWsSqlite(m.dataDir, 0);
      return baseline.port;
  }
}

process.on('message', (raw) => {
  const m = raw as ToChild;
  void (async () => {
    try {
      switch (m.t) {
        case 'start':
          send({ t: 'ready', port: await start(m) });
          return;
        case 'stats':
          send({ t: 'stats', stats: stats() });
          return;
        case 'resetStats':
          resetStats();
          send({ t: 'ok' });
          return;
        case 'gc':
          (globalThis as { gc?: () => void }).gc?.();
          send({ t: 'ok' });
          return;
        case 'sweeperStats':
          send({ t: 'sweeperStats', stats: relay ? { ...relay.sweeper.stats } : null });
          return;
        case 'stop':
          clearInterval(walTimer);
          eld.disable();
          gapTrace?.stop();
          await relay?.close();
          await baseline?.close();
          send({ t: 'ok' });
          process.disconnect();
          return;
      }
    } catch (err) {
      send({ t: 'failed', message: (err as Error).stack ?? String(err) });
    }
  })();
});
