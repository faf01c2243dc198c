// The HTTP side's limits and headers, tested with raw sockets where fetch would hide the detail:
// body size, header count and size, slow requests, security headers and the Origin check.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LIMITS, toB64 } from '../../shared/index.ts';
import { api, queryDb, rowCounts, startPair, startTestRelay, uniqueName, type Pair, type TestRelay } from '../helpers/relay.ts';

const MAX_HEADERS = 20;
const MAX_HEADER_BYTES = 4096;
const HEADERS_TIMEOUT_MS = 500;
const REQUEST_TIMEOUT_MS = 1000;

let relay: TestRelay;
let pair: Pair;
let webDir: string;
const PAGE = '<!doctype html><title>Umbra</title><script type="module" src="/assets/app.js"></script>';

beforeAll(async () => {
  webDir = fs.mkdtempSync(path.join(os.tmpdir(), 'umbra-web-'));
  fs.writeFileSync(path.join(webDir, 'index.html'), PAGE);
  relay = await startTestRelay({
    webDir,
    limits: {
      maxHeaders: MAX_HEADERS,
      maxHeaderBytes: MAX_HEADER_BYTES,
      headersTimeoutMs: HEADERS_TIMEOUT_MS,
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
    },
  });
  pair = await startPair(relay);
});
afterAll(async () => {
  await relay.stop();
  fs.rmSync(webDir, { recursive: true, force: true });
});

interface RawResult {
  /** Everything the relay sent before closing. */
  response: string;
  status: number;
  /** Milliseconds from connect until the relay closed the connection. */
  closedAfterMs: number;
}

/**
 * Writes `parts` to a raw TCP connection (waiting `gapMs` before each after the first) and collects
 * the answer until the relay closes the connection, or `giveUpMs` passes.
 */
