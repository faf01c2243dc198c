// Group commit keeps the delivery promises (docs/PROTOCOL.md §Delivery): a relay killed with
// SIGKILL mid-traffic loses no acknowledged envelope, never forwarded one it had not committed and
// never reuses a seq; a refused envelope in a batch leaves the others (and nothing of itself); the
// member cache follows room changes at once; the WAL stays bounded and is emptied after a sweep by
// the checkpoint thread, which ends with the relay. Real relays, real files, real sockets.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { defaultConfig } from '../../server/config.ts';
import { DB_FILE } from '../../server/db.ts';
import { RUN_MARKER_FILE } from '../../server/run-marker.ts';
import { fromB64, toB64, type EnvelopeWire } from '../../shared/index.ts';
import { startChildRelay, type ChildRelay } from '../helpers/child-relay.ts';
import { WsProbe, decodeWsFrames, encodeWsFrame, fakeEnvelope, queryDb, startTestRelay, waitFor, wsUrl, type TestRelay } from '../helpers/relay.ts';
import { addMember, createRoom, liveProbe, postChange, signUpPerson, type Person } from '../relay/rooms-fixtures.ts';

/** Frame limits out of the way: these tests push far more than a person types. */
const UNTHROTTLED = { frameRate: 1_000_000, frameBurst: 1_000_000 };

const dirs: string[] = [];
const children: ChildRelay[] = [];
const relays: TestRelay[] = [];
const probes: WsProbe[] = [];

afterAll(async () => {
  for (const p of probes) p.close();
  for (const c of children) await c.kill();
  for (const r of relays) await r.stop().catch(() => {});
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function dataDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'umbra-group-commit-'));
  dirs.push(dir);
  return dir;
}

async function probeFor(relay: { url: string }, p: Person): Promise<WsProbe> {
  const probe = await liveProbe(relay, p);
  probes.push(probe);
  return probe;
}

const walSize = (dir: string): number => {
  try {
    return fs.statSync(path.join(dir, DB_FILE + '-wal')).size;
  } catch {
    return 0;
  }
};

const settle = (ms = 150) => new Promise((r) => setTimeout(r, ms));

interface Row {
  conv_id: string;
  seq: number;
  client_msg_id: string;
  ct: Buffer;
  sig: Buffer;
}

/**
 * One sender keeping `window` send frames in flight on its socket, round-robin over `convs`,
 * recording every envelope it sent and every ack and error it got back.
 */
class Pump {
  readonly sent = new Map<string, EnvelopeWire>();
  readonly acks = new Map<string, { conv: string; seq: number; at: number }>();
  readonly errors: any[] = [];
  private readonly byFrame = new Map<number, string>();
  private inFlight = 0;
  private nextId = 1;
  private counter = 0;
  private stopped = true;

  constructor(
    readonly probe: WsProbe,
    readonly sender: string,
    readonly convs: readonly string[],
    private readonly window: number,
    private readonly ctBytes: () => number,
  ) {
    probe.ws.on('message', (data) => {
      const f = JSON.parse(String(data));
      if (f.t !== 'ack' && f.t !== 'error') return;
      const msgId = this.byFrame.get(f.id);
      if (msgId === undefined) return;
      this.inFlight--;
      if (f.t === 'ack') this.acks.set(msgId, { conv: f.conv, seq: f.seq, at: performance.now() });
      else this.errors.push(f);
      this.fill();
    });
  }

  start(): void {
    this.stopped = false;
    this.fill();
  }

  stop(): void {
    this.stopped = true;
  }

  unacked(): EnvelopeWire[] {
    return [...this.sent.values()].filter((e) => !this.acks.has(e.clientMsgId));
  }

  private fill(): void {
    while (!this.stopped && this.probe.open && this.inFlight < this.window) {
      const conv = this.convs[this.counter % this.convs.length]!;
      const env = fakeEnvelope(conv, this.sender, ++this.counter, this.ctBytes());
      const id = this.nextId++;
      this.sent.set(env.clientMsgId, env);
      this.byFrame.set(id, env.clientMsgId);
      this.inFlight++;
      this.probe.send({ t: 'send', id, env });
    }
  }
}

