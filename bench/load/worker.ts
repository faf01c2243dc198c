// One load-generator thread: connects as its share of the seeded users, sends pre-built frames
// (at a fixed rate or in a closed loop) and times every delivery to a receiver other than the
// sender against the send time the sending thread wrote into shared memory.
// Hot path: no JSON.parse, no per-message allocation; a frame is classified by its first bytes,
// and (Umbra) the sender and message index are read straight out of the clientMsgId text.
import { parentPort, workerData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { WebSocket } from 'ws';
import {
  PROTOCOL_VERSION,
  SUITE_XCHACHA20_ED25519,
  decodeEvent,
  encodeEvent,
  fromB64,
  initCrypto,
  openEnvelope,
  sealEnvelope,
  toB64,
  type EnvelopeWire,
} from '../../shared/index.ts';
import { Histogram } from '../lib/hist.ts';
import type { SystemName } from '../lib/relay-ipc.ts';
import type { FromWorker, RunParams, ToWorker, WorkerInit } from './protocol.ts';

const init = workerData as WorkerInit;
const { manifest, users, ring } = init;
const sendTimes = new Float64Array(init.sendTimes);
const n = users.length;

/** Milliseconds on the process-wide monotonic clock, so times compare across threads. */
const hr = process.hrtime();
const offset = hr[0] * 1e3 + hr[1] / 1e6 - performance.now();
const now = (): number => performance.now() + offset;

function post(m: FromWorker): void {
  parentPort!.postMessage(m);
}

// ---- pre-sealed Umbra frames ------------------------------------------------------------------

const TEXTS = [
  'Running late, be there in ten minutes. Save me a seat?',
  'Did anyone read the draft I shared this morning yet??',
  'Lunch at the usual place at 12:30? I can book a table.',
  'The build is green again; thanks for fixing the tests!',
];

/** frames[c][i]: the exact `send` frame for connection c's i-th message. */
const frames: Buffer[][] = [];
let pushFrameBytes = 0;

function clientMsgId(sender: number, index: number, runBytes: Uint8Array): string {
  const b = new Uint8Array(16);
  const v = new DataView(b.buffer);
  v.setUint32(0, sender);
  v.setUint32(4, index);
  b.set(runBytes, 8);
  return toB64(b);
}

async function preseal(): Promise<number> {
  const started = performance.now();
  await initCrypto();
  const runBytes = fromB64(init.runBytes);
  for (let c = 0; c < n; c++) {
    const u = users[c]!;
    const list: Buffer[] = [];
    frames.push(list);
    const r = init.roomOfUser[u]!;
    if (init.preseal === 0 || r < 0) continue;
    const room = manifest.rooms[r]!;
    const user = manifest.users[u]!;
    const key = fromB64(room.epochKey);
    const sk = fromB64(user.signingSecret);
    const roster = fromB64(room.rosterHash);
    for (let i = 0; i < init.preseal; i++) {
      const header = {
        v: PROTOCOL_VERSION,
        suite: SUITE_XCHACHA20_ED25519,
        type: 'content' as const,
        conv: room.id,
        epoch: room.epoch,
        sender: user.name,
        rosterHash: roster,
        clientMsgId: clientMsgId(u, i, runBytes),
        counter: i + 1,
        expiresAt: null,
        burnAfterMs: null,
      };
      const sealed = sealEnvelope(header, encodeEvent({ kind: 'text', body: TEXTS[i % TEXTS.length]! }), key, sk);
      const env: EnvelopeWire = { ...sealed, rosterHash: toB64(sealed.rosterHash), ct: toB64(sealed.ct), sig: toB64(sealed.sig) };
      list.push(Buffer.from(JSON.stringify({ t: 'send', id: i + 2, env })));
      if (pushFrameBytes === 0) {
        // What the relay pushes to each member for this message (server/ws/hub.ts), for sizing the baselines' frames.
        const push = JSON.stringify({ t: 'env', conv: room.id, item: { seq: 1000, receivedAt: Date.now(), expiresAt: null, env } });
        pushFrameBytes = Buffer.byteLength(push);
      }
    }
  }
  return performance.now() - started;
}

// ---- connections ------------------------------------------------------------------------------

let system: SystemName = 'raw-ws';
const sockets: (WebSocket | null)[] = new Array(n).fill(null);
let closing = false;
let errors = 0;
const errorKinds: Record<string, number> = {};
function error(kind: string): void {
  errors++;
  errorKinds[kind] = (errorKinds[kind] ?? 0) + 1;
}

// Per-connection send state.
const nextIdx = new Uint32Array(n);
const inflight = new Uint16Array(n);
const tokens = new Float64Array(n);
const refilled = new Float64Array(n);

// Run state.
let running = false;
let params: RunParams | null = null;
let tStart = 0;
let tEnd = 0;
let sent = 0;
let delivered = 0;
let completed = 0;
let verified = 0;
let exhausted = 0;
let capWaits = 0;
let envSeen = 0;
let hist = new Histogram();
let baselineFrame = Buffer.alloc(0);

const B64_VALUE = new Int8Array(128).fill(-1);
'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'.split('').forEach((ch, i) => (B64_VALUE[ch.charCodeAt(0)] = i));
const CMID = Buffer.from('"clientMsgId":"');
const CH_A = 0x61; // a(ck)
const CH_E = 0x65; // e(nv) / e(rror)
const CH_H = 0x68; // h(ello)
const CH_N = 0x6e;
const CH_R = 0x72;

function recordDelivery(sender: number, index: number, t: number): void {
  if (t < tStart || t > tEnd) return;
  const sentAt = sendTimes[sender * ring + (index % ring)]!;
  delivered++;
  hist.record(t - sentAt);
}

/** A message of `c` completed (ack or own echo): in the closed loop, send the next one. */
function complete(c: number, t: number): void {
  if (inflight[c]! > 0) inflight[c]!--;
  if (t >= tStart && t <= tEnd) completed++;
  if (running && params!.mode === 'sat' && t < tEnd) sendOne(c, t);
}

function onUmbraFrame(c: number, me: number, data: Buffer): void {
  const t = now();
  const k = data[6];
  if (k === CH_E && data[7] === CH_N) {
    const at = data.indexOf(CMID, 100);
    if (at < 0) return error('env_without_client_msg_id');
    const p = at + CMID.length;
    let hi = 0;
    let lo = 0;
    // 11 base64url characters carry the first 66 bits: u32 sender, u32 message index.
    const v0 = B64_VALUE[data[p]!]!, v1 = B64_VALUE[data[p + 1]!]!, v2 = B64_VALUE[data[p + 2]!]!, v3 = B64_VALUE[data[p + 3]!]!;
    const v4 = B64_VALUE[data[p + 4]!]!, v5 = B64_VALUE[data[p + 5]!]!, v6 = B64_VALUE[data[p + 6]!]!, v7 = B64_VALUE[data[p + 7]!]!;
    const v8 = B64_VALUE[data[p + 8]!]!, v9 = B64_VALUE[data[p + 9]!]!, v10 = B64_VALUE[data[p + 10]!]!;
    hi = ((v0 << 26) | (v1 << 20) | (v2 << 14) | (v3 << 8) | (v4 << 2) | (v5 >> 4)) >>> 0;
    lo = (((v5 & 15) << 28) | (v6 << 22) | (v7 << 16) | (v8 << 10) | (v9 << 4) | (v10 >> 2)) >>> 0;
    if (hi === me) return; // the sender's own copy of its message
    recordDelivery(hi, lo, t);
    if (params && params.verifyEvery > 0 && ++envSeen % params.verifyEvery === 0) verify(data, hi);
    return;
  }
  if (k === CH_A) return complete(c, t);
  if (k === CH_E && data[7] === CH_R) {
    let code = 'unknown';
    try {
      code = (JSON.parse(data.toString()) as { error: { code: string } }).error.code;
    } catch {}
    error(`error_frame:${code}`);
    return complete(c, t);
  }
  if (k === CH_H) return;
  // Other pushes (conv, roster, join requests) are not expected here; they are not errors.
}

/** Opens one received envelope for real: signature by the sender, then decryption and event decoding. */
function verify(data: Buffer, sender: number): void {
  try {
    const frame = JSON.parse(data.toString()) as { item: { env: EnvelopeWire } };
    const w = frame.item.env;
    const room = manifest.rooms[init.roomOfUser[sender]!]!;
    if (w.conv !== room.id || w.sender !== manifest.users[sender]!.name) throw new Error('routed to the wrong place');
    const env = { ...w, rosterHash: fromB64(w.rosterHash), ct: fromB64(w.ct), sig: fromB64(w.sig) };
    const event = decodeEvent(openEnvelope(env, fromB64(room.epochKey), fromB64(manifest.users[sender]!.identityKey)));
    if (event.kind !== 'text') throw new Error('not a text event');
    verified++;
  } catch {
    error('verify_failed');
  }
}

function onBaselineFrame(c: number, me: number, data: Buffer): void {
  const t = now();
  const sender = data.readUInt32LE(0);
  if (sender === me) return complete(c, t);
  recordDelivery(sender, data.readUInt32LE(4), t);
}

/** Sends connection c's next message; false when it cannot (cap, exhausted, closed). */
function sendOne(c: number, t: number): boolean {
  const ws = sockets[c];
  if (!ws || ws.readyState !== WebSocket.OPEN) return false;
  const p = params!;
  if (p.mode === 'sat' && p.maxRatePerConn > 0) {
    tokens[c] = Math.min(p.maxRatePerConn, tokens[c]! + ((t - refilled[c]!) / 1000) * p.maxRatePerConn);
    refilled[c] = t;
    if (tokens[c]! < 1) {
      capWaits++;
      deferred.push(c);
      return false;
    }
    tokens[c]!--;
  }
  const i = nextIdx[c]!;
  const me = users[c]!;
  if (system === 'umbra') {
    const list = frames[c]!;
    if (i >= list.length) {
      if (i === list.length) {
        exhausted++;
        nextIdx[c] = i + 1;
      }
      return false;
    }
    sendTimes[me * ring + (i % ring)] = t;
    ws.send(list[i]!, TEXT_FRAME);
  } else {
    baselineFrame.writeUInt32LE(me, 0);
    baselineFrame.writeUInt32LE(i, 4);
    sendTimes[me * ring + (i % ring)] = t;
    ws.send(baselineFrame, BINARY_FRAME);
  }
  nextIdx[c] = i + 1;
  inflight[c]!++;
  if (t >= tStart && t <= tEnd) sent++;
  return true;
}

const TEXT_FRAME = { binary: false };
const BINARY_FRAME = { binary: true };

/** Closed-loop senders waiting for their per-connection cap. */
let deferred: number[] = [];

async function connectAll(sys: SystemName, port: number): Promise<FromWorker> {
  system = sys;
  closing = false;
  const started = performance.now();
  let ok = 0;
  let failed = 0;
  const kindsBefore = { ...errorKinds };
  let next = 0;
  const one = (c: number) =>
    new Promise<void>((resolve) => {
      const u = users[c]!;
      const user = manifest.users[u]!;
      const room = init.roomOfUser[u]!;
      const url = sys === 'umbra' ? `ws://127.0.0.1:${port}/ws` : `ws://127.0.0.1:${port}/ws?room=${room < 0 ? 'idle' : room}`;
      const headers: Record<string, string> = sys === 'umbra' ? { cookie: user.cookie, origin: `http://127.0.0.1:${port}` } : {};
      const ws = new WebSocket(url, { perMessageDeflate: false, skipUTF8Validation: true, headers });
      let settled = false;
      const settle = (good: boolean, kind?: string) => {
        if (settled) return;
        settled = true;
        if (good) {
          ok++;
          sockets[c] = ws;
        } else {
          failed++;
          error(kind ?? 'connect_failed');
          ws.terminate();
        }
        resolve();
      };
      ws.on('error', (err) => {
        if (!settled) settle(false, `connect:${(err as NodeJS.ErrnoException).code ?? err.message.slice(0, 40)}`);
        else if (!closing) error(`socket:${err.message.slice(0, 40)}`);
      });
      ws.on('close', (code, reason) => {
        sockets[c] = null;
        if (!settled) settle(false, `closed_while_connecting:${code}`);
        else if (!closing) error(`closed:${code}:${reason.toString().slice(0, 40)}`);
      });
      if (sys === 'umbra') {
        ws.on('open', () => ws.send('{"t":"hello","id":1}'));
        ws.on('message', (data: Buffer) => {
          if (!settled) {
            if (data[6] === CH_H) settle(true);
            else settle(false, 'hello_refused');
            return;
          }
          onUmbraFrame(c, u, data);
        });
      } else {
        ws.on('open', () => settle(true));
        ws.on('message', (data: Buffer) => onBaselineFrame(c, u, data));
      }
    });
  const lanes = Array.from({ length: Math.min(64, n) }, async () => {
    while (next < n) await one(next++);
  });
  await Promise.all(lanes);
  const kinds: Record<string, number> = {};
  for (const [k, v] of Object.entries(errorKinds)) if (v !== (kindsBefore[k] ?? 0)) kinds[k] = v - (kindsBefore[k] ?? 0);
  return { t: 'connected', ok, failed, ms: performance.now() - started, errorKinds: kinds };
}

function sleepUntil(t: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, t - now())));
}