function rawExchange(parts: (string | Buffer)[], o: { gapMs?: number; giveUpMs?: number } = {}): Promise<RawResult> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const socket = net.connect(relay.port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    const giveUp = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the relay kept the connection open for ${o.giveUpMs ?? 5000} ms`));
    }, o.giveUpMs ?? 5000);
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(giveUp);
      clearTimeout(timer);
      const response = Buffer.concat(chunks).toString('latin1');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(response)?.[1] ?? 0);
      resolve({ response, status, closedAfterMs: performance.now() - started });
    });
    socket.on('connect', () => {
      let i = 0;
      const next = () => {
        if (socket.destroyed || i >= parts.length) return;
        socket.write(parts[i++]!);
        timer = setTimeout(next, o.gapMs ?? 0);
      };
      next();
    });
  });
}

/** A complete GET with `extra` headers besides Host, and Connection: close. */
function getWithHeaders(pathname: string, extra: [string, string][]): string {
  const lines = [`GET ${pathname} HTTP/1.1`, `Host: 127.0.0.1:${relay.port}`, 'Connection: close', ...extra.map(([k, v]) => `${k}: ${v}`)];
  return lines.join('\r\n') + '\r\n\r\n';
}

/** `n` harmless headers. */
function extras(n: number): [string, string][] {
  return Array.from({ length: n }, (_, i) => [`X-Extra-${i}`, 'v']);
}

function bodyOf(raw: string): any {
  return JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4));
}

describe('body size', () => {
  it('answers 413 to a declared Content-Length over the limit and writes nothing', async () => {
    const before = rowCounts(relay);
    const name = uniqueName('big');
    const big = JSON.stringify({ username: name, pad: 'x'.repeat(LIMITS.maxBodyBytes) });
    const res = await api(relay, 'POST', '/api/auth/signup', { rawBody: big });
    expect(res.status).toBe(413);
    expect(res.json.error.code).toBe('payload_too_large');
    expect(rowCounts(relay)).toEqual(before);
  });

  it('answers 413 to a chunked body without Content-Length once it passes the limit', async () => {
    const before = rowCounts(relay);
    const url = new URL('/api/auth/signup', relay.url);
    const { status, body } = await new Promise<{ status: number; body: any }>((resolve, reject) => {
      let answered = false;
      const req = http.request(
        { host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { origin: url.origin, 'content-type': 'application/json' } },
        (res) => {
          answered = true;
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
        },
      );
      // Once the relay has answered it may close without reading the rest; that is not a failure.
      req.on('error', (err) => answered || reject(err));
      expect(req.getHeader('content-length')).toBeUndefined();
      const chunk = 'x'.repeat(16 * 1024);
      req.write('{"username":"' + uniqueName('chunk') + '","pad":"');
      let sent = 0;
      const pump = () => {
        if (answered || req.destroyed || req.writableEnded) return;
        if (sent > 2 * LIMITS.maxBodyBytes) return req.end('"}');
        sent += chunk.length;
        req.write(chunk, () => setImmediate(pump));
      };
      pump();
    });
    expect(status).toBe(413);
    expect(body.error.code).toBe('payload_too_large');
    expect(rowCounts(relay)).toEqual(before);
  });

  it('reads a body just under the limit (so the limit is where it says)', async () => {
    const body = JSON.stringify({ username: pair.a, pad: 'x'.repeat(LIMITS.maxBodyBytes - 100) });
    expect(body.length).toBeLessThanOrEqual(LIMITS.maxBodyBytes);
    const res = await api(relay, 'POST', '/api/auth/salt', { rawBody: body });
    expect(res.status).toBe(400);
    expect(res.json.error.code).toBe('bad_request');
  });
});

describe('headers', () => {
  it(`answers 431 to more than ${MAX_HEADERS} headers, and serves exactly ${MAX_HEADERS}`, async () => {
    // Host and Connection are two of the count.
    const atLimit = await rawExchange([getWithHeaders('/api/me', extras(MAX_HEADERS - 2))]);
    expect(atLimit.status).toBe(401);
    const over = await rawExchange([getWithHeaders('/api/me', extras(MAX_HEADERS - 1))]);
    expect(over.status).toBe(431);
    expect(bodyOf(over.response).error.code).toBe('bad_request');
    const far = await rawExchange([getWithHeaders('/api/me', extras(500))]);
    expect(far.status).toBe(431);
  });

  it('answers 431 to too many headers on the WebSocket upgrade too', async () => {
    const upgrade: [string, string][] = [
      ['Upgrade', 'websocket'],
      ['Sec-WebSocket-Key', crypto.randomBytes(16).toString('base64')],
      ['Sec-WebSocket-Version', '13'],
      ['Origin', relay.url],
      ['Cookie', pair.aliceCookie],
    ];
    const req = getWithHeaders('/ws', [...upgrade, ...extras(MAX_HEADERS)]).replace('Connection: close', 'Connection: Upgrade');
    const res = await rawExchange([req]);
    expect(res.status).toBe(431);
  });

  it('answers 431 to headers larger than the limit', async () => {
    const big = await rawExchange([getWithHeaders('/api/me', [['X-Big', 'a'.repeat(MAX_HEADER_BYTES + 1)]])]);
    expect(big.status).toBe(431);
    const small = await rawExchange([getWithHeaders('/api/me', [['X-Big', 'a'.repeat(MAX_HEADER_BYTES / 2)]])]);
    expect(small.status).toBe(401);
  });
});

describe('slow requests', () => {
  it('closes a connection whose request line and headers trickle in', async () => {
    const request = getWithHeaders('/api/me', extras(10));
    const bytes = [...request.slice(0, -4)]; // one character at a time, and never the end of the headers
    const res = await rawExchange(bytes, { gapMs: 50, giveUpMs: 5000 });
    expect(res.closedAfterMs).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_MS - 50);
    expect(res.closedAfterMs).toBeLessThan(HEADERS_TIMEOUT_MS * 3);
    expect(res.status).toBe(408);
  });

  it('closes a connection whose body trickles in past the request timeout', async () => {
    const head = [
      'POST /api/auth/salt HTTP/1.1',
      `Host: 127.0.0.1:${relay.port}`,
      `Origin: ${relay.url}`,
      'Content-Type: application/json',
      'Content-Length: 1000',
    ].join('\r\n');
    const body = Array.from({ length: 100 }, () => ' ');
    const res = await rawExchange([head + '\r\n\r\n', ...body], { gapMs: 50, giveUpMs: 5000 });
    expect(res.closedAfterMs).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 50);
    expect(res.closedAfterMs).toBeLessThan(REQUEST_TIMEOUT_MS * 3);
  });

  it('still serves a prompt request on the same relay', async () => {
    const res = await rawExchange([getWithHeaders('/api/me', [])]);
    expect(res.status).toBe(401);
  });
});

describe('security headers', () => {
  function checkHeaders(h: Headers): void {
    const csp = h.get('content-security-policy')!;
    expect(csp).toBeTruthy();
    const directives = new Map(
      csp.split(';').map((d) => {
        const [name, ...values] = d.trim().split(/\s+/);
        return [name!, values] as const;
      }),
    );
    const scriptSrc = directives.get('script-src') ?? directives.get('default-src')!;
    expect(scriptSrc).toBeDefined();
    expect(scriptSrc).not.toContain("'unsafe-inline'");
    expect(scriptSrc).not.toContain("'unsafe-eval'");
    expect(scriptSrc).not.toContain('*');
    expect(directives.get('default-src')).toEqual(["'self'"]);
    expect(directives.get('object-src')).toEqual(["'none'"]);
    expect(directives.get('frame-ancestors')).toEqual(["'none'"]);
    expect(h.get('x-content-type-options')).toBe('nosniff');
    expect(h.get('x-frame-options')).toBe('DENY');
    expect(h.get('referrer-policy')).toBe('no-referrer');
  }

  it('are on the page', async () => {
    const page = await fetch(relay.url + '/');
    expect(page.status).toBe(200);
    expect(await page.text()).toBe(PAGE);
    checkHeaders(page.headers);
    const deep = await fetch(relay.url + '/some/client/route');
    expect(deep.status).toBe(200);
    checkHeaders(deep.headers);
  });

  it('are on API answers, errors included', async () => {
    const cases = [
      await api(relay, 'POST', '/api/auth/salt', { body: { username: pair.a } }),
      await api(relay, 'GET', '/api/me'),
      await api(relay, 'GET', '/api/me', { cookie: pair.aliceCookie }),
      await api(relay, 'GET', '/api/no-such-endpoint'),
      await api(relay, 'POST', '/api/auth/salt', { rawBody: '{' }),
    ];
    expect(cases.map((c) => c.status)).toEqual([200, 401, 200, 404, 400]);
    for (const c of cases) {
      checkHeaders(c.headers);
      expect(c.headers.get('cache-control')).toBe('no-store');
    }
  });
});

describe('Origin check on state-changing requests', () => {
  it('refuses a foreign, missing or opaque Origin with 403 bad_origin', async () => {
    for (const origin of ['https://evil.example', `${relay.url}.evil.example`, 'null', null]) {
      const res = await api(relay, 'POST', '/api/auth/salt', { body: { username: pair.a }, origin });
      expect(res.status).toBe(403);
      expect(res.json.error.code).toBe('bad_origin');
    }
    expect((await api(relay, 'POST', '/api/auth/salt', { body: { username: pair.a } })).status).toBe(200);
  });

  it('stops a cross-site vault overwrite and a cross-site log-out', async () => {
    const before = queryDb<{ vault: Buffer; vault_version: number }>(relay, 'select vault, vault_version from users where username = ?', pair.a)[0]!;
    const put = await api(relay, 'PUT', '/api/vault', {
      body: { vault: toB64(crypto.randomBytes(64)), expectedVersion: before.vault_version },
      cookie: pair.aliceCookie,
      origin: 'https://evil.example',
    });
    expect(put.status).toBe(403);
    expect(put.json.error.code).toBe('bad_origin');
    const after = queryDb<{ vault: Buffer; vault_version: number }>(relay, 'select vault, vault_version from users where username = ?', pair.a)[0]!;
    expect(after.vault.equals(before.vault)).toBe(true);
    expect(after.vault_version).toBe(before.vault_version);

    const out = await api(relay, 'POST', '/api/auth/logout', { body: {}, cookie: pair.aliceCookie, origin: 'https://evil.example' });
    expect(out.status).toBe(403);
    expect(out.headers.getSetCookie()).toEqual([]);
    expect((await api(relay, 'GET', '/api/me', { cookie: pair.aliceCookie })).status).toBe(200);
  });

  it('admits an explicitly allowed origin', async () => {
    const r = await startTestRelay({ allowedOrigins: ['https://chat.example'] });
    try {
      const ok = await api(r, 'POST', '/api/auth/salt', { body: { username: 'someone' }, origin: 'https://chat.example' });
      expect(ok.status).toBe(200);
      const other = await api(r, 'POST', '/api/auth/salt', { body: { username: 'someone' }, origin: 'https://chat.example.evil' });
      expect(other.status).toBe(403);
    } finally {
      await r.stop();
    }
  });
});
