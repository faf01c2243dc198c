// Disappearing messages in the client, on the real clock: a relay that claims to keep a message
// longer than its sender signed is flagged and ignored, a changed signed expiry is rejected, and
// an expired message leaves every member's view, the "what the server sees" view and the device's
// message store, and never comes back on a later log-in (docs/PROTOCOL.md §Disappearing messages).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryStore, UmbraClient, type ChatMessage, type Conversation } from '../../client/sdk/index.ts';
import { nodePlatform } from '../../client/sdk/node.ts';
import type { TimerSetting } from '../../shared/index.ts';
import { PASSWORD, queryDb, startTestRelay, uniqueName, waitFor, type TestRelay } from '../helpers/relay.ts';
import { RelayTamper, type EnvelopeRow } from '../helpers/tamper.ts';

let relay: TestRelay;
let evil: RelayTamper;
const clients: UmbraClient[] = [];

beforeAll(async () => {
  // The real clock; the sweeper never runs, so only the read rules and the clients hide expired messages.
  relay = await startTestRelay({ sweep: { intervalMs: 0, batch: 500 } });
  evil = new RelayTamper(relay);
});
afterAll(async () => {
  for (const c of clients) c.disconnect();
  await relay.stop();
});

function client(store = new MemoryStore(), fetchImpl?: typeof fetch): UmbraClient {
  const base = nodePlatform();
  const c = new UmbraClient({ baseUrl: relay.url, platform: { ...base, store, fetch: fetchImpl ?? base.fetch } });
  clients.push(c);
  return c;
}

/** A fetch that holds every request for `conv`'s record until released (the device is slow to open it). */
function heldFetch(conv: string): { fetch: typeof fetch; holding(): boolean; release(): void } {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let holding = false;
  const inner = globalThis.fetch.bind(globalThis);
  const held: typeof fetch = async (input, init) => {
    if (String(input).includes(`/api/conversations/${conv}`)) {
      holding = true;
      await gate;
    }
    return inner(input, init);
  };
  return { fetch: held, holding: () => holding, release };
}

/** Every message a client shows, in any of its conversations, from the moment they open. */
function watchMessages(c: UmbraClient): { seen: Set<string>; stop(): void } {
  const seen = new Set<string>();
  const stops: (() => void)[] = [];
  const watched = new Set<Conversation>();
  stops.push(
    c.conversations.subscribe((list) => {
      for (const conv of list) {
        if (watched.has(conv)) continue;
        watched.add(conv);
        stops.push(conv.messages.subscribe((ms) => ms.forEach((m) => seen.add(m.clientMsgId))));
      }
    }),
  );
  return { seen, stop: () => stops.forEach((s) => s()) };
}

/** What a compromised relay does to a stored envelope: rewrites its columns in the SQLite file. */
function rewrite(conv: string, seq: number, changes: Partial<Pick<EnvelopeRow, 'expires_at' | 'env_expires_at' | 'burn_after_ms'>>): void {
  const columns = Object.keys(changes);
  const r = relay.db.sqlite
    .prepare(`UPDATE envelopes SET ${columns.map((c) => `${c} = @${c}`).join(', ')} WHERE conv_id = @conv AND seq = @seq`)
    .run({ ...changes, conv, seq });
  if (r.changes !== 1) throw new Error(`no envelope ${conv}#${seq}`);
}

const byId = (conv: Conversation, m: ChatMessage) => conv.messages.value.find((x) => x.clientMsgId === m.clientMsgId);
const cachedIds = async (store: MemoryStore, conv: string) => ((await store.get<ChatMessage[]>(`messages:${conv}`)) ?? []).map((m) => m.clientMsgId);
const sentTimer = (ttlMs: number): TimerSetting => ({ ttlMs, mode: 'sent' });

