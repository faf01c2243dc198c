// The WebSocket side under misuse: bad frames get error frames and the connection lives on; size,
// fragment, rate, connection-count and slow-reader limits close or drop; routing is by session only.
import crypto from 'node:crypto';
import net from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CLOSE, ServerFrame } from '../../shared/index.ts';
import {
  PASSWORD,
  WsProbe,
  api,
  decodeWsFrames,
  encodeWsFrame,
  fakeEnvelope,
  queryDb,
  startPair,
  startTestRelay,
  tryUpgrade,
  uniqueName,
  waitFor,
  type Pair,
  type TestRelay,
  type WsFrame,
} from '../helpers/relay.ts';

const MAX_FRAME_BYTES = 4096;
const MAX_FRAGMENTS = 4;
const FRAME_RATE = 20;
const FRAME_BURST = 5;

/** Relays started by this file; each test leaves them able to serve and free of internal errors. */
const running: TestRelay[] = [];
let relay: TestRelay;
let pair: Pair;

beforeAll(async () => {
  relay = await startTestRelay({
    limits: { maxFrameBytes: MAX_FRAME_BYTES, maxFragments: MAX_FRAGMENTS },
  });
  running.push(relay);
  pair = await startPair(relay);
});
afterAll(async () => {
  for (const r of running) await r.stop();
});
afterEach(async () => {
  for (const r of running) {
    const res = await api(r, 'POST', '/api/auth/salt', { body: { username: 'still-alive' } });
    expect(res.status).toBe(200);
    const errors = r.logs.map((l) => JSON.parse(l)).filter((l) => l.level >= 50);
    expect(errors).toEqual([]);
  }
});

async function startRelay(limits: Parameters<typeof startTestRelay>[0]): Promise<TestRelay> {
  const r = await startTestRelay(limits);
  running.push(r);
  return r;
}

function envelopeCount(r: TestRelay, conv: string): number {
  return queryDb<{ n: number }>(r, 'select count(*) as n from envelopes where conv_id = ?', conv)[0]!.n;
}

function lastSeq(r: TestRelay, conv: string): number {
  return queryDb<{ last_seq: number }>(r, 'select last_seq from conversations where id = ?', conv)[0]!.last_seq;
}

/** A ready connection: opened with `cookie`, hello answered. */
async function ready(r: TestRelay, cookie: string, o: { localAddress?: string; forwardedFor?: string } = {}): Promise<WsProbe> {
  const p = await WsProbe.open(r, cookie, o);
  const hello = await p.request({ t: 'hello' });
  expect(hello.t).toBe('hello');
  return p;
}

async function expectAlive(p: WsProbe): Promise<void> {
  expect((await p.request({ t: 'ping' })).t).toBe('pong');
}

