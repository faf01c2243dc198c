// Rooms end to end over a real relay with SDK clients: creating, finding by name and joining
// (admitted at once in an open room, approved or declined in a private one), chatting, removal with
// a key rotation, leaving, roles, reconnection, and what a newcomer can and cannot read.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Room } from '../../client/sdk/index.ts';
import { openEnvelope, unwrapConversationKey, type SealedEnvelope } from '../../shared/index.ts';
import { PASSWORD, queryDb, startTestRelay, uniqueName, waitFor, type TestRelay } from '../helpers/relay.ts';
import { RelayTamper, freshDevice } from '../helpers/tamper.ts';
import { deviceKeys, roomBodies, roomOf, roster, signUpPerson, type Person } from '../helpers/rooms.ts';

let relay: TestRelay;
let evil: RelayTamper;
const people: { client: { disconnect(): void } }[] = [];

beforeAll(async () => {
  relay = await startTestRelay();
  evil = new RelayTamper(relay);
});
afterAll(async () => {
  for (const p of people) p.client.disconnect();
  await relay.stop();
});

async function person(prefix: string): Promise<Person> {
  const p = await signUpPerson(relay, prefix);
  people.push(p);
  return p;
}

const roomName = () => `Club ${uniqueName('r')}`;

/** The chain's links as the relay stores them: `op` and `actor` of each. */
function ops(conv: string): string[] {
  return queryDb<{ body: Buffer }>(relay, 'SELECT body FROM statements WHERE conv_id = ? ORDER BY seq', conv).map((r) => {
    const st = JSON.parse(r.body.toString('utf8'));
    const target = st.body.member?.username ?? st.body.member ?? '';
    return [st.body.op, st.actor, target, st.body.via ?? st.body.role ?? st.body.epoch ?? ''].filter((x) => x !== '').join(' ');
  });
}

/** Epochs of the wrapped keys the relay holds for `username` in `conv`. */
function keyEpochs(conv: string, username: string): number[] {
  return queryDb<{ epoch: number }>(
    relay,
    'SELECT epoch FROM wrapped_keys JOIN users ON users.id = recipient_id WHERE conv_id = ? AND username = ? ORDER BY epoch',
    conv,
    username,
  ).map((r) => r.epoch);
}

/** A room with `owner` and everyone in `invited` as members, each with the room open. */
async function roomWith(owner: Person, invited: Person[], policy: 'open' | 'private' = 'private'): Promise<{ room: Room; name: string; views: Room[] }> {
  const name = roomName();
  const room = await owner.client.createRoom(name, { topic: 'a topic', policy });
  for (const p of invited) await room.invite(p.name);
  const views = await Promise.all(invited.map((p) => roomOf(p.client, room.id)));
  return { room, name, views };
}

async function noRejections(...ps: Person[]): Promise<void> {
  for (const p of ps) expect(p.client.stats.rejections.value, p.name).toEqual([]);
}