describe('a relay that changes expiries', () => {
  it('flags a later or missing deletion time and still removes the message at the signed time; a changed signed expiry is rejected', async () => {
    const alice = client();
    const bob = client();
    const bob2 = client();
    const a = uniqueName('alice');
    const b = uniqueName('bob');
    await alice.signUp(a, PASSWORD);
    await bob.signUp(b, PASSWORD);
    // A second device of bob's, offline until the end: it will load the conversation over HTTP.
    await bob2.logIn(b, PASSWORD);
    bob2.disconnect();
    const conv = await alice.startConversation(b);
    const id = conv.id;
    await waitFor(() => bob.conversation(id) !== undefined, 5000, 'bob opens the conversation');
    const bobConv = bob.conversation(id)!;
    // Bob goes offline: he will resume over the WebSocket `sync`.
    bob.disconnect();

    const TTL = 5_000;
    const extended = await alice.sendText(id, 'kept an hour longer by the relay', { timer: sentTimer(TTL) });
    const forever = await alice.sendText(id, 'kept forever by the relay', { timer: sentTimer(TTL) });
    const honest = await alice.sendText(id, 'kept as signed', { timer: sentTimer(TTL) });
    const shortened = await alice.sendText(id, 'deleted early by the relay', { timer: sentTimer(3_600_000) });
    const resigned = await alice.sendText(id, 'signed expiry moved', { timer: sentTimer(TTL) });
    const reburnt = await alice.sendText(id, 'burn timer added', { timer: sentTimer(TTL) });
    const plain = await alice.sendText(id, 'no timer');
    const signedAt = (m: ChatMessage) => m.expiresAt!;

    rewrite(id, extended.seq!, { expires_at: signedAt(extended) + 3_600_000 });
    rewrite(id, forever.seq!, { expires_at: null });
    const relayTime = Date.now() + 2_500;
    rewrite(id, shortened.seq!, { expires_at: relayTime });
    rewrite(id, resigned.seq!, { env_expires_at: signedAt(resigned) + 3_600_000, expires_at: signedAt(resigned) + 3_600_000 });
    rewrite(id, reburnt.seq!, { burn_after_ms: 5_000 });
    expect(evil.row(id, resigned.seq!).env_expires_at).toBe(signedAt(resigned) + 3_600_000);

    await bob.reconnect();
    await bob2.reconnect();
    await waitFor(() => bobConv.relaySeq === plain.seq, 5000, 'bob resumes');
    await waitFor(() => bob2.conversation(id)?.relaySeq === plain.seq, 5000, "bob's second device loads");
    const bob2Conv = bob2.conversation(id)!;
    if (Date.now() >= relayTime - 500) throw new Error('the clients loaded too slowly for this test to judge "before the deletion time"');

    for (const [c, view] of [
      [bob, bobConv],
      [bob2, bob2Conv],
    ] as const) {
      // Shown until the signed time, flagged, with the signed time as expiry.
      for (const m of [extended, forever]) {
        expect(byId(view, m), m.clientMsgId).toMatchObject({ flags: ['expiry_extended'], expiresAt: signedAt(m) });
      }
      expect(byId(view, honest)).toMatchObject({ flags: [], expiresAt: signedAt(honest) });
      // A relay may delete earlier than signed (that is how burn after reading works): taken, not flagged.
      expect(byId(view, shortened)).toMatchObject({ flags: [], expiresAt: relayTime });
      expect(byId(view, plain)).toMatchObject({ flags: [], expiresAt: null });
      // The signed expiry and burn timer are in the signature.
      expect(byId(view, resigned)).toBeUndefined();
      expect(byId(view, reburnt)).toBeUndefined();

      const reasons = (reason: string) => c.stats.rejections.value.filter((r) => r.reason === reason).map((r) => r.seq).sort((x, y) => x - y);
      expect(reasons('expiry_extended')).toEqual([extended.seq, forever.seq]);
      expect(reasons('bad_signature_or_ciphertext')).toEqual([resigned.seq, reburnt.seq]);
      expect(c.stats.count()).toBe(4);
      // What the relay said stays visible in the "what the server sees" view.
      expect(view.relayView.value.find((e) => e.seq === extended.seq)?.expiresAt).toBe(signedAt(extended) + 3_600_000);
      expect(view.relayView.value.find((e) => e.seq === forever.seq)?.expiresAt).toBeNull();
    }

    // The relay's earlier time comes first.
    const views = [bobConv, bob2Conv];
    await waitFor(() => views.every((v) => byId(v, shortened) === undefined), 5000, 'the early deletion');
    expect(Date.now()).toBeGreaterThanOrEqual(relayTime);
    for (const v of views) expect(byId(v, extended)).toBeDefined();

    // Then the signed time, for the flagged messages as for the honest one, an hour before the relay's.
    await waitFor(() => views.every((v) => [extended, forever, honest].every((m) => byId(v, m) === undefined)), 8000, 'the signed expiry');
    expect(Date.now()).toBeGreaterThanOrEqual(Math.min(signedAt(extended), signedAt(forever), signedAt(honest)));
    for (const v of views) {
      expect(v.messages.value.map((m) => m.clientMsgId)).toEqual([plain.clientMsgId]);
      const raw = v.relayView.value.map((e) => e.seq);
      for (const m of [extended, forever, honest, shortened]) expect(raw).not.toContain(m.seq);
      expect(raw).toContain(plain.seq);
    }
    // The relay still holds the two it lied about, and serves them: the client alone keeps them hidden.
    expect(queryDb(relay, 'SELECT seq FROM envelopes WHERE conv_id = ? AND seq IN (?, ?)', id, extended.seq, forever.seq)).toHaveLength(2);
  });
});

