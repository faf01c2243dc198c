// The client against a malicious relay: the test edits what the relay serves in its SQLite file,
// or rewrites frames on the way, and checks that clients reject, count and never show the result.
import { describe, expect, it } from 'vitest';
import { UmbraClient, type Conversation } from '../../client/sdk/index.ts';
import { nodePlatform } from '../../client/sdk/node.ts';
import {
  ConversationSummary,
  encodeEvent,
  fromB64,
  generateIdentity,
  publicKeysOf,
  randomBytes,
  randomKey,
  rosterHash,
  sealEnvelope,
  toB64,
  unwrapConversationKey,
  wrapConversationKey,
  type EnvelopeHeader,
} from '../../shared/index.ts';
import { PASSWORD, bodyOf, uniqueName, waitFor } from '../helpers/relay.ts';
import { SocketTap, bodies, rejectionCounts, tamperedRelay } from '../helpers/tamper.ts';

const { relay, evil, pair, device, keep } = tamperedRelay();

async function signUp(prefix: string): Promise<{ client: UmbraClient; name: string }> {
  const client = keep(relay().client());
  const name = uniqueName(prefix);
  await client.signUp(name, PASSWORD);
  return { client, name };
}

/** Reconnects `client` and waits until `conv` has read everything the relay now serves (the sync path). */
async function resync(client: UmbraClient, conv: Conversation): Promise<void> {
  client.disconnect();
  await client.reconnect();
  await waitFor(() => conv.relaySeq === evil.lastSeq(conv.id), 5000, 'catch-up');
}

/** A fresh client id, so a copied row is not refused by the relay's idempotency index. */
const newId = () => toB64(randomBytes(16));

describe('swapped public key', () => {
  it("alerts on each of alice's devices and blocks her sending until she accepts; nothing reaches the relay meanwhile", async () => {
    const { alice, bob, a, b, conv, bobConv } = await pair();
    await alice.sendText(conv.id, 'hi');
    await bob.sendText(conv.id, 'hello');
    await waitFor(() => conv.messages.value.length === 2, 5000, `${a} receives hello`);
    const realKey = bob.identityKey;

    const attacker = publicKeysOf(generateIdentity(), b);
    evil.setPublicKeys(b, attacker);
    const stored = evil.envelopeCount();
    const alert = { username: b, pinnedKey: realKey, servedKey: attacker.identityKey };

    // The instance that chatted refetches the key on send.
    await expect(alice.sendText(conv.id, 'who is there?')).rejects.toMatchObject({ code: 'identity_changed' });
    expect(alice.identityAlerts.value).toEqual([alert]);

    // A new device: its pins come from the vault, so the swap is noticed there too.
    const laptop = await device(a);
    expect(laptop.identityAlerts.value).toEqual([alert]);
    const onLaptop = laptop.conversation(conv.id)!;
    expect(onLaptop.problem.value).toBeNull();
    expect(bodies(onLaptop)).toEqual(['hi', 'hello']);
    await expect(laptop.sendText(conv.id, 'from the laptop')).rejects.toMatchObject({ code: 'identity_changed' });

    expect(evil.envelopeCount()).toBe(stored);
    expect(bodies(conv)).toEqual(['hi', 'hello']);
    expect(bobConv.messages.value.length).toBe(2);

    await alice.acceptIdentityChange(b);
    expect(alice.identityAlerts.value).toEqual([]);
    expect(alice.directory.pinned(b)).toEqual(attacker.identityKey);
    const sent = await alice.sendText(conv.id, 'after accepting');
    expect(evil.row(conv.id, sent.seq!).client_msg_id).toBe(sent.clientMsgId);

    await laptop.acceptIdentityChange(b);
    expect(laptop.identityAlerts.value).toEqual([]);
    await laptop.sendText(conv.id, 'after accepting on the laptop');
    expect(evil.envelopeCount()).toBe(stored + 2);
    for (const c of [alice, laptop, bob]) expect(c.stats.count()).toBe(0);
  });
});

