// The writer thread (server/ws/writer.ts) commits envelopes on its own connection while the relay's
// event loop goes on: a read never serves an envelope the thread committed before the relay heard
// back and released it; a relay whose thread dies answers the batch it had with a retryable error
// and goes on committing on its own connection; closing waits for the batch on the thread; and a
// relay configured without the thread commits on its event loop. Real relays, files and sockets.
import { afterAll, describe, expect, it } from 'vitest';
import { WRITER_HOLDS } from '../../server/ws/writer.ts';
import Database from 'better-sqlite3';
import path from 'node:path';
import { DB_FILE } from '../../server/db.ts';
import { fakeEnvelope, queryDb, startTestRelay, waitFor, type TestRelay, type WsProbe } from '../helpers/relay.ts';
import { createRoom, liveProbe, signUpPerson } from '../relay/rooms-fixtures.ts';

const relays: TestRelay[] = [];
const probes: WsProbe[] = [];

afterAll(async () => {
  for (const p of probes) p.close();
  for (const r of relays) await r.stop().catch(() => {});
});

/** A relay with one member in one room, and that member's live socket. */
async function roomOnRelay(o: Parameters<typeof startTestRelay>[0] = {}) {
  const relay = await startTestRelay({ sweep: { intervalMs: 0 }, ...o });
  relays.push(relay);
  const ann = await signUpPerson(relay, 'ann');
  const room = await createRoom(relay, ann);
  const probe = await liveProbe(relay, ann);
  probes.push(probe);
  return { relay, ann, room, probe, lock: new Int32Array(relay.checkpointer.writeLock.buffer) };
}

const count = (relay: TestRelay, conv: string) => queryDb<{ n: number }>(relay, 'select count(*) as n from envelopes where conv_id = ?', conv)[0]!.n;

describe('the writer thread', () => {
  it('commits off the event loop, and reads never serve what it committed before the relay released it', async () => {
    const { relay, ann, room, probe, lock } = await roomOnRelay();
    expect(relay.writer?.alive).toBe(true);
    const first = await probe.request({ t: 'send', env: fakeEnvelope(room.id, ann.name, 1) });
    expect(first).toMatchObject({ t: 'ack', seq: 1 });
    expect(relay.hub.commits.stats.threadCommits).toBeGreaterThanOrEqual(1);

    // Hold the write lock as the checkpoint thread does; the next batch waits on the thread.
    expect(Atomics.compareExchange(lock, 0, 0, 2)).toBe(0);
    const second = probe.request({ t: 'send', env: fakeEnvelope(room.id, ann.name, 2) });
    await waitFor(() => Atomics.load(lock, 1) === 1, 5000, 'the writer thread waits for the lock');
    // Let it go, and keep the event loop busy until the thread has committed: the relay has not
    // heard back yet, so the envelope is in the file but must not be served.
    Atomics.store(lock, 0, 0);
    Atomics.notify(lock, 0);
    const until = performance.now() + 5000;
    while (count(relay, room.id) < 2 && performance.now() < until);
    expect(count(relay, room.id), 'the thread committed while the event loop was busy').toBe(2);
    expect(relay.store.envelopesAfter(room.id, 0, 100).items.map((e) => e.seq)).toEqual([1]);
    expect(relay.store.envelopesBefore(room.id, undefined, 100).items.map((e) => e.seq)).toEqual([1]);

    expect(await second).toMatchObject({ t: 'ack', seq: 2 });
    expect(relay.store.envelopesAfter(room.id, 0, 100).items.map((e) => e.seq)).toEqual([1, 2]);
    expect(relay.hub.commits.stats.longestLockWaitMs).toBeGreaterThan(0);
  });

  it('answers the batch of a thread that died with a retryable error, then commits on the relay connection', async () => {
    const { relay, ann, room, probe, lock } = await roomOnRelay();
    const env = fakeEnvelope(room.id, ann.name, 1);
    expect(Atomics.compareExchange(lock, 0, 0, 2)).toBe(0);
    const pending = probe.request({ t: 'send', env });
    await waitFor(() => Atomics.load(lock, 1) === 1, 5000, 'the writer thread waits for the lock');
    await relay.writer!.kill();
    expect(await pending).toMatchObject({ t: 'error', error: { code: 'internal' } });
    expect(relay.writer!.alive).toBe(false);
    expect(relay.logs.some((l) => l.includes('writer_died'))).toBe(true);
    Atomics.store(lock, 0, 0);

    // The retry (same id, same bytes) and a new envelope are stored on the relay's own connection.
    const threadCommits = relay.hub.commits.stats.threadCommits;
    expect(await probe.request({ t: 'send', env })).toMatchObject({ t: 'ack', seq: 1 });
    expect(await probe.request({ t: 'send', env: fakeEnvelope(room.id, ann.name, 2) })).toMatchObject({ t: 'ack', seq: 2 });
    expect(relay.hub.commits.stats.threadCommits).toBe(threadCommits);
    expect(relay.store.envelopesAfter(room.id, 0, 100).items.map((e) => e.seq)).toEqual([1, 2]);
  });

  it('a thread that dies holding the write lock lets go of it', async () => {
    const { relay, lock } = await roomOnRelay();
    // As if the thread had taken the lock and died inside its transaction.
    expect(Atomics.compareExchange(lock, 0, 0, WRITER_HOLDS)).toBe(0);
    await relay.writer!.kill();
    await waitFor(() => !relay.writer!.alive, 5000, 'the relay sees the thread end');
    expect(Atomics.load(lock, 0)).toBe(0);
  });

  it('closing waits for the batch on the thread: every envelope the relay read is stored', async () => {
    const { relay, ann, room, probe, lock } = await roomOnRelay();
    const envs = Array.from({ length: 20 }, (_, i) => fakeEnvelope(room.id, ann.name, i + 1));
    expect(Atomics.compareExchange(lock, 0, 0, 2)).toBe(0);
    const framesBefore = relay.hub.stats.framesIn;
    for (const env of envs) probe.send({ t: 'send', id: env.counter, env });
    await waitFor(() => relay.hub.stats.framesIn - framesBefore === envs.length && Atomics.load(lock, 1) === 1, 5000, 'the relay read every frame');
    const closed = relay.close();
    setTimeout(() => {
      Atomics.store(lock, 0, 0);
      Atomics.notify(lock, 0);
    }, 100);
    await closed;
    const db = new Database(path.join(relay.dataDir, DB_FILE), { readonly: true });
    try {
      const rows = db.prepare('select client_msg_id from envelopes where conv_id = ? order by seq').pluck().all(room.id);
      expect(rows).toEqual(envs.map((e) => e.clientMsgId));
    } finally {
      db.close();
    }
  });

  it('without the thread (writerThread: false), group commits run on the event loop', async () => {
    const { relay, ann, room, probe } = await roomOnRelay({ limits: { writerThread: false } });
    expect(relay.writer).toBeNull();
    for (let i = 1; i <= 3; i++) expect(await probe.request({ t: 'send', env: fakeEnvelope(room.id, ann.name, i) })).toMatchObject({ t: 'ack', seq: i });
    expect(relay.hub.commits.stats.commits).toBeGreaterThanOrEqual(1);
    expect(relay.hub.commits.stats.threadCommits).toBe(0);
  });
});