/** A WebSocket opened by hand on a raw socket; the handshake and `then` go out in one write. */
async function rawWs(r: TestRelay, cookie: string, o: { extraHeaders?: string[]; then?: Buffer } = {}) {
  const socket = net.connect(r.port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  let received = Buffer.alloc(0);
  socket.on('data', (d: Buffer) => (received = Buffer.concat([received, d])));
  socket.on('error', () => {});
  const handshake = [
    'GET /ws HTTP/1.1',
    `Host: 127.0.0.1:${r.port}`,
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}`,
    'Sec-WebSocket-Version: 13',
    `Origin: ${r.url}`,
    `Cookie: ${cookie}`,
    ...(o.extraHeaders ?? []),
  ].join('\r\n');
  socket.write(Buffer.concat([Buffer.from(handshake + '\r\n\r\n'), o.then ?? Buffer.alloc(0)]));
  const headEnd = () => received.indexOf('\r\n\r\n');
  await waitFor(() => headEnd() >= 0, 5000, 'the upgrade response');
  const head = received.subarray(0, headEnd()).toString('latin1');
  const frames = (): WsFrame[] => decodeWsFrames(received.subarray(headEnd() + 4));
  return {
    socket,
    head,
    frames,
    async closeCode(): Promise<number> {
      let close: WsFrame | undefined;
      await waitFor(() => (close = frames().find((f) => f.opcode === 8)) !== undefined, 5000, 'a close frame');
      socket.destroy();
      return close!.payload.readUInt16BE(0);
    },
  };
}

describe('frames that fail the schema', () => {
  it('get an error frame with the request id where there is one, and the connection lives on', async () => {
    const p = await ready(relay, pair.aliceCookie);
    const cases: [frame: unknown, id: number | null][] = [
      ['{"t":"ping",', null],
      ['', null],
      ['"just a string"', null],
      ['null', null],
      [{ t: 'nope', id: 7 }, 7],
      [{ id: 8 }, 8],
      [{ t: 'ping', id: 'x' }, null],
      [{ t: 'ping', id: 0 }, null],
      [{ t: 'ping', id: 1.5 }, null],
      [{ t: 'nope', id: 2 ** 31 + 1 }, null],
      [{ t: 'ping', id: 9, extra: true }, 9],
      [{ t: 'sync', id: 10, conv: 5, after: '0', limit: 1 }, 10],
      [{ t: 'sync', id: 11, conv: pair.conv, after: 0, limit: 100_000 }, 11],
      [{ t: 'send', id: 12, env: { ...fakeEnvelope(pair.conv, pair.a, 1), ct: 5 } }, 12],
      [{ t: 'send', id: 13, env: { ...fakeEnvelope(pair.conv, pair.a, 1), surprise: 1 } }, 13],
      [{ t: 'send', id: 14, env: { ...fakeEnvelope(pair.conv, pair.a, 1), sig: 'A'.repeat(85) } }, 14],
    ];
    for (const [frame, id] of cases) {
      const from = p.received.length;
      p.send(frame);
      const reply = await p.next((f) => f.t === 'error', 5000, from);
      expect(ServerFrame.safeParse(reply).success, JSON.stringify(reply)).toBe(true);
      expect(reply, JSON.stringify(frame)).toEqual({ t: 'error', id, error: { code: 'bad_request', message: expect.any(String) } });
      await expectAlive(p);
    }
    expect(envelopeCount(relay, pair.conv)).toBe(0);
    p.close();
  });

  it('refuses envelopes the relay cannot carry, storing nothing', async () => {
    const p = await ready(relay, pair.aliceCookie);
    const bad = [
      { ...fakeEnvelope(pair.conv, pair.a, 1), v: 2 },
      { ...fakeEnvelope(pair.conv, pair.a, 1), suite: 9 },
      { ...fakeEnvelope(pair.conv, pair.a, 1), expiresAt: 1 },
      { ...fakeEnvelope(pair.conv, pair.a, 1), ct: 'A'.repeat(10) + 'B' },
      { ...fakeEnvelope(pair.conv, pair.a, 1), rosterHash: 'A'.repeat(42) + 'B' },
    ];
    for (const env of bad) {
      const reply = await p.request({ t: 'send', env });
      expect(reply.t).toBe('error');
      expect(reply.error.code).toBe('bad_request');
    }
    expect(envelopeCount(relay, pair.conv)).toBe(0);
    expect(lastSeq(relay, pair.conv)).toBe(0);
    await expectAlive(p);
    p.close();
  });

  it('closes on a binary frame (1003), which is not part of the protocol', async () => {
    const p = await ready(relay, pair.aliceCookie);
    p.ws.send(Buffer.from([1, 2, 3]));
    expect((await p.closed).code).toBe(1003);
  });
});

describe('routing is by session', () => {
  it('refuses sending into a conversation one is not a member of, or as someone else', async () => {
    const carol = relay.client();
    const c = uniqueName('carol');
    await carol.signUp(c, PASSWORD);
    carol.disconnect();
    const outsider = await ready(relay, carol.http.cookieHeader()!);
    const alice = await ready(relay, pair.aliceCookie);
    const bob = await ready(relay, pair.bobCookie);
    const before = envelopeCount(relay, pair.conv);

    const intruding = await outsider.request({ t: 'send', env: fakeEnvelope(pair.conv, c, 1) });
    expect(intruding).toMatchObject({ t: 'error', error: { code: 'forbidden' } });
    const posing = await outsider.request({ t: 'send', env: fakeEnvelope(pair.conv, pair.a, 1) });
    expect(posing).toMatchObject({ t: 'error', error: { code: 'forbidden' } });
    const reading = await outsider.request({ t: 'sync', conv: pair.conv, after: 0, limit: 10 });
    expect(reading).toMatchObject({ t: 'error', error: { code: 'forbidden' } });
    const spoofed = await alice.request({ t: 'send', env: fakeEnvelope(pair.conv, pair.b, 1) });
    expect(spoofed).toMatchObject({ t: 'error', error: { code: 'forbidden' } });
    const nowhere = await alice.request({ t: 'send', env: fakeEnvelope(crypto.randomBytes(16).toString('base64url'), pair.a, 1) });
    expect(nowhere).toMatchObject({ t: 'error', error: { code: 'not_found' } });
    expect(envelopeCount(relay, pair.conv)).toBe(before);
    expect(bob.received.some((f) => f.t === 'env')).toBe(false);
    expect(outsider.received.some((f) => f.t === 'env')).toBe(false);

    // The same connection may send as itself, and only the members hear of it.
    const env = fakeEnvelope(pair.conv, pair.a, 1);
    const ack = await alice.request({ t: 'send', env });
    expect(ack).toMatchObject({ t: 'ack', conv: pair.conv, seq: before + 1, clientMsgId: env.clientMsgId });
    const pushed = await bob.next((f) => f.t === 'env');
    expect(pushed.item.env).toEqual(env);
    await expectAlive(outsider);
    expect(outsider.received.some((f) => f.t === 'env')).toBe(false);
    for (const p of [outsider, alice, bob]) p.close();
  });

  it('closes the connections of a session that logs out (4403)', async () => {
    const bob = relay.client();
    await bob.logIn(pair.b, PASSWORD);
    bob.disconnect();
    const cookie = bob.http.cookieHeader()!;
    const p = await ready(relay, cookie);
    const other = await ready(relay, pair.bobCookie);
    await api(relay, 'POST', '/api/auth/logout', { body: {}, cookie });
    expect((await p.closed).code).toBe(CLOSE.sessionEnded);
    await expectAlive(other);
    other.close();
  });
});

describe('size and fragment limits', () => {
  it(`closes with 1009 on a message over ${MAX_FRAME_BYTES} bytes`, async () => {
    const p = await ready(relay, pair.aliceCookie);
    p.send(JSON.stringify({ t: 'ping', id: 1, pad: 'x'.repeat(MAX_FRAME_BYTES) }));
    expect((await p.closed).code).toBe(CLOSE.tooBig);
  });

  it('reassembles a message in a few fragments', async () => {
    const p = await ready(relay, pair.aliceCookie);
    const text = JSON.stringify({ t: 'ping', id: 77 });
    const parts = [text.slice(0, 5), text.slice(5, 10), text.slice(10, 15), text.slice(15)];
    expect(parts.length).toBe(MAX_FRAGMENTS);
    parts.forEach((part, i) => p.ws.send(part, { fin: i === parts.length - 1 }));
    expect(await p.next((f) => f.id === 77)).toEqual({ t: 'pong', id: 77 });
    p.close();
  });

  it(`closes with 1009 on a message in more than ${MAX_FRAGMENTS} fragments`, async () => {
    const p = await ready(relay, pair.aliceCookie);
    for (let i = 0; i < MAX_FRAGMENTS * 3; i++) p.ws.send(' ', { fin: false });
    expect((await p.closed).code).toBe(CLOSE.tooBig);
  });

  it('counts fragments that arrive in the same packet as the upgrade request', async () => {
    const fragments = Buffer.concat(Array.from({ length: MAX_FRAGMENTS * 3 }, (_, i) => encodeWsFrame(i === 0 ? 1 : 0, ' ', { fin: false })));
    const raw = await rawWs(relay, pair.aliceCookie, { then: fragments });
    expect(raw.head).toMatch(/^HTTP\/1\.1 101 /);
    expect(await raw.closeCode()).toBe(CLOSE.tooBig);
  });
});

describe('compression', () => {
  it('does not negotiate permessage-deflate even when the client offers it', async () => {
    const upgrade = await tryUpgrade(relay, { origin: relay.url, cookie: pair.aliceCookie }, { perMessageDeflate: true });
    expect(upgrade.status).toBe(101);
    expect(upgrade.headers['sec-websocket-extensions']).toBeUndefined();
    const p = await WsProbe.open(relay, pair.aliceCookie, { perMessageDeflate: true });
    expect(p.ws.extensions).toBe('');
    await expectAlive(p);
    p.close();
  });

  it('closes with 1002 on a compressed (RSV1) frame', async () => {
    const raw = await rawWs(relay, pair.aliceCookie, { extraHeaders: ['Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits'] });
    expect(raw.head).toMatch(/^HTTP\/1\.1 101 /);
    expect(raw.head.toLowerCase()).not.toContain('sec-websocket-extensions');
    const frame = encodeWsFrame(1, JSON.stringify({ t: 'ping', id: 1 }));
    frame[0] = frame[0]! | 0x40;
    raw.socket.write(frame);
    expect(await raw.closeCode()).toBe(CLOSE.protocolError);
  });
});

describe('rate and connection limits', () => {
  it(`closes with 1008 a connection that sends faster than ${FRAME_RATE} a second after a burst of ${FRAME_BURST}`, async () => {
    const r = await startRelay({ limits: { frameRate: FRAME_RATE, frameBurst: FRAME_BURST } });
    const { aliceCookie } = await startPair(r);
    const p = await ready(r, aliceCookie);
    for (let i = 0; i < FRAME_BURST * 3; i++) p.send({ t: 'ping', id: 1000 + i });
    expect((await p.closed).code).toBe(CLOSE.policy);
    const pongs = p.received.filter((f) => f.t === 'pong').length;
    expect(pongs).toBeGreaterThan(0);
    expect(pongs).toBeLessThan(FRAME_BURST + 5);
  });

  it('lets a connection that keeps to its rate go on', async () => {
    const r = await startRelay({ limits: { frameRate: FRAME_RATE, frameBurst: FRAME_BURST } });
    const { aliceCookie } = await startPair(r);
    const p = await ready(r, aliceCookie);
    for (let i = 0; i < FRAME_BURST * 4; i++) {
      await expectAlive(p);
      await new Promise((resolve) => setTimeout(resolve, 1000 / FRAME_RATE + 10));
    }
    expect(p.open).toBe(true);
    p.close();
  });

  it('closes with 1008 connections past the per-address limit, and only from that address', async () => {
    const r = await startRelay({ limits: { maxConnectionsPerAddress: 3 } });
    const { aliceCookie, bobCookie } = await startPair(r);
    await waitFor(() => r.hub.connectionCount() === 0, 5000, 'the sign-up connections to close');
    const first = await Promise.all([ready(r, aliceCookie), ready(r, bobCookie), ready(r, aliceCookie)]);
    const extra = await WsProbe.open(r, bobCookie);
    expect((await extra.closed).code).toBe(CLOSE.policy);
    expect(r.hub.connectionCount()).toBe(3);
    const elsewhere = await ready(r, bobCookie, { localAddress: '127.0.0.2' });
    expect(r.hub.connectionCount()).toBe(4);

    first[0]!.close();
    await first[0]!.closed;
    await waitFor(() => r.hub.connectionCount() === 3, 5000, 'the closed connection to be released');
    const again = await ready(r, aliceCookie);
    await expectAlive(again);
    for (const p of [...first.slice(1), elsewhere, again]) await expectAlive(p);
    for (const p of [...first, elsewhere, again]) p.close();
  });

  it('behind a trusted proxy, limits connections per forwarded address', async () => {
    const r = await startRelay({ trustedProxies: ['127.0.0.1'], limits: { maxConnectionsPerAddress: 2 } });
    const { aliceCookie, bobCookie } = await startPair(r);
    await waitFor(() => r.hub.connectionCount() === 0, 5000, 'the sign-up connections to close');
    const first = [await ready(r, aliceCookie, { forwardedFor: '203.0.113.5' }), await ready(r, bobCookie, { forwardedFor: '198.51.100.9, 203.0.113.5' })];
    const extra = await WsProbe.open(r, aliceCookie, { forwardedFor: '203.0.113.5' });
    expect((await extra.closed).code).toBe(CLOSE.policy);
    // Other clients behind the same proxy still connect.
    const other = await ready(r, bobCookie, { forwardedFor: '203.0.113.6' });
    const direct = await ready(r, aliceCookie);
    expect(r.hub.connectionCount()).toBe(4);
    for (const p of [...first, other, direct]) await expectAlive(p);
    for (const p of [...first, other, direct]) p.close();
  });

  it('terminates a connection that stops answering pings, and keeps one that answers', async () => {
    const r = await startRelay({ limits: { pingIntervalMs: 100 } });
    const { aliceCookie, bobCookie } = await startPair(r);
    await waitFor(() => r.hub.connectionCount() === 0, 5000, 'the sign-up connections to close');
    const answering = await ready(r, bobCookie);
    const silent = await rawWs(r, aliceCookie);
    expect(silent.head).toMatch(/^HTTP\/1\.1 101 /);
    const started = performance.now();
    await new Promise<void>((resolve) => silent.socket.once('close', () => resolve()));
    expect(performance.now() - started).toBeLessThan(2000);
    expect(silent.frames().some((f) => f.opcode === 9)).toBe(true);
    await waitFor(() => r.hub.connectionCount() === 1, 5000, 'the silent connection to be released');
    await expectAlive(answering);
    answering.close();
  });

  it('drops a member that stops reading, and counts it', async () => {
    const r = await startRelay({ limits: { maxBufferedBytes: 64 * 1024, frameRate: 10_000, frameBurst: 10_000 } });
    const { a, conv, aliceCookie, bobCookie } = await startPair(r);
    const slow = await ready(r, bobCookie);
    const sender = await ready(r, aliceCookie);
    slow.ws.pause();
    expect(r.hub.stats.slowReadersDropped).toBe(0);
    // Kernel buffers on loopback take several megabytes before the relay's own buffer grows.
    let counter = 0;
    while (r.hub.stats.slowReadersDropped === 0 && counter < 600) {
      const batch = Array.from({ length: 8 }, () => sender.request({ t: 'send', env: fakeEnvelope(conv, a, ++counter, 60 * 1024) }));
      for (const ack of await Promise.all(batch)) expect(ack.t).toBe('ack');
    }
    expect(r.hub.stats.slowReadersDropped).toBe(1);
    await waitFor(() => r.hub.connectionCount() === 1, 5000, 'the slow reader to be gone');
    await expectAlive(sender);
    slow.ws.resume();
    expect((await slow.closed).code).toBe(1006);
    sender.close();
  });
});
