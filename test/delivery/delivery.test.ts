// Delivery that loses nothing: durable acks, idempotent retries, resume, offline delivery,
// paging and concurrent senders, over a real relay and its SQLite file.
import Database from 'better-sqlite3';
import path from 'node:path';
import WebSocket from 'ws';
import { describe, expect, it } from 'vitest';
import type { UmbraClient } from '../../client/sdk/index.ts';
import { DB_FILE } from '../../server/db.ts';
import { fromB64, toB64 } from '../../shared/index.ts';
import { PASSWORD, bodyOf, waitFor } from '../helpers/relay.ts';
import { SocketTap, bodies, tamperedRelay, type Frame } from '../helpers/tamper.ts';

const { relay, evil, pair, device } = tamperedRelay();

/** A raw WebSocket on `client`'s session, for speaking frames the SDK would not send. */
async function rawSocket(client: UmbraClient): Promise<{ request(frame: Frame): Promise<Frame>; close(): void }> {
  const { url } = relay();
  const ws = new WebSocket(url.replace('http:', 'ws:') + '/ws', {
    headers: { cookie: client.http.cookieHeader()!, origin: url },
    perMessageDeflate: false,
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const waiting = new Map<number, (f: Frame) => void>();
  ws.on('message', (data) => {
    const frame = JSON.parse(String(data)) as Frame;
    if (typeof frame.id === 'number') waiting.get(frame.id)?.(frame);
  });
  return {
    request: (frame) =>
      new Promise((resolve) => {
        waiting.set(frame.id as number, resolve);
        ws.send(JSON.stringify(frame));
      }),
    close: () => ws.close(),
  };
}

const texts = (prefix: string, n: number, from = 1) => Array.from({ length: n }, (_, i) => `${prefix} ${from + i}`);

describe('durable acknowledgement', () => {
  it('acknowledges a message only once its row is committed in the SQLite file', async () => {
    const tap = new SocketTap();
    const { alice, conv } = await pair({ alice: tap.platform() });
    // A second, read-only connection sees only what the relay committed.
    const reader = new Database(path.join(relay().dataDir, DB_FILE), { readonly: true, fileMustExist: true });
    try {
      const read = reader.prepare('SELECT seq, client_msg_id, counter, ct, sig FROM envelopes WHERE conv_id = ? AND seq = ?');
      for (const body of texts('durable', 10)) {
        const sent = await alice.sendText(conv.id, body);
        const row = read.get(conv.id, sent.seq) as { client_msg_id: string; counter: number; ct: Buffer; sig: Buffer } | undefined;
        expect(row, `row for ${body}`).toBeDefined();
        const env = tap.sends().at(-1)!.env as { clientMsgId: string; counter: number; ct: string; sig: string };
        expect(row!.client_msg_id).toBe(sent.clientMsgId);
        expect(env.clientMsgId).toBe(sent.clientMsgId);
        expect(row!.counter).toBe(env.counter);
        expect(toB64(row!.ct)).toBe(env.ct);
        expect(toB64(row!.sig)).toBe(env.sig);
      }
      expect((reader.prepare('SELECT count(*) AS n FROM envelopes WHERE conv_id = ?').get(conv.id) as { n: number }).n).toBe(10);
    } finally {
      reader.close();
    }
  });
});

describe('idempotent sending', () => {
  it('stores a resent envelope once and acks it with the same seq; another ciphertext under its id is refused', async () => {
    const tap = new SocketTap();
    const { alice, b, conv, bobConv } = await pair({ alice: tap.platform() });
    const sent = await alice.sendText(conv.id, 'only once');
    await waitFor(() => bobConv.messages.value.length === 1, 5000, `${b} receives the first message`);
    const captured = tap.sends()[0]!;
    const env = captured.env as { clientMsgId: string; ct: string };
    expect(env.clientMsgId).toBe(sent.clientMsgId);
    const before = evil.envelopeCount();

    const raw = await rawSocket(alice);
    try {
      for (const id of [101, 102]) {
        expect(await raw.request({ ...captured, id })).toEqual({
          t: 'ack',
          id,
          conv: conv.id,
          seq: sent.seq,
          clientMsgId: sent.clientMsgId,
          receivedAt: sent.at,
        });
      }
      expect(evil.envelopeCount()).toBe(before);

      const ct = fromB64(env.ct);
      ct[ct.length - 1]! ^= 1;
      const reply = await raw.request({ ...captured, id: 103, env: { ...env, ct: toB64(ct) } });
      expect(reply).toMatchObject({ t: 'error', id: 103, error: { code: 'duplicate_message' } });
      expect(evil.envelopeCount()).toBe(before);
      expect(evil.rows(conv.id).map((r) => toB64(r.ct))).toEqual([env.ct]);
    } finally {
      raw.close();
    }

    // Pushes reach bob in order, so had a resend been pushed it would show before this one.
    await alice.sendText(conv.id, 'after the resends');
    await waitFor(() => bobConv.messages.value.length >= 2, 5000, `${b} receives the second message`);
    expect(bodies(bobConv)).toEqual(['only once', 'after the resends']);
    expect(bobConv.messages.value.map((m) => m.seq)).toEqual([1, 2]);
  });

  it('retries a send whose ack was lost with the same envelope, and the relay stores it once', async () => {
    const tap = new SocketTap();
    const { alice, bob, b, conv, bobConv } = await pair({ alice: tap.platform() });
    let cut = false;
    tap.inbound = (frame, link) => {
      if (frame.t !== 'ack' || cut) return undefined;
      cut = true; // the relay stored it, but the ack never arrives and the link drops
      link.close();
      return [];
    };
    const sent = await alice.sendText(conv.id, 'through a cut link');
    expect(cut).toBe(true);

    const sends = tap.sends();
    expect(sends.length).toBe(2);
    expect(sends[1]!.env).toEqual(sends[0]!.env);
    expect(evil.rows(conv.id).map((r) => [r.seq, r.client_msg_id])).toEqual([[sent.seq, sent.clientMsgId]]);
    expect(conv.messages.value.map((m) => [m.seq, m.status, bodyOf(m.event)])).toEqual([[sent.seq, 'sent', 'through a cut link']]);

    await alice.sendText(conv.id, 'next');
    await waitFor(() => bobConv.messages.value.length >= 2, 5000, `${b} receives both`);
    expect(bodies(bobConv)).toEqual(['through a cut link', 'next']);
    expect(alice.stats.count()).toBe(0);
    expect(bob.stats.count()).toBe(0);
  });
});

describe('resume and offline delivery', () => {
  it('after a disconnect, bob receives exactly the messages he missed, in order', async () => {
    const { alice, bob, b, conv, bobConv } = await pair();
    await alice.sendText(conv.id, 'before');
    await waitFor(() => bobConv.messages.value.length === 1, 5000, `${b} receives the first message`);
    bob.disconnect();
    const missed = texts('while away', 30);
    for (const body of missed) await alice.sendText(conv.id, body);
    expect(bodies(bobConv)).toEqual(['before']);

    await bob.reconnect();
    await waitFor(() => bobConv.messages.value.length >= 31, 10_000, `${b} catches up`);
    // Give any duplicate or stray push time to land before judging.
    await alice.sendText(conv.id, 'after');
    await waitFor(() => bobConv.messages.value.length >= 32, 5000, `${b} receives the live message`);
    expect(bodies(bobConv)).toEqual(['before', ...missed, 'after']);
    expect(bobConv.messages.value.map((m) => m.seq)).toEqual(Array.from({ length: 32 }, (_, i) => i + 1));
    expect(bobConv.messages.value.every((m) => m.flags.length === 0 && !m.mine)).toBe(true);
    expect(bobConv.notices.value).toEqual([]);
    expect(bob.stats.count()).toBe(0);
  });

  it('recovers a live message whose push the relay dropped', async () => {
    const tap = new SocketTap();
    const { alice, bob, b, conv, bobConv } = await pair({ bob: tap.platform() });
    let dropped = 0;
    tap.inbound = (frame) => {
      if (frame.t === 'env' && (frame.item as { seq: number }).seq === 2) {
        dropped++;
        return [];
      }
      return undefined;
    };
    for (const body of texts('live', 3)) await alice.sendText(conv.id, body);
    await waitFor(() => bobConv.messages.value.length >= 3, 5000, `${b} fills the hole`);
    expect(dropped).toBe(1);
    expect(bodies(bobConv)).toEqual(texts('live', 3));
    expect(tap.sent.some((f) => f.t === 'sync')).toBe(true);
    expect(bobConv.notices.value).toEqual([]);
    expect(bob.stats.count()).toBe(0);
  });

  it('delivers to a user who was logged out, on the same and on a brand-new device', async () => {
    const { alice, bob, b, conv, bobConv } = await pair();
    await alice.sendText(conv.id, 'hello');
    await waitFor(() => bobConv.messages.value.length === 1, 5000, `${b} receives hello`);
    await bob.sendText(conv.id, 'hi');
    await bob.logOut();
    const offline = texts('while logged out', 12);
    for (const body of offline) await alice.sendText(conv.id, body);
    const history = ['hello', 'hi', ...offline];

    await bob.logIn(b, PASSWORD);
    const again = bob.conversation(conv.id)!;
    expect(bodies(again)).toEqual(history);
    expect(again.messages.value.map((m) => m.mine)).toEqual(history.map((h) => h === 'hi'));

    const laptop = await device(b);
    const onLaptop = laptop.conversation(conv.id)!;
    expect(bodies(onLaptop)).toEqual(history);
    expect(onLaptop.messages.value.map((m) => m.seq)).toEqual(history.map((_, i) => i + 1));
    expect(onLaptop.hasOlder.value).toBe(false);
    for (const c of [again, onLaptop]) expect(c.notices.value).toEqual([]);
    expect(bob.stats.count()).toBe(0);
    expect(laptop.stats.count()).toBe(0);
  });
});

describe('history in pages', () => {
  it('shows the newest 50, then older pages in order with no duplicates', async () => {
    const { alice, bob, a, b, conv } = await pair();
    const all: string[] = [];
    for (let i = 1; i <= 120; i++) {
      const from = i % 3 === 0 ? bob : alice;
      const body = `${from === bob ? b : a} ${i}`;
      await from.sendText(conv.id, body);
      all.push(body);
    }
    const laptop = await device(b);
    const c = laptop.conversation(conv.id)!;
    expect(bodies(c)).toEqual(all.slice(70));
    expect(c.hasOlder.value).toBe(true);

    await c.loadOlder();
    expect(bodies(c)).toEqual(all.slice(20));
    expect(c.hasOlder.value).toBe(true);

    await c.loadOlder();
    expect(bodies(c)).toEqual(all);
    expect(c.hasOlder.value).toBe(false);
    await c.loadOlder();
    expect(c.messages.value.map((m) => m.seq)).toEqual(all.map((_, i) => i + 1));
    expect(c.messages.value.map((m) => m.mine)).toEqual(all.map((_, i) => (i + 1) % 3 === 0));
    expect(c.messages.value.every((m) => m.flags.length === 0)).toBe(true);
    expect(c.notices.value).toEqual([]);
    expect(laptop.stats.count()).toBe(0);
  });
});

describe('concurrent senders', () => {
  it('two people sending at once end with the same messages in the same order', async () => {
    const { alice, bob, a, b, conv, bobConv } = await pair();
    await Promise.all([
      Promise.all(texts(a, 20).map((body) => alice.sendText(conv.id, body))),
      Promise.all(texts(b, 20).map((body) => bob.sendText(conv.id, body))),
    ]);
    await waitFor(() => conv.messages.value.length >= 40 && bobConv.messages.value.length >= 40, 10_000, 'both see 40');
    const view = (c: typeof conv) => c.messages.value.map((m) => [m.seq, m.sender, bodyOf(m.event), m.status]);
    expect(view(bobConv)).toEqual(view(conv));
    expect(conv.messages.value.map((m) => m.seq)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    // Each sender's messages keep the order they were written in.
    expect(bodies(conv).filter((t) => t.startsWith(a + ' '))).toEqual(texts(a, 20));
    expect(bodies(conv).filter((t) => t.startsWith(b + ' '))).toEqual(texts(b, 20));
    expect(evil.rows(conv.id).map((r) => r.seq)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    for (const c of [conv, bobConv]) {
      expect(c.messages.value.every((m) => m.flags.length === 0 && m.status === 'sent')).toBe(true);
      expect(c.notices.value).toEqual([]);
    }
    expect(alice.stats.count()).toBe(0);
    expect(bob.stats.count()).toBe(0);
  });
});