describe('joining', () => {
  it('an open room is found by its name however it is typed, and the owner’s client admits the request itself', async () => {
    const [ann, bea] = [await person('ann'), await person('bea')];
    const name = roomName();
    const room = await ann.client.createRoom(name, { topic: 'novels and tea', policy: 'open' });
    expect([room.state.value, room.myRole.value, room.epoch, room.problem.value]).toEqual(['member', 'owner', 0, null]);
    expect(room.meta.value).toEqual({ name, topic: 'novels and tea', policy: 'open' });
    expect(roster(room)).toEqual([`${ann.name}:owner`]);
    await expect(ann.client.createRoom(`  ${name.toUpperCase()}  `, { policy: 'private' })).rejects.toMatchObject({ code: 'conflict' });
    await expect(bea.client.joinRoom(`${name} and more`)).rejects.toMatchObject({ code: 'not_found', message: 'no room with that name' });

    const joined = await bea.client.joinRoom(name.toUpperCase().replace(' ', '   '));
    expect(joined.id).toBe(room.id);
    expect(['waiting-for-approval', 'member']).toContain(joined.state.value);
    await waitFor(() => joined.state.value === 'member', 5000, 'admitted');
    expect(roster(joined)).toEqual([`${ann.name}:owner`, `${bea.name}:member`].sort());
    expect([joined.myRole.value, joined.meta.value]).toEqual(['member', room.meta.value]);
    expect(ops(room.id)).toEqual([`create ${ann.name}`, `add ${ann.name} ${bea.name} join`]);
    await waitFor(() => room.members.value.length === 2, 5000, 'the owner sees the new member');

    await room.sendText('welcome');
    await joined.sendText('thanks');
    await waitFor(() => roomBodies(joined).length === 2 && roomBodies(room).length === 2, 5000, 'both messages on both sides');
    expect(roomBodies(joined)).toEqual(['welcome', 'thanks']);
    expect(roomBodies(room)).toEqual(['welcome', 'thanks']);
    // Rooms are listed apart from direct conversations.
    expect(bea.client.rooms.value).toEqual([joined]);
    expect(bea.client.conversations.value).toEqual([]);
    await noRejections(ann, bea);
  });

  it('a private room: a request waits for an admin, who approves one and declines another', async () => {
    const [ann, cat, dan] = [await person('ann'), await person('cat'), await person('dan')];
    const name = roomName();
    const room = await ann.client.createRoom(name, { policy: 'private' });
    const catRoom = await cat.client.joinRoom(name);
    expect([catRoom.state.value, catRoom.requestedName.value, catRoom.meta.value]).toEqual(['waiting-for-approval', name, null]);
    await waitFor(() => room.pendingRequests.value.length === 1, 5000, 'the request reaches the admin');
    expect(room.pendingRequests.value[0]).toMatchObject({ username: cat.name, identityKey: cat.client.identityKey });
    expect(catRoom.state.value).toBe('waiting-for-approval');
    await expect(catRoom.sendText('let me in')).rejects.toMatchObject({ code: 'forbidden' });

    await room.approve(cat.name);
    await waitFor(() => catRoom.state.value === 'member', 5000, 'approved');
    expect(room.pendingRequests.value).toEqual([]);
    expect(roster(catRoom)).toEqual([`${ann.name}:owner`, `${cat.name}:member`].sort());

    const danRoom = await dan.client.joinRoom(name);
    await waitFor(() => room.pendingRequests.value.some((r) => r.username === dan.name), 5000, 'the second request');
    await expect(catRoom.approve(dan.name)).rejects.toMatchObject({ code: 'forbidden' });
    await expect(catRoom.decline(dan.name)).rejects.toMatchObject({ code: 'forbidden' });
    await room.decline(dan.name);
    await waitFor(() => danRoom.state.value === 'declined', 5000, 'declined');
    expect(room.pendingRequests.value).toEqual([]);
    // Another device of dan's learns it from the relay.
    const laptop = await freshDevice(relay, dan.name);
    people.push({ client: laptop });
    await roomOf(laptop, room.id, (r) => r.state.value === 'declined');
    // Asking again puts the request back in front of the admin.
    expect(await dan.client.joinRoom(name)).toBe(danRoom);
    expect(danRoom.state.value).toBe('waiting-for-approval');
    await waitFor(() => room.pendingRequests.value.some((r) => r.username === dan.name), 5000, 'asked again');
    expect(ops(room.id)).toEqual([`create ${ann.name}`, `add ${ann.name} ${cat.name} join`]);
    await noRejections(ann, cat, dan);
  });

  it('requests made or answered while someone is offline are settled when they reconnect', async () => {
    const [ann, cat, dan] = [await person('ann'), await person('cat'), await person('dan')];
    const { room: open } = await roomWith(ann, [], 'open');
    const openName = open.meta.value!.name;
    // The only admin is away when dan asks; her client admits him when it reconnects.
    ann.client.disconnect();
    const danRoom = await dan.client.joinRoom(openName);
    expect(danRoom.state.value).toBe('waiting-for-approval');
    await ann.client.reconnect();
    await waitFor(() => danRoom.state.value === 'member', 5000, 'admitted on reconnect');

    // Cat is away when approved; on reconnect her room opens with what was said meanwhile.
    const { room: priv, name } = await roomWith(ann, []);
    const catRoom = await cat.client.joinRoom(name);
    await waitFor(() => priv.pendingRequests.value.length === 1, 5000, 'request listed');
    cat.client.disconnect();
    await priv.approve(cat.name);
    await priv.sendText('you are in');
    expect(catRoom.state.value).toBe('waiting-for-approval');
    await cat.client.reconnect();
    await waitFor(() => catRoom.state.value === 'member' && roomBodies(catRoom).length === 1, 5000, 'cat catches up');
    expect(roomBodies(catRoom)).toEqual(['you are in']);
    await noRejections(ann, cat, dan);
  });
});