/** Sends every envelope (pipelined, `window` at a time) and resolves with each one's reply. */
async function sendAll(probe: WsProbe, envs: readonly EnvelopeWire[], window = 32): Promise<Map<string, any>> {
  const replies = new Map<string, any>();
  const byFrame = new Map<number, string>();
  let next = 0;
  let id = 1_000_000;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${replies.size} of ${envs.length} replies`)), 15_000);
    const pump = () => {
      while (next < envs.length && byFrame.size - replies.size < window) {
        const env = envs[next++]!;
        byFrame.set(++id, env.clientMsgId);
        probe.send({ t: 'send', id, env });
      }
      if (replies.size === envs.length) {
        clearTimeout(timer);
        probe.ws.off('message', onMessage);
        resolve();
      }
    };
    const onMessage = (data: unknown) => {
      const f = JSON.parse(String(data));
      const msgId = byFrame.get(f.id);
      if (msgId === undefined || (f.t !== 'ack' && f.t !== 'error')) return;
      replies.set(msgId, f);
      pump();
    };
    probe.ws.on('message', onMessage);
    pump();
  });
  return replies;
}

describe('a relay killed with SIGKILL in the middle of group commits', () => {
  it('loses no acknowledged envelope, forwarded none it had not committed, and never reuses a seq', async () => {
    const dir = dataDir();
    const child = await startChildRelay({ dataDir: dir, limits: UNTHROTTLED });
    children.push(child);
    const people = await Promise.all(['owner', 'bea', 'cy', 'dot'].map((n) => signUpPerson(child, n)));
    const [owner, ...others] = people as [Person, ...Person[]];
    const rooms = [await createRoom(child, owner), await createRoom(child, owner)];
    for (const room of rooms) for (const p of others) await addMember(child, room, owner, p);
    const convs = rooms.map((r) => r.id);
    const live = await Promise.all(people.map((p) => probeFor(child, p)));
    // Every member sends into both rooms with 40 frames in flight, ciphertexts of 64..1024 bytes.
    const pumps = people.map((p, i) => new Pump(live[i]!, p.name, convs, 40, () => 64 + crypto.randomInt(960)));
    for (const pump of pumps) pump.start();

    const acked = () => pumps.reduce((n, p) => n + p.acks.size, 0);
    await waitFor(() => acked() >= 1500, 15_000, '1500 acks before the crash');
    const stats = await child.stats();
    await child.kill();
    await Promise.all(live.map((p) => p.closed));
    for (const pump of pumps) pump.stop();

    // The batches really held several envelopes, and the kill came with frames in flight.
    expect(stats.commits.maxBatch, JSON.stringify(stats.commits)).toBeGreaterThan(4);
    expect(stats.commits.envelopes / stats.commits.commits).toBeGreaterThan(2);
    expect(stats.commits.failedCommits).toBe(0);
    expect(pumps.flatMap((p) => p.errors)).toEqual([]);
    const unackedBefore = pumps.reduce((n, p) => n + p.unacked().length, 0);
    expect(unackedBefore).toBeGreaterThan(0);

    // The same files, a new relay: SQLite replays (or drops) whatever the kill left in the WAL.
    const relay = await startTestRelay({ dataDir: dir, limits: UNTHROTTLED });
    relays.push(relay);
    const rows = queryDb<Row>(relay, 'select conv_id, seq, client_msg_id, ct, sig from envelopes');
    const rowOf = new Map(rows.map((r) => [`${r.conv_id}/${r.client_msg_id}`, r]));
    expect(rowOf.size, 'each client message id stored once').toBe(rows.length);
    const sentOf = new Map(pumps.flatMap((p) => [...p.sent.values()].map((e) => [`${e.conv}/${e.clientMsgId}`, e] as const)));

    // Every acknowledged envelope is on disk with the same seq and bytes.
    const seqOwner = new Map<string, string>();
    const claim = (conv: string, seq: number, msgId: string, what: string) => {
      const key = `${conv}#${seq}`;
      const first = seqOwner.get(key) ?? msgId;
      seqOwner.set(key, first);
      expect(first, `${what}: seq ${key} given to two messages`).toBe(msgId);
    };
    let ackCount = 0;
    for (const pump of pumps) {
      for (const [msgId, ack] of pump.acks) {
        ackCount++;
        const env = pump.sent.get(msgId)!;
        expect(ack.conv).toBe(env.conv);
        claim(ack.conv, ack.seq, msgId, 'ack');
        const row = rowOf.get(`${ack.conv}/${msgId}`);
        expect(row, `acked ${ack.conv}#${ack.seq} is in the database`).toBeDefined();
        expect(row!.seq).toBe(ack.seq);
        expect(toB64(row!.ct)).toBe(env.ct);
        expect(toB64(row!.sig)).toBe(env.sig);
      }
    }

    // Every envelope any member was pushed is on disk too: nothing went out before its commit.
    const maxSeen = new Map<string, number>(convs.map((c) => [c, 0]));
    let pushCount = 0;
    for (const probe of live) {
      for (const f of probe.received.filter((x) => x.t === 'env')) {
        pushCount++;
        const env = f.item.env as EnvelopeWire;
        claim(f.conv, f.item.seq, env.clientMsgId, 'push');
        expect(env).toEqual(sentOf.get(`${f.conv}/${env.clientMsgId}`));
        const row = rowOf.get(`${f.conv}/${env.clientMsgId}`);
        expect(row, `pushed ${f.conv}#${f.item.seq} is in the database`).toBeDefined();
        expect(row!.seq).toBe(f.item.seq);
        expect(toB64(row!.ct)).toBe(env.ct);
        maxSeen.set(f.conv, Math.max(maxSeen.get(f.conv)!, f.item.seq));
      }
    }
    for (const pump of pumps) for (const ack of pump.acks.values()) maxSeen.set(ack.conv, Math.max(maxSeen.get(ack.conv)!, ack.seq));
    expect(pushCount).toBeGreaterThan(ackCount);
    // Seqs in each room are 1..n without a hole: a batch's savepoints never burn one.
    for (const conv of convs) {
      const seqs = rows.filter((r) => r.conv_id === conv).map((r) => r.seq).sort((x, y) => x - y);
      expect(seqs).toEqual(seqs.map((_, i) => i + 1));
    }

    // Each sender retries what it got no ack for, same ids and bytes: each is stored exactly once.
    const again = await Promise.all(people.map((p) => probeFor(relay, p)));
    const storedUnacked = pumps.flatMap((p) => p.unacked()).filter((e) => rowOf.has(`${e.conv}/${e.clientMsgId}`)).length;
    console.log(
      `crash: ${stats.commits.commits} commits, ${stats.commits.envelopes} envelopes, largest batch ${stats.commits.maxBatch}; ` +
        `${ackCount} acks, ${pushCount} pushes seen, ${unackedBefore} unacknowledged at the kill (${storedUnacked} of them committed)`,
    );
    const retries = await Promise.all(pumps.map((pump, i) => sendAll(again[i]!, pump.unacked())));
    for (const [i, pump] of pumps.entries()) {
      for (const env of pump.unacked()) {
        const reply = retries[i]!.get(env.clientMsgId);
        expect(reply, `retry of ${env.clientMsgId}`).toMatchObject({ t: 'ack', conv: env.conv, clientMsgId: env.clientMsgId });
        const before = rowOf.get(`${env.conv}/${env.clientMsgId}`);
        if (before) expect(reply.seq, 'a retry of a committed envelope gets its first seq').toBe(before.seq);
        else expect(reply.seq, 'a new seq after the crash is past every seq seen before it').toBeGreaterThan(maxSeen.get(env.conv)!);
        claim(env.conv, reply.seq, env.clientMsgId, 'retry');
      }
    }
    // New sends after the restart get seqs past every seq anyone saw before the crash.
    for (const [i, p] of people.entries()) {
      for (const conv of convs) {
        const reply = await again[i]!.request({ t: 'send', env: fakeEnvelope(conv, p.name, 1_000_000 + i) });
        expect(reply.t).toBe('ack');
        expect(reply.seq).toBeGreaterThan(maxSeen.get(conv)!);
        claim(conv, reply.seq, reply.clientMsgId, 'after restart');
      }
    }
    const after = queryDb<{ conv_id: string; client_msg_id: string; n: number }>(relay, 'select conv_id, client_msg_id, count(*) as n from envelopes group by conv_id, client_msg_id');
    expect(after.filter((r) => r.n !== 1)).toEqual([]);
    expect(after.length).toBe(sentOf.size + people.length * convs.length);
  });
});

