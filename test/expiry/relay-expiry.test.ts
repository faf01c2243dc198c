// Disappearing messages at the relay, on a clock the test moves: expired envelopes are never
// served on any read path, the sweeper deletes them from the SQLite file and its WAL, and burn
// after reading moves a deletion time only on a recipient's first opening
// (docs/PROTOCOL.md §Disappearing messages).
import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UmbraClient, type Conversation } from '../../client/sdk/index.ts';
import { nodePlatform } from '../../client/sdk/node.ts';
import { DB_FILE } from '../../server/db.ts';
import { SWEEP_CHUNK } from '../../server/sweeper.ts';
import { SEED_ENVELOPE_INSERT } from '../../bench/lib/envelope-insert.ts';
import { BURN_UNOPENED_MS, type StoredEnvelope, type TimerSetting } from '../../shared/index.ts';
import {
  PASSWORD,
  WsProbe,
  api,
  dataFilesContain,
  fakeEnvelope,
  queryDb,
  startPair,
  startTestRelay,
  uniqueName,
  waitFor,
  type TestRelay,
} from '../helpers/relay.ts';
import { RelayTamper } from '../helpers/tamper.ts';

/** The one clock of the relay and of every client here; only the tests move it. */
let clock = Date.now();
const now = () => clock;
const MINUTE: TimerSetting = { ttlMs: 60_000, mode: 'sent' };
const TEN_MINUTES: TimerSetting = { ttlMs: 600_000, mode: 'sent' };
const BURN: TimerSetting = { ttlMs: 5_000, mode: 'read' };

const relays: TestRelay[] = [];
const clients: UmbraClient[] = [];
const probes: WsProbe[] = [];

afterAll(async () => {
  for (const p of probes) p.close();
  for (const c of clients) c.disconnect();
  for (const r of relays) await r.stop();
});

/** A relay on the test's clock that sweeps only when told to. */
async function relayOnClock(batch = 500): Promise<TestRelay> {
  const relay = await startTestRelay({ now, sweep: { intervalMs: 0, batch } });
  relays.push(relay);
  return relay;
}

interface Pair {
  alice: UmbraClient;
  bob: UmbraClient;
  a: string;
  b: string;
  conv: Conversation;
  bobConv: Conversation;
  aliceCookie: string;
  bobCookie: string;
}

/** Alice and bob, on the test's clock, in a conversation both have open. */
async function pairOn(relay: TestRelay): Promise<Pair> {
  const alice = new UmbraClient({ baseUrl: relay.url, platform: nodePlatform(), now });
  const bob = new UmbraClient({ baseUrl: relay.url, platform: nodePlatform(), now });
  clients.push(alice, bob);
  const a = uniqueName('alice');
  const b = uniqueName('bob');
  await alice.signUp(a, PASSWORD);
  await bob.signUp(b, PASSWORD);
  const conv = await alice.startConversation(b);
  await waitFor(() => bob.conversation(conv.id) !== undefined, 5000, `${b} opens the conversation`);
  return { alice, bob, a, b, conv, bobConv: bob.conversation(conv.id)!, aliceCookie: alice.http.cookieHeader()!, bobCookie: bob.http.cookieHeader()! };
}

/** What GET /api/conversations/:id/envelopes serves for `query`. */
async function served(relay: TestRelay, cookie: string, conv: string, query: string): Promise<{ envelopes: StoredEnvelope[]; more: boolean }> {
  const res = await api(relay, 'GET', `/api/conversations/${conv}/envelopes?${query}`, { cookie });
  expect(res.status, res.text).toBe(200);
  return res.json;
}

const seqsOf = (items: readonly StoredEnvelope[]) => items.map((i) => i.seq).sort((x, y) => x - y);

async function openProbe(relay: TestRelay, cookie: string): Promise<WsProbe> {
  const probe = await WsProbe.open(relay, cookie);
  probes.push(probe);
  return probe;
}

