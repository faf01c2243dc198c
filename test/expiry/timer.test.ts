// The conversation's disappearing-message timer: a signed `timer` event sets it for everyone,
// each later message carries the expiry it implies in its signed header unless overridden, and a
// new device learns it even when the event is older than its first page
// (docs/PROTOCOL.md §Disappearing messages).
import { afterAll, beforeAll, expect, it } from 'vitest';
import { UmbraClient, type Conversation } from '../../client/sdk/index.ts';
import { nodePlatform } from '../../client/sdk/node.ts';
import { TIMER_OFF, type StoredEnvelope } from '../../shared/index.ts';
import { PASSWORD, api, startTestRelay, uniqueName, waitFor, type TestRelay } from '../helpers/relay.ts';
import { RelayTamper } from '../helpers/tamper.ts';

let clock = Date.now();
const now = () => clock;
let relay: TestRelay;
let evil: RelayTamper;
const clients: UmbraClient[] = [];

beforeAll(async () => {
  relay = await startTestRelay({ now, sweep: { intervalMs: 0, batch: 500 } });
  evil = new RelayTamper(relay);
});
afterAll(async () => {
  for (const c of clients) c.disconnect();
  await relay.stop();
});

function client(): UmbraClient {
  const c = new UmbraClient({ baseUrl: relay.url, platform: nodePlatform(), now });
  clients.push(c);
  return c;
}

async function envelope(cookie: string, conv: string, seq: number): Promise<StoredEnvelope> {
  const res = await api(relay, 'GET', `/api/conversations/${conv}/envelopes?before=${seq + 1}&limit=1`, { cookie });
  expect(res.status, res.text).toBe(200);
  const item = (res.json.envelopes as StoredEnvelope[])[0];
  expect(item?.seq).toBe(seq);
  return item!;
}

const find = (conv: Conversation, clientMsgId: string) => conv.messages.value.find((m) => m.clientMsgId === clientMsgId);

