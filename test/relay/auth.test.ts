// Accounts over the wire: sign-up and log-in with the SDK, what the relay receives and stores,
// enumeration decoys, brute-force throttles and the client-side password policy.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UmbraError } from '../../client/sdk/index.ts';
import { KDF_DEFAULT, fromB64, toB64 } from '../../shared/index.ts';
import {
  PASSWORD,
  api,
  authKeyFor,
  clientAt,
  dataFilesContain,
  queryDb,
  rowCounts,
  sessionTokenOf,
  startRecordingProxy,
  startTestRelay,
  uniqueName,
  type TestRelay,
} from '../helpers/relay.ts';

let relay: TestRelay;
beforeAll(async () => {
  relay = await startTestRelay();
});
afterAll(async () => {
  await relay.stop();
});

async function expectUmbraError(p: Promise<unknown>, code: string): Promise<UmbraError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(UmbraError);
  expect((err as UmbraError).code).toBe(code);
  return err as UmbraError;
}

/** POST /api/auth/login from a chosen local address (loopback has all of 127.0.0.0/8). */
/** Signs `username` up on `r` (the client disconnects again) and returns its log-in key. */
async function accountOn(r: TestRelay, username: string): Promise<Uint8Array> {
  const c = r.client();
  await c.signUp(username, PASSWORD);
  c.disconnect();
  return authKeyFor(r, username, PASSWORD);
}

function loginFrom(
  target: { url: string },
  localAddress: string,
  username: string,
  authKey: Uint8Array,
  extraHeaders: Record<string, string> = {},
): Promise<{ status: number; body: any }> {
  const body = JSON.stringify({ username, authKey: toB64(authKey) });
  const url = new URL('/api/auth/login', target.url);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'POST',
        localAddress,
        headers: { origin: url.origin, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...extraHeaders },
      },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.floor(sorted.length / 2)]!;
}

describe('accounts', () => {
  it('signs up, logs out, and logs in again from a fresh client that recovers the same keys', async () => {
    const name = uniqueName('acct');
    const first = relay.client();
    await first.signUp(name, PASSWORD);
    expect(first.me.value).toBe(name);
    const identityKey = toB64(first.identityKey);
    const cookie = first.http.cookieHeader()!;
    expect((await api(relay, 'GET', '/api/me', { cookie })).json.username).toBe(name);

    await first.logOut();
    expect(first.me.value).toBeNull();
    expect(first.http.cookieHeader()).toBeUndefined();
    expect((await api(relay, 'GET', '/api/me', { cookie })).status).toBe(401);

    const second = relay.client();
    await second.logIn(name, PASSWORD);
    expect(second.me.value).toBe(name);
    expect(toB64(second.identityKey)).toBe(identityKey);
    const published = await api(relay, 'GET', `/api/users/${name}`, { cookie: second.http.cookieHeader()! });
    expect(published.json.identityKey).toBe(identityKey);

    await expectUmbraError(relay.client().logIn(name, 'not the right password at all'), 'invalid_credentials');
    second.disconnect();
  });

  it('sends the relay an auth key and never the password, and stores only a keyed hash of that key', async () => {
    const proxy = await startRecordingProxy(relay);
    try {
      const name = uniqueName('wire');
      const peer = uniqueName('peer');
      const bob = relay.client();
      await bob.signUp(peer, PASSWORD);
      const alice = clientAt(proxy.url);
      await alice.signUp(name, PASSWORD);
      await alice.logOut();
      const again = clientAt(proxy.url);
      await again.logIn(name, PASSWORD);
      const conv = await again.startConversation(peer);
      await again.sendText(conv.id, 'a message over the recorded wire');

      const requests = proxy.requests();
      const signup = requests.find((r) => r.path === '/api/auth/signup')!;
      const login = requests.find((r) => r.path === '/api/auth/login')!;
      expect(signup).toBeDefined();
      expect(login).toBeDefined();
      const signupBody = JSON.parse(signup.body.toString());
      const loginBody = JSON.parse(login.body.toString());
      expect(Object.keys(signupBody).sort()).toEqual(['authKey', 'kdf', 'keys', 'salt', 'username', 'vault']);
      expect(Object.keys(loginBody).sort()).toEqual(['authKey', 'username']);
      const authKey = await authKeyFor(relay, name, PASSWORD);
      expect(signupBody.authKey).toBe(toB64(authKey));
      expect(loginBody.authKey).toBe(toB64(authKey));
      // The recording saw the WebSocket too, unmasked: the send frame with its ciphertext.
      const frames = proxy.wsFrames().map((f) => f.payload.toString());
      expect(frames.some((f) => f.includes('"t":"send"') && f.includes('"ct":"'))).toBe(true);

      const forms = [PASSWORD, toB64(Buffer.from(PASSWORD)), Buffer.from(PASSWORD).toString('base64'), encodeURIComponent(PASSWORD)];
      for (const bytes of proxy.sent()) for (const form of forms) expect(bytes.includes(Buffer.from(form))).toBe(false);
      for (const f of frames) for (const form of forms) expect(f.includes(form)).toBe(false);

      const [row] = queryDb<{ auth_hash: Buffer }>(relay, 'select auth_hash from users where username = ?', name);
      expect(row!.auth_hash.length).toBe(32);
      expect(Buffer.compare(row!.auth_hash, Buffer.from(authKey))).not.toBe(0);
      expect(Buffer.compare(row!.auth_hash, crypto.createHash('sha256').update(authKey).digest())).not.toBe(0);
      expect(dataFilesContain(relay, authKey)).toBe(false);
      expect(dataFilesContain(relay, toB64(authKey))).toBe(false);
      expect(dataFilesContain(relay, PASSWORD)).toBe(false);
      // The same scan does find what the relay is meant to keep: the stored hash itself.
      expect(dataFilesContain(relay, row!.auth_hash)).toBe(true);
      again.disconnect();
      bob.disconnect();
    } finally {
      await proxy.close();
    }
  });

  it('refuses log-in for an unknown user and for a wrong auth key alike: 401 invalid_credentials', async () => {
    const name = uniqueName('known');
    const c = relay.client();
    await c.signUp(name, PASSWORD);
    c.disconnect();
    const wrongKey = await api(relay, 'POST', '/api/auth/login', { body: { username: name, authKey: toB64(crypto.randomBytes(32)) } });
    const unknown = await api(relay, 'POST', '/api/auth/login', {
      body: { username: uniqueName('ghost'), authKey: toB64(crypto.randomBytes(32)) },
    });
    expect(wrongKey.status).toBe(401);
    expect(unknown.status).toBe(401);
    expect(wrongKey.json).toEqual({ error: { code: 'invalid_credentials', message: expect.any(String) } });
    expect(unknown.json).toEqual(wrongKey.json);
    expect(sessionTokenOf(wrongKey)).toBeUndefined();
    expect(sessionTokenOf(unknown)).toBeUndefined();
    const right = await api(relay, 'POST', '/api/auth/login', { body: { username: name, authKey: toB64(await authKeyFor(relay, name, PASSWORD)) } });
    expect(right.status).toBe(200);
  });
});