describe('expired messages in the client', () => {
  it("leave both members' views, the relay view and the device's store, and never come back", async () => {
    const aliceStore = new MemoryStore();
    const bobStore = new MemoryStore();
    const alice = client(aliceStore);
    const bob = client(bobStore);
    const a = uniqueName('alice');
    const b = uniqueName('bob');
    await alice.signUp(a, PASSWORD);
    await bob.signUp(b, PASSWORD);
    const conv = await alice.startConversation(b);
    const id = conv.id;
    await waitFor(() => bob.conversation(id) !== undefined, 5000, 'bob opens the conversation');
    const bobConv = bob.conversation(id)!;

    const brief = await alice.sendText(id, 'gone in a second and a half', { timer: sentTimer(1_500) });
    const stays = await alice.sendText(id, 'this one stays');
    await waitFor(() => byId(bobConv, stays) !== undefined, 5000, 'bob receives both');
    await waitFor(() => conv.relayView.value.some((e) => e.seq === stays.seq), 5000, 'alice receives her own envelopes back');
    await conv.flushCache();
    await bobConv.flushCache();
    if (Date.now() >= brief.expiresAt!) throw new Error('the clients were too slow for this test to see the message before it expired');

    // Before the expiry: shown, in the relay view, and in both devices' stores.
    for (const [view, store] of [
      [conv, aliceStore],
      [bobConv, bobStore],
    ] as const) {
      expect(byId(view, brief)?.expiresAt).toBe(brief.expiresAt);
      expect(view.relayView.value.map((e) => e.seq)).toEqual(expect.arrayContaining([brief.seq, stays.seq]));
      expect(await cachedIds(store, id)).toEqual([brief.clientMsgId, stays.clientMsgId]);
    }
    // A copy of bob's device as it is now, to be opened again after the expiry.
    const laterStore = new MemoryStore();
    for (const key of [`messages:${id}`, 'messages-index']) await laterStore.set(key, await bobStore.get(key));
    expect(await cachedIds(laterStore, id)).toContain(brief.clientMsgId);

    // At the expiry, by the clients' own timers (nothing new arrives to prompt them).
    await waitFor(() => byId(conv, brief) === undefined && byId(bobConv, brief) === undefined, 5000, 'the expiry');
    expect(Date.now()).toBeGreaterThanOrEqual(brief.expiresAt!);
    for (const [view, store] of [
      [conv, aliceStore],
      [bobConv, bobStore],
    ] as const) {
      expect(view.messages.value.map((m) => m.clientMsgId)).toEqual([stays.clientMsgId]);
      expect(view.relayView.value.map((e) => e.seq)).not.toContain(brief.seq);
      expect(view.relayView.value.map((e) => e.seq)).toContain(stays.seq);
      await view.flushCache();
      expect(await cachedIds(store, id)).toEqual([stays.clientMsgId]);
      expect(await store.get<string[]>('messages-index')).toEqual([id]);
    }

    // The relay has not swept it (the sweeper is off here), yet no later log-in shows it:
    // neither the device that kept a copy from before the expiry, nor a new one.
    expect(queryDb(relay, 'SELECT seq FROM envelopes WHERE conv_id = ? AND seq = ?', id, brief.seq)).toHaveLength(1);
    for (const store of [laterStore, new MemoryStore()]) {
      const held = heldFetch(id);
      const device = client(store, held.fetch);
      const watch = watchMessages(device);
      const loggingIn = device.logIn(b, PASSWORD);
      // Signed in and asking for the conversation, not showing it yet: what expired while the
      // device was closed has already left its store.
      await waitFor(held.holding, 5000, 'the device asks for the conversation');
      expect(device.conversation(id)).toBeUndefined();
      if (store === laterStore) expect(await cachedIds(store, id)).toEqual([stays.clientMsgId]);
      held.release();
      await loggingIn;
      await waitFor(() => watch.seen.has(stays.clientMsgId), 5000, 'the device shows the conversation');
      const view = device.conversation(id)!;
      await waitFor(() => view.relaySeq >= stays.seq!, 5000, 'the device loads from the relay');
      await view.flushCache();
      watch.stop();
      expect(watch.seen.has(brief.clientMsgId)).toBe(false);
      expect(view.relayView.value.map((e) => e.seq)).not.toContain(brief.seq);
      expect(await cachedIds(store, id)).toEqual([stays.clientMsgId]);
    }
  });
});