describe("signatures checked a page at a time (the platform's Ed25519)", () => {
  it('a device checking with libsodium alone shows and rejects exactly the same', async () => {
    const { alice, bob, a, b, conv, bobConv } = await pair();
    for (const body of ['one', 'two', 'three', 'four']) await alice.sendText(conv.id, body);
    await bob.sendText(conv.id, 'five');
    await waitFor(() => bobConv.messages.value.length === 5, 5000, 'bob receives four');
    const flip = (buf: Buffer, at: number) => {
      const out = Buffer.from(buf);
      out[at]! ^= 1;
      return out;
    };
    // The replay drops the relay's idempotency index, so the copies below may keep their ids: a
    // copy whose signature alone is wrong still opens under the AEAD, and only the signature
    // check stands between it and the screen.
    const replayed = evil.replay(conv.id, 5);
    const forged = [
      evil.copy(conv.id, 1, { sender_id: evil.userId(b) }),
      evil.copy(conv.id, 2, { ct: flip(evil.row(conv.id, 2).ct, 30) }),
      evil.copy(conv.id, 3, { sig: flip(evil.row(conv.id, 3).sig, 3) }),
      evil.copy(conv.id, 4, { sig: flip(evil.row(conv.id, 4).sig, 60) }),
    ];
    await alice.sendText(conv.id, 'six');

    const native = await device(a);
    const libsodium = await device(a, undefined, { nativeSignatures: false });
    expect([native.signatureVerifier, libsodium.signatureVerifier]).toEqual(['native', 'libsodium']);
    const seen = (client: UmbraClient) => {
      const c = client.conversation(conv.id)!;
      return {
        shown: c.messages.value.map((m) => [m.seq, m.sender, bodyOf(m.event), m.flags]),
        rejected: client.stats.rejections.value.map((r) => [r.seq, r.reason]).sort((x, y) => Number(x[0]) - Number(y[0])),
      };
    };
    const expected = {
      shown: [
        [1, a, 'one', []],
        [2, a, 'two', []],
        [3, a, 'three', []],
        [4, a, 'four', []],
        [5, b, 'five', []],
        [forged.at(-1)! + 1, a, 'six', []],
      ],
      rejected: [[replayed, 'replay'], ...forged.map((seq) => [seq, 'bad_signature_or_ciphertext'])],
    };
    expect(seen(native)).toEqual(expected);
    expect(seen(libsodium)).toEqual(expected);
  });
});