it('applies the timer one member sets to the next messages of everyone, and reaches a new device past its first page', async () => {
  const alice = client();
  const bob = client();
  const a = uniqueName('alice');
  const b = uniqueName('bob');
  await alice.signUp(a, PASSWORD);
  await bob.signUp(b, PASSWORD);
  const conv = await alice.startConversation(b);
  await waitFor(() => bob.conversation(conv.id) !== undefined, 5000, 'bob opens the conversation');
  const bobConv = bob.conversation(conv.id)!;
  const bobCookie = bob.http.cookieHeader()!;
  expect(bobConv.timer.value).toEqual(TIMER_OFF);

  // Before any timer, a message does not expire.
  const before = await bob.sendText(conv.id, 'before the timer');
  expect((await envelope(bobCookie, conv.id, before.seq!)).env.expiresAt).toBeNull();

  // Alice sets 30 seconds: a signed `setting` envelope with no expiry of its own.
  await conv.setTimer({ ttlMs: 30_000, mode: 'sent' });
  const timerSeq = evil.lastSeq(conv.id);
  const setting = await envelope(bobCookie, conv.id, timerSeq);
  expect(setting.env).toMatchObject({ type: 'setting', sender: a, expiresAt: null, burnAfterMs: null });
  expect(setting.expiresAt).toBeNull();
  expect(conv.timer.value).toEqual({ ttlMs: 30_000, mode: 'sent' });
  await waitFor(() => bobConv.timer.value.ttlMs === 30_000, 5000, "bob's timer");
  expect(bobConv.timer.value).toEqual({ ttlMs: 30_000, mode: 'sent' });
  // Everyone sees the change as a line.
  await waitFor(() => bobConv.messages.value.some((m) => m.seq === timerSeq), 5000, 'the timer line');
  expect(bobConv.messages.value.find((m) => m.seq === timerSeq)!.event).toEqual({ kind: 'timer', ttlMs: 30_000, mode: 'sent' });

  // Bob's next message, with no option, carries now + 30 s in its signed header.
  clock += 1_234;
  const t1 = clock;
  const timed = await bob.sendText(conv.id, 'under the timer');
  expect(timed.expiresAt).toBe(t1 + 30_000);
  expect(timed.burnAfterMs).toBeNull();
  const timedStored = await envelope(bobCookie, conv.id, timed.seq!);
  expect(timedStored.env.expiresAt).toBe(t1 + 30_000);
  expect(timedStored.env.burnAfterMs).toBeNull();
  expect(timedStored.expiresAt).toBe(t1 + 30_000);
  await waitFor(() => find(conv, timed.clientMsgId) !== undefined, 5000, 'alice receives it');
  expect(find(conv, timed.clientMsgId)!.expiresAt).toBe(t1 + 30_000);
  expect(find(conv, timed.clientMsgId)!.flags).toEqual([]);

  // A per-message override sends one without expiry; the conversation's timer stays.
  const kept = await bob.sendText(conv.id, 'kept', { timer: { ttlMs: null, mode: 'sent' } });
  expect(kept.expiresAt).toBeNull();
  expect((await envelope(bobCookie, conv.id, kept.seq!)).env.expiresAt).toBeNull();
  expect(bobConv.timer.value).toEqual({ ttlMs: 30_000, mode: 'sent' });
  // ...and one in the other mode.
  const burn = await bob.sendText(conv.id, 'burn', { timer: { ttlMs: 10_000, mode: 'read' } });
  expect((await envelope(bobCookie, conv.id, burn.seq!)).env).toMatchObject({ burnAfterMs: 10_000, expiresAt: clock + 30 * 86_400_000 });

  // Push the timer event off the newest page (50 envelopes).
  for (let i = 0; i < 55; i++) await alice.sendText(conv.id, `filler ${i}`, { timer: TIMER_OFF });

  // A new device for bob: its first page holds no timer event, yet it learns the timer.
  const bob2 = client();
  await bob2.logIn(b, PASSWORD);
  await waitFor(() => (bob2.conversation(conv.id)?.messages.value.length ?? 0) > 0, 5000, "the new device's first page");
  const bob2Conv = bob2.conversation(conv.id)!;
  await waitFor(() => bob2Conv.messages.value.length === 50, 5000, 'the whole first page');
  expect(bob2Conv.hasOlder.value).toBe(true);
  expect(bob2Conv.messages.value.some((m) => m.event.kind === 'timer' || m.seq! <= timerSeq)).toBe(false);
  await waitFor(() => bob2Conv.timer.value.ttlMs === 30_000, 5000, "the new device's timer");
  expect(bob2Conv.timer.value).toEqual({ ttlMs: 30_000, mode: 'sent' });
  clock += 1_000;
  const fromNewDevice = await bob2.sendText(conv.id, 'from the new device');
  expect((await envelope(bobCookie, conv.id, fromNewDevice.seq!)).env.expiresAt).toBe(clock + 30_000);

  // Turning it off is a new timer event for everyone, the new device included.
  await conv.setTimer(TIMER_OFF);
  await waitFor(() => bobConv.timer.value.ttlMs === null && bob2Conv.timer.value.ttlMs === null, 5000, 'the timer turned off');
  const untimed = await bob2.sendText(conv.id, 'no timer again');
  expect((await envelope(bobCookie, conv.id, untimed.seq!)).env.expiresAt).toBeNull();
});

it('takes the timer from the newest setting, not from an older one', async () => {
  const alice = client();
  const bob = client();
  const a = uniqueName('alice');
  const b = uniqueName('bob');
  await alice.signUp(a, PASSWORD);
  await bob.signUp(b, PASSWORD);
  const conv = await alice.startConversation(b);
  await conv.setTimer({ ttlMs: 3_600_000, mode: 'sent' });
  await waitFor(() => bob.conversation(conv.id)?.timer.value.ttlMs === 3_600_000, 5000, "bob's first timer");
  await bob.conversation(conv.id)!.setTimer({ ttlMs: 5_000, mode: 'read' });
  for (let i = 0; i < 51; i++) await alice.sendText(conv.id, `filler ${i}`, { timer: TIMER_OFF });
  await waitFor(() => conv.timer.value.ttlMs === 5_000, 5000, "alice sees bob's timer");
  expect(conv.timer.value).toEqual({ ttlMs: 5_000, mode: 'read' });

  const alice2 = client();
  await alice2.logIn(a, PASSWORD);
  await waitFor(() => bob.conversation(conv.id) !== undefined && alice2.conversation(conv.id)?.timer.value.ttlMs === 5_000, 5000, "the new device's timer");
  expect(alice2.conversation(conv.id)!.timer.value).toEqual({ ttlMs: 5_000, mode: 'read' });
  clock += 1_000;
  const next = await alice2.sendText(conv.id, 'burns after reading');
  expect(next.burnAfterMs).toBe(5_000);
  expect(next.expiresAt).toBe(clock + 30 * 86_400_000);
});
