// A live connection does not outlive its session: when the session expires, the relay closes the
// socket with 4401 and the client stops reconnecting and says the session ended.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { PASSWORD, startTestRelay, uniqueName, waitFor, type TestRelay } from '../helpers/relay.ts';

let relay: TestRelay;
let clock = Date.now();
beforeAll(async () => {
  relay = await startTestRelay({ now: () => clock, sessionTtlMs: 60_000, limits: { pingIntervalMs: 100 } });
});
afterAll(async () => {
  await relay.stop();
});

it('closes the socket of an expired session and the client ends its session state', async () => {
  const client = relay.client();
  await client.signUp(uniqueName('exp'), PASSWORD);
  expect(client.status.value).toBe('online');
  await new Promise((r) => setTimeout(r, 300));
  expect(client.status.value).toBe('online');
  clock += 61_000;
  await waitFor(() => client.status.value === 'session-ended', 3000, 'session-ended');
  expect(relay.hub.connectionCount()).toBe(0);
});
