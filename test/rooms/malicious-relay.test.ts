// Rooms against a malicious relay (and the members it colludes with): the test edits the relay's
// SQLite file, rewrites what it serves one client, or signs as a raw account whose keys it holds,
// and checks that honest SDK clients reject, flag or ignore the result.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UmbraClient, type Platform, type Room } from '../../client/sdk/index.ts';
import { nodePlatform } from '../../client/sdk/node.ts';
import { generateIdentity, randomKey, sealRoomMeta, signJoinRequest, replayRoomChain, fromB64, toB64, wrapConversationKey, type Chain, type ConversationSummary, type StoredEnvelope } from '../../shared/index.ts';
import { WsProbe, bodyOf, startTestRelay, uniqueName, waitFor, type TestRelay } from '../helpers/relay.ts';
import { RelayTamper, SocketTap, freshDevice, rejectionCounts, type EnvelopeRow } from '../helpers/tamper.ts';
import {
  RoomTamper,
  deviceKeys,
  envelopeWire,
  nextStatement,
  rawApi,
  rawEnvelope,
  rawRoomKeys,
  rawSummary,
  roomBodies,
  roomOf,
  signUpPerson,
  signUpRaw,
  type Person,
  type RawUser,
} from '../helpers/rooms.ts';

let relay: TestRelay;
let evil: RelayTamper;
let rooms: RoomTamper;
const clients: UmbraClient[] = [];
const probes: WsProbe[] = [];

beforeAll(async () => {
  relay = await startTestRelay();
  evil = new RelayTamper(relay);
  rooms = new RoomTamper(relay);
});
afterAll(async () => {
  for (const c of clients) c.disconnect();
  for (const p of probes) p.close();
  await relay.stop();
});

async function person(prefix: string, platform?: Platform): Promise<Person> {
  const p = await signUpPerson(relay, prefix, platform);
  clients.push(p.client);
  return p;
}

/** ann (owner) and bea (member), both SDK clients, in a private room; plus raw members if asked. */
async function setUp(raw: RawUser[] = [], bea?: Person): Promise<{ ann: Person; bea: Person; room: Room; beaRoom: Room }> {
  const ann = await person('ann');
  bea ??= await person('bea');
  const room = await ann.client.createRoom(`Den ${uniqueName('r')}`, { policy: 'private' });
  await room.invite(bea.name);
  for (const r of raw) await room.invite(r.name);
  const beaRoom = await roomOf(bea.client, room.id, (r) => r.members.value.length === 2 + raw.length);
  return { ann, bea, room, beaRoom };
}

/** An envelope as the relay would push it, from its stored row, with `conv` as its signed conversation. */
function storedOf(row: EnvelopeRow, conv: string, sender: string): StoredEnvelope {
  return {
    seq: row.seq,
    receivedAt: row.received_at,
    expiresAt: row.expires_at,
    env: {
      v: row.v,
      suite: row.suite,
      type: row.type as 'content',
      conv,
      epoch: row.epoch,
      sender,
      rosterHash: toB64(new Uint8Array(row.roster_hash)),
      clientMsgId: row.client_msg_id,
      counter: row.counter,
      expiresAt: row.env_expires_at,
      burnAfterMs: row.burn_after_ms,
      ct: toB64(new Uint8Array(row.ct)),
      sig: toB64(new Uint8Array(row.sig)),
    },
  };
}

function chainOf(summary: ConversationSummary): Chain {
  return replayRoomChain(summary.id, summary.statements.map((s) => ({ statement: s.statement, sig: fromB64(s.sig) })));
}

/** Sends an envelope over the raw user's own WebSocket; the relay stores it if it counts them a member. */
async function rawSend(who: RawUser, env: ReturnType<typeof rawEnvelope>): Promise<number> {
  const probe = await WsProbe.open(relay, who.cookie);
  probes.push(probe);
  const reply = await probe.request({ t: 'send', env: envelopeWire(env) });
  probe.close();
  if (reply.t !== 'ack') throw new Error(`send answered ${JSON.stringify(reply)}`);
  return reply.seq;
}

/** Reconnects, so the client reloads every room from what the relay now serves. */
async function reload(p: Person, room: Room, until: () => boolean): Promise<void> {
  p.client.disconnect();
  await p.client.reconnect();
  await waitFor(until, 5000, `${p.name} reloads ${room.id}`);
}