/** A 32-byte slice out of the middle of an envelope's ciphertext, read from the SQLite file. */
function ctSlice(relay: TestRelay, conv: string, seq: number): Buffer {
  const [row] = queryDb<{ ct: Buffer }>(relay, 'SELECT ct FROM envelopes WHERE conv_id = ? AND seq = ?', conv, seq);
  if (!row) throw new Error(`no envelope ${conv}#${seq} in the file`);
  expect(row.ct.length).toBeGreaterThanOrEqual(48);
  return Buffer.from(row.ct.subarray(8, 40));
}

function storedRows(relay: TestRelay, conv: string): number[] {
  return queryDb<{ seq: number }>(relay, 'SELECT seq FROM envelopes WHERE conv_id = ? ORDER BY seq', conv).map((r) => r.seq);
}

describe('expired envelopes', () => {
  let relay: TestRelay;
  let p: Pair;
  /** seqs by what they carry, and when the short ones expire. */
  const seq = { keep1: 0, short1: 0, long: 0, short2: 0, keep2: 0 };
  let shortExpiry = 0;
  let longExpiry = 0;
  const slices = new Map<number, Buffer>();

  beforeAll(async () => {
    relay = await relayOnClock();
    p = await pairOn(relay);
    const t0 = clock;
    seq.keep1 = (await p.alice.sendText(p.conv.id, 'no timer on this one')).seq!;
    seq.short1 = (await p.alice.sendText(p.conv.id, 'gone after a minute', { timer: MINUTE })).seq!;
    seq.long = (await p.alice.sendText(p.conv.id, 'gone after ten minutes', { timer: TEN_MINUTES })).seq!;
    seq.short2 = (await p.bob.sendText(p.conv.id, 'also gone after a minute', { timer: MINUTE })).seq!;
    seq.keep2 = (await p.bob.sendText(p.conv.id, 'no timer on this one either')).seq!;
    shortExpiry = t0 + 60_000;
    longExpiry = t0 + 600_000;
    // Captured while every envelope is live, for the scan after the sweep.
    for (const s of Object.values(seq)) slices.set(s, ctSlice(relay, p.conv.id, s));
  });

  it('stores the signed expiry as the deletion time and serves both', async () => {
    const page = await served(relay, p.bobCookie, p.conv.id, 'limit=50');
    expect(seqsOf(page.envelopes)).toEqual(Object.values(seq).sort((x, y) => x - y));
    const bySeq = new Map(page.envelopes.map((e) => [e.seq, e]));
    for (const [s, signed] of [
      [seq.keep1, null],
      [seq.short1, shortExpiry],
      [seq.long, longExpiry],
      [seq.short2, shortExpiry],
      [seq.keep2, null],
    ] as const) {
      expect(bySeq.get(s)!.env.expiresAt).toBe(signed);
      expect(bySeq.get(s)!.expiresAt).toBe(signed);
      expect(bySeq.get(s)!.env.burnAfterMs).toBeNull();
    }
  });

  it('stops serving an envelope at its expiry on every read path, before any sweep', async () => {
    const conv = p.conv.id;
    const all = Object.values(seq).sort((x, y) => x - y);
    const live = [seq.keep1, seq.long, seq.keep2];

    // One millisecond before: still there.
    clock = shortExpiry - 1;
    expect(seqsOf((await served(relay, p.bobCookie, conv, 'limit=50')).envelopes)).toEqual(all);
    expect(seqsOf((await served(relay, p.bobCookie, conv, 'after=0')).envelopes)).toEqual(all);

    // At the expiry (expires_at <= now): gone from every read, while the rows are still in the file.
    clock = shortExpiry;
    const newest = await served(relay, p.bobCookie, conv, 'limit=50');
    expect(seqsOf(newest.envelopes)).toEqual(live);
    expect(newest.more).toBe(false);
    expect(seqsOf((await served(relay, p.aliceCookie, conv, 'limit=50')).envelopes)).toEqual(live);
    expect(seqsOf((await served(relay, p.bobCookie, conv, `before=${seq.keep2 + 1}&limit=50`)).envelopes)).toEqual(live);
    expect(seqsOf((await served(relay, p.bobCookie, conv, `before=${seq.keep2}&limit=50`)).envelopes)).toEqual([seq.keep1, seq.long]);
    expect(seqsOf((await served(relay, p.bobCookie, conv, `before=${seq.long}&limit=50`)).envelopes)).toEqual([seq.keep1]);
    expect(seqsOf((await served(relay, p.bobCookie, conv, `type=content&limit=50`)).envelopes)).toEqual(live);
    expect(seqsOf((await served(relay, p.bobCookie, conv, `sender=${p.b}&limit=50`)).envelopes)).toEqual([seq.keep2]);
    // The page size counts only what is served: one newest envelope is the unexpired keep2.
    const one = await served(relay, p.bobCookie, conv, 'limit=1');
    expect(seqsOf(one.envelopes)).toEqual([seq.keep2]);
    expect(seqsOf((await served(relay, p.bobCookie, conv, `before=${seq.keep2}&limit=1`)).envelopes)).toEqual([seq.long]);
    expect(seqsOf((await served(relay, p.bobCookie, conv, 'after=0')).envelopes)).toEqual(live);
    expect(seqsOf((await served(relay, p.bobCookie, conv, `after=${seq.keep1}`)).envelopes)).toEqual([seq.long, seq.keep2]);
    expect(seqsOf((await served(relay, p.bobCookie, conv, `after=${seq.long}`)).envelopes)).toEqual([seq.keep2]);

    // The WebSocket resume.
    const probe = await openProbe(relay, p.bobCookie);
    const batch = await probe.request({ t: 'sync', conv, after: 0, limit: 100 });
    expect(batch.t).toBe('batch');
    expect(seqsOf(batch.envelopes)).toEqual(live);
    expect(batch.more).toBe(false);
    const tail = await probe.request({ t: 'sync', conv, after: seq.keep1, limit: 1 });
    expect(seqsOf(tail.envelopes)).toEqual([seq.long]);
    expect(tail.more).toBe(true);

    // Nothing was deleted yet: the reads alone hide them.
    expect(storedRows(relay, conv)).toEqual(all);
    expect(relay.store.expiredPending()).toBe(2);
    expect(relay.sweeper.stats.sweeps).toBe(0);
  });

  it('sweeps them out of the database file and its WAL, keeping the rest', async () => {
    const conv = p.conv.id;
    const expired = [seq.short1, seq.short2];
    const live = [seq.keep1, seq.long, seq.keep2];
    // The scan can find ciphertext: every envelope's bytes are in the files before the sweep.
    for (const s of Object.values(seq)) expect(dataFilesContain(relay, slices.get(s)!), `ciphertext of #${s} before the sweep`).toBe(true);

    clock = shortExpiry + 1;
    const deleted = await relay.sweeper.sweep();
    expect(deleted).toBe(2);
    const stats = relay.sweeper.stats;
    expect(stats.swept).toBe(2);
    expect(stats.lastSweepDeleted).toBe(2);
    expect(stats.pending).toBe(0);
    expect(stats.sweeps).toBe(1);
    expect(stats.lastSweepAt).toBe(clock);
    expect(stats.lastCheckpointBusy).toBe(0);
    expect(relay.logs.some((l) => l.includes('"event":"sweep"') && l.includes('"deleted":2'))).toBe(true);

    // TRUNCATE: the WAL is empty, and no byte of the expired ciphertext is left in either file.
    const wal = path.join(relay.dataDir, DB_FILE + '-wal');
    expect(fs.existsSync(wal) ? fs.statSync(wal).size : 0).toBe(0);
    for (const s of expired) expect(dataFilesContain(relay, slices.get(s)!), `ciphertext of expired #${s}`).toBe(false);
    for (const s of live) expect(dataFilesContain(relay, slices.get(s)!), `ciphertext of live #${s}`).toBe(true);
    expect(storedRows(relay, conv)).toEqual(live);
    expect(seqsOf((await served(relay, p.bobCookie, conv, 'limit=50')).envelopes)).toEqual(live);

    // A sweep with nothing due deletes nothing and leaves the counts.
    expect(await relay.sweeper.sweep()).toBe(0);
    expect(relay.sweeper.stats.swept).toBe(2);
    expect(relay.sweeper.stats.sweeps).toBe(2);

    // Ten minutes on, the long one goes the same way.
    clock = longExpiry;
    expect(seqsOf((await served(relay, p.bobCookie, conv, 'limit=50')).envelopes)).toEqual([seq.keep1, seq.keep2]);
    expect(await relay.sweeper.sweep()).toBe(1);
    expect(relay.sweeper.stats.swept).toBe(3);
    expect(relay.sweeper.stats.pending).toBe(0);
    expect(dataFilesContain(relay, slices.get(seq.long)!)).toBe(false);
    expect(dataFilesContain(relay, slices.get(seq.keep1)!)).toBe(true);
    expect(storedRows(relay, conv)).toEqual([seq.keep1, seq.keep2]);
  });
});