describe('enumeration decoy on /api/auth/salt', () => {
  it('answers unknown usernames with a stable per-name decoy of the same shape as a real salt', async () => {
    const name = uniqueName('salty');
    const c = relay.client();
    await c.signUp(name, PASSWORD);
    c.disconnect();
    const [row] = queryDb<{ salt: Buffer }>(relay, 'select salt from users where username = ?', name);

    const known = await api(relay, 'POST', '/api/auth/salt', { body: { username: name } });
    expect(known.status).toBe(200);
    expect(known.json).toEqual({ salt: toB64(row!.salt), kdf: { ...KDF_DEFAULT } });

    const ghost = uniqueName('ghost');
    const u1 = await api(relay, 'POST', '/api/auth/salt', { body: { username: ghost } });
    const u2 = await api(relay, 'POST', '/api/auth/salt', { body: { username: ghost } });
    const other = await api(relay, 'POST', '/api/auth/salt', { body: { username: uniqueName('ghost') } });
    for (const r of [u1, u2, other]) {
      expect(r.status).toBe(known.status);
      expect(Object.keys(r.json).sort()).toEqual(Object.keys(known.json).sort());
      expect(r.json.kdf).toEqual(known.json.kdf);
      expect(fromB64(r.json.salt).length).toBe(16);
      expect(r.headers.get('content-type')).toBe(known.headers.get('content-type'));
    }
    expect(u2.json.salt).toBe(u1.json.salt);
    expect(other.json.salt).not.toBe(u1.json.salt);
    expect(u1.json.salt).not.toBe(known.json.salt);
  });

  it('keeps the decoy across a restart on the same data folder, so a restart does not reveal who exists', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'umbra-decoy-'));
    try {
      const ghost = uniqueName('ghost');
      const one = await startTestRelay({ dataDir });
      const before = (await api(one, 'POST', '/api/auth/salt', { body: { username: ghost } })).json.salt;
      await one.stop();
      const two = await startTestRelay({ dataDir });
      const after = (await api(two, 'POST', '/api/auth/salt', { body: { username: ghost } })).json.salt;
      await two.stop();
      expect(after).toBe(before);
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('takes about as long for a known username as for an unknown one', async () => {
    const name = uniqueName('timed');
    const c = relay.client();
    await c.signUp(name, PASSWORD);
    c.disconnect();
    const time = async (username: string) => {
      const t0 = performance.now();
      const r = await api(relay, 'POST', '/api/auth/salt', { body: { username } });
      const ms = performance.now() - t0;
      expect(r.status).toBe(200);
      return ms;
    };
    for (let i = 0; i < 5; i++) await time(name);
    // Pairs taken back to back, in random order, so load from elsewhere hits both sides alike;
    // the median of the differences ignores the pairs a pause happened to land in.
    const differences: number[] = [];
    for (let i = 0; i < 40; i++) {
      const ghost = uniqueName('ghost');
      if (Math.random() < 0.5) {
        const k = await time(name);
        differences.push((await time(ghost)) - k);
      } else {
        const u = await time(ghost);
        differences.push(u - (await time(name)));
      }
    }
    expect(Math.abs(median(differences))).toBeLessThan(5);
  });
});