describe('members the relay makes up', () => {
  it('a member injected without an admin’s link gets no key from honest admins, and its messages are rejected', async () => {
    const mal = await signUpRaw(relay, 'mal');
    const xen = await signUpRaw(relay, 'xen');
    const { ann, bea, room, beaRoom } = await setUp([mal]);
    // The relay lists xen as a member; mal, a plain member, hands xen the key (signed by mal).
    rooms.addMemberRow(room.id, xen.name);
    const summary = await rawSummary(relay, mal, room.id);
    const key0 = rawRoomKeys(mal, summary).get(0)!;
    const w = wrapConversationKey(key0, evil.x25519Key(xen.name), { conv: room.id, epoch: 0, recipient: xen.name, wrappedBy: mal.name }, mal.keys.signing.secretKey);
    evil.addWrappedKey(room.id, xen.name, { epoch: 0, wrappedBy: mal.name, wrapped: w.wrapped, sig: w.sig });

    const head = chainOf(summary).head;
    await rawSend(xen, rawEnvelope(xen, { conv: room.id, epoch: 0, rosterHash: head.rosterHash, counter: 1, key: key0 }, 'I was let in'));
    await room.sendText('ann here');
    await waitFor(() => beaRoom.messages.value.length === 1 && room.messages.value.length === 1, 5000, 'the honest message');
    await reload(bea, beaRoom, () => beaRoom.unsignedMembers.value.length === 1);
    expect(beaRoom.unsignedMembers.value).toEqual([xen.name]);
    for (const p of [ann, bea]) expect(rejectionCounts(p.client.stats)).toEqual({ unknown_sender: 1 });
    expect(roomBodies(beaRoom)).toEqual(['ann here']);
    expect(beaRoom.members.value.map((m) => m.username)).not.toContain(xen.name);

    // The admin's next key goes to the signed members only.
    await room.remove(mal.name);
    const xenKeys = (await rawSummary(relay, xen, room.id)).keys;
    expect(xenKeys.map((k) => [k.epoch, k.wrappedBy])).toEqual([[0, mal.name]]);
    expect(beaRoom.problem.value).toBeNull();
  });

  it('a fake link (not signed by an admin, forged, out of the chain, rewritten or withdrawn) makes the room show a problem', async () => {
    const mal = await signUpRaw(relay, 'mal');
    const xen = await signUpRaw(relay, 'xen');
    const cases: [string, (conv: string) => void, RegExp][] = [
      [
        'an add signed by a plain member',
        (conv) => rooms.appendLink(conv, nextStatement(rooms.links(conv), conv, mal, { op: 'add', member: { username: xen.name, identityKey: toB64(xen.keys.signing.publicKey) }, role: 'admin', via: 'invite' })),
        /#3 is signed by mal.*who is not an admin at that point/,
      ],
      [
        'an add in the owner’s name, signed by someone else',
        (conv) => {
          const link = nextStatement(rooms.links(conv), conv, mal, { op: 'add', member: { username: xen.name, identityKey: toB64(xen.keys.signing.publicKey) }, role: 'member', via: 'invite' });
          const ann = JSON.parse(rooms.links(conv)[0]!.statement).actor as string;
          rooms.appendLink(conv, { statement: link.statement.replace(`"actor":"${mal.name}"`, `"actor":"${ann}"`), sig: link.sig });
        },
        /#3 is not signed by ann/,
      ],
      [
        'a link that does not follow the one before it',
        (conv) => {
          const links = rooms.links(conv);
          rooms.appendLink(conv, nextStatement(links.slice(0, 2), conv, mal, { op: 'leave' }));
        },
        /#3 does not follow the record before it/,
      ],
      ['a link rewritten after it was verified', (conv) => rooms.replaceLink(conv, 2, rooms.links(conv)[1]!), /changed membership record #2 after you verified it/],
      ['a link withdrawn', (conv) => rooms.dropLastLink(conv), /older membership record/],
    ];
    for (const [what, tamper, message] of cases) {
      const { ann, bea, room, beaRoom } = await setUp([mal]);
      await room.sendText('before');
      await waitFor(() => beaRoom.messages.value.length === 1, 5000, 'the first message');
      tamper(room.id);
      await reload(bea, beaRoom, () => beaRoom.problem.value !== null);
      expect(beaRoom.problem.value, what).toMatch(message);
      await room.sendText('after');
      await new Promise((r) => setTimeout(r, 100));
      expect(roomBodies(beaRoom), what).toEqual(['before']);
      await expect(beaRoom.sendText('hello?'), what).rejects.toMatchObject({ code: 'verification_failed' });
      await expect(beaRoom.invite(xen.name), what).rejects.toMatchObject({ code: 'verification_failed' });
      ann.client.disconnect();
      bea.client.disconnect();
    }
  });

  it('a statement signed by a demoted admin after the demotion is rejected; the relay refuses it too', async () => {
    const mal = await signUpRaw(relay, 'mal');
    const xen = await signUpRaw(relay, 'xen');
    const { bea, room, beaRoom } = await setUp([mal]);
    await room.promote(mal.name);
    await room.demote(mal.name);
    await waitFor(() => beaRoom.members.value.find((m) => m.username === mal.name)?.role === 'member', 5000, 'bea sees the demotion');
    const link = nextStatement(rooms.links(room.id), room.id, mal, { op: 'add', member: { username: xen.name, identityKey: toB64(xen.keys.signing.publicKey) }, role: 'admin', via: 'invite' });
    const posted = await rawApi(relay, mal, 'POST', `/api/rooms/${room.id}/statements`, { statement: { statement: link.statement, sig: toB64(link.sig) }, keys: [], meta: null });
    expect(posted.status).toBe(403);
    rooms.appendLink(room.id, link);
    await reload(bea, beaRoom, () => beaRoom.problem.value !== null);
    expect(beaRoom.problem.value).toMatch(/#5 is signed by mal.*who is not an admin at that point/);
    expect(beaRoom.members.value.map((m) => m.username)).not.toContain(xen.name);
  });

  it('a join request the relay makes up under someone’s name is neither listed nor admitted', async () => {
    const impostor = generateIdentity();
    const [ann, cat, dan] = [await person('ann'), await person('cat'), await person('dan')];
    const statementPosts = () => relay.logs.filter((l) => l.includes('"route":"/api/rooms/:id/statements"')).length;
    for (const policy of ['private', 'open'] as const) {
      const name = `Den ${uniqueName('r')}`;
      const room = await ann.client.createRoom(name, { policy });
      const forged = signJoinRequest(
        { v: 1, kind: 'join-request', conv: room.id, username: dan.name, identityKey: toB64(impostor.signing.publicKey), at: Date.now() },
        impostor.signing.secretKey,
      );
      rooms.addJoinRequest(room.id, dan.name, forged);
      const posts = statementPosts();
      const catRoom = await cat.client.joinRoom(name);
      if (policy === 'private') {
        await waitFor(() => room.pendingRequests.value.length > 0, 5000, 'the genuine request is listed');
        expect(room.pendingRequests.value.map((r) => r.username)).toEqual([cat.name]);
        await room.approve(cat.name);
      }
      await waitFor(() => catRoom.state.value === 'member', 5000, `cat admitted (${policy})`);
      await reload(ann, room, () => room.members.value.length === 2);
      await new Promise((r) => setTimeout(r, 200));
      expect(statementPosts() - posts, policy).toBe(1);
      expect(room.members.value.map((m) => m.username).sort(), policy).toEqual([ann.name, cat.name].sort());
      expect(room.pendingRequests.value, policy).toEqual([]);
    }
    expect(ann.client.directory.pinned(dan.name)).toEqual(dan.client.identityKey);
  });
});

describe('keys and rosters', () => {
  it('a link that adds someone under a key that is not theirs (signed with the owner’s key) shows a problem', async () => {
    const impostor = generateIdentity();
    const cat = await person('cat');
    const { ann, bea, room, beaRoom } = await setUp([], cat);
    const dan = await person('dan');
    // Whoever holds the owner's signing key can sign any add; the relay would refuse this one, so it is written in.
    const annKeys = await deviceKeys(ann);
    rooms.appendLink(room.id, nextStatement(rooms.links(room.id), room.id, { name: ann.name, keys: annKeys }, { op: 'add', member: { username: dan.name, identityKey: toB64(impostor.signing.publicKey) }, role: 'member', via: 'invite' }));
    await reload(bea, beaRoom, () => beaRoom.problem.value !== null);
    expect(beaRoom.problem.value).toBe(`the room’s membership record has a key for ${dan.name} that you have not verified`);
    expect(bea.client.directory.pinned(dan.name)).toEqual(dan.client.identityKey);
    await expect(beaRoom.sendText('hello')).rejects.toMatchObject({ code: 'verification_failed' });
  });

  it('a room key wrapped by a plain member is ignored: its messages are unknown_epoch, and the admin’s real key is taken later', async () => {
    const mal = await signUpRaw(relay, 'mal');
    const { ann, bea, room, beaRoom } = await setUp([mal]);
    const summary = await rawSummary(relay, mal, room.id);
    const head = chainOf(summary).head;
    const chosen = randomKey();
    const w = wrapConversationKey(chosen, evil.x25519Key(bea.name), { conv: room.id, epoch: 1, recipient: bea.name, wrappedBy: mal.name }, mal.keys.signing.secretKey);
    evil.addWrappedKey(room.id, bea.name, { epoch: 1, wrappedBy: mal.name, wrapped: w.wrapped, sig: w.sig });
    await rawSend(mal, rawEnvelope(mal, { conv: room.id, epoch: 1, rosterHash: head.rosterHash, counter: 1, key: chosen }, 'use my key'));
    await waitFor(() => bea.client.stats.count() === 1, 5000, 'bea judges it');
    expect(rejectionCounts(bea.client.stats)).toEqual({ unknown_epoch: 1 });
    expect(beaRoom.epoch).toBe(0);
    // A plain member's message under the real key is fine.
    const key0 = rawRoomKeys(mal, summary).get(0)!;
    await rawSend(mal, rawEnvelope(mal, { conv: room.id, epoch: 0, rosterHash: head.rosterHash, counter: 2, key: key0 }, 'under the room key'));
    await waitFor(() => beaRoom.messages.value.length === 1, 5000, 'the genuine one');
    // When the admin rotates to epoch 1, bea takes the admin's key, not mal's.
    await room.rotate();
    await room.sendText('epoch one');
    await waitFor(() => beaRoom.messages.value.length === 2, 5000, 'bea reads epoch 1');
    expect(roomBodies(beaRoom)).toEqual(['under the room key', 'epoch one']);
    expect(rejectionCounts(ann.client.stats)).toEqual({ unknown_epoch: 1 });
  });

  it('settings sealed by a plain member under the room key are not taken', async () => {
    const mal = await signUpRaw(relay, 'mal');
    const { bea, room, beaRoom } = await setUp([mal]);
    const genuine = room.meta.value;
    expect(beaRoom.meta.value).toEqual(genuine);
    const key0 = rawRoomKeys(mal, await rawSummary(relay, mal, room.id)).get(0)!;
    rooms.setMeta(room.id, sealRoomMeta({ name: 'Free crypto giveaway', topic: 'click here', policy: 'open' }, room.id, 0, mal.name, key0, mal.keys.signing.secretKey));
    await reload(bea, beaRoom, () => beaRoom.relaySeq === 0);
    await room.sendText('still ours');
    await waitFor(() => beaRoom.messages.value.length === 1, 5000, 'bea reads on');
    expect(beaRoom.meta.value).toEqual(genuine);
    const laptop = await freshDevice(relay, bea.name);
    clients.push(laptop);
    const onLaptop = await roomOf(laptop, room.id);
    expect([onLaptop.meta.value, onLaptop.problem.value]).toEqual([null, null]);
  });

  it('the relay shows one member a longer chain than another: that member’s messages are roster_mismatch for the other', async () => {
    const dan = await person('dan');
    const hidden = { from: Number.POSITIVE_INFINITY };
    // Cat's view of the relay hides every link from `hidden.from` on (and the member it adds).
    const base = nodePlatform();
    const platform: Platform = {
      ...base,
      fetch: async (input, init) => {
        const res = await base.fetch(input, init);
        const path = new URL(String(input)).pathname;
        if (!/^\/api\/conversations\/[^/]+$/.test(path) || !res.ok) return res;
        const summary = (await res.json()) as ConversationSummary;
        if (summary.kind === 'room' && summary.statements.length > hidden.from) {
          summary.statements = summary.statements.slice(0, hidden.from);
          summary.members = summary.members.filter((m) => m !== dan.name);
        }
        return new Response(JSON.stringify(summary), { status: res.status, headers: { 'content-type': 'application/json' } });
      },
    };
    const catP = await signUpPerson(relay, 'cat', platform);
    clients.push(catP.client);
    const { bea, room, beaRoom } = await setUp([], await person('bea'));
    await room.invite(catP.name);
    const catRoom = await roomOf(catP.client, room.id);
    hidden.from = rooms.links(room.id).length;
    await room.invite(dan.name);
    await waitFor(() => beaRoom.members.value.length === 4, 5000, 'bea sees dan');
    await beaRoom.sendText('hi, with dan');
    await waitFor(() => catP.client.stats.count() === 1, 5000, 'cat judges bea’s message');
    expect(rejectionCounts(catP.client.stats)).toEqual({ roster_mismatch: 1 });
    expect(roomBodies(catRoom)).toEqual([]);
    expect(catRoom.members.value.map((m) => m.username)).not.toContain(dan.name);
    const danRoom = await roomOf(dan.client, room.id);
    await danRoom.sendText('dan here');
    await waitFor(() => catP.client.stats.count() === 2, 5000, 'cat judges dan’s message');
    expect(rejectionCounts(catP.client.stats)).toEqual({ roster_mismatch: 1, unknown_sender: 1 });
    expect(bea.client.stats.count()).toBe(0);
  });
});

describe('pushes withheld, keys withdrawn', () => {
  it('without roster pushes, a message from a new member or under a new key makes the client refetch the room and read it', async () => {
    const tap = new SocketTap();
    const { room, beaRoom } = await setUp([], await person('bea', tap.platform()));
    let withheld = 0;
    tap.inbound = (frame) => (frame.t === 'roster' && ++withheld ? [] : undefined);
    const dan = await person('dan');
    await room.invite(dan.name);
    const danRoom = await roomOf(dan.client, room.id);
    expect(beaRoom.members.value).toHaveLength(2);
    await danRoom.sendText('hello from dan');
    await waitFor(() => beaRoom.messages.value.length === 1, 5000, 'bea reads dan');
    expect(beaRoom.members.value).toHaveLength(3);
    await room.rotate();
    await room.sendText('under epoch 1');
    await waitFor(() => beaRoom.messages.value.length === 2, 5000, 'bea reads epoch 1');
    expect([beaRoom.epoch, roomBodies(beaRoom)]).toEqual([1, ['hello from dan', 'under epoch 1']]);
    expect(withheld).toBe(2);
  });

  it('a key once verified is kept: withdrawing it does not stop a message still in flight under it', async () => {
    const mal = await signUpRaw(relay, 'mal');
    const { bea, room, beaRoom } = await setUp([mal]);
    const summary = await rawSummary(relay, mal, room.id);
    const before = chainOf(summary).head;
    const key0 = rawRoomKeys(mal, summary).get(0)!;
    relay.db.sqlite.prepare('DELETE FROM wrapped_keys WHERE conv_id = ? AND epoch = 0 AND recipient_id = (SELECT id FROM users WHERE username = ?)').run(room.id, bea.name);
    await room.rotate();
    await waitFor(() => beaRoom.epoch === 1, 5000, 'bea moves to epoch 1');
    // mal's client had not seen the rotation yet: epoch 0, the roster as it was.
    await rawSend(mal, rawEnvelope(mal, { conv: room.id, epoch: 0, rosterHash: before.rosterHash, counter: 1, key: key0 }, 'sent before I saw it'));
    await waitFor(() => beaRoom.messages.value.length === 1 || bea.client.stats.count() > 0, 5000, 'bea judges it');
    expect(roomBodies(beaRoom)).toEqual(['sent before I saw it']);
    expect(bea.client.stats.count()).toBe(0);
  });
});

describe('envelopes moved or kept past their time', () => {
  it('a room envelope moved into another room or a direct conversation, or replayed in its own room, is rejected', async () => {
    const tap = new SocketTap();
    const { ann, bea, room, beaRoom } = await setUp([], await person('bea', tap.platform()));
    const other = await ann.client.createRoom(`Den ${uniqueName('r')}`, { policy: 'private' });
    await other.invite(bea.name);
    const beaOther = await roomOf(bea.client, other.id);
    const direct = await ann.client.startConversation(bea.name);
    await waitFor(() => bea.client.conversation(direct.id) !== undefined, 5000, 'the direct conversation');
    const beaDirect = bea.client.conversation(direct.id)!;
    const sent = await room.sendText('for the first room only');
    const inDirect = await direct.send({ kind: 'text', body: 'for bea only' });
    await waitFor(() => beaRoom.messages.value.length === 1 && beaDirect.messages.value.length === 1, 5000, 'bea reads both');

    // Stored elsewhere, the relay serves it with that conversation's id: the signature no longer holds.
    const intoOther = evil.copy(room.id, sent.seq!, {}, other.id);
    const intoDirect = evil.copy(room.id, sent.seq!, {}, direct.id);
    const directIntoRoom = evil.copy(direct.id, inDirect.seq!, {}, other.id);
    const again = evil.replay(room.id, sent.seq!);
    bea.client.disconnect();
    await bea.client.reconnect();
    await waitFor(() => bea.client.stats.count() === 4, 5000, 'bea judges all four');
    expect(bea.client.stats.rejections.value.map((r) => [r.conv, r.seq, r.reason])).toEqual(
      expect.arrayContaining([
        [other.id, intoOther, 'bad_signature_or_ciphertext'],
        [direct.id, intoDirect, 'bad_signature_or_ciphertext'],
        [other.id, directIntoRoom, 'bad_signature_or_ciphertext'],
        [room.id, again, 'replay'],
      ]),
    );
    // Pushed unchanged on another conversation: its signed `conv` gives it away.
    const original = storedOf(evil.row(room.id, sent.seq!), room.id, ann.name);
    tap.inject({ t: 'env', conv: other.id, item: { ...original, seq: beaOther.relaySeq + 1 } });
    tap.inject({ t: 'env', conv: direct.id, item: { ...original, seq: beaDirect.relaySeq + 1 } });
    await waitFor(() => bea.client.stats.count() === 6, 5000, 'bea judges the pushes');
    expect(bea.client.stats.rejections.value.slice(4).map((r) => [r.conv, r.reason])).toEqual([
      [other.id, 'wrong_conversation'],
      [direct.id, 'wrong_conversation'],
    ]);
    expect(roomBodies(beaOther)).toEqual([]);
    expect(roomBodies(beaRoom)).toEqual(['for the first room only']);
    expect(beaDirect.messages.value.map((m) => bodyOf(m.event))).toEqual(['for bea only']);
  });

  it('after a removal, the removed member’s old-epoch message that the relay slips in later is stale_epoch', async () => {
    const mal = await signUpRaw(relay, 'mal');
    const { ann, bea, room, beaRoom } = await setUp([mal]);
    const summary = await rawSummary(relay, mal, room.id);
    const before = chainOf(summary).head;
    const key0 = rawRoomKeys(mal, summary).get(0)!;
    const seal = (counter: number, body: string) => rawEnvelope(mal, { conv: room.id, epoch: 0, rosterHash: before.rosterHash, counter, key: key0 }, body);
    await rawSend(mal, seal(1, 'while a member'));
    await waitFor(() => beaRoom.messages.value.length === 1, 5000, 'bea reads mal');

    await room.remove(mal.name);
    await waitFor(() => beaRoom.epoch === 1, 5000, 'bea moves to epoch 1');
    await room.sendText('after the removal');
    await waitFor(() => beaRoom.messages.value.length === 2, 5000, 'bea reads on');
    // The relay no longer takes mal's messages; colluding with mal, it stores one anyway.
    const probe = await WsProbe.open(relay, mal.cookie);
    probes.push(probe);
    expect((await probe.request({ t: 'send', env: envelopeWire(seal(2, 'still here')) })).error?.code).toBe('forbidden');
    const slipped = evil.appendSealed(seal(2, 'still here'));
    await reload(bea, beaRoom, () => bea.client.stats.count() === 1);
    await reload(ann, room, () => ann.client.stats.count() === 1);
    for (const p of [ann, bea]) expect(p.client.stats.rejections.value).toEqual([{ conv: room.id, seq: slipped, sender: mal.name, reason: 'stale_epoch' }]);
    // A new device of bea's, reading history cold, judges it the same way.
    const laptop = await freshDevice(relay, bea.name);
    clients.push(laptop);
    const onLaptop = await roomOf(laptop, room.id, (r) => r.messages.value.length === 2);
    await waitFor(() => laptop.stats.count() === 1, 5000, 'the laptop judges it');
    expect(roomBodies(onLaptop)).toEqual(['while a member', 'after the removal']);
    expect(laptop.stats.rejections.value.map((r) => r.reason)).toEqual(['stale_epoch']);
  });
});
