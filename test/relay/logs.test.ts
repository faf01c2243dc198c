// The relay's logs are structured JSON and carry routing facts only: after a full sign-up, log-in
// and chat flow, no line holds an auth key, a session token, a vault, a ciphertext or a signature.
import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toB64 } from '../../shared/index.ts';
import {
  PASSWORD,
  WsProbe,
  api,
  clientAt,
  queryDb,
  startRecordingProxy,
  startTestRelay,
  uniqueName,
  waitFor,
  type RecordingProxy,
  type TestRelay,
} from '../helpers/relay.ts';

let relay: TestRelay;
let proxy: RecordingProxy;
beforeAll(async () => {
  relay = await startTestRelay({ logLevel: 'debug' });
  proxy = await startRecordingProxy(relay);
});
afterAll(async () => {
  await proxy.close();
  await relay.stop();
});

/** Every secret-bearing value clients sent: JSON fields, cookies, and envelope fields in frames. */
function secretsOnTheWire(): Set<string> {
  const secrets = new Set<string>();
  const collect = (value: unknown, key = ''): void => {
    if (typeof value === 'string' && ['authKey', 'vault', 'ct', 'sig', 'wrapped', 'x25519Sig'].includes(key)) secrets.add(value);
    else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) collect(v, k);
  };
  for (const r of proxy.requests()) {
    const token = /umbra_session=([A-Za-z0-9_-]+)/.exec(r.headers.cookie ?? '')?.[1];
    if (token) secrets.add(token);
    if (r.body.length) collect(JSON.parse(r.body.toString()));
  }
  for (const f of proxy.wsFrames()) if (f.opcode === 1) collect(JSON.parse(f.payload.toString()));
  return secrets;
}

describe('structured logs', () => {
  it('are JSON on every line and never carry keys, tokens, vaults or ciphertext', async () => {
    const a = uniqueName('alice');
    const b = uniqueName('bob');
    const alice = clientAt(proxy.url);
    const bob = clientAt(proxy.url);
    await alice.signUp(a, PASSWORD);
    await bob.signUp(b, PASSWORD);
    await alice.logOut();
    await expect(alice.logIn(a, 'a wrong password, typed in haste')).rejects.toMatchObject({ code: 'invalid_credentials' });
    await alice.logIn(a, PASSWORD);
    const conv = await alice.startConversation(b);
    await alice.sendText(conv.id, 'first secret words');
    await waitFor(() => bob.conversation(conv.id)?.messages.value.length === 1, 5000, 'bob receives');
    await bob.sendText(conv.id, 'second secret words');
    await waitFor(() => conv.messages.value.length === 2, 5000, 'alice receives');
    // Misuse is logged as well; make sure that path leaks nothing either.
    const probe = await WsProbe.open({ url: proxy.url }, alice.http.cookieHeader()!);
    const misuse = await probe.request({ t: 'send', env: { ct: toB64(crypto.randomBytes(48)), sig: toB64(crypto.randomBytes(64)) } });
    expect(misuse.error.code).toBe('bad_request');
    probe.close();
    await api(relay, 'POST', '/api/auth/login', { body: { username: a, authKey: toB64(crypto.randomBytes(32)) } });
    alice.disconnect();
    await bob.logOut();

    const secrets = secretsOnTheWire();
    for (const row of queryDb<{ vault: Buffer }>(relay, 'select vault from users')) secrets.add(toB64(row.vault));
    for (const row of queryDb<{ ct: Buffer; sig: Buffer }>(relay, 'select ct, sig from envelopes')) {
      secrets.add(toB64(row.ct));
      secrets.add(toB64(row.sig));
    }
    secrets.add(PASSWORD);
    const tokens = proxy.requests().map((r) => /umbra_session=([A-Za-z0-9_-]+)/.exec(r.headers.cookie ?? '')?.[1]).filter(Boolean);
    expect(new Set(tokens).size).toBeGreaterThanOrEqual(3); // alice twice, bob once
    expect(queryDb(relay, 'select 1 from envelopes')).toHaveLength(2);
    for (const s of secrets) expect(s.length).toBeGreaterThanOrEqual(16);

    expect(relay.logs.length).toBeGreaterThan(20);
    const lines = relay.logs.flatMap((chunk) => chunk.split('\n').filter(Boolean));
    const events = new Set<string>();
    for (const line of lines) {
      let entry: any;
      expect(() => (entry = JSON.parse(line)), line).not.toThrow();
      expect(entry).toMatchObject({ level: expect.any(Number), time: expect.any(Number), svc: 'umbra-relay', msg: expect.any(String) });
      if (entry.event) events.add(entry.event);
      for (const s of secrets) expect(line.includes(s), `a log line holds a secret: ${line}`).toBe(false);
    }
    for (const e of ['listening', 'signup', 'login', 'login_failed', 'ws_open', 'http']) expect(events).toContain(e);
  });
});