describe('pushes ahead of the fsync, and the seqs a power cut could take back', () => {
  it('pushes envelopes before their acks, and after an unclean stop never gives a seq a member may have seen to another envelope', async () => {
    const dir = dataDir();
    const child = await startChildRelay({ dataDir: dir, limits: UNTHROTTLED });
    children.push(child);
    const people = await Promise.all(['pia', 'quin', 'rue'].map((n) => signUpPerson(child, n)));
    const [owner, ...others] = people as [Person, ...Person[]];
    const room = await createRoom(child, owner);
    for (const p of others) await addMember(child, room, owner, p);
    const live = await Promise.all(people.map((p) => probeFor(child, p)));
    const pumps = people.map((p, i) => new Pump(live[i]!, p.name, [room.id], 40, () => 256));
    for (const pump of pumps) pump.start();
    await waitFor(() => pumps.reduce((n, p) => n + p.acks.size, 0) >= 600, 15_000, '600 acks');
    await child.kill();
    await Promise.all(live.map((p) => p.closed));
    for (const pump of pumps) pump.stop();

    // Pushed ahead of the fsync: on each sender's own socket, the echo of every message it sent
    // (the push to all members' connections, its own included) comes before the message's ack.
    let ordered = 0;
    for (const probe of live) {
      const echoAt = new Map<string, number>();
      probe.received.forEach((f, i) => {
        if (f.t === 'env') echoAt.set(f.item.env.clientMsgId, i);
        else if (f.t === 'ack') {
          expect(echoAt.get(f.clientMsgId), `the push of ${f.clientMsgId} came before its ack`).toBeLessThan(i);
          ordered++;
        }
      });
    }
    expect(ordered).toBeGreaterThanOrEqual(600);
    const pushed = new Map<number, string>();
    for (const probe of live) for (const f of probe.received.filter((x) => x.t === 'env')) pushed.set(f.item.seq, f.item.env.clientMsgId);
    const maxPushed = Math.max(...pushed.keys());

    // A power cut loses what was not fsynced, which includes envelopes already pushed. Take the
    // tail out of the file as the lost WAL would, seq counter included: everything after the last
    // acknowledged envelope, and at least the last 10 pushed (more than a power cut could take,
    // which only makes the check stricter).
    const maxAcked = Math.max(...pumps.flatMap((p) => [...p.acks.values()].map((a) => a.seq)));
    const keepUpTo = Math.min(maxAcked, maxPushed - 10);
    const db = new Database(path.join(dir, DB_FILE));
    const lost = db.prepare('delete from envelopes where conv_id = ? and seq > ?').run(room.id, keepUpTo).changes;
    db.prepare('update conversations set last_seq = ? where id = ?').run(keepUpTo, room.id);
    db.close();
    expect(lost).toBeGreaterThanOrEqual(10);
    expect(fs.existsSync(path.join(dir, RUN_MARKER_FILE)), 'the killed relay left its marker').toBe(true);

    const relay = await startTestRelay({ dataDir: dir, limits: UNTHROTTLED });
    relays.push(relay);
    expect(relay.logs.some((l) => l.includes('"event":"unclean_stop"'))).toBe(true);
    const again = await probeFor(relay, owner);
    const reply = await again.request({ t: 'send', env: fakeEnvelope(room.id, owner.name, 1_000_000) });
    expect(reply.t).toBe('ack');
    console.log(`power cut: ${pushed.size} pushed, ${lost} taken back with the tail; next seq ${reply.seq} (last pushed ${maxPushed})`);
    expect(reply.seq, 'a seq after the power cut is past every seq pushed before it').toBeGreaterThan(maxPushed);
    expect(reply.seq).toBe(keepUpTo + defaultConfig().limits.maxUnsyncedPushes + 1);
  });

  it('skips no seq after a clean stop, and removes its marker', async () => {
    const dir = dataDir();
    const first = await startTestRelay({ dataDir: dir });
    const ann = await signUpPerson(first, 'ann');
    const room = await createRoom(first, ann);
    const p1 = await liveProbe(first, ann);
    expect((await p1.request({ t: 'send', env: fakeEnvelope(room.id, ann.name, 1) })).seq).toBe(1);
    p1.close();
    expect(fs.existsSync(path.join(dir, RUN_MARKER_FILE))).toBe(true);
    await first.stop();
    expect(fs.existsSync(path.join(dir, RUN_MARKER_FILE))).toBe(false);

    const second = await startTestRelay({ dataDir: dir });
    relays.push(second);
    expect(second.logs.some((l) => l.includes('unclean_stop'))).toBe(false);
    const p2 = await probeFor(second, ann);
    expect((await p2.request({ t: 'send', env: fakeEnvelope(room.id, ann.name, 2) })).seq).toBe(2);
  });
});

