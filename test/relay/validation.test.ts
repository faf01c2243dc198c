// Every HTTP body is checked against its schema: a bad one is 400 (or 415) with the one error
// shape, and nothing reaches the database.
import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorBodySchema, KDF_DEFAULT, generateIdentity, initCrypto, publicKeysOf, toB64 } from '../../shared/index.ts';
import { api, queryDb, rowCounts, startPair, startTestRelay, uniqueName, type Pair, type TestRelay } from '../helpers/relay.ts';

let relay: TestRelay;
let pair: Pair;
beforeAll(async () => {
  await initCrypto();
  relay = await startTestRelay();
  pair = await startPair(relay);
});
afterAll(async () => {
  await relay.stop();
});

/** A sign-up body the relay accepts: real public keys (the relay verifies their binding), random rest. */
function signupBody(username: string): Record<string, any> {
  const pub = publicKeysOf(generateIdentity(), username);
  return {
    username,
    salt: toB64(crypto.randomBytes(16)),
    kdf: { ...KDF_DEFAULT },
    authKey: toB64(crypto.randomBytes(32)),
    keys: { username, identityKey: toB64(pub.identityKey), x25519Key: toB64(pub.x25519Key), x25519Sig: toB64(pub.x25519Sig) },
    vault: toB64(crypto.randomBytes(200)),
  };
}

/** Expects the one error shape with `code`, and returns the message. */
function expectError(res: { status: number; json: unknown }, status: number, code: string): string {
  expect(res.status).toBe(status);
  const parsed = ErrorBodySchema.safeParse(res.json);
  expect(parsed.success).toBe(true);
  expect(parsed.data!.error.code).toBe(code);
  return parsed.data!.error.message;
}

/** base64url of the right length whose last character carries bits that must be zero. */
function nonCanonical(bytes: number): string {
  const chars = Math.ceil((bytes * 4) / 3);
  return 'A'.repeat(chars - 1) + 'B';
}

describe('sign-up bodies', () => {
  it('accepts the well-formed body the other cases are derived from', async () => {
    const name = uniqueName('valid');
    const res = await api(relay, 'POST', '/api/auth/signup', { body: signupBody(name) });
    expect(res.status).toBe(201);
    expect(queryDb(relay, 'select id from users where username = ?', name)).toHaveLength(1);
  });

  type Case = [label: string, status: number, code: string, make: (name: string) => { body?: unknown; rawBody?: string; contentType?: string | null }];
  const mutate = (change: (b: Record<string, any>) => void) => (name: string) => {
    const b = signupBody(name);
    change(b);
    return { body: b };
  };
  const cases: Case[] = [
    ['malformed JSON', 400, 'bad_request', (n) => ({ rawBody: JSON.stringify(signupBody(n)).slice(0, -1) })],
    ['an empty body', 400, 'bad_request', () => ({ rawBody: '' })],
    ['JSON null', 400, 'bad_request', () => ({ rawBody: 'null' })],
    ['a JSON array', 400, 'bad_request', (n) => ({ rawBody: JSON.stringify([signupBody(n)]) })],
    ['text/plain', 415, 'unsupported_media_type', (n) => ({ rawBody: JSON.stringify(signupBody(n)), contentType: 'text/plain' })],
    ['no content type', 415, 'unsupported_media_type', (n) => ({ rawBody: JSON.stringify(signupBody(n)), contentType: null })],
    ['a form', 415, 'unsupported_media_type', (n) => ({ rawBody: `username=${n}`, contentType: 'application/x-www-form-urlencoded' })],
    ['a lookalike JSON type', 415, 'unsupported_media_type', (n) => ({ rawBody: JSON.stringify(signupBody(n)), contentType: 'application/jsonx' })],
    ['kdf.ops as a string', 400, 'bad_request', mutate((b) => (b.kdf.ops = '2'))],
    ['username as a number', 400, 'bad_request', mutate((b) => (b.username = 12345))],
    ['vault as an object', 400, 'bad_request', mutate((b) => (b.vault = { a: 1 }))],
    ['a missing field', 400, 'bad_request', mutate((b) => delete b.vault)],
    ['an extra top-level field', 400, 'bad_request', mutate((b) => (b.admin = true))],
    ['an extra nested field', 400, 'bad_request', mutate((b) => (b.keys.extra = 'x'))],
    ['an extra kdf field', 400, 'bad_request', mutate((b) => (b.kdf.parallelism = 4))],
    ['authKey one character short', 400, 'bad_request', mutate((b) => (b.authKey = b.authKey.slice(1)))],
    ['authKey one character long', 400, 'bad_request', mutate((b) => (b.authKey += 'A'))],
    ['authKey of 31 bytes', 400, 'bad_request', mutate((b) => (b.authKey = toB64(crypto.randomBytes(31))))],
    ['salt of 17 bytes', 400, 'bad_request', mutate((b) => (b.salt = toB64(crypto.randomBytes(17))))],
    ['identityKey of 33 bytes', 400, 'bad_request', mutate((b) => (b.keys.identityKey = toB64(crypto.randomBytes(33))))],
    ['padded base64', 400, 'bad_request', mutate((b) => (b.salt = Buffer.from(crypto.randomBytes(16)).toString('base64')))],
    ['the standard base64 alphabet', 400, 'bad_request', mutate((b) => (b.authKey = '+/' + b.authKey.slice(2)))],
    ['an empty vault', 400, 'bad_request', mutate((b) => (b.vault = ''))],
    ['an upper-case username', 400, 'bad_request', mutate((b) => (b.username = b.username.toUpperCase()))],
    ['keys for another username', 400, 'bad_request', mutate((b) => (b.keys.username = uniqueName('other')))],
    ['an x25519Sig that does not verify', 400, 'bad_request', mutate((b) => (b.keys.x25519Sig = toB64(crypto.randomBytes(64))))],
    ['Argon2id below the minimum', 400, 'weak_kdf_params', mutate((b) => (b.kdf.ops = 1))],
    ['a non-canonical authKey', 400, 'bad_request', mutate((b) => (b.authKey = nonCanonical(32)))],
    ['a non-canonical salt', 400, 'bad_request', mutate((b) => (b.salt = nonCanonical(16)))],
    ['a vault of one base64 character', 400, 'bad_request', mutate((b) => (b.vault = 'A'))],
  ];

  it.each(cases)('refuses %s with %i %s and writes nothing', async (_label, status, code, make) => {
    const before = rowCounts(relay);
    const name = uniqueName('bad');
    const res = await api(relay, 'POST', '/api/auth/signup', make(name));
    expectError(res, status, code);
    expect(res.headers.getSetCookie()).toEqual([]);
    expect(rowCounts(relay)).toEqual(before);
    expect(queryDb(relay, 'select id from users where username = ?', name)).toEqual([]);
  });
});

