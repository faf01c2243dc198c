// The session cookie and the authenticated WebSocket upgrade, checked with raw HTTP.
import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toB64 } from '../../shared/index.ts';
import {
  PASSWORD,
  api,
  authKeyFor,
  dataFilesContain,
  queryDb,
  sessionTokenOf,
  startTestRelay,
  tryUpgrade,
  uniqueName,
  type TestRelay,
} from '../helpers/relay.ts';

let now = Date.now();
let relay: TestRelay;
beforeAll(async () => {
  relay = await startTestRelay({ now: () => now, sessionTtlMs: 3_600_000 });
});
afterAll(async () => {
  await relay.stop();
});

async function signUp(r: TestRelay): Promise<string> {
  const name = uniqueName('sess');
  const c = r.client();
  await c.signUp(name, PASSWORD);
  c.disconnect();
  return name;
}

async function login(r: TestRelay, name: string) {
  const res = await api(r, 'POST', '/api/auth/login', { body: { username: name, authKey: toB64(await authKeyFor(r, name, PASSWORD)) } });
  expect(res.status).toBe(200);
  const setCookie = res.headers.getSetCookie();
  expect(setCookie).toHaveLength(1);
  return { res, line: setCookie[0]!, token: sessionTokenOf(res)! };
}

const cookieOf = (token: string) => `umbra_session=${token}`;

describe('session cookie', () => {
  it('is HttpOnly, SameSite=Strict, Path=/, and carries a fresh 256-bit token at every log-in', async () => {
    const name = await signUp(relay);
    const first = await login(relay, name);
    const second = await login(relay, name);
    const attrs = first.line.split(';').map((s) => s.trim());
    expect(attrs[0]).toBe(`umbra_session=${first.token}`);
    expect(attrs).toContain('HttpOnly');
    expect(attrs).toContain('SameSite=Strict');
    expect(attrs).toContain('Path=/');
    expect(attrs).toContain('Max-Age=3600');
    expect(attrs.some((a) => /^Domain=/i.test(a))).toBe(false);
    expect(attrs).not.toContain('Secure');
    for (const { token } of [first, second]) {
      expect(token).toMatch(/^[A-Za-z0-9_-]{43,}$/);
      expect(Buffer.from(token, 'base64url').length).toBeGreaterThanOrEqual(16);
    }
    expect(second.token).not.toBe(first.token);
    for (const { token } of [first, second]) {
      const me = await api(relay, 'GET', '/api/me', { cookie: cookieOf(token) });
      expect(me.status).toBe(200);
      expect(me.json.username).toBe(name);
    }
  });

  it('is stored only as a SHA-256 of the token', async () => {
    const name = await signUp(relay);
    const { token } = await login(relay, name);
    const rows = queryDb<{ token_hash: Buffer }>(
      relay,
      'select token_hash from sessions join users on users.id = sessions.user_id where username = ?',
      name,
    );
    const sha = crypto.createHash('sha256').update(token).digest();
    expect(rows.some((r) => r.token_hash.equals(sha))).toBe(true);
    for (const r of rows) {
      expect(r.token_hash.length).toBe(32);
      expect(r.token_hash.equals(Buffer.from(token))).toBe(false);
      expect(r.token_hash.equals(Buffer.from(token, 'base64url'))).toBe(false);
    }
    expect(dataFilesContain(relay, token)).toBe(false);
    expect(dataFilesContain(relay, Buffer.from(token, 'base64url'))).toBe(false);
    expect(dataFilesContain(relay, sha)).toBe(true);
  });

  it('ends at log-out: the old cookie gets 401, the row is gone, other sessions live on', async () => {
    const name = await signUp(relay);
    const ended = await login(relay, name);
    const kept = await login(relay, name);
    const out = await api(relay, 'POST', '/api/auth/logout', { body: {}, cookie: cookieOf(ended.token) });
    expect(out.status).toBe(200);
    const cleared = out.headers.getSetCookie().find((l) => l.startsWith('umbra_session='))!;
    expect(cleared).toMatch(/^umbra_session=;/);
    expect(cleared).toMatch(/Max-Age=0/);
    const me = await api(relay, 'GET', '/api/me', { cookie: cookieOf(ended.token) });
    expect(me.status).toBe(401);
    expect(me.json.error.code).toBe('unauthorized');
    const sha = crypto.createHash('sha256').update(ended.token).digest();
    expect(queryDb(relay, 'select 1 from sessions where token_hash = ?', sha)).toEqual([]);
    expect((await api(relay, 'GET', '/api/me', { cookie: cookieOf(kept.token) })).status).toBe(200);
  });

  it('expires after its lifetime', async () => {
    const name = await signUp(relay);
    const { token } = await login(relay, name);
    now += 3_600_000 - 1_000;
    expect((await api(relay, 'GET', '/api/me', { cookie: cookieOf(token) })).status).toBe(200);
    now += 2_000;
    expect((await api(relay, 'GET', '/api/me', { cookie: cookieOf(token) })).status).toBe(401);
  });

  it('is marked Secure when the relay runs behind HTTPS', async () => {
    const r = await startTestRelay({ secureCookies: true });
    try {
      const name = await signUp(r);
      const { line } = await login(r, name);
      expect(line.split(';').map((s) => s.trim())).toContain('Secure');
    } finally {
      await r.stop();
    }
  });

  it('is not accepted in any other spelling', async () => {
    const name = await signUp(relay);
    const { token } = await login(relay, name);
    for (const cookie of [`UMBRA_SESSION=${token}`, `umbra_session=${token.slice(0, -1)}`, `umbra_session=${token}x`, `other=${token}`]) {
      expect((await api(relay, 'GET', '/api/me', { cookie })).status).toBe(401);
    }
  });
});

describe('WebSocket upgrade', () => {
  it('answers 403 to a foreign or missing Origin, 401 without a live session, and 101 otherwise', async () => {
    const name = await signUp(relay);
    const { token } = await login(relay, name);
    const own = new URL(relay.url).origin;
    const good = cookieOf(token);

    const foreign = await tryUpgrade(relay, { origin: 'https://evil.example', cookie: good });
    expect(foreign.status).toBe(403);
    expect(JSON.parse(foreign.body).error.code).toBe('bad_origin');
    const lookalike = await tryUpgrade(relay, { origin: `${own}.evil.example`, cookie: good });
    expect(lookalike.status).toBe(403);
    expect((await tryUpgrade(relay, { cookie: good })).status).toBe(403);

    const none = await tryUpgrade(relay, { origin: own });
    expect(none.status).toBe(401);
    expect(JSON.parse(none.body).error.code).toBe('unauthorized');
    expect((await tryUpgrade(relay, { origin: own, cookie: 'umbra_session=garbage' })).status).toBe(401);
    const unknownToken = crypto.randomBytes(32).toString('base64url');
    expect((await tryUpgrade(relay, { origin: own, cookie: cookieOf(unknownToken) })).status).toBe(401);

    const ok = await tryUpgrade(relay, { origin: own, cookie: good });
    expect(ok.status).toBe(101);

    await api(relay, 'POST', '/api/auth/logout', { body: {}, cookie: good });
    expect((await tryUpgrade(relay, { origin: own, cookie: good })).status).toBe(401);
  });
});