describe('tampered envelopes', () => {
  it('a replayed envelope is rejected as a replay and shown once', async () => {
    const { alice, bob, conv, bobConv } = await pair();
    for (const body of ['one', 'two', 'three']) await alice.sendText(conv.id, body);
    await waitFor(() => bobConv.messages.value.length === 3, 5000, 'bob receives three');
    const replayed = evil.replay(conv.id, 2);

    await resync(bob, bobConv);
    expect(bodies(bobConv)).toEqual(['one', 'two', 'three']);
    expect(rejectionCounts(bob.stats)).toEqual({ replay: 1 });
    expect(bob.stats.rejections.value[0]).toMatchObject({ conv: conv.id, seq: replayed, reason: 'replay' });

    const laptop = await device(bob.me.value!);
    const c = laptop.conversation(conv.id)!;
    expect(bodies(c)).toEqual(['one', 'two', 'three']);
    expect(c.messages.value.map((m) => m.seq)).toEqual([1, 2, 3]);
    expect(rejectionCounts(laptop.stats)).toEqual({ replay: 1 });
  });

  it('a replay whose original is in an older page is flagged, then taken back when that page loads', async () => {
    const { alice, b, conv } = await pair();
    const written = Array.from({ length: 60 }, (_, i) => `message ${i + 1}`);
    for (const body of written) await alice.sendText(conv.id, body);
    const replayed = evil.replay(conv.id, 1);

    const laptop = await device(b);
    const c = laptop.conversation(conv.id)!;
    // The original is not loaded yet: the copy shows, but not as a normal message.
    const copy = c.messages.value.at(-1)!;
    expect([copy.seq, bodyOf(copy.event), copy.flags]).toEqual([replayed, 'message 1', ['reordered']]);
    expect(laptop.stats.count()).toBe(0);

    await c.loadOlder();
    expect(bodies(c)).toEqual(written);
    expect(c.messages.value.map((m) => m.seq)).toEqual(written.map((_, i) => i + 1));
    expect(c.messages.value.every((m) => m.flags.length === 0)).toBe(true);
    expect(rejectionCounts(laptop.stats)).toEqual({ replay: 1 });
    expect(laptop.stats.rejections.value[0]).toMatchObject({ seq: replayed, reason: 'replay' });
  });

  it("a reflected envelope (alice's own, served as bob's) is rejected and not shown as bob's", async () => {
    const { alice, bob, a, b, conv, bobConv } = await pair();
    await alice.sendText(conv.id, 'mine');
    const reflected = evil.copy(conv.id, 1, { sender_id: evil.userId(b) });

    await resync(alice, conv);
    expect(rejectionCounts(alice.stats)).toEqual({ bad_signature_or_ciphertext: 1 });
    expect(alice.stats.rejections.value[0]).toMatchObject({ seq: reflected, sender: b });
    expect(conv.messages.value.map((m) => [m.sender, bodyOf(m.event)])).toEqual([[a, 'mine']]);

    const laptop = await device(a);
    expect(laptop.conversation(conv.id)!.messages.value.map((m) => [m.sender, bodyOf(m.event)])).toEqual([[a, 'mine']]);
    expect(rejectionCounts(laptop.stats)).toEqual({ bad_signature_or_ciphertext: 1 });

    await resync(bob, bobConv);
    expect(bobConv.messages.value.map((m) => [m.sender, bodyOf(m.event)])).toEqual([[a, 'mine']]);
    expect(rejectionCounts(bob.stats)).toEqual({ bad_signature_or_ciphertext: 1 });
  });

  it('reordered envelopes are shown in relay order, the late one flagged, and the gap closes when it arrives', async () => {
    const { alice, a, b, conv } = await pair();
    for (const body of ['one', 'two', 'three', 'four']) await alice.sendText(conv.id, body);
    evil.swapSeq(conv.id, 2, 3);

    const laptop = await device(b);
    const c = laptop.conversation(conv.id)!;
    expect(c.messages.value.map((m) => [m.seq, bodyOf(m.event), m.flags])).toEqual([
      [1, 'one', []],
      [2, 'three', []],
      [3, 'two', ['reordered']],
      [4, 'four', []],
    ]);
    // 'three' arrived with counter 3 after counter 1 (a gap of one); 'two' then filled it.
    expect(c.notices.value).toEqual([]);
    expect(laptop.stats.count()).toBe(0);
  });

  it('an envelope copied into another conversation is rejected there', async () => {
    const { alice, bob, conv: withBob } = await pair();
    const carol = await signUp('carol');
    const withCarol = await alice.startConversation(carol.name);
    await waitFor(() => carol.client.conversation(withCarol.id) !== undefined, 5000, 'carol opens it');
    const carolConv = carol.client.conversation(withCarol.id)!;
    await alice.sendText(withBob.id, 'for bob only');
    await alice.sendText(withCarol.id, 'for carol');
    await waitFor(() => carolConv.messages.value.length === 1, 5000, 'carol receives');

    // The relay serves env.conv from the row, so the copy claims to belong here: its signature fails.
    const moved = evil.copy(withBob.id, 1, {}, withCarol.id);
    await resync(carol.client, carolConv);
    expect(bodies(carolConv)).toEqual(['for carol']);
    expect(carol.client.stats.rejections.value).toEqual([
      { conv: withCarol.id, seq: moved, sender: alice.me.value, reason: 'bad_signature_or_ciphertext' },
    ]);
    const carolLaptop = await device(carol.name);
    expect(bodies(carolLaptop.conversation(withCarol.id)!)).toEqual(['for carol']);
    expect(rejectionCounts(carolLaptop.stats)).toEqual({ bad_signature_or_ciphertext: 1 });
    await resync(alice, withCarol);
    expect(bodies(withCarol)).toEqual(['for carol']);
    expect(rejectionCounts(alice.stats)).toEqual({ bad_signature_or_ciphertext: 1 });
    expect(bob.stats.count()).toBe(0);
  });

  it('an envelope pushed on another conversation, unchanged, is rejected as wrong_conversation', async () => {
    const tap = new SocketTap();
    const { alice, conv: withBob } = await pair();
    const carolName = uniqueName('carol');
    const carolClient = keep(new UmbraClient({ baseUrl: relay().url, platform: tap.platform() }));
    await carolClient.signUp(carolName, PASSWORD);
    const withCarol = await alice.startConversation(carolName);
    await waitFor(() => carolClient.conversation(withCarol.id) !== undefined, 5000, 'carol opens it');
    const carolConv = carolClient.conversation(withCarol.id)!;
    await alice.sendText(withCarol.id, 'for carol');
    await alice.sendText(withBob.id, 'for bob only');
    await waitFor(() => carolConv.messages.value.length === 1, 5000, 'carol receives');

    const stolen = relay().store.envelopesAfter(withBob.id, 0, 10).items[0]!;
    expect(stolen.env.conv).toBe(withBob.id);
    tap.inject({ t: 'env', conv: withCarol.id, item: { ...stolen, seq: carolConv.relaySeq + 1 } });
    await waitFor(() => carolClient.stats.count() > 0, 5000, 'carol rejects it');
    expect(carolClient.stats.rejections.value).toEqual([
      { conv: withCarol.id, seq: 2, sender: alice.me.value, reason: 'wrong_conversation' },
    ]);
    expect(bodies(carolConv)).toEqual(['for carol']);
  });

  it('an envelope from someone outside the conversation is rejected as unknown_sender', async () => {
    const { alice, bob, a, conv, bobConv } = await pair();
    const carol = await signUp('carol');
    const withCarol = await carol.client.startConversation(a);
    await carol.client.sendText(withCarol.id, 'signed by carol');
    await alice.sendText(conv.id, 'from alice');
    await waitFor(() => bobConv.messages.value.length === 1, 5000, 'bob receives');

    const forged = evil.copy(withCarol.id, 1, {}, conv.id);
    expect(evil.row(conv.id, forged).sender_id).toBe(evil.userId(carol.name));
    await resync(bob, bobConv);
    expect(bodies(bobConv)).toEqual(['from alice']);
    expect(bob.stats.rejections.value).toEqual([{ conv: conv.id, seq: forged, sender: carol.name, reason: 'unknown_sender' }]);
    await resync(alice, conv);
    expect(bodies(conv)).toEqual(['from alice']);
    expect(rejectionCounts(alice.stats)).toEqual({ unknown_sender: 1 });
  });

  it('an envelope of an unknown version or cipher suite is rejected as unsupported', async () => {
    const { alice, b, conv } = await pair();
    await alice.sendText(conv.id, 'version 1');
    const v2 = evil.copy(conv.id, 1, { v: 2, client_msg_id: newId() });
    const suite2 = evil.copy(conv.id, 1, { suite: 2, client_msg_id: newId() });
    await alice.sendText(conv.id, 'still version 1');

    const laptop = await device(b);
    const c = laptop.conversation(conv.id)!;
    expect(bodies(c)).toEqual(['version 1', 'still version 1']);
    expect(laptop.stats.rejections.value.map((r) => [r.seq, r.reason])).toEqual([
      [v2, 'unsupported'],
      [suite2, 'unsupported'],
    ]);
  });
});