describe('sweeping in batches', () => {
  it('deletes every expired envelope in one sweep when there are more than a batch', async () => {
    const relay = await relayOnClock(3);
    const pair = await startPair(relay);
    clients.push(pair.alice, pair.bob);
    const probe = await openProbe(relay, pair.aliceCookie);
    const expiresAt = clock + 1_000;
    const expired: number[] = [];
    const live: number[] = [];
    const slices = new Map<number, Buffer>();
    for (let i = 0; i < 12; i++) {
      const env = { ...fakeEnvelope(pair.conv, pair.a, i + 1, 64), expiresAt: i < 10 ? expiresAt : null };
      const ack = await probe.request({ t: 'send', env });
      expect(ack.t, JSON.stringify(ack)).toBe('ack');
      (i < 10 ? expired : live).push(ack.seq);
      slices.set(ack.seq, ctSlice(relay, pair.conv, ack.seq));
    }
    for (const s of expired) expect(dataFilesContain(relay, slices.get(s)!)).toBe(true);

    clock = expiresAt;
    expect(relay.store.expiredPending()).toBe(10);
    expect(await relay.sweeper.sweep()).toBe(10);
    expect(relay.sweeper.stats.swept).toBe(10);
    expect(relay.sweeper.stats.lastSweepDeleted).toBe(10);
    expect(relay.sweeper.stats.pending).toBe(0);
    expect(storedRows(relay, pair.conv)).toEqual(live);
    for (const s of expired) expect(dataFilesContain(relay, slices.get(s)!), `ciphertext of expired #${s}`).toBe(false);
    for (const s of live) expect(dataFilesContain(relay, slices.get(s)!), `ciphertext of live #${s}`).toBe(true);
  });

  it('ends a batch on the thread at its next chunk once a relay write waits for the lock, and runs it to the end when none does', async () => {
    // No clients: nothing else on this relay writes while the batches run.
    const relay = await relayOnClock();
    const rows = 50_000;
    seedRows(relay, rows, () => clock - 1);
    expect(relay.store.expiredPending()).toBe(rows);
    const lock = relay.checkpointer.writeLock;
    // One read holds every key (a window larger than the backlog, so the thread knows it has them all).
    const limits = { limit: rows, chunk: SWEEP_CHUNK, window: rows + 1, maxMs: 60_000 };

    // A write arrives while the batch runs: the relay tries the lock, finds the thread holding it,
    // and gets it as soon as the chunk under way is committed.
    const batch = relay.checkpointer.sweepBatch(clock, limits);
    const spinUntil = async (cond: () => boolean, what: string) => {
      const deadline = performance.now() + 10_000;
      while (!cond()) {
        if (performance.now() > deadline) throw new Error(`timed out waiting until ${what}`);
        await new Promise((r) => setImmediate(r));
      }
    };
    await spinUntil(() => lock.holder === 2, 'the thread holds the lock');
    await spinUntil(() => lock.tryAcquire(), 'the relay gets the lock');
    lock.release();
    const first = await batch;
    expect(first.yielded).toBe(true);
    expect(first.exhausted).toBe(false);
    expect(first.deleted).toBeGreaterThan(0);
    expect(first.deleted).toBeLessThan(rows);
    expect(first.deleted % SWEEP_CHUNK).toBe(0);
    expect(relay.store.expiredPending()).toBe(rows - first.deleted);

    // Nobody waits: one batch deletes everything left, in one transaction.
    const rest = await relay.checkpointer.sweepBatch(clock, limits);
    expect(rest).toMatchObject({ deleted: rows - first.deleted, exhausted: true, yielded: false });
    expect(relay.store.expiredPending()).toBe(0);
    expect(relay.writeTurns.stats.waited).toBe(0);
  });

  it('deletes on the thread in key order across several reads, leaving live rows and rows whose deletion time moved', async () => {
    const relay = await relayOnClock();
    // Every fifth row is live; the rest expired, in an order unlike their keys.
    const rows = 5_000;
    seedRows(relay, rows, (i) => (i % 5 === 0 ? clock + 60_000 : clock - 1 - ((i * 7919) % rows)));
    const expired = rows - rows / 5;
    expect(relay.store.expiredPending()).toBe(expired);
    const limits = { limit: 300, chunk: SWEEP_CHUNK, window: 700, maxMs: 60_000 };
    const first = await relay.checkpointer.sweepBatch(clock, limits);
    expect(first).toMatchObject({ deleted: 300, exhausted: false, yielded: false });
    // A row the first read holds (its 400 keys not yet deleted come first in expiry order) and no batch has reached yet: its deletion
    // time moves on, so the thread must leave it.
    const moved = queryDb<{ seq: number }>(relay, 'select seq from envelopes where expires_at <= ? order by expires_at limit 1 offset 350', clock)[0]!.seq;
    const db = new Database(path.join(relay.dataDir, DB_FILE));
    try {
      db.prepare("update envelopes set expires_at = ? where conv_id = 'sweep-test' and seq = ?").run(clock + 60_000, moved);
    } finally {
      db.close();
    }
    let deleted = first.deleted;
    let batches = 1;
    for (;;) {
      const r = await relay.checkpointer.sweepBatch(clock, limits);
      batches++;
      deleted += r.deleted;
      expect(r.yielded).toBe(false);
      if (r.exhausted) break;
      expect(batches).toBeLessThan(100);
    }
    expect(deleted).toBe(expired - 1);
    expect(batches).toBeGreaterThanOrEqual(Math.ceil(expired / 700));
    const left = queryDb<{ seq: number; expires_at: number }>(relay, "select seq, expires_at from envelopes where conv_id = 'sweep-test' order by seq");
    expect(left.map((r) => r.seq)).toEqual([...Array.from({ length: rows / 5 }, (_, k) => (k + 1) * 5), moved].sort((a, b) => a - b));
    expect(relay.store.expiredPending()).toBe(0);
  });
});