/** A WebSocket opened by hand, so several frames can be written to the relay in one TCP write. */
async function rawSocket(relay: { url: string }, cookie: string): Promise<{ socket: net.Socket; frames(): any[] }> {
  const url = new URL(wsUrl(relay).replace(/^ws/, 'http'));
  const req = http.request(url, {
    headers: {
      connection: 'Upgrade',
      upgrade: 'websocket',
      'sec-websocket-version': '13',
      'sec-websocket-key': crypto.randomBytes(16).toString('base64'),
      origin: new URL(relay.url).origin,
      cookie,
    },
  });
  req.end();
  const [socket, head] = await new Promise<[net.Socket, Buffer]>((resolve, reject) => {
    req.once('upgrade', (_res, s: net.Socket, h: Buffer) => resolve([s, h]));
    req.once('response', (res) => reject(new Error(`upgrade refused with ${res.statusCode}`)));
    req.once('error', reject);
  });
  let buf = Buffer.from(head);
  socket.on('data', (d: Buffer) => (buf = Buffer.concat([buf, d])));
  return { socket, frames: () => decodeWsFrames(buf).filter((f) => f.opcode === 1).map((f) => JSON.parse(f.payload.toString('utf8'))) };
}

describe('one batch, refused envelopes in it, and the member cache', () => {
  let relay: TestRelay;
  let alice: Person;
  let bob: Person;
  let carol: Person;
  let dave: Person;

  beforeAll(async () => {
    relay = await startTestRelay({ limits: UNTHROTTLED });
    relays.push(relay);
    [alice, bob, carol, dave] = await Promise.all([signUpPerson(relay, 'alice'), signUpPerson(relay, 'bob'), signUpPerson(relay, 'carol'), signUpPerson(relay, 'dave')]);
  });

  it('refuses only the envelope that reuses an id with other bytes, acks an exact retry with its first seq, and stores the rest', async () => {
    const room = await createRoom(relay, alice);
    await addMember(relay, room, alice, bob);
    const pbob = await probeFor(relay, bob);
    const palice = await probeFor(relay, alice);
    const stored = fakeEnvelope(room.id, alice.name, 1);
    const first = await palice.request({ t: 'send', env: stored });
    expect(first.t).toBe('ack');
    // Bob's burn-after-reading envelope: opening it moves its deletion, a write a refused frame must not leave behind.
    const burnEnv = { ...fakeEnvelope(room.id, bob.name, 1), expiresAt: Date.now() + 3_600_000, burnAfterMs: 5_000 };
    const burn = await pbob.request({ t: 'send', env: burnEnv });
    expect(burn.t).toBe('ack');
    const lastSeq = () => queryDb<{ last_seq: number }>(relay, 'select last_seq from conversations where id = ?', room.id)[0]!.last_seq;
    const s = lastSeq();
    expect(s).toBe(burn.seq);
    const burnRow = () => queryDb<{ opened_at: number | null; expires_at: number }>(relay, 'select opened_at, expires_at from envelopes where conv_id = ? and seq = ?', room.id, burn.seq)[0]!;
    const burnBefore = burnRow();
    expect(burnBefore.opened_at).toBeNull();
    await waitFor(() => pbob.received.filter((f) => f.t === 'env').length === 2, 5000, 'bob sees both envelopes');

    const raw = await rawSocket(relay, alice.cookie);
    const flip = (b64: string) => {
      const bytes = fromB64(b64);
      bytes[0]! ^= 1;
      return toB64(bytes);
    };
    const x = [1, 2, 3, 4].map((i) => fakeEnvelope(room.id, alice.name, 10 + i));
    const frames = [
      { t: 'send', id: 1, env: x[0] },
      { t: 'send', id: 2, env: { ...stored, ct: flip(stored.ct) }, opens: [burn.seq] },
      { t: 'send', id: 3, env: x[1] },
      { t: 'send', id: 4, env: stored },
      { t: 'send', id: 5, env: x[2] },
      { t: 'send', id: 6, env: x[0] },
      { t: 'send', id: 7, env: { ...x[0]!, sig: flip(x[0]!.sig) } },
      { t: 'send', id: 8, env: x[3] },
    ];
    const commitsBefore = { ...relay.hub.commits.stats };
    const bobSeen = pbob.received.length;
    const timed: { start: number; ms: number }[] = [];
    relay.hub.commits.onCommitTimed = (start, ms) => timed.push({ start, ms });
    const sentAt = performance.now();
    raw.socket.write(Buffer.concat(frames.map((f) => encodeWsFrame(1, JSON.stringify(f)))));
    await waitFor(() => raw.frames().length === frames.length, 5000, 'a reply to each frame');
    relay.hub.commits.onCommitTimed = null;

    // They were one transaction, and its time was reported (what the benchmark attributes stalls with).
    expect(relay.hub.commits.stats.commits - commitsBefore.commits).toBe(1);
    expect(timed).toHaveLength(1);
    expect(timed[0]!.start).toBeGreaterThanOrEqual(sentAt);
    expect(timed[0]!.ms).toBeGreaterThanOrEqual(0);
    expect(timed[0]!.start + timed[0]!.ms).toBeLessThanOrEqual(performance.now());
    expect(relay.hub.commits.stats.envelopes - commitsBefore.envelopes).toBe(frames.length);
    const replies = new Map(raw.frames().map((f) => [f.id, f]));
    const ack = (id: number, seq: number, env: EnvelopeWire) => expect(replies.get(id), `reply to frame ${id}`).toMatchObject({ t: 'ack', conv: room.id, seq, clientMsgId: env.clientMsgId });
    ack(1, s + 1, x[0]!);
    expect(replies.get(2)).toMatchObject({ t: 'error', error: { code: 'duplicate_message' } });
    ack(3, s + 2, x[1]!);
    ack(4, first.seq, stored);
    ack(5, s + 3, x[2]!);
    ack(6, s + 1, x[0]!);
    expect(replies.get(7)).toMatchObject({ t: 'error', error: { code: 'duplicate_message' } });
    ack(8, s + 4, x[3]!);

    // On disk: the four new envelopes with their own bytes, the first one untouched, no seq burnt,
    // and nothing of the refused frame (its `opens` did not open bob's envelope).
    expect(lastSeq()).toBe(s + 4);
    const rows = queryDb<Row>(relay, 'select conv_id, seq, client_msg_id, ct, sig from envelopes where conv_id = ? order by seq', room.id);
    expect(rows.map((r) => [r.seq, r.client_msg_id, toB64(r.ct), toB64(r.sig)])).toEqual(
      [stored, burnEnv, ...x].map((e, i) => [i + 1, e.clientMsgId, e.ct, e.sig]),
    );
    expect(burnRow()).toEqual(burnBefore);

    // Pushed once each, in order; the retries and the refused frames not at all.
    await waitFor(() => pbob.received.length - bobSeen >= 4, 5000, 'bob is pushed the four');
    await settle();
    const pushed = pbob.received.slice(bobSeen).filter((f) => f.t === 'env');
    expect(pushed.map((f) => [f.item.seq, f.item.env.clientMsgId])).toEqual(x.map((e, i) => [s + 1 + i, e.clientMsgId]));

    // The control: the same `opens` on a frame that is stored does open bob's envelope.
    expect((await palice.request({ t: 'send', env: fakeEnvelope(room.id, alice.name, 20), opens: [burn.seq] })).t).toBe('ack');
    expect(burnRow().opened_at).not.toBeNull();
    raw.socket.destroy();
  });

  it('refuses a removed member on the very next send and lets an added one send at once, with the cache warm', async () => {
    const room = await createRoom(relay, alice);
    await addMember(relay, room, alice, bob);
    await addMember(relay, room, alice, carol);
    const [pbob, pcarol, pdave] = await Promise.all([probeFor(relay, bob), probeFor(relay, carol), probeFor(relay, dave)]);
    // Traffic just before the change, so the conversation's members are cached.
    for (let i = 1; i <= 3; i++) {
      for (const [probe, p] of [[pbob, bob], [pcarol, carol]] as const) expect((await probe.request({ t: 'send', env: fakeEnvelope(room.id, p.name, i) })).t).toBe('ack');
    }
    expect((await pdave.request({ t: 'send', env: fakeEnvelope(room.id, dave.name, 1) })).error.code).toBe('forbidden');
    const count = () => queryDb<{ n: number }>(relay, 'select count(*) as n from envelopes where conv_id = ?', room.id)[0]!.n;

    const epoch = room.nextEpoch();
    const removed = await postChange(relay, room, alice, room.sign(alice, { op: 'remove', member: carol.name, epoch }), [room.wrap(alice, alice), room.wrap(bob, alice)], room.sealMeta(alice));
    expect(removed.status, removed.text).toBe(201);
    const n = count();
    expect((await pcarol.request({ t: 'send', env: fakeEnvelope(room.id, carol.name, 4) })).error?.code).toBe('forbidden');
    expect(count()).toBe(n);

    await addMember(relay, room, alice, dave);
    const carolSeen = pcarol.received.length;
    const daveSays = fakeEnvelope(room.id, dave.name, 2);
    expect((await pdave.request({ t: 'send', env: daveSays })).t).toBe('ack');
    // Pushed to the members now, not to the one removed.
    for (const probe of [pbob, pdave]) await probe.next((f) => f.t === 'env' && f.item.env.clientMsgId === daveSays.clientMsgId);
    await settle();
    expect(pcarol.received.slice(carolSeen).filter((f) => f.t === 'env')).toEqual([]);

    // Leaving is a change to the members too: bob, who just sent, is refused on his next frame.
    expect((await pbob.request({ t: 'send', env: fakeEnvelope(room.id, bob.name, 4) })).t).toBe('ack');
    const left = await postChange(relay, room, bob, room.sign(bob, { op: 'leave' }));
    expect(left.status, left.text).toBe(201);
    expect((await pbob.request({ t: 'send', env: fakeEnvelope(room.id, bob.name, 5) })).error?.code).toBe('forbidden');
  });
});

