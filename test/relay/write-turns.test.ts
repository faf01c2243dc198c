// Writes other than envelope commits take turns at the write lock the checkpoint thread holds while
// it sweeps: an HTTP request that writes then waits without blocking the event loop, instead of
// sleeping in SQLite's busy handler with every delivery behind it.
import Database from 'better-sqlite3';
import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WriteLock } from '../../server/checkpointer.ts';
import { DB_FILE } from '../../server/db.ts';
import { WriteTurns } from '../../server/write-turns.ts';
import { api, startPair, startTestRelay, type Pair, type TestRelay } from '../helpers/relay.ts';

/** Marks the lock as the checkpoint thread's (2), as the thread itself does. */
function holdAsThread(lock: WriteLock): () => void {
  const cell = new Int32Array(lock.buffer);
  expect(Atomics.compareExchange(cell, 0, 0, 2)).toBe(0);
  return () => {
    Atomics.store(cell, 0, 0);
    Atomics.notify(cell, 0);
  };
}

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('WriteTurns', () => {
  it('runs writes at once while the lock is free, and releases it after each', async () => {
    const lock = new WriteLock();
    const turns = new WriteTurns(lock);
    expect(await turns.run(async () => (lock.tryAcquire() ? 'free' : 'held'))).toBe('held');
    expect(lock.tryAcquire()).toBe(true);
    lock.release();
    expect(turns.stats.waited).toBe(0);
  });

  it('runs a closing write at once, also from inside a turn already granted (no wait on itself)', async () => {
    const lock = new WriteLock();
    const turns = new WriteTurns(lock);
    expect(turns.runBlocking(() => (lock.tryAcquire() ? 'free' : 'held'))).toBe('held');
    expect(lock.tryAcquire()).toBe(true);
    lock.release();
    // A turn is granted; before it runs, a close commits what is queued.
    const granted = turns.run(async () => 'turn');
    expect(turns.runBlocking(() => 'closing')).toBe('closing');
    expect(await granted).toBe('turn');
    expect(lock.tryAcquire()).toBe(true);
    lock.release();
  });

  it('holds writes back while the thread has the lock, then runs them one at a time in arrival order', async () => {
    const lock = new WriteLock();
    const turns = new WriteTurns(lock);
    const release = holdAsThread(lock);
    const order: string[] = [];
    const runs = ['a', 'b', 'c'].map((name) =>
      turns.run(async () => {
        // The relay holds the lock during its turn: the thread could not take it now.
        expect(new Int32Array(lock.buffer)[0]).toBe(1);
        order.push(name);
      }),
    );
    await tick(30);
    expect(order).toEqual([]);
    release();
    turns.unlocked();
    await Promise.all(runs);
    expect(order).toEqual(['a', 'b', 'c']);
    expect(turns.stats.waited).toBe(3);
    expect(turns.stats.longestWaitMs).toBeGreaterThanOrEqual(25);
    expect(lock.tryAcquire()).toBe(true);
  });

  it('finds the lock free without being told (the thread\'s word can go missing), and releases it when a write throws', async () => {
    const lock = new WriteLock();
    const turns = new WriteTurns(lock);
    const release = holdAsThread(lock);
    const failing = turns.run(async () => {
      throw new Error('refused');
    });
    setTimeout(release, 20);
    await expect(failing).rejects.toThrow('refused');
    expect(lock.tryAcquire()).toBe(true);
    lock.release();
  });
});

describe('an HTTP write while the checkpoint thread holds the lock', () => {
  let relay: TestRelay;
  let pair: Pair;
  beforeAll(async () => {
    relay = await startTestRelay();
    pair = await startPair(relay);
  });
  afterAll(async () => {
    await relay.stop();
  });

  it('waits off the event loop, lets reads through meanwhile, and writes once the lock is free', async () => {
    // What a sweep batch looks like from the relay: SQLite's write lock taken on another
    // connection, and the shared lock marked as the thread's.
    const other = new Database(path.join(relay.dataDir, DB_FILE));
    other.exec('BEGIN IMMEDIATE');
    const release = holdAsThread(relay.checkpointer.writeLock);
    try {
      let answered = false;
      const logout = api(relay, 'POST', '/api/auth/logout', { body: {}, cookie: pair.aliceCookie }).then((r) => {
        answered = true;
        return r;
      });
      await tick(200);
      expect(answered).toBe(false);
      // At least this one (the clients startPair used may still be saving their vaults).
      expect(relay.writeTurns.stats.waited).toBeGreaterThanOrEqual(1);
      // The event loop is free: a read is answered while the write waits.
      const me = await api(relay, 'GET', '/api/me', { cookie: pair.aliceCookie });
      expect(me.status).toBe(200);
      expect(answered).toBe(false);
      other.exec('COMMIT');
      release();
      const out = await logout;
      expect(out.status).toBe(200);
      expect(relay.writeTurns.stats.longestWaitMs).toBeGreaterThanOrEqual(150);
    } finally {
      if (other.inTransaction) other.exec('ROLLBACK');
      other.close();
      release();
    }
    // The write really happened: the session is gone.
    expect((await api(relay, 'GET', '/api/me', { cookie: pair.aliceCookie })).status).toBe(401);
    expect((await api(relay, 'GET', '/api/me', { cookie: pair.bobCookie })).status).toBe(200);
  });

  it('reads a slow body before its turn, so an upload never holds the lock', async () => {
    const url = new URL('/api/rooms/lookup', relay.url);
    const body = JSON.stringify({ nameHash: 'A'.repeat(43) });
    const req = http.request(url, {
      method: 'POST',
      // With a Content-Length the body is streamed to the handler (a chunked one the body limit reads first).
      headers: { origin: url.origin, cookie: pair.bobCookie, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) },
    });
    const status = new Promise<number>((resolve, reject) => {
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
    });
    req.write(body.slice(0, 10));
    await tick(150);
    // Half the body is in: the request has not taken the lock.
    expect(relay.checkpointer.writeLock.tryAcquire()).toBe(true);
    relay.checkpointer.writeLock.release();
    req.end(body.slice(10));
    // No room has that name: the lookup's ordinary answer, after the whole body was read.
    expect(await status).toBe(404);
  });
});