describe('join-request throttle', () => {
  it('refuses a requester past the limit for one room, changing nothing, and lets them ask again after the window', async () => {
    let now = Date.now();
    const r = await startTestRelay({ now: () => now, throttle: { joinRequestsPerRoom: 2, windowMs: 60_000 } });
    const clients: { disconnect(): void }[] = [];
    const someone = async (prefix: string) => {
      const p = await signUpPerson(r, prefix);
      clients.push(p.client);
      return p;
    };
    const requestRow = (conv: string, name: string) =>
      queryDb<{ status: string; created_at: number }>(
        r,
        'SELECT j.status, j.created_at FROM join_requests j JOIN users u ON u.id = j.user_id WHERE j.conv_id = ? AND u.username = ?',
        conv,
        name,
      );
    try {
      const [ann, dan, eve] = [await someone('ann'), await someone('dan'), await someone('eve')];
      const name = roomName();
      const room = await ann.client.createRoom(name, { policy: 'private' });
      const listed = (who: string) => waitFor(() => room.pendingRequests.value.some((q) => q.username === who), 5000, `${who} listed`);

      // Two requests, each declined.
      const danRoom = await dan.client.joinRoom(name);
      for (let i = 0; i < 2; i++) {
        if (i > 0) expect(await dan.client.joinRoom(name)).toBe(danRoom);
        await listed(dan.name);
        await room.decline(dan.name);
        await waitFor(() => danRoom.state.value === 'declined', 5000, 'declined');
      }

      // The third is refused, and nothing changes: the stored request, dan's view, ann's list.
      const before = requestRow(room.id, dan.name);
      expect(before).toEqual([{ status: 'declined', created_at: now }]);
      await expect(dan.client.joinRoom(name)).rejects.toMatchObject({ code: 'rate_limited' });
      expect(danRoom.state.value).toBe('declined');
      expect(requestRow(room.id, dan.name)).toEqual(before);

      // Someone else asking this room, and dan asking another room, are not held back.
      const eveRoom = await eve.client.joinRoom(name);
      expect(eveRoom.state.value).toBe('waiting-for-approval');
      await listed(eve.name);
      expect(room.pendingRequests.value.map((q) => q.username)).toEqual([eve.name]);
      const otherName = roomName();
      const other = await ann.client.createRoom(otherName, { policy: 'private' });
      expect((await dan.client.joinRoom(otherName)).state.value).toBe('waiting-for-approval');
      await waitFor(() => other.pendingRequests.value.length === 1, 5000, 'dan listed in the other room');

      // Once the window has passed, dan may ask again.
      now += 60_001;
      expect(await dan.client.joinRoom(name)).toBe(danRoom);
      expect(danRoom.state.value).toBe('waiting-for-approval');
      await listed(dan.name);
      expect(requestRow(room.id, dan.name)).toEqual([{ status: 'pending', created_at: now }]);
    } finally {
      for (const c of clients) c.disconnect();
      await r.stop();
    }
  });
});