describe('the WAL and the checkpoint thread', () => {
  it('keeps the WAL under its bound under sustained sends, and keeps acking', async () => {
    const dir = dataDir();
    // The defaults' proportions (8 and 64 MiB), scaled down: the thread starts the WAL over past
    // restartWalBytes; the relay steps in itself past maxWalBytes.
    const restartWalBytes = 1024 * 1024;
    const maxWalBytes = 8 * restartWalBytes;
    const child = await startChildRelay({ dataDir: dir, limits: UNTHROTTLED, wal: { maxWalBytes, restartWalBytes } });
    children.push(child);
    const people = await Promise.all(['wal1', 'wal2'].map((n) => signUpPerson(child, n)));
    const room = await createRoom(child, people[0]!);
    await addMember(child, room, people[0]!, people[1]!);
    // Two connections per person, 32 frames in flight on each, 2 KiB ciphertexts.
    const ctBytes = 2048;
    const pumps: Pump[] = [];
    for (const p of [...people, ...people]) pumps.push(new Pump(await probeFor(child, p), p.name, [room.id], 32, () => ctBytes));

    let maxWal = 0;
    const sampler = setInterval(() => (maxWal = Math.max(maxWal, walSize(dir))), 2);
    const started = performance.now();
    for (const pump of pumps) pump.start();
    await settle(3000);
    for (const pump of pumps) pump.stop();
    clearInterval(sampler);
    await waitFor(() => pumps.every((p) => p.unacked().length === 0), 10_000, 'every send acknowledged');
    const stats = await child.stats();

    expect(pumps.flatMap((p) => p.errors)).toEqual([]);
    const acks = pumps.flatMap((p) => [...p.acks.values()]);
    // Acks kept coming: no 250 ms stretch of the run went without one.
    const buckets = new Set(acks.map((a) => Math.floor((a.at - started) / 250)));
    for (let b = 0; b < 12; b++) expect(buckets.has(b), `acks in ${b * 250}..${(b + 1) * 250} ms`).toBe(true);
    // Enough was written to need the bound several times over.
    const written = acks.length * ctBytes;
    expect(written).toBeGreaterThan(4 * restartWalBytes);
    const oneBatch = stats.commits.maxBatch * (ctBytes + 1024);
    console.log(
      `wal: ${acks.length} envelopes (${(written / 2 ** 20).toFixed(1)} MiB) in 3 s, largest batch ${stats.commits.maxBatch}; ` +
        `WAL at most ${(maxWal / 2 ** 20).toFixed(2)} MiB (relay saw ${(stats.checkpoint.maxWalBytes / 2 ** 20).toFixed(2)}), ` +
        `${stats.checkpoint.passive} passive, ${stats.checkpoint.restarts} restarts, ${stats.checkpoint.forced} forced checkpoints, commits waited for the thread at most ${stats.commits.longestLockWaitMs?.toFixed(1)} ms`,
    );
    const guardSaw = child.stderr().split('\n').filter((l) => l.includes('"wal_bound"')).map((l) => JSON.parse(l) as { walBytes: number; busy: number });
    const seen = guardSaw.map((g) => `${(g.walBytes / 2 ** 20).toFixed(2)}${g.busy ? ' (busy)' : ''}`).join(', ');
    expect(stats.checkpoint.threadAlive).toBe(true);
    expect(maxWal).toBeGreaterThan(0);
    expect(maxWal, `WAL sizes (MiB) at the relay's forced checkpoints: ${seen}`).toBeLessThanOrEqual(maxWalBytes + oneBatch);

    // Closing ends everything the relay started: the process exits by itself, without the 2 s
    // grace the relay gives a checkpoint thread that does not stop when asked.
    const closed = await child.close();
    expect(closed.exitCode).toBe(0);
    expect(closed.closeMs).toBeLessThan(1500);
  });

  it('empties the WAL through the thread after sweeping expired envelopes, and closing the relay ends the thread', async () => {
    const threads = () => fs.readdirSync('/proc/self/task').length;
    let clock = Date.now();
    const relay = await startTestRelay({ now: () => clock, sweep: { intervalMs: 0 }, wal: { checkpointIntervalMs: 50 } });
    relays.push(relay);
    const [ann, ben] = await Promise.all(['ann', 'ben'].map((n) => signUpPerson(relay, n)));
    const room = await createRoom(relay, ann!);
    await addMember(relay, room, ann!, ben!);
    const [pann, pben] = await Promise.all([ann!, ben!].map((p) => probeFor(relay, p)));
    const expiring = Array.from({ length: 40 }, (_, i) => ({ ...fakeEnvelope(room.id, ann!.name, i + 1, 512), expiresAt: clock + 60_000 }));
    const keep = Array.from({ length: 10 }, (_, i) => fakeEnvelope(room.id, ben!.name, i + 1, 512));
    const [a, b] = await Promise.all([sendAll(pann!, expiring), sendAll(pben!, keep)]);
    expect([...a.values(), ...b.values()].every((r) => r.t === 'ack')).toBe(true);
    expect(walSize(relay.dataDir)).toBeGreaterThan(0);
    await waitFor(() => relay.checkpointer.stats.passive > 0, 5000, 'the thread checkpoints');
    const running = threads();

    clock += 60_001;
    expect(await relay.sweeper.sweep()).toBe(expiring.length);
    // The deletions ran on the thread's connection, none on the relay's.
    expect(relay.sweeper.stats.threadBatches).toBeGreaterThan(0);
    expect(relay.sweeper.stats.relayBatches).toBe(0);
    expect(relay.sweeper.stats.lastCheckpointBusy).toBe(0);
    expect(walSize(relay.dataDir)).toBe(0);
    expect(relay.checkpointer.stats.threadAlive).toBe(true);
    expect(relay.logs.filter((l) => l.includes('checkpointer_died') || l.includes('checkpoint_failed'))).toEqual([]);
    expect(queryDb<{ n: number }>(relay, 'select count(*) as n from envelopes where conv_id = ?', room.id)[0]!.n).toBe(keep.length);

    pann!.close();
    pben!.close();
    const t0 = performance.now();
    await relay.close();
    const closeMs = performance.now() - t0;
    expect(relay.checkpointer.stats.threadAlive).toBe(false);
    expect(relay.writer!.alive).toBe(false);
    // stop() waits up to 2 s for the thread to end by itself, then terminates it; it ended by
    // itself, and so did the writer thread.
    expect(closeMs).toBeLessThan(1500);
    expect(threads()).toBe(running - 2);
  });

  it('sweeps and empties the WAL on its own connection once the checkpoint thread is gone', async () => {
    let clock = Date.now();
    const relay = await startTestRelay({ now: () => clock, sweep: { intervalMs: 0, batch: 8 }, wal: { checkpointIntervalMs: 50 } });
    relays.push(relay);
    const [ann, ben] = await Promise.all(['ann', 'ben'].map((n) => signUpPerson(relay, n)));
    const room = await createRoom(relay, ann!);
    await addMember(relay, room, ann!, ben!);
    const pann = await probeFor(relay, ann!);
    const expiring = Array.from({ length: 30 }, (_, i) => ({ ...fakeEnvelope(room.id, ann!.name, i + 1, 512), expiresAt: clock + 60_000 }));
    const replies = await sendAll(pann, expiring);
    expect([...replies.values()].every((r) => r.t === 'ack')).toBe(true);

    await relay.checkpointer.stop();
    expect(relay.checkpointer.canSweep).toBe(false);
    clock += 60_001;
    expect(await relay.sweeper.sweep()).toBe(expiring.length);
    expect(relay.sweeper.stats.relayBatches).toBeGreaterThanOrEqual(Math.ceil(expiring.length / 8));
    expect(relay.sweeper.stats.threadBatches).toBe(0);
    expect(walSize(relay.dataDir)).toBe(0);
    expect(queryDb<{ n: number }>(relay, 'select count(*) as n from envelopes where conv_id = ?', room.id)[0]!.n).toBe(0);
    // Delivery goes on with checkpoints on the relay's connection.
    const after = await sendAll(pann, [fakeEnvelope(room.id, ann!.name, 31)]);
    expect([...after.values()][0].t).toBe('ack');
  });

  it('defers commits while the checkpoint thread holds the write lock, without holding the event loop', async () => {
    const relay = await startTestRelay({ sweep: { intervalMs: 0 } });
    relays.push(relay);
    const ann = await signUpPerson(relay, 'ann');
    const room = await createRoom(relay, ann);
    const pann = await probeFor(relay, ann);
    // Take the lock the way the thread does (2: held by the thread).
    const cell = new Int32Array(relay.checkpointer.writeLock.buffer);
    expect(Atomics.compareExchange(cell, 0, 0, 2)).toBe(0);
    const replies = sendAll(pann, [fakeEnvelope(room.id, ann.name, 1)]);
    await settle(200);
    expect(relay.hub.commits.stats.envelopes, 'nothing committed while the thread holds the lock').toBe(0);
    expect(Atomics.load(cell, 1), 'the relay has told the thread it wants the lock').toBe(1);
    // The event loop keeps serving: a ping is answered while the envelope waits.
    expect((await pann.request({ t: 'ping' })).t).toBe('pong');
    Atomics.store(cell, 0, 0);
    relay.writeTurns.unlocked();
    const got = await replies;
    expect([...got.values()][0].t).toBe('ack');
    expect(relay.hub.commits.stats.envelopes).toBe(1);
    expect(relay.hub.commits.stats.longestLockWaitMs).toBeGreaterThanOrEqual(150);
    expect(relay.hub.commits.stats.lockWaitMs).toBeGreaterThanOrEqual(150);
    expect(relay.hub.commits.stats.lockTurns).toBeGreaterThanOrEqual(1);
    expect(Atomics.load(cell, 1), 'the relay has the lock: it wants it no more').toBe(0);
    // Even without the word that the lock is free, the commit goes once it is.
    expect(Atomics.compareExchange(cell, 0, 0, 2)).toBe(0);
    const later = sendAll(pann, [fakeEnvelope(room.id, ann.name, 2)]);
    await settle(50);
    Atomics.store(cell, 0, 0);
    expect([...(await later).values()][0].t).toBe('ack');
  });

  it('keeps its checkpoint thread when the process was started with --input-type=module', async () => {
    // The way this repo runs TypeScript entry points (test/vectors/generate.ts). Worker threads
    // inherit the flag, so the relay's eval'd CommonJS worker source is parsed as an ES module.
    const child = await startChildRelay({ dataDir: dataDir(), wal: { checkpointIntervalMs: 20 } }, { inputTypeModule: true });
    children.push(child);
    await settle(300);
    const stats = await child.stats();
    const died = child.stderr().split('\n').find((l) => l.includes('checkpointer_died'));
    expect(died, 'the checkpoint thread died').toBeUndefined();
    expect(stats.checkpoint.threadAlive).toBe(true);
    expect(stats.checkpoint.passive).toBeGreaterThan(0);
  });
});