/** `rows` envelopes in one made-up conversation, seq 1…rows, written straight into the relay's file
 * (foreign keys off on this connection: they need no users or rooms); `expiresAt(seq)`. */
function seedRows(relay: TestRelay, rows: number, expiresAt: (seq: number) => number): void {
  const db = new Database(path.join(relay.dataDir, DB_FILE));
  try {
    db.pragma('busy_timeout = 5000');
    db.pragma('foreign_keys = OFF');
    const insert = db.prepare(SEED_ENVELOPE_INSERT);
    const blob = (n: number) => new Uint8Array(n);
    db.transaction(() => {
      for (let i = 1; i <= rows; i++) insert.run('sweep-test', i, 1, `m${i}`, i, blob(32), expiresAt(i), expiresAt(i), clock - 10, crypto.getRandomValues(blob(64)), blob(64));
    })();
  } finally {
    db.close();
  }
}

describe('burn after reading', () => {
  let relay: TestRelay;
  let evil: RelayTamper;
  let p: Pair;

  beforeAll(async () => {
    relay = await relayOnClock();
    evil = new RelayTamper(relay);
    p = await pairOn(relay);
  });

  it('keeps the far deletion time until a recipient opens it, then deletes it burnAfterMs later', async () => {
    const conv = p.conv.id;
    const t0 = clock;
    const sent = await p.alice.sendText(conv, 'read me once', { timer: BURN });
    const s = sent.seq!;
    expect(sent.burnAfterMs).toBe(5_000);
    expect(sent.expiresAt).toBe(t0 + BURN_UNOPENED_MS);
    expect(BURN_UNOPENED_MS).toBe(30 * 86_400_000);

    const item = (await served(relay, p.bobCookie, conv, 'limit=50')).envelopes.find((e) => e.seq === s)!;
    expect(item.env.burnAfterMs).toBe(5_000);
    expect(item.env.expiresAt).toBe(t0 + BURN_UNOPENED_MS);
    expect(item.expiresAt).toBe(t0 + BURN_UNOPENED_MS);

    await waitFor(() => p.bobConv.messages.value.some((m) => m.seq === s), 5000, 'bob receives it');
    const atBob = p.bobConv.messages.value.find((m) => m.seq === s)!;
    expect(atBob.burnAfterMs).toBe(5_000);
    expect(atBob.expiresAt).toBe(t0 + BURN_UNOPENED_MS);

    // Delivered and shown, but not opened: time passes and the deletion time stays.
    clock += 10_000;
    expect(evil.row(conv, s).expires_at).toBe(t0 + BURN_UNOPENED_MS);
    expect(evil.row(conv, s).opened_at).toBeNull();
    expect((await served(relay, p.bobCookie, conv, 'limit=50')).envelopes.find((e) => e.seq === s)?.expiresAt).toBe(t0 + BURN_UNOPENED_MS);

    // Bob displays it.
    const t1 = clock;
    const lastBefore = evil.lastSeq(conv);
    await p.bobConv.markRead();
    const opened = evil.row(conv, s);
    expect(opened.expires_at).toBe(t1 + 5_000);
    expect(opened.opened_at).toBe(t1);
    expect(opened.env_expires_at).toBe(t0 + BURN_UNOPENED_MS);
    const after = (await served(relay, p.aliceCookie, conv, 'limit=50')).envelopes.find((e) => e.seq === s)!;
    expect(after.expiresAt).toBe(t1 + 5_000);
    expect(after.env.expiresAt).toBe(t0 + BURN_UNOPENED_MS);
    expect(p.bobConv.messages.value.find((m) => m.seq === s)?.expiresAt).toBe(t1 + 5_000);

    // The "opened" event: one encrypted control envelope from bob that goes with the message.
    expect(evil.lastSeq(conv)).toBe(lastBefore + 1);
    const control = evil.row(conv, lastBefore + 1);
    expect(control.type).toBe('control');
    expect(control.sender_id).toBe(evil.userId(p.b));
    expect(control.env_expires_at).toBe(t0 + BURN_UNOPENED_MS); // lasts as long as the message it names could
    expect(control.burn_after_ms).toBeNull();

    // Alice's client verifies it and brings her copy's expiry forward to openedAt + burnAfterMs.
    await waitFor(() => p.conv.messages.value.find((m) => m.seq === s)?.expiresAt === t1 + 5_000, 5000, "alice learns of bob's opening");
    await waitFor(() => p.conv.relayView.value.some((e) => e.seq === lastBefore + 1), 5000, 'alice receives the control envelope');
    expect(p.conv.relayView.value.find((e) => e.seq === lastBefore + 1)!.env).toMatchObject({ type: 'control', sender: p.b });
    expect(p.conv.messages.value.every((m) => m.event.kind === 'text')).toBe(true);
    expect(p.alice.stats.count()).toBe(0);

    // Opening again moves nothing and sends nothing.
    clock += 1_000;
    await p.bobConv.markRead();
    expect(evil.lastSeq(conv)).toBe(lastBefore + 1);
    expect(evil.row(conv, s)).toMatchObject({ expires_at: t1 + 5_000, opened_at: t1 });
    expect(p.bobConv.messages.value.find((m) => m.seq === s)?.expiresAt).toBe(t1 + 5_000);

    // At t1 + 5 s it is no longer served, and the sweep deletes it; its "opened" event stays until
    // the message's signed expiry, so a device that was away still learns it was opened.
    clock = t1 + 4_999;
    expect((await served(relay, p.bobCookie, conv, 'limit=50')).envelopes.some((e) => e.seq === s)).toBe(true);
    clock = t1 + 5_000;
    const page = await served(relay, p.bobCookie, conv, 'limit=50');
    expect(page.envelopes.some((e) => e.seq === s)).toBe(false);
    expect(page.envelopes.some((e) => e.seq === lastBefore + 1)).toBe(true);
    expect(await relay.sweeper.sweep()).toBe(1);
    expect(storedRows(relay, conv)).not.toContain(s);
    expect(storedRows(relay, conv)).toContain(lastBefore + 1);
  });

  it('moves a deletion time only for the first opening, by a member other than the sender, of a burn-after-reading envelope', async () => {
    const conv = p.conv.id;
    const t2 = clock;
    const own = await p.alice.sendText(conv, 'alice cannot start this timer', { timer: BURN });
    const timed = await p.alice.sendText(conv, 'no burn timer on this one', { timer: MINUTE });
    const far = t2 + BURN_UNOPENED_MS;

    // The sender lists her own message as opened: the relay ignores it.
    const aliceProbe = await openProbe(relay, p.aliceCookie);
    clock += 1_000;
    const ackA = await aliceProbe.request({
      t: 'send',
      env: { ...fakeEnvelope(conv, p.a, 1_000, 64), type: 'control', expiresAt: clock + 60_000 },
      opens: [own.seq!],
    });
    expect(ackA.t, JSON.stringify(ackA)).toBe('ack');
    expect(evil.row(conv, own.seq!)).toMatchObject({ expires_at: far, opened_at: null });

    // Bob lists it, and a message with no burn timer: only the first moves.
    clock += 1_000;
    const t3 = clock;
    const bobProbe = await openProbe(relay, p.bobCookie);
    const ackB = await bobProbe.request({
      t: 'send',
      env: { ...fakeEnvelope(conv, p.b, 1_000, 64), type: 'control', expiresAt: clock + 60_000 },
      opens: [own.seq!, timed.seq!],
    });
    expect(ackB.t, JSON.stringify(ackB)).toBe('ack');
    expect(evil.row(conv, own.seq!)).toMatchObject({ expires_at: t3 + 5_000, opened_at: t3 });
    expect(evil.row(conv, timed.seq!)).toMatchObject({ expires_at: t2 + 60_000, opened_at: null });

    // A second opening later leaves both the time and the first opening alone.
    clock += 2_000;
    const ackB2 = await bobProbe.request({
      t: 'send',
      env: { ...fakeEnvelope(conv, p.b, 1_001, 64), type: 'control', expiresAt: clock + 60_000 },
      opens: [own.seq!],
    });
    expect(ackB2.t, JSON.stringify(ackB2)).toBe('ack');
    expect(evil.row(conv, own.seq!)).toMatchObject({ expires_at: t3 + 5_000, opened_at: t3 });
  });
});