async function run(p: RunParams): Promise<FromWorker> {
  params = p;
  sent = delivered = completed = verified = exhausted = capWaits = envSeen = errors = 0;
  for (const k of Object.keys(errorKinds)) delete errorKinds[k];
  hist = new Histogram();
  nextIdx.fill(0);
  inflight.fill(0);
  deferred = [];
  tStart = p.startAt + p.warmupMs;
  tEnd = tStart + p.timedMs;
  baselineFrame = Buffer.alloc(Math.max(8, p.frameBytes), 0x5a);
  await sleepUntil(p.startAt);
  running = true;
  const t0 = now();
  if (p.mode === 'sat') {
    tokens.fill(p.maxRatePerConn > 0 ? Math.min(p.maxRatePerConn, p.inflight) : 0);
    refilled.fill(t0);
    for (let k = 0; k < p.inflight; k++) for (let c = 0; c < n; c++) sendOne(c, t0);
  }
  let due = 0;
  let rr = 0;
  const tick = setInterval(() => {
    const t = now();
    if (t >= tEnd) return;
    if (p.mode === 'rate') {
      const target = Math.floor(((t - t0) / 1000) * p.ratePerSec);
      for (; due < target; due++) {
        // A connection that cannot send (closed, out of envelopes) is skipped, not retried.
        sendOne(rr, t);
        rr = (rr + 1) % n;
      }
    } else if (deferred.length) {
      const waiting = deferred;
      deferred = [];
      for (const c of waiting) sendOne(c, t);
    }
  }, 5);
  await sleepUntil(tStart);
  const elu0 = performance.eventLoopUtilization();
  await sleepUntil(tEnd);
  const elu = performance.eventLoopUtilization(elu0).utilization;
  running = false;
  clearInterval(tick);
  // Deliveries after tEnd are not counted; a short grace lets frames stamped inside the window land.
  await sleepUntil(tEnd + 50);
  return { t: 'result', sent, delivered, completed, hist: hist.data(), elu, errors, errorKinds: { ...errorKinds }, verified, exhausted, capWaits };
}

async function disconnectAll(): Promise<FromWorker> {
  closing = true;
  const open = sockets.filter((s): s is WebSocket => s !== null);
  await Promise.all(
    open.map(
      (ws) =>
        new Promise<void>((resolve) => {
          if (ws.readyState === WebSocket.CLOSED) return resolve();
          ws.once('close', () => resolve());
          ws.terminate();
        }),
    ),
  );
  sockets.fill(null);
  return { t: 'disconnected' };
}

parentPort!.on('message', (m: ToWorker) => {
  void (async () => {
    try {
      switch (m.t) {
        case 'connect':
          return post(await connectAll(m.system, m.port));
        case 'run':
          return post(await run(m));
        case 'disconnect':
          return post(await disconnectAll());
        case 'exit':
          await disconnectAll();
          parentPort!.close();
          return;
      }
    } catch (err) {
      post({ t: 'failed', message: (err as Error).stack ?? String(err) });
    }
  })();
});

preseal().then(
  (sealMs) => post({ t: 'inited', pushFrameBytes, sealMs }),
  (err: Error) => post({ t: 'failed', message: err.stack ?? String(err) }),
);