describe('burn after reading on another device', () => {
  it("a device that kept a copy does not show it again once the recipient's other device opened it and its timer ran out", async () => {
    const BURN: TimerSetting = { ttlMs: 1_000, mode: 'read' };
    const alice = client();
    const laptopStore = new MemoryStore();
    const laptop = client(laptopStore);
    const phone = client();
    const a = uniqueName('alice');
    const b = uniqueName('bob');
    await alice.signUp(a, PASSWORD);
    await laptop.signUp(b, PASSWORD);
    await phone.logIn(b, PASSWORD);
    const conv = await alice.startConversation(b);
    const id = conv.id;
    await waitFor(() => laptop.conversation(id) !== undefined && phone.conversation(id) !== undefined, 5000, "bob's devices open the conversation");
    const onLaptop = laptop.conversation(id)!;
    const onPhone = phone.conversation(id)!;

    const secret = await alice.sendText(id, 'read once, on one device', { timer: BURN });
    const stays = await alice.sendText(id, 'this one stays');
    await waitFor(() => byId(onLaptop, stays) !== undefined && byId(onPhone, stays) !== undefined, 5000, 'both devices receive it');
    await onLaptop.flushCache();
    expect(await cachedIds(laptopStore, id)).toEqual([secret.clientMsgId, stays.clientMsgId]);
    // The laptop is closed, its store kept.
    laptop.disconnect();
    const closedStore = new MemoryStore();
    for (const key of [`messages:${id}`, 'messages-index']) await closedStore.set(key, await laptopStore.get(key));

    // Bob reads it on his phone: a second later it is gone for alice, the phone and the relay.
    const openedAt = Date.now();
    await onPhone.markRead();
    await waitFor(() => byId(onPhone, secret) === undefined && byId(conv, secret) === undefined, 5000, 'the burn');
    expect(Date.now()).toBeGreaterThanOrEqual(openedAt + 1_000);
    await waitFor(() => Date.now() > openedAt + 1_100, 2000, 'the burn time to pass');
    expect(evil.row(id, secret.seq!).expires_at).toBeLessThanOrEqual(Date.now());

    // The laptop opens again: the message burnt a while ago must not reappear.
    const reopened = client(closedStore);
    const watch = watchMessages(reopened);
    await reopened.logIn(b, PASSWORD);
    await waitFor(() => watch.seen.has(stays.clientMsgId), 5000, 'the laptop shows the conversation');
    const view = reopened.conversation(id)!;
    await waitFor(() => view.relaySeq >= stays.seq!, 5000, 'the laptop loads from the relay');
    watch.stop();
    expect(byId(view, secret), 'the burnt message is shown again on the laptop').toBeUndefined();
    expect(watch.seen.has(secret.clientMsgId)).toBe(false);
  });
});