describe('wrapped keys', () => {
  /** Bob's view of a conversation whose key for him the relay replaced: refused, nothing shown or sent. */
  async function expectRefused(b: string, convId: string): Promise<void> {
    const stored = evil.envelopeCount();
    const laptop = await device(b);
    const c = laptop.conversation(convId)!;
    expect(c.problem.value).toMatch(/no conversation key you can verify/);
    expect(c.messages.value).toEqual([]);
    await c.loadLatest();
    expect(c.messages.value).toEqual([]);
    await expect(laptop.sendText(convId, 'into the void')).rejects.toMatchObject({ code: 'verification_failed' });
    expect(evil.envelopeCount()).toBe(stored);
    expect(laptop.stats.count()).toBe(0);
  }

  it('a key wrapped and signed by someone outside the conversation is not accepted', async () => {
    const { alice, b, conv } = await pair();
    await alice.sendText(conv.id, 'secret');
    // The relay's own account, with keys it controls and a valid directory entry.
    const mallory = await signUp('mallory');
    const attacker = generateIdentity();
    evil.setPublicKeys(mallory.name, publicKeysOf(attacker, mallory.name));
    const context = { conv: conv.id, epoch: 0, recipient: b, wrappedBy: mallory.name };
    const w = wrapConversationKey(randomKey(), evil.x25519Key(b), context, attacker.signing.secretKey);
    evil.setWrappedKey(conv.id, b, { epoch: 0, wrappedBy: mallory.name, wrapped: w.wrapped, sig: w.sig });
    await expectRefused(b, conv.id);
  });

  it('a key claiming to be wrapped by a member but signed by someone else is not accepted', async () => {
    const { alice, a, b, conv } = await pair();
    await alice.sendText(conv.id, 'secret');
    const attacker = generateIdentity();
    const context = { conv: conv.id, epoch: 0, recipient: b, wrappedBy: a };
    const w = wrapConversationKey(randomKey(), evil.x25519Key(b), context, attacker.signing.secretKey);
    evil.setWrappedKey(conv.id, b, { epoch: 0, wrappedBy: a, wrapped: w.wrapped, sig: w.sig });
    await expectRefused(b, conv.id);
  });

  it('a newer key the relay adds for bob is ignored: bob keeps sending under the key alice shared', async () => {
    const { alice, a, b, conv } = await pair();
    await alice.sendText(conv.id, 'before');
    const attacker = generateIdentity();
    const context = { conv: conv.id, epoch: 1, recipient: b, wrappedBy: a };
    const w = wrapConversationKey(randomKey(), evil.x25519Key(b), context, attacker.signing.secretKey);
    evil.addWrappedKey(conv.id, b, { epoch: 1, wrappedBy: a, wrapped: w.wrapped, sig: w.sig });
    const underRelayKey = evil.copy(conv.id, 1, { epoch: 1, client_msg_id: newId() });

    const laptop = await device(b);
    const c = laptop.conversation(conv.id)!;
    expect(c.problem.value).toBeNull();
    expect(bodies(c)).toEqual(['before']);
    expect(laptop.stats.rejections.value.map((r) => [r.seq, r.reason])).toEqual([[underRelayKey, 'unknown_epoch']]);
    const sent = await laptop.sendText(conv.id, 'still private');
    expect(evil.row(conv.id, sent.seq!).epoch).toBe(0);
    // Alice holds only the epoch-0 key she made, so her reading it shows it is not under the relay's.
    await waitFor(() => conv.messages.value.length === 2, 5000, 'alice receives it');
    expect(bodies(conv)).toEqual(['before', 'still private']);
  });
});