describe('brute-force throttles', () => {
  it('locks an account after N failures, even for the right key, and leaves other accounts alone', async () => {
    let now = Date.now();
    const r = await startTestRelay({ now: () => now, throttle: { accountFailures: 3, windowMs: 60_000 } });
    try {
      const victim = uniqueName('victim');
      const bystander = uniqueName('bystander');
      for (const n of [victim, bystander]) {
        const c = r.client();
        await c.signUp(n, PASSWORD);
        c.disconnect();
      }
      const rightKey = toB64(await authKeyFor(r, victim, PASSWORD));
      for (let i = 0; i < 3; i++) {
        const bad = await api(r, 'POST', '/api/auth/login', { body: { username: victim, authKey: toB64(crypto.randomBytes(32)) } });
        expect(bad.status).toBe(401);
      }
      const locked = await api(r, 'POST', '/api/auth/login', { body: { username: victim, authKey: rightKey } });
      expect(locked.status).toBe(429);
      expect(locked.json.error.code).toBe('rate_limited');
      const retry = Number(locked.headers.get('retry-after'));
      expect(Number.isInteger(retry)).toBe(true);
      expect(retry).toBeGreaterThanOrEqual(1);
      expect(retry).toBeLessThanOrEqual(60);
      expect(sessionTokenOf(locked)).toBeUndefined();
      const sdkErr = await expectUmbraError(r.client().logIn(victim, PASSWORD), 'rate_limited');
      expect(sdkErr.retryAfter).toBe(retry);

      const other = await api(r, 'POST', '/api/auth/login', { body: { username: bystander, authKey: toB64(await authKeyFor(r, bystander, PASSWORD)) } });
      expect(other.status).toBe(200);
      // The guesses came from 127.0.0.1: the owner elsewhere is not locked out by them.
      const owner = await loginFrom(r, '127.0.0.2', victim, fromB64(rightKey));
      expect(owner.status).toBe(200);

      now += 60_001;
      const later = await api(r, 'POST', '/api/auth/login', { body: { username: victim, authKey: rightKey } });
      expect(later.status).toBe(200);
    } finally {
      await r.stop();
    }
  });

  it('bounds guessing spread over many addresses at ten times the per-address allowance', async () => {
    const r = await startTestRelay({ throttle: { accountFailures: 2, addressFailures: 1000, windowMs: 60_000 } });
    try {
      const victim = uniqueName('spread');
      const key = await accountOn(r, victim);
      for (let host = 1; host <= 10; host++) {
        for (let i = 0; i < 2; i++) expect((await loginFrom(r, `127.0.1.${host}`, victim, crypto.randomBytes(32))).status).toBe(401);
      }
      const fresh = await loginFrom(r, '127.0.1.200', victim, key);
      expect(fresh.status).toBe(429);
      expect(fresh.body.error.code).toBe('rate_limited');
    } finally {
      await r.stop();
    }
  });

  it('behind a trusted proxy, counts failures against the address the proxy names, which a client cannot choose', async () => {
    const r = await startTestRelay({ trustedProxies: ['127.0.0.1'], throttle: { addressFailures: 3, accountFailures: 1000, windowMs: 60_000 } });
    try {
      const real = uniqueName('proxied');
      const key = await accountOn(r, real);
      // The proxy (127.0.0.1) appends the client's address; a client may have written anything before it.
      const via = (xff: string, k: Uint8Array, name = real) => loginFrom(r, '127.0.0.1', name, k, { 'x-forwarded-for': xff });
      for (const xff of ['203.0.113.5', '10.9.9.9, 203.0.113.5', '198.51.100.1,203.0.113.5']) {
        expect((await via(xff, crypto.randomBytes(32), uniqueName('guess'))).status).toBe(401);
      }
      const blocked = await via('203.0.113.5', key);
      expect(blocked.status).toBe(429);
      expect(blocked.body.error.code).toBe('rate_limited');
      // Another client behind the same proxy is not locked out, and neither is the proxy's own address.
      expect((await via('203.0.113.6', key)).status).toBe(200);
      expect((await loginFrom(r, '127.0.0.1', real, key)).status).toBe(200);
      // A malformed entry where the proxy's should be stops at the proxy: never an address of the client's choosing.
      expect((await via('203.0.113.5, not-an-address', key)).status).toBe(200);

      // From a peer that is not a trusted proxy the header is ignored: forging it does not escape the lock.
      for (let i = 0; i < 3; i++) {
        expect((await loginFrom(r, '127.0.0.2', uniqueName('guess'), crypto.randomBytes(32), { 'x-forwarded-for': `192.0.2.${i}` })).status).toBe(401);
      }
      const forged = await loginFrom(r, '127.0.0.2', real, key, { 'x-forwarded-for': '192.0.2.77' });
      expect(forged.status).toBe(429);
    } finally {
      await r.stop();
    }
  });

  it('ignores X-Forwarded-For when no proxy is trusted', async () => {
    const r = await startTestRelay({ throttle: { addressFailures: 2, accountFailures: 1000, windowMs: 60_000 } });
    try {
      const real = uniqueName('direct');
      const key = await accountOn(r, real);
      for (const xff of ['203.0.113.1', '203.0.113.2']) {
        expect((await loginFrom(r, '127.0.0.3', uniqueName('guess'), crypto.randomBytes(32), { 'x-forwarded-for': xff })).status).toBe(401);
      }
      const blocked = await loginFrom(r, '127.0.0.3', real, key, { 'x-forwarded-for': '203.0.113.3' });
      expect(blocked.status).toBe(429);
    } finally {
      await r.stop();
    }
  });

  it('locks an address after N failures across many usernames, and only that address', async () => {
    const r = await startTestRelay({ throttle: { addressFailures: 4, accountFailures: 1000, windowMs: 60_000 } });
    try {
      const real = uniqueName('real');
      const key = await accountOn(r, real);
      const req = (local: string, name: string, k: Uint8Array) => loginFrom(r, local, name, k);
      for (let i = 0; i < 4; i++) {
        expect((await req('127.0.0.1', uniqueName('guess'), crypto.randomBytes(32))).status).toBe(401);
      }
      const blocked = await req('127.0.0.1', real, key);
      expect(blocked.status).toBe(429);
      expect(blocked.body.error.code).toBe('rate_limited');
      const elsewhere = await req('127.0.0.2', real, key);
      expect(elsewhere.status).toBe(200);
    } finally {
      await r.stop();
    }
  });
});

