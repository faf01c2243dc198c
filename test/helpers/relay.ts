// Starts a real relay on loopback with a fresh SQLite file, capturing its log output.
import Database from 'better-sqlite3';
import crypto from 'node:crypto';
import fs from 'node:fs';
import type http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import WebSocket from 'ws';
import { defaultConfig, type ConfigOverrides, type RelayConfig } from '../../server/config.ts';
import { DB_FILE } from '../../server/db.ts';
import { startRelay, type RunningRelay } from '../../server/relay.ts';
import { deriveAccountKeys, deriveMasterKey, fromB64, initCrypto, toB64, type EnvelopeWire, type PlainEvent } from '../../shared/index.ts';
import { UmbraClient } from '../../client/sdk/index.ts';
import { nodePlatform } from '../../client/sdk/node.ts';

export interface TestRelay extends RunningRelay {
  dataDir: string;
  logs: string[];
  client(): UmbraClient;
  /** Stops the relay and keeps its files, so a test can read them afterwards; later calls do nothing. */
  close(): Promise<void>;
  /** Closes the relay (if it is not closed yet) and removes the data directory it made; later calls do nothing. */
  stop(): Promise<void>;
}

type Overrides = ConfigOverrides;

export async function startTestRelay(overrides: Overrides = {}): Promise<TestRelay> {
  const dataDir = overrides.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'umbra-test-'));
  const logs: string[] = [];
  const logStream = new Writable({
    write(chunk, _enc, cb) {
      logs.push(String(chunk));
      cb();
    },
  });
  const base = defaultConfig();
  const config = defaultConfig({
    ...overrides,
    dataDir,
    port: 0,
    logStream,
    limits: { ...base.limits, ...overrides.limits },
    throttle: { ...base.throttle, signupsPerAddress: 10_000, addressFailures: 10_000, ...overrides.throttle },
  });
  const relay = await startRelay(config);
  const close = once(() => relay.close());
  return {
    ...relay,
    dataDir,
    logs,
    client: () => new UmbraClient({ baseUrl: relay.url, platform: nodePlatform() }),
    close,
    stop: once(async () => {
      await close();
      if (!overrides.dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
    }),
  };
}

/** `run` on the first call; every later call returns that first call's promise. */
function once(run: () => Promise<void>): () => Promise<void> {
  let started: Promise<void> | undefined;
  return () => (started ??= run());
}

let counter = 0;
/** A unique, valid username. */
export function uniqueName(prefix = 'user'): string {
  counter++;
  return `${prefix}${process.pid % 10000}x${counter}${Math.floor(Math.random() * 1e6)}`.slice(0, 32);
}