describe('security stats', () => {
  it("rejects a member's envelope signed for another roster, or under a type its event does not have", async () => {
    const platform = nodePlatform();
    const { alice, bob, a, b, conv } = await pair({ alice: platform });
    await alice.sendText(conv.id, 'genuine');
    // Alice's own keys, as her device stores them: these envelopes really are hers.
    const keys = (await platform.store.get<{ signingSecret: Uint8Array; agreementSecret: Uint8Array }>('account'))!;
    const summary = await alice.http.get(`/api/conversations/${conv.id}`, ConversationSummary);
    const w = summary.keys[0]!;
    const convKey = unwrapConversationKey({ ...w, wrapped: fromB64(w.wrapped), sig: fromB64(w.sig) }, keys.agreementSecret, alice.identityKey);
    const roster = rosterHash(conv.id, [
      { username: a, identityKey: alice.identityKey },
      { username: b, identityKey: bob.identityKey },
    ]);
    const seal = (counter: number, header: Partial<EnvelopeHeader>) =>
      evil.appendSealed(
        sealEnvelope(
          { v: 1, suite: 1, type: 'content', conv: conv.id, epoch: 0, sender: a, rosterHash: roster, clientMsgId: newId(), counter, expiresAt: null, burnAfterMs: null, ...header },
          encodeEvent({ kind: 'text', body: `sealed ${counter}` }),
          convKey,
          keys.signingSecret,
        ),
      );
    const shown = seal(2, {});
    const otherRoster = seal(3, { rosterHash: randomBytes(32) });
    const otherType = seal(4, { type: 'control' });

    const laptop = await device(b);
    const c = laptop.conversation(conv.id)!;
    expect(c.messages.value.map((m) => [m.seq, bodyOf(m.event)])).toEqual([
      [1, 'genuine'],
      [shown, 'sealed 2'],
    ]);
    expect(laptop.stats.rejections.value.map((r) => [r.seq, r.reason])).toEqual([
      [otherRoster, 'roster_mismatch'],
      [otherType, 'type_mismatch'],
    ]);
  });

  it('counts every rejection by reason and shows only authentic messages', async () => {
    const { alice, bob, a, b, conv, bobConv } = await pair();
    const carol = await signUp('carol');
    const withCarol = await carol.client.startConversation(a);
    await carol.client.sendText(withCarol.id, 'carol elsewhere');
    for (const body of ['one', 'two']) await alice.sendText(conv.id, body);
    await bob.sendText(conv.id, 'three');
    await waitFor(() => bobConv.messages.value.length === 3, 5000, 'bob has three');

    const bad = {
      replay: [evil.replay(conv.id, 1), evil.replay(conv.id, 2)],
      bad_signature_or_ciphertext: [
        evil.copy(conv.id, 2, { sender_id: evil.userId(b), client_msg_id: newId() }),
        evil.copy(conv.id, 1, { ct: Buffer.from(randomBytes(evil.row(conv.id, 1).ct.length)), client_msg_id: newId() }),
        evil.copy(withCarol.id, 1, { sender_id: evil.userId(a) }, conv.id),
      ],
      unknown_sender: [evil.copy(withCarol.id, 1, {}, conv.id)],
      unknown_epoch: [evil.copy(conv.id, 1, { epoch: 1, client_msg_id: newId() })],
      unsupported: [evil.copy(conv.id, 1, { v: 0, client_msg_id: newId() }), evil.copy(conv.id, 3, { suite: 7, client_msg_id: newId() })],
    };
    await alice.sendText(conv.id, 'four');
    const expected = Object.fromEntries(Object.entries(bad).map(([reason, seqs]) => [reason, seqs.length]));
    const rejectedSeqs = Object.values(bad).flat().sort((x, y) => x - y);
    const shown = ['one', 'two', 'three', 'four'];

    await waitFor(() => bobConv.messages.value.length === 4, 5000, 'bob receives four');
    await resync(bob, bobConv);
    const laptop = await device(b);
    for (const [client, c] of [
      [bob, bobConv],
      [laptop, laptop.conversation(conv.id)!],
    ] as const) {
      expect(rejectionCounts(client.stats)).toEqual(expected);
      expect(client.stats.rejections.value.map((r) => r.seq).sort((x, y) => x - y)).toEqual(rejectedSeqs);
      expect(bodies(c)).toEqual(shown);
      expect(c.messages.value.map((m) => m.seq)).toEqual([1, 2, 3, evil.lastSeq(conv.id)]);
      expect(c.messages.value.some((m) => rejectedSeqs.includes(m.seq!))).toBe(false);
    }
  });
});