describe('password policy (checked in the client; the relay never sees the password)', () => {
  it('refuses short and common passwords before anything reaches the relay', async () => {
    const proxy = await startRecordingProxy(relay);
    try {
      const before = rowCounts(relay);
      const names: string[] = [];
      for (const weak of ['seven77', 'password123', 'iloveyou']) {
        const name = uniqueName('weak');
        names.push(name);
        await expectUmbraError(clientAt(proxy.url).signUp(name, weak), 'weak_password');
      }
      expect(proxy.requests()).toEqual([]);
      expect(rowCounts(relay)).toEqual(before);
      for (const name of names) expect(queryDb(relay, 'select id from users where username = ?', name)).toEqual([]);
    } finally {
      await proxy.close();
    }
  });

  it('accepts a long passphrase and logs in with it from a fresh client', async () => {
    const name = uniqueName('long');
    const passphrase = 'a long passphrase made of many ordinary words, ' + 'ünïcødé and more '.repeat(3);
    expect(passphrase.length).toBeGreaterThan(64);
    const c = relay.client();
    await c.signUp(name, passphrase);
    c.disconnect();
    const again = relay.client();
    await again.logIn(name, passphrase);
    expect(toB64(again.identityKey)).toBe(toB64(c.identityKey));
    again.disconnect();
  });
});