describe('other bodies and parameters', () => {
  it('refuses bad log-in bodies as 400, not as a failed log-in', async () => {
    const cases: unknown[] = [
      { username: pair.a },
      { username: pair.a, authKey: toB64(crypto.randomBytes(32)), password: 'x' },
      { username: pair.a, authKey: toB64(crypto.randomBytes(16)) },
      { username: pair.a, authKey: nonCanonical(32) },
    ];
    for (const body of cases) expectError(await api(relay, 'POST', '/api/auth/login', { body }), 400, 'bad_request');
    expectError(await api(relay, 'POST', '/api/auth/salt', { body: { username: pair.a, extra: 1 } }), 400, 'bad_request');
  });

  it('refuses bad vault updates and leaves the vault as it was', async () => {
    const before = queryDb<{ vault: Buffer; vault_version: number }>(relay, 'select vault, vault_version from users where username = ?', pair.a)[0]!;
    const cookie = pair.aliceCookie;
    const v = before.vault_version;
    const cases: unknown[] = [
      { vault: toB64(crypto.randomBytes(64)), expectedVersion: v, extra: true },
      { vault: toB64(crypto.randomBytes(64)), expectedVersion: String(v) },
      { vault: toB64(crypto.randomBytes(64)), expectedVersion: 0 },
      { vault: '', expectedVersion: v },
      { vault: 'A', expectedVersion: v },
      { vault: toB64(crypto.randomBytes(128 * 1024 + 1)), expectedVersion: v },
    ];
    for (const body of cases) expectError(await api(relay, 'PUT', '/api/vault', { body, cookie }), 400, 'bad_request');
    expectError(await api(relay, 'PUT', '/api/vault', { rawBody: '{', cookie }), 400, 'bad_request');
    expectError(await api(relay, 'PUT', '/api/vault', { rawBody: '{}', contentType: 'text/plain', cookie }), 415, 'unsupported_media_type');
    const after = queryDb<{ vault: Buffer; vault_version: number }>(relay, 'select vault, vault_version from users where username = ?', pair.a)[0]!;
    expect(after.vault_version).toBe(v);
    expect(after.vault.equals(before.vault)).toBe(true);
  });

  it('refuses bad conversation bodies and creates nothing', async () => {
    const before = rowCounts(relay);
    const cookie = pair.aliceCookie;
    const id = toB64(crypto.randomBytes(16));
    const base = () => ({
      id,
      kind: 'direct',
      members: [pair.a, pair.b].sort(),
      genesis: { statement: '{"v":1}', sig: toB64(crypto.randomBytes(64)) },
      keys: [{ conv: id, epoch: 0, recipient: pair.b, wrappedBy: pair.a, wrapped: toB64(crypto.randomBytes(104)), sig: toB64(crypto.randomBytes(64)) }],
    });
    const cases: Record<string, any>[] = [
      { ...base(), kind: 'group' },
      { ...base(), id: toB64(crypto.randomBytes(15)) },
      { ...base(), members: [pair.a] },
      { ...base(), extra: 1 },
      { ...base(), keys: [] },
      { ...base(), keys: [{ ...base().keys[0], wrapped: toB64(crypto.randomBytes(103)) }] },
      base(), // well-typed, but the genesis is not a genesis statement
    ];
    for (const body of cases) expectError(await api(relay, 'POST', '/api/conversations', { body, cookie }), 400, 'bad_request');
    expect(rowCounts(relay)).toEqual(before);
  });

  it('refuses bad path and query parameters', async () => {
    const cookie = pair.aliceCookie;
    expectError(await api(relay, 'GET', '/api/conversations/not-an-id', { cookie }), 400, 'bad_request');
    expectError(await api(relay, 'GET', `/api/users/${'X'.repeat(40)}`, { cookie }), 400, 'bad_request');
    const history = `/api/conversations/${pair.conv}/envelopes`;
    expect((await api(relay, 'GET', history, { cookie })).status).toBe(200);
    for (const q of ['limit=abc', 'limit=0', 'limit=201', 'before=0', 'after=-1', 'surprise=1', 'after=1&before=5', 'sender=NOT_A_NAME']) {
      expectError(await api(relay, 'GET', `${history}?${q}`, { cookie }), 400, 'bad_request');
    }
  });
});