describe('removal and leaving', () => {
  it('three chat; an admin removes the third, the others move to a new key, and the removed client cannot read on', async () => {
    const [ann, bea, cat] = [await person('ann'), await person('bea'), await person('cat')];
    const name = roomName();
    const room = await ann.client.createRoom(name, { policy: 'private' });
    await room.invite(bea.name);
    const beaRoom = await roomOf(bea.client, room.id);
    const catRoom = await cat.client.joinRoom(name);
    await waitFor(() => room.pendingRequests.value.length === 1, 5000, 'request listed');
    await room.approve(cat.name);
    await waitFor(() => catRoom.state.value === 'member', 5000, 'cat admitted');

    await room.sendText('one');
    await beaRoom.sendText('two');
    await catRoom.sendText('three');
    const all = [room, beaRoom, catRoom];
    await waitFor(() => all.every((r) => r.messages.value.length === 3), 5000, 'three messages everywhere');
    for (const r of all) expect(roomBodies(r)).toEqual(['one', 'two', 'three']);

    await room.remove(cat.name);
    expect(room.epoch).toBe(1);
    await waitFor(() => beaRoom.epoch === 1 && catRoom.state.value === 'removed', 5000, 'everyone learns of the removal');
    expect(roster(beaRoom)).toEqual([`${ann.name}:owner`, `${bea.name}:member`].sort());
    expect(ops(room.id).at(-1)).toBe(`remove ${ann.name} ${cat.name} 1`);
    expect(keyEpochs(room.id, cat.name)).toEqual([0]);
    expect(keyEpochs(room.id, bea.name)).toEqual([0, 1]);

    const four = await room.sendText('four');
    await waitFor(() => beaRoom.messages.value.length === 4, 5000, 'bea reads on');
    expect(roomBodies(beaRoom)).toEqual(['one', 'two', 'three', 'four']);
    await expect(catRoom.sendText('still here?')).rejects.toMatchObject({ code: 'forbidden' });
    cat.client.disconnect();
    await cat.client.reconnect();
    await beaRoom.sendText('five');
    await waitFor(() => room.messages.value.length === 5, 5000, 'ann reads five');
    // What cat's client showed stays; nothing after the removal reaches it.
    expect(roomBodies(catRoom)).toEqual(['one', 'two', 'three']);
    expect(catRoom.state.value).toBe('removed');

    // Cryptographically too: with every key the relay ever gave cat, the new message does not open.
    const catKeys = await deviceKeys(cat);
    const rows = queryDb<{ epoch: number; wrapped: Buffer; sig: Buffer }>(
      relay,
      'SELECT epoch, wrapped, wrapped_keys.sig FROM wrapped_keys JOIN users ON users.id = recipient_id WHERE conv_id = ? AND username = ?',
      room.id,
      cat.name,
    );
    const catEpochKeys = rows.map((r) =>
      unwrapConversationKey(
        { conv: room.id, epoch: r.epoch, recipient: cat.name, wrappedBy: ann.name, wrapped: new Uint8Array(r.wrapped), sig: new Uint8Array(r.sig) },
        catKeys.agreement.secretKey,
        ann.client.identityKey,
      ),
    );
    expect(catEpochKeys).toHaveLength(1);
    const row = evil.row(room.id, four.seq!);
    const env: SealedEnvelope = {
      v: row.v,
      suite: row.suite,
      type: row.type as 'content',
      conv: room.id,
      epoch: row.epoch,
      sender: ann.name,
      rosterHash: new Uint8Array(row.roster_hash),
      clientMsgId: row.client_msg_id,
      counter: row.counter,
      expiresAt: row.env_expires_at,
      burnAfterMs: row.burn_after_ms,
      ct: new Uint8Array(row.ct),
      sig: new Uint8Array(row.sig),
    };
    expect(env.epoch).toBe(1);
    for (const k of catEpochKeys) expect(() => openEnvelope(env, k, ann.client.identityKey)).toThrow();
    await noRejections(ann, bea, cat);
  });

  it('a member leaves; nobody sends until an admin’s client rotates, which it does when it comes back online', async () => {
    const [ann, bea, cat] = [await person('ann'), await person('bea'), await person('cat')];
    const { room, views } = await roomWith(ann, [bea, cat]);
    const [beaRoom, catRoom] = views as [Room, Room];
    await catRoom.sendText('bye all');
    await waitFor(() => beaRoom.messages.value.length === 1, 5000, 'bea reads the goodbye');

    ann.client.disconnect();
    await catRoom.leave();
    expect(catRoom.state.value).toBe('removed');
    await waitFor(() => beaRoom.needsRotation.value, 5000, 'bea sees the leave');
    expect(roster(beaRoom)).toEqual([`${ann.name}:owner`, `${bea.name}:member`].sort());
    await expect(beaRoom.sendText('anyone?')).rejects.toMatchObject({ code: 'conflict' });

    await ann.client.reconnect();
    await waitFor(() => beaRoom.epoch === 1 && !beaRoom.needsRotation.value, 5000, 'the admin’s client rotates');
    expect(ops(room.id).slice(-2)).toEqual([`leave ${cat.name}`, `rotate ${ann.name} 1`]);
    expect(keyEpochs(room.id, cat.name)).toEqual([0]);
    await beaRoom.sendText('just us');
    await waitFor(() => room.messages.value.length === 2, 5000, 'ann reads it');
    expect(roomBodies(room)).toEqual(['bye all', 'just us']);
    expect(roomBodies(catRoom)).toEqual(['bye all']);
    await expect(catRoom.leave()).rejects.toMatchObject({ code: 'forbidden' });
    await noRejections(ann, bea, cat);
  });
});