/** Waits until `check` returns true (polling), or fails after `ms`. */
export async function waitFor(check: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export const PASSWORD = 'correct horse battery staple';

// ---- over-the-wire tools: raw HTTP, the SQLite file, a recording proxy, WebSocket probes ----

/** A client of the relay at `baseUrl` (for example through a recording proxy). */
export function clientAt(baseUrl: string): UmbraClient {
  return new UmbraClient({ baseUrl, platform: nodePlatform() });
}

export interface ApiOptions {
  /** Serialised as JSON unless `rawBody` is given. */
  body?: unknown;
  rawBody?: string;
  /** A full Cookie header value, e.g. from `client.http.cookieHeader()`. */
  cookie?: string;
  /** The Origin header; the relay's own by default, null for none. */
  origin?: string | null;
  contentType?: string | null;
  headers?: Record<string, string>;
}

export interface ApiResponse {
  status: number;
  headers: Headers;
  text: string;
  /** The parsed body, or undefined when it is not JSON. */
  json: any;
}

/** A raw HTTP call to the relay, made the way a same-origin page makes it unless told otherwise. */
export async function api(relay: { url: string }, method: string, path: string, o: ApiOptions = {}): Promise<ApiResponse> {
  const headers: Record<string, string> = { ...o.headers };
  const origin = o.origin === undefined ? new URL(relay.url).origin : o.origin;
  if (origin !== null) headers.origin = origin;
  if (o.cookie) headers.cookie = o.cookie;
  const hasBody = o.body !== undefined || o.rawBody !== undefined;
  const contentType = o.contentType === undefined ? (hasBody ? 'application/json' : null) : o.contentType;
  if (contentType !== null) headers['content-type'] = contentType;
  const res = await fetch(new URL(path, relay.url), {
    method,
    headers,
    body: o.rawBody !== undefined ? o.rawBody : o.body !== undefined ? JSON.stringify(o.body) : undefined,
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** The auth key a client derives from `password`, with the salt and KDF parameters the relay serves. */
export async function authKeyFor(relay: { url: string }, username: string, password: string): Promise<Uint8Array> {
  await initCrypto();
  const res = await api(relay, 'POST', '/api/auth/salt', { body: { username } });
  if (res.status !== 200) throw new Error(`salt request answered ${res.status}`);
  const master = deriveMasterKey(password, fromB64(res.json.salt), res.json.kdf);
  return deriveAccountKeys(master, username).authKey;
}

/** The session token a response sets, or undefined. */
export function sessionTokenOf(res: { headers: Headers }): string | undefined {
  for (const line of res.headers.getSetCookie()) {
    const m = /^umbra_session=([^;]*)/.exec(line);
    if (m) return m[1];
  }
  return undefined;
}

/**
 * Reads the relay's SQLite file through a connection of its own (read-only), so tests see what is
 * on disk rather than what the relay's objects say.
 */
export function queryDb<T = Record<string, unknown>>(relay: { dataDir: string }, query: string, ...params: unknown[]): T[] {
  const db = new Database(path.join(relay.dataDir, DB_FILE), { readonly: true, fileMustExist: true });
  try {
    return db.prepare(query).all(...params) as T[];
  } finally {
    db.close();
  }
}

/** Rows in each of the relay's tables, read from the file. */
export function rowCounts(relay: { dataDir: string }): Record<string, number> {
  const out: Record<string, number> = {};
  for (const table of ['users', 'sessions', 'conversations', 'members', 'wrapped_keys', 'envelopes']) {
    out[table] = queryDb<{ n: number }>(relay, `select count(*) as n from ${table}`)[0]!.n;
  }
  return out;
}

/** True if the database file or its write-ahead log holds `needle` anywhere, byte for byte. */
export function dataFilesContain(relay: { dataDir: string }, needle: Uint8Array | string): boolean {
  const bytes = typeof needle === 'string' ? Buffer.from(needle, 'utf8') : Buffer.from(needle);
  for (const suffix of ['', '-wal']) {
    const file = path.join(relay.dataDir, DB_FILE + suffix);
    if (fs.existsSync(file) && fs.readFileSync(file).includes(bytes)) return true;
  }
  return false;
}

// ---- WebSocket frames (RFC 6455 §5.2) ----

export interface WsFrame {
  fin: boolean;
  opcode: number;
  payload: Buffer;
}

/** Encodes one frame; client frames are masked (RFC 6455 §5.3). */
export function encodeWsFrame(opcode: number, payload: Uint8Array | string, o: { fin?: boolean; mask?: boolean } = {}): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : Buffer.from(payload);
  const mask = o.mask ?? true;
  const len = data.length;
  const ext = len < 126 ? 0 : len < 65536 ? 2 : 8;
  const head = Buffer.alloc(2 + ext + (mask ? 4 : 0));
  head[0] = ((o.fin ?? true) ? 0x80 : 0) | opcode;
  head[1] = (mask ? 0x80 : 0) | (ext === 0 ? len : ext === 2 ? 126 : 127);
  if (ext === 2) head.writeUInt16BE(len, 2);
  if (ext === 8) head.writeBigUInt64BE(BigInt(len), 2);
  if (!mask) return Buffer.concat([head, data]);
  const key = crypto.randomBytes(4);
  key.copy(head, 2 + ext);
  const body = Buffer.alloc(len);
  for (let i = 0; i < len; i++) body[i] = data[i]! ^ key[i % 4]!;
  return Buffer.concat([head, body]);
}

/** Decodes complete frames from the start of `buf` (masked or not); a trailing partial frame is ignored. */
export function decodeWsFrames(buf: Buffer): WsFrame[] {
  const frames: WsFrame[] = [];
  let at = 0;
  while (buf.length - at >= 2) {
    const b0 = buf[at]!;
    const b1 = buf[at + 1]!;
    let len = b1 & 0x7f;
    let p = at + 2;
    if (len === 126) {
      if (buf.length < p + 2) break;
      len = buf.readUInt16BE(p);
      p += 2;
    } else if (len === 127) {
      if (buf.length < p + 8) break;
      len = Number(buf.readBigUInt64BE(p));
      p += 8;
    }
    const masked = (b1 & 0x80) !== 0;
    const key = masked ? buf.subarray(p, p + 4) : undefined;
    if (masked) p += 4;
    if (buf.length < p + len) break;
    const payload = Buffer.from(buf.subarray(p, p + len));
    if (key) for (let i = 0; i < len; i++) payload[i] = payload[i]! ^ key[i % 4]!;
    frames.push({ fin: (b0 & 0x80) !== 0, opcode: b0 & 0x0f, payload });
    at = p + len;
  }
  return frames;
}

// ---- a recording proxy in front of the relay ----

export interface RecordedRequest {
  method: string;
  path: string;
  /** Header names in lower case. */
  headers: Record<string, string>;
  body: Buffer;
}

export interface RecordingProxy {
  /** Base URL of the proxy; clients pointed here reach the relay. */
  url: string;
  /** Every byte clients sent towards the relay, one buffer per connection. */
  sent(): Buffer[];
  /** The HTTP requests in those bytes. */
  requests(): RecordedRequest[];
  /** Payloads of the WebSocket frames clients sent, unmasked. */
  wsFrames(): WsFrame[];
  close(): Promise<void>;
}

/** A TCP proxy on loopback that forwards to `target` and records what clients send. */
export async function startRecordingProxy(target: { port: number }): Promise<RecordingProxy> {
  const connections: Buffer[][] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const chunks: Buffer[] = [];
    connections.push(chunks);
    const upstream = net.connect(target.port, '127.0.0.1');
    sockets.add(client);
    sockets.add(upstream);
    client.on('data', (d: Buffer) => {
      chunks.push(Buffer.from(d));
      upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => client.write(d));
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('close', end);
    upstream.on('close', end);
    client.on('error', end);
    upstream.on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as net.AddressInfo).port;
  const parsed = () => connections.map((c) => parseClientStream(Buffer.concat(c)));
  return {
    url: `http://127.0.0.1:${port}`,
    sent: () => connections.map((c) => Buffer.concat(c)),
    requests: () => parsed().flatMap((p) => p.requests),
    wsFrames: () => parsed().flatMap((p) => p.frames),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Splits what a client sent on one connection into HTTP requests and, after an upgrade, frames. */
function parseClientStream(buf: Buffer): { requests: RecordedRequest[]; frames: WsFrame[] } {
  const requests: RecordedRequest[] = [];
  let at = 0;
  while (at < buf.length) {
    const end = buf.indexOf('\r\n\r\n', at);
    if (end < 0) break;
    const [start, ...lines] = buf.subarray(at, end).toString('latin1').split('\r\n');
    const [method = '', reqPath = ''] = (start ?? '').split(' ');
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    at = end + 4;
    if (headers.upgrade?.toLowerCase() === 'websocket') {
      requests.push({ method, path: reqPath, headers, body: Buffer.alloc(0) });
      return { requests, frames: decodeWsFrames(buf.subarray(at)) };
    }
    let body: Buffer;
    if (headers['transfer-encoding']?.toLowerCase() === 'chunked') {
      const parts: Buffer[] = [];
      for (;;) {
        const eol = buf.indexOf('\r\n', at);
        if (eol < 0) break;
        const size = parseInt(buf.subarray(at, eol).toString('latin1'), 16);
        at = eol + 2;
        if (!size) {
          at += 2;
          break;
        }
        parts.push(buf.subarray(at, at + size));
        at += size + 2;
      }
      body = Buffer.concat(parts);
    } else {
      const len = Number(headers['content-length'] ?? 0);
      body = buf.subarray(at, at + len);
      at += len;
    }
    requests.push({ method, path: reqPath, headers, body: Buffer.from(body) });
  }
  return { requests, frames: [] };
}

// ---- WebSocket probes ----

/** The outcome of a WebSocket upgrade attempt: the HTTP status and headers the relay answered. */
export async function tryUpgrade(
  relay: { url: string },
  headers: Record<string, string>,
  o: { perMessageDeflate?: boolean } = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  const ws = new WebSocket(wsUrl(relay), { headers, perMessageDeflate: o.perMessageDeflate ?? false });
  return new Promise((resolve, reject) => {
    ws.on('upgrade', (res) => {
      resolve({ status: res.statusCode ?? 0, headers: res.headers, body: '' });
      ws.close();
    });
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    ws.on('error', (err) => reject(err));
  });
}

export function wsUrl(relay: { url: string }): string {
  return relay.url.replace(/^http/, 'ws') + '/ws';
}

/** A `ws` connection that records every frame it receives and how it closed. */
export class WsProbe {
  readonly received: any[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private nextId = 1;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => this.received.push(JSON.parse(data.toString())));
    ws.on('error', () => {});
    this.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  /** Opens a connection with the relay's own Origin and `cookie`; rejects if the upgrade is refused. */
  static open(
    relay: { url: string },
    cookie: string | undefined,
    o: { perMessageDeflate?: boolean; localAddress?: string; forwardedFor?: string } = {},
  ): Promise<WsProbe> {
    const headers: Record<string, string> = { origin: new URL(relay.url).origin };
    if (cookie) headers.cookie = cookie;
    if (o.forwardedFor !== undefined) headers['x-forwarded-for'] = o.forwardedFor;
    const ws = new WebSocket(wsUrl(relay), { headers, perMessageDeflate: o.perMessageDeflate ?? false, localAddress: o.localAddress });
    const probe = new WsProbe(ws);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(probe));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused with ${res.statusCode}`)));
      ws.once('error', reject);
    });
  }

  get open(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** Waits for the first received frame (from `from` on) that matches. */
  async next(match: (frame: any) => boolean, ms = 5000, from = 0): Promise<any> {
    let found: any;
    await waitFor(() => (found = this.received.slice(from).find(match)) !== undefined, ms, 'a matching frame');
    return found;
  }

  /** Sends a frame with a fresh request id and resolves with the reply carrying that id. */
  async request(frame: Record<string, unknown>, ms = 5000): Promise<any> {
    const id = this.nextId++;
    const from = this.received.length;
    this.send({ ...frame, id });
    return this.next((f) => f.id === id, ms, from);
  }

  close(): void {
    this.ws.close();
  }
}

/** A well-formed envelope with random contents: the relay checks shape and routing, never crypto. */
export function fakeEnvelope(conv: string, sender: string, counter: number, ctBytes = 48): EnvelopeWire {
  return {
    v: 1,
    suite: 1,
    type: 'content',
    conv,
    epoch: 0,
    sender,
    rosterHash: toB64(crypto.randomBytes(32)),
    clientMsgId: toB64(crypto.randomBytes(16)),
    counter,
    expiresAt: null,
    burnAfterMs: null,
    ct: toB64(crypto.randomBytes(ctBytes)),
    sig: toB64(crypto.randomBytes(64)),
  };
}

export interface Pair {
  alice: UmbraClient;
  bob: UmbraClient;
  a: string;
  b: string;
  conv: string;
  /** Cookie headers carrying each one's session. */
  aliceCookie: string;
  bobCookie: string;
}

/** Two signed-up users with a direct conversation between them; their SDK connections are closed. */
export async function startPair(relay: TestRelay): Promise<Pair> {
  const alice = relay.client();
  const bob = relay.client();
  const a = uniqueName('alice');
  const b = uniqueName('bob');
  await alice.signUp(a, PASSWORD);
  await bob.signUp(b, PASSWORD);
  const conv = await alice.startConversation(b);
  alice.disconnect();
  bob.disconnect();
  return { alice, bob, a, b, conv: conv.id, aliceCookie: alice.http.cookieHeader()!, bobCookie: bob.http.cookieHeader()! };
}

/** The text of a message event, or `[kind]` for events that are not text. */
export function bodyOf(event: PlainEvent): string {
  return event.kind === 'text' ? event.body : `[${event.kind}]`;
}
