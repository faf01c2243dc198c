// Per-sender counters: they continue across a user's devices (and lead each client message id),
// and a message the relay drops shows as a gap, whether history is loaded whole, in pages, or live.
import { describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/relay.ts';
import { SocketTap, bodies, tamperedRelay } from '../helpers/tamper.ts';

const { evil, pair, device } = tamperedRelay();

const texts = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix} ${i + 1}`);

describe('counters across devices', () => {
  it('a second device continues the count: no gap, no rejection', async () => {
    const { alice, bob, a, conv, bobConv } = await pair();
    for (const body of texts('phone', 3)) await alice.sendText(conv.id, body);
    const laptop = await device(a);
    const onLaptop = laptop.conversation(conv.id)!;
    expect(bodies(onLaptop)).toEqual(texts('phone', 3));
    for (const body of texts('laptop', 3)) await laptop.sendText(conv.id, body);
    await waitFor(() => conv.messages.value.length === 6, 5000, 'the phone sees the laptop messages');
    for (const body of texts('phone again', 2)) await alice.sendText(conv.id, body);
    await waitFor(() => bobConv.messages.value.length >= 8, 5000, 'bob receives all');

    const all = [...texts('phone', 3), ...texts('laptop', 3), ...texts('phone again', 2)];
    expect(bodies(bobConv)).toEqual(all);
    expect(evil.rows(conv.id).map((r) => r.counter)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    // Each id starts with its counter (newClientMsgId), on both devices, so the relay's index keeps them together.
    expect(evil.rows(conv.id).map((r) => Buffer.from(r.client_msg_id, 'base64url').readBigUInt64BE(0))).toEqual([1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n]);
    expect(bobConv.messages.value.every((m) => m.flags.length === 0)).toBe(true);
    expect(bobConv.notices.value).toEqual([]);
    expect(bob.stats.count()).toBe(0);
    const later = await device(bob.me.value!);
    expect(bodies(later.conversation(conv.id)!)).toEqual(all);
    expect(later.conversation(conv.id)!.notices.value).toEqual([]);
    expect(later.stats.count()).toBe(0);
  });

  it('a message written offline on one device while another device sent is still delivered', async () => {
    const { alice, bob, a, b, conv, bobConv } = await pair();
    await alice.sendText(conv.id, 'phone 1');
    const laptop = await device(a);
    alice.disconnect();
    await laptop.sendText(conv.id, 'laptop 1');
    // Written while offline: it waits for the connection, then goes out.
    const pending = alice.sendText(conv.id, 'phone 2, written offline');
    await waitFor(() => conv.messages.value.some((m) => m.status === 'sending'), 5000, 'the phone queues it');
    await alice.reconnect();
    const sent = await pending;
    expect(sent.status).toBe('sent');
    await waitFor(() => bobConv.messages.value.length >= 3, 5000, `${b} receives all three`);
    await alice.sendText(conv.id, 'phone 3');
    await waitFor(() => bobConv.messages.value.length >= 4, 5000, `${b} receives the fourth`);

    const all = ['phone 1', 'laptop 1', 'phone 2, written offline', 'phone 3'];
    expect(bodies(bobConv)).toEqual(all);
    expect(bob.stats.count()).toBe(0);
    await waitFor(() => conv.messages.value.length >= 4, 5000, 'the phone sees the laptop message');
    expect(bodies(conv)).toEqual(all);
    const later = await device(b);
    expect(bodies(later.conversation(conv.id)!)).toEqual(all);
    expect(later.stats.count()).toBe(0);
  });
});

describe('gap detection', () => {
  it('a message the relay deleted from the middle shows as a gap on a fresh device', async () => {
    const { alice, a, b, conv } = await pair();
    const written = texts('message', 10);
    for (const body of written) await alice.sendText(conv.id, body);
    evil.delete(conv.id, 5);

    const laptop = await device(b);
    const c = laptop.conversation(conv.id)!;
    expect(bodies(c)).toEqual(written.filter((t) => t !== 'message 5'));
    expect(c.notices.value).toEqual([{ kind: 'gap', sender: a, missing: 1, atSeq: 6, fromCounter: 5, toCounter: 5 }]);
    expect(laptop.stats.count()).toBe(0);
  });

  it('a message the relay dropped before the first one loaded shows as a gap', async () => {
    const { alice, a, b, conv } = await pair();
    for (const body of texts('message', 3)) await alice.sendText(conv.id, body);
    evil.delete(conv.id, 1);
    const laptop = await device(b);
    const c = laptop.conversation(conv.id)!;
    expect(bodies(c)).toEqual(['message 2', 'message 3']);
    expect(c.notices.value).toEqual([{ kind: 'gap', sender: a, missing: 1, atSeq: 2, fromCounter: 1, toCounter: 1 }]);
  });

  it('a gap in an older page shows when that page loads', async () => {
    const { alice, a, b, conv } = await pair();
    const written = texts('message', 70);
    for (const body of written) await alice.sendText(conv.id, body);
    evil.delete(conv.id, 10);
    evil.delete(conv.id, 11);

    const laptop = await device(b);
    const c = laptop.conversation(conv.id)!;
    expect(bodies(c)).toEqual(written.slice(20));
    expect(c.notices.value).toEqual([]);
    await c.loadOlder();
    expect(c.hasOlder.value).toBe(false);
    expect(bodies(c)).toEqual(written.filter((t) => t !== 'message 10' && t !== 'message 11'));
    expect(c.notices.value).toEqual([{ kind: 'gap', sender: a, missing: 2, atSeq: 12, fromCounter: 10, toCounter: 11 }]);
    expect(laptop.stats.count()).toBe(0);
  });

  it('a message the relay drops while bob is online shows as a gap when the next one arrives', async () => {
    const tap = new SocketTap();
    const { alice, bob, a, b, conv, bobConv } = await pair({ bob: tap.platform() });
    tap.inbound = (frame) => (frame.t === 'env' && (frame.item as { seq: number }).seq === 2 ? [] : undefined);
    await alice.sendText(conv.id, 'one');
    const two = await alice.sendText(conv.id, 'two');
    evil.delete(conv.id, two.seq!);
    await alice.sendText(conv.id, 'three');
    await waitFor(() => bobConv.messages.value.length >= 2, 5000, `${b} receives three`);
    expect(bodies(bobConv)).toEqual(['one', 'three']);
    expect(bobConv.notices.value).toEqual([{ kind: 'gap', sender: a, missing: 1, atSeq: 3, fromCounter: 2, toCounter: 2 }]);
    expect(bob.stats.count()).toBe(0);
  });
});