describe('roles', () => {
  it('promote and demote; two admins race to rotate after a leave and exactly one rotation lands', async () => {
    const [ann, bea, cat, dan, eve] = [await person('ann'), await person('bea'), await person('cat'), await person('dan'), await person('eve')];
    const { room, views } = await roomWith(ann, [bea, cat]);
    const [beaRoom, catRoom] = views as [Room, Room];
    await expect(beaRoom.invite(dan.name)).rejects.toMatchObject({ code: 'forbidden' });
    await room.promote(bea.name);
    await waitFor(() => beaRoom.myRole.value === 'admin', 5000, 'bea is an admin');
    await beaRoom.invite(dan.name);
    const danRoom = await roomOf(dan.client, room.id);
    await expect(beaRoom.demote(ann.name)).rejects.toMatchObject({ code: 'forbidden' });
    await expect(beaRoom.remove(ann.name)).rejects.toMatchObject({ code: 'forbidden' });

    await catRoom.leave();
    await waitFor(() => [room, beaRoom, danRoom].every((r) => r.epoch === 1 && !r.needsRotation.value), 5000, 'rotated once');
    const tail = ops(room.id).slice(-2);
    expect(tail[0]).toBe(`leave ${cat.name}`);
    expect(tail[1]).toMatch(new RegExp(`^rotate (${ann.name}|${bea.name}) 1$`));
    // Give the losing admin's client time to find out it lost, then check nothing else was posted.
    await new Promise((r) => setTimeout(r, 300));
    expect(ops(room.id).filter((o) => o.startsWith('rotate'))).toHaveLength(1);

    await room.demote(bea.name);
    await waitFor(() => beaRoom.myRole.value === 'member', 5000, 'bea is a member again');
    await expect(beaRoom.invite(eve.name)).rejects.toMatchObject({ code: 'forbidden' });
    await expect(beaRoom.rotate()).rejects.toMatchObject({ code: 'forbidden' });
    await beaRoom.sendText('still talking');
    await waitFor(() => danRoom.messages.value.length === 1, 5000, 'dan reads bea');
    expect(ops(room.id).slice(-1)).toEqual([`role ${ann.name} ${bea.name} member`]);
    await noRejections(ann, bea, cat, dan);
  });
});

describe('changes at the same moment', () => {
  it('two admins change the room at once: one is refused as out of date, rebuilt on the new chain, and both land', async () => {
    const [ann, bea, cat, dan] = [await person('ann'), await person('bea'), await person('cat'), await person('dan')];
    const { room, views } = await roomWith(ann, [bea, cat, dan]);
    const [beaRoom] = views as [Room];
    await room.promote(bea.name);
    await waitFor(() => beaRoom.myRole.value === 'admin', 5000, 'bea is an admin');
    const conflictsBefore = relay.logs.filter((l) => l.includes('"route":"/api/rooms/:id/statements"') && l.includes('"status":409')).length;
    // Both sign a link at the same position; the relay takes one and refuses the other (409).
    await Promise.all([room.promote(cat.name), beaRoom.promote(dan.name)]);
    const conflicts = relay.logs.filter((l) => l.includes('"route":"/api/rooms/:id/statements"') && l.includes('"status":409')).length;
    expect(conflicts - conflictsBefore).toBe(1);
    await waitFor(() => [room, beaRoom].every((r) => r.members.value.filter((m) => m.role === 'admin').length === 3), 5000, 'both promotions');
    expect(ops(room.id).slice(-2).sort()).toEqual([`role ${ann.name} ${cat.name} admin`, `role ${bea.name} ${dan.name} admin`].sort());
    await noRejections(ann, bea, cat, dan);
  });
});

describe('history', () => {
  it('a newcomer reads from its join on: older epochs stay unreadable and are passed over without alarm', async () => {
    const [ann, bea, dan] = [await person('ann'), await person('bea'), await person('dan')];
    const { room, name, views } = await roomWith(ann, [bea], 'open');
    const [beaRoom] = views as [Room];
    await room.sendText('old one');
    await beaRoom.sendText('old two');
    await room.rotate();
    await room.sendText('epoch one, before dan');
    await waitFor(() => beaRoom.messages.value.length === 3, 5000, 'bea reads all three');

    const danRoom = await dan.client.joinRoom(name);
    await waitFor(() => danRoom.state.value === 'member' && danRoom.unreadable.value === 3, 5000, 'dan opens the room');
    expect(roomBodies(danRoom)).toEqual([]);
    expect(keyEpochs(room.id, dan.name)).toEqual([1]);
    await room.sendText('welcome dan');
    await waitFor(() => danRoom.messages.value.length === 1, 5000, 'dan reads what follows his join');
    expect(roomBodies(danRoom)).toEqual(['welcome dan']);
    expect(danRoom.notices.value).toEqual([]);
    expect(danRoom.hasOlder.value).toBe(false);

    // The same on a new device, from history alone.
    const laptop = await freshDevice(relay, dan.name);
    people.push({ client: laptop });
    const onLaptop = await roomOf(laptop, room.id, (r) => r.messages.value.length === 1);
    expect(roomBodies(onLaptop)).toEqual(['welcome dan']);
    expect([onLaptop.unreadable.value, onLaptop.notices.value]).toEqual([3, []]);
    // Members from before read everything, as before.
    await waitFor(() => beaRoom.messages.value.length === 4, 5000, 'bea reads the welcome');
    expect(roomBodies(beaRoom)).toEqual(['old one', 'old two', 'epoch one, before dan', 'welcome dan']);
    await noRejections(ann, bea, dan);
    expect(laptop.stats.count()).toBe(0);
  });

  it('a room survives logging out and back in, and opens on a brand-new device', async () => {
    const [ann, bea] = [await person('ann'), await person('bea')];
    const { room, views } = await roomWith(ann, [bea]);
    await room.sendText('remember me');
    await waitFor(() => views[0]!.messages.value.length === 1, 5000, 'bea reads it');
    await bea.client.logOut();
    expect(bea.client.rooms.value).toEqual([]);
    await bea.client.logIn(bea.name, PASSWORD);
    const again = await roomOf(bea.client, room.id, (r) => r.messages.value.length === 1);
    expect([roomBodies(again), again.meta.value?.name, again.myRole.value]).toEqual([['remember me'], room.meta.value?.name, 'member']);
    await again.sendText('back');
    await waitFor(() => room.messages.value.length === 2, 5000, 'ann reads it');
    await noRejections(ann, bea);
  });
});
