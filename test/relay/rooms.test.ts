// Rooms over the wire: creation and lookup by name hash, join requests, every kind of chain change
// and what it carries, and the relay's authorization of members and non-members. The links, keys
// and settings are built with shared crypto and signed with the keys of users made by the SDK.
import crypto from 'node:crypto';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ConversationSummary,
  ErrorBodySchema,
  LIMITS,
  MyJoinRequests,
  PendingJoinRequests,
  fromB64,
  generateIdentity,
  initCrypto,
  roomNameHash,
  toB64,
  unwrapConversationKey,
  verifyJoinRequest,
  type RoomOp,
  type WrappedKeyWire,
} from '../../shared/index.ts';
import { api, dataFilesContain, fakeEnvelope, queryDb, startPair, startTestRelay, type ApiResponse, type TestRelay } from '../helpers/relay.ts';
import {
  RoomBuilder,
  addMember,
  createRoom,
  liveProbe,
  memberRef,
  postChange,
  signUpPerson,
  tableCounts,
  wire,
  type Person,
  type Signer,
} from './rooms-fixtures.ts';

let relay: TestRelay;
let alice: Person; // owns the rooms below
let ada: Person; // made admin
let bob: Person;
let carol: Person;
let jo: Person; // asks to join
let dee: Person; // is declined
let eve: Person; // never a member

beforeAll(async () => {
  await initCrypto();
  relay = await startTestRelay();
  alice = await signUpPerson(relay, 'alice');
  ada = await signUpPerson(relay, 'ada');
  bob = await signUpPerson(relay, 'bob');
  carol = await signUpPerson(relay, 'carol');
  jo = await signUpPerson(relay, 'jo');
  dee = await signUpPerson(relay, 'dee');
  eve = await signUpPerson(relay, 'eve');
});
afterAll(async () => {
  await relay.stop();
});

function expectError(res: ApiResponse, status: number, code: string): string {
  expect(res.status, res.text).toBe(status);
  const parsed = ErrorBodySchema.parse(res.json);
  expect(parsed.error.code).toBe(code);
  return parsed.error.message;
}

async function summaryOf(p: Person, conv: string): Promise<ApiResponse> {
  return api(relay, 'GET', `/api/conversations/${conv}`, { cookie: p.cookie });
}

/** The epoch key the caller's summary holds for `epoch`, unwrapped with the caller's own secret. */
function unwrapFrom(summary: ConversationSummary, who: Signer, epoch: number, wrapper: Signer): Uint8Array {
  const k = summary.keys.find((key) => key.epoch === epoch && key.recipient === who.name);
  if (!k) throw new Error(`no key for ${who.name} at epoch ${epoch}`);
  return unwrapConversationKey(
    { conv: k.conv, epoch: k.epoch, recipient: k.recipient, wrappedBy: k.wrappedBy, wrapped: fromB64(k.wrapped), sig: fromB64(k.sig) },
    who.keys.agreement.secretKey,
    wrapper.keys.signing.publicKey,
  );
}

/**
 * POSTs on a connection of its own: the relay may answer 413 and close before reading the rest, which
 * must not break the keep-alive connection the other requests share.
 */
function postOnFreshConnection(path: string, cookie: string, body: string): Promise<{ status: number; code: string }> {
  const url = new URL(path, relay.url);
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = http.request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'POST',
        agent: false,
        headers: { origin: url.origin, cookie, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        answered = true;
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, code: JSON.parse(text).error?.code }));
      },
    );
    req.on('error', (err) => answered || reject(err));
    req.end(body);
  });
}

/** Gives pushes in flight a moment to arrive before asserting that none did. */
const settle = () => new Promise((r) => setTimeout(r, 150));

describe('creating and finding rooms', () => {
  it('creates a room, finds it by its name hash, and keeps the name and settings out of the database and logs', async () => {
    const name = `Secret Garden ${crypto.randomBytes(6).toString('hex')}`;
    const topic = `topic ${crypto.randomBytes(6).toString('hex')}`;
    const nameHash = roomNameHash(name);
    const room = new RoomBuilder(alice, { name, topic, policy: 'private' });
    const creatorProbe = await liveProbe(relay, alice);
    const { body, genesis } = room.createBody(nameHash);
    const res = await api(relay, 'POST', '/api/rooms', { cookie: alice.cookie, body });
    expect(res.status, res.text).toBe(201);
    const summary = ConversationSummary.parse(res.json);
    expect(summary).toMatchObject({ id: room.id, kind: 'room', members: [alice.name], lastSeq: 0, myLastCounter: 0 });
    expect(summary.statements).toEqual([wire(genesis)]);
    expect(summary.genesis).toEqual(wire(genesis));
    expect(summary.meta).toEqual(body.meta);
    expect(summary.keys).toEqual(body.keys);
    expect(unwrapFrom(summary, alice, 0, alice)).toEqual(room.epochKeys[0]);
    await creatorProbe.next((f) => f.t === 'conv' && f.conv === room.id);
    creatorProbe.close();

    // Anyone logged in finds the room by the hash of its name (normalised by the client), no one by another name.
    for (const typed of [name, `  ${name.toUpperCase()} `]) {
      const found = await api(relay, 'POST', '/api/rooms/lookup', { cookie: eve.cookie, body: { nameHash: toB64(roomNameHash(typed)) } });
      expect(found.status).toBe(200);
      expect(found.json).toEqual({ id: room.id });
    }
    const missing = await api(relay, 'POST', '/api/rooms/lookup', { cookie: eve.cookie, body: { nameHash: toB64(roomNameHash(`${name}!`)) } });
    expect(expectError(missing, 404, 'not_found')).toBe('no room with that name');
    expectError(await api(relay, 'POST', '/api/rooms/lookup', { body: { nameHash: toB64(nameHash) } }), 401, 'unauthorized');

    const [row] = queryDb<any>(relay, 'select kind, direct_key, name_hash, meta_epoch from conversations where id = ?', room.id);
    expect(row).toMatchObject({ kind: 'room', direct_key: null, meta_epoch: 0 });
    expect(Buffer.from(row.name_hash).equals(Buffer.from(nameHash))).toBe(true);
    expect(queryDb(relay, 'select m.role from members m join users u on u.id = m.user_id where m.conv_id = ?', room.id)).toEqual([{ role: 'owner' }]);
    expect(queryDb(relay, 'select seq from statements where conv_id = ?', room.id)).toEqual([{ seq: 0 }]);

    const list = await api(relay, 'GET', '/api/conversations', { cookie: alice.cookie });
    expect(list.json.conversations.find((c: ConversationSummary) => c.id === room.id)).toEqual(summary);
    const probe = await liveProbe(relay, alice);
    const hello = probe.received.find((f) => f.t === 'hello');
    expect(hello.convs).toContainEqual({ conv: room.id, lastSeq: 0 });
    probe.close();

    const lowered = name.toLowerCase();
    for (const secret of [name, lowered, topic]) {
      expect(dataFilesContain(relay, secret), secret).toBe(false);
      expect(relay.logs.some((l) => l.includes(secret))).toBe(false);
    }
    expect(relay.logs.some((l) => l.includes(toB64(nameHash)))).toBe(false);
  });

  it('refuses a second room with a taken name or a taken id, and writes nothing', async () => {
    const nameHash = crypto.randomBytes(32);
    const first = await createRoom(relay, alice, nameHash);
    const pair = await startPair(relay);
    const before = tableCounts(relay);
    const sameName = new RoomBuilder(bob).createBody(nameHash).body;
    expect(expectError(await api(relay, 'POST', '/api/rooms', { cookie: bob.cookie, body: sameName }), 409, 'conflict')).toBe('a room with this name exists');
    for (const id of [first.id, pair.conv]) {
      const takenId = new RoomBuilder(bob, undefined, id).createBody(crypto.randomBytes(32)).body;
      expectError(await api(relay, 'POST', '/api/rooms', { cookie: bob.cookie, body: takenId }), 409, 'conflict');
    }
    expect(tableCounts(relay)).toEqual(before);
    // With a fresh name and id the same person's room is made: the refusals were about the name and the id.
    expect((await api(relay, 'POST', '/api/rooms', { cookie: bob.cookie, body: new RoomBuilder(bob).createBody(crypto.randomBytes(32)).body })).status).toBe(201);
  });

  type Bad = [label: string, make: (room: RoomBuilder) => Record<string, any>];
  const stranger = () => ({ name: alice.name, keys: generateIdentity() });
  const cases: Bad[] = [
    ['a genesis by someone else', (room) => ({ ...room.createBody(crypto.randomBytes(32)).body, genesis: wire(new RoomBuilder(bob).sign(bob, { op: 'create', owner: memberRef(bob) }, 0, null)) })],
    [
      'a genesis whose owner key is not the caller’s',
      (room) => {
        const imposter = stranger();
        return { ...room.createBody(crypto.randomBytes(32)).body, genesis: wire(room.sign(imposter, { op: 'create', owner: memberRef(imposter) }, 0, null)) };
      },
    ],
    ['a genesis with a bad signature', (room) => { const b = room.createBody(crypto.randomBytes(32)).body; b.genesis.sig = toB64(crypto.randomBytes(64)); return b; }],
    ['a genesis for another room', (room) => ({ ...room.createBody(crypto.randomBytes(32)).body, genesis: wire(new RoomBuilder(alice).sign(alice, { op: 'create', owner: memberRef(alice) }, 0, null)) })],
    ['a first link that is not a create', (room) => ({ ...room.createBody(crypto.randomBytes(32)).body, genesis: wire(room.sign(alice, { op: 'rotate', epoch: 1 }, 0, null)) })],
    ['a genesis at seq 1', (room) => ({ ...room.createBody(crypto.randomBytes(32)).body, genesis: wire(room.sign(alice, { op: 'create', owner: memberRef(alice) }, 1, null)) })],
    ['a key for epoch 1', (room) => ({ ...room.createBody(crypto.randomBytes(32)).body, keys: [{ ...room.wrap(alice, alice, 0), epoch: 1 }] })],
    ['a key for someone else', (room) => ({ ...room.createBody(crypto.randomBytes(32)).body, keys: [room.wrap(bob, alice, 0)] })],
    ['a key wrapped by someone else', (room) => ({ ...room.createBody(crypto.randomBytes(32)).body, keys: [room.wrap(alice, bob, 0)] })],
    ['a key for another room', (room) => ({ ...room.createBody(crypto.randomBytes(32)).body, keys: [new RoomBuilder(alice).wrap(alice, alice, 0)] })],
    ['two keys', (room) => { const b = room.createBody(crypto.randomBytes(32)).body; b.keys.push(room.wrap(bob, alice, 0)); return b; }],
    ['settings for epoch 1', (room) => ({ ...room.createBody(crypto.randomBytes(32)).body, meta: { ...room.sealMeta(alice, 0), epoch: 1 } })],
    ['settings by someone else', (room) => ({ ...room.createBody(crypto.randomBytes(32)).body, meta: room.sealMeta(bob, 0) })],
    ['no settings', (room) => ({ ...room.createBody(crypto.randomBytes(32)).body, meta: null })],
  ];
  it.each(cases)('refuses %s with 400 and writes nothing', async (_label, make) => {
    const room = new RoomBuilder(alice);
    const before = tableCounts(relay);
    expectError(await api(relay, 'POST', '/api/rooms', { cookie: alice.cookie, body: make(room) }), 400, 'bad_request');
    expect(tableCounts(relay)).toEqual(before);
  });
});

describe('join requests', () => {
  it('goes from a request, seen by the admins only, to an add that gives the joiner the room and its key', async () => {
    const room = await createRoom(relay, alice);
    await addMember(relay, room, alice, ada, 'admin');
    await addMember(relay, room, alice, bob);
    const [pa, pada, pbob, pjo] = await Promise.all([alice, ada, bob, jo].map((p) => liveProbe(relay, p)));

    const joined = await api(relay, 'POST', `/api/rooms/${room.id}/join`, { cookie: jo.cookie, body: room.joinRequest(jo) });
    expect(joined.status).toBe(202);
    expect(joined.json).toEqual({ ok: true });
    for (const probe of [pa!, pada!]) await probe.next((f) => f.t === 'join-request' && f.conv === room.id && f.username === jo.name);
    await settle();
    expect(pbob!.received.filter((f) => f.t === 'join-request')).toEqual([]);
    expect(pjo!.received.filter((f) => f.t === 'join-request')).toEqual([]);

    const mine = MyJoinRequests.parse((await api(relay, 'GET', '/api/rooms/requests/mine', { cookie: jo.cookie })).json);
    expect(mine.requests).toEqual([{ conv: room.id, status: 'pending', at: expect.any(Number) }]);
    expectError(await api(relay, 'GET', `/api/rooms/${room.id}/requests`, { cookie: bob.cookie }), 403, 'forbidden');
    expectError(await api(relay, 'GET', `/api/rooms/${room.id}/requests`, { cookie: jo.cookie }), 403, 'forbidden');
    expectError(await api(relay, 'GET', `/api/rooms/${toB64(crypto.randomBytes(16))}/requests`, { cookie: ada.cookie }), 404, 'not_found');
    const pending = PendingJoinRequests.parse((await api(relay, 'GET', `/api/rooms/${room.id}/requests`, { cookie: ada.cookie })).json);
    expect(pending.requests).toHaveLength(1);
    const request = verifyJoinRequest({ statement: pending.requests[0]!.statement, sig: fromB64(pending.requests[0]!.sig) });
    expect(request).toMatchObject({ conv: room.id, username: jo.name, identityKey: toB64(jo.keys.signing.publicKey) });
    expectError(await summaryOf(jo, room.id), 403, 'forbidden');

    const link = room.sign(ada, { op: 'add', member: memberRef(jo), role: 'member', via: 'join' });
    const added = await postChange(relay, room, ada, link, [room.wrap(jo, ada)]);
    expect(added.status, added.text).toBe(201);
    const adaView = ConversationSummary.parse(added.json);
    expect(adaView.members).toEqual([alice.name, ada.name, bob.name, jo.name].sort());
    expect(adaView.statements).toEqual(room.links.map(wire));
    for (const probe of [pa!, pada!, pbob!, pjo!]) await probe.next((f) => f.t === 'roster' && f.conv === room.id);

    const joView = ConversationSummary.parse((await summaryOf(jo, room.id)).json);
    expect(joView).toMatchObject({ id: room.id, kind: 'room', members: adaView.members, statements: adaView.statements });
    expect(joView.keys.map((k) => [k.epoch, k.recipient, k.wrappedBy])).toEqual([[0, jo.name, ada.name]]);
    expect(unwrapFrom(joView, jo, 0, ada)).toEqual(room.epochKeys[0]);
    expect(queryDb(relay, 'select 1 from join_requests where conv_id = ?', room.id)).toEqual([]);
    expect(MyJoinRequests.parse((await api(relay, 'GET', '/api/rooms/requests/mine', { cookie: jo.cookie })).json).requests).toEqual([]);
    expectError(await api(relay, 'POST', `/api/rooms/${room.id}/join`, { cookie: jo.cookie, body: room.joinRequest(jo) }), 409, 'conflict');
    const hello = await pjo!.request({ t: 'hello' });
    expect(hello.convs).toContainEqual({ conv: room.id, lastSeq: 0 });
    for (const probe of [pa!, pada!, pbob!, pjo!]) probe.close();
  });

  it('declines a request, tells the requester, and lets them ask again', async () => {
    const room = await createRoom(relay, alice);
    await addMember(relay, room, alice, bob);
    const pdee = await liveProbe(relay, dee);
    expect((await api(relay, 'POST', `/api/rooms/${room.id}/join`, { cookie: dee.cookie, body: room.joinRequest(dee) })).status).toBe(202);

    expectError(await api(relay, 'POST', `/api/rooms/${room.id}/requests/${dee.name}/decline`, { cookie: bob.cookie }), 403, 'forbidden');
    expectError(await api(relay, 'POST', `/api/rooms/${room.id}/requests/${eve.name}/decline`, { cookie: alice.cookie }), 404, 'not_found');
    const declined = await api(relay, 'POST', `/api/rooms/${room.id}/requests/${dee.name}/decline`, { cookie: alice.cookie });
    expect(declined.status).toBe(200);
    expect(declined.json).toEqual({ ok: true });
    await pdee.next((f) => f.t === 'join-declined' && f.conv === room.id);
    expect(MyJoinRequests.parse((await api(relay, 'GET', '/api/rooms/requests/mine', { cookie: dee.cookie })).json).requests).toEqual([
      { conv: room.id, status: 'declined', at: expect.any(Number) },
    ]);
    expect((await api(relay, 'GET', `/api/rooms/${room.id}/requests`, { cookie: alice.cookie })).json).toEqual({ requests: [] });
    expectError(await api(relay, 'POST', `/api/rooms/${room.id}/requests/${dee.name}/decline`, { cookie: alice.cookie }), 404, 'not_found');

    expect((await api(relay, 'POST', `/api/rooms/${room.id}/join`, { cookie: dee.cookie, body: room.joinRequest(dee) })).status).toBe(202);
    expect(MyJoinRequests.parse((await api(relay, 'GET', '/api/rooms/requests/mine', { cookie: dee.cookie })).json).requests).toEqual([
      { conv: room.id, status: 'pending', at: expect.any(Number) },
    ]);
    const pending = PendingJoinRequests.parse((await api(relay, 'GET', `/api/rooms/${room.id}/requests`, { cookie: alice.cookie })).json);
    expect(pending.requests.map((r) => JSON.parse(r.statement).username)).toEqual([dee.name]);
    expect(queryDb(relay, 'select count(*) as n from join_requests where conv_id = ?', room.id)).toEqual([{ n: 1 }]);
    pdee.close();
  });

  it('refuses a request that is not the caller’s own, for this room, under their own key', async () => {
    const room = await createRoom(relay, alice);
    const other = await createRoom(relay, alice);
    const before = tableCounts(relay);
    const forged = room.joinRequest(jo);
    forged.sig = new RoomBuilder(eve).joinRequest(eve).sig;
    const freshKeys = { name: dee.name, keys: generateIdentity() };
    const cases: [Person, unknown][] = [
      [jo, forged], // not signed by the key it names
      [jo, other.joinRequest(jo)], // for another room
      [eve, room.joinRequest(jo)], // someone else's request
      [dee, room.joinRequest(freshKeys)], // a key the directory does not publish for dee
      [jo, { statement: room.joinRequest(jo).statement }], // no signature
    ];
    for (const [who, body] of cases) expectError(await api(relay, 'POST', `/api/rooms/${room.id}/join`, { cookie: who.cookie, body }), 400, 'bad_request');
    const unknown = toB64(crypto.randomBytes(16));
    expectError(await api(relay, 'POST', `/api/rooms/${unknown}/join`, { cookie: jo.cookie, body: room.joinRequest(jo) }), 404, 'not_found');
    expect(tableCounts(relay)).toEqual(before);
  });
});

describe('chain changes', () => {
  it('refuses adds, removes, rotations and role changes by a non-admin, and links not signed as the caller', async () => {
    const room = await createRoom(relay, alice);
    await addMember(relay, room, alice, bob);
    await addMember(relay, room, alice, carol);
    const before = tableCounts(relay);
    const attempts: [Person, RoomOp, WrappedKeyWire[]][] = [
      [bob, { op: 'add', member: memberRef(eve), role: 'member', via: 'invite' }, [room.wrap(eve, bob)]],
      [bob, { op: 'remove', member: carol.name, epoch: 1 }, []],
      [bob, { op: 'rotate', epoch: 1 }, []],
      [bob, { op: 'role', member: carol.name, role: 'admin' }, []],
      [bob, { op: 'role', member: bob.name, role: 'admin' }, []],
      [eve, { op: 'add', member: memberRef(eve), role: 'admin', via: 'join' }, [room.wrap(eve, eve)]],
      [eve, { op: 'leave' }, []],
    ];
    for (const [by, body, keys] of attempts) {
      const res = await postChange(relay, room, by, room.sign(by, body), keys);
      expect(expectError(res, 403, 'forbidden'), JSON.stringify(body)).toMatch(/not an admin|not a member/);
    }
    // A link that names another actor than the caller, even one signed by that actor.
    const aliceLink = room.sign(alice, { op: 'add', member: memberRef(eve), role: 'member', via: 'invite' });
    expect(expectError(await postChange(relay, room, bob, aliceLink, [room.wrap(eve, alice)]), 403, 'forbidden')).toBe('statement.actor must be you');
    expect(tableCounts(relay)).toEqual(before);
    expect(queryDb(relay, 'select count(*) as n from statements where conv_id = ?', room.id)).toEqual([{ n: 3 }]);
  });

  it('refuses a stale or misplaced link with 409', async () => {
    const room = await createRoom(relay, alice);
    await addMember(relay, room, alice, ada, 'admin');
    const byAlice = room.sign(alice, { op: 'add', member: memberRef(bob), role: 'member', via: 'invite' });
    const byAda = room.sign(ada, { op: 'add', member: memberRef(carol), role: 'member', via: 'invite' });
    expect((await postChange(relay, room, alice, byAlice, [room.wrap(bob, alice)])).status).toBe(201);
    const before = tableCounts(relay);
    expect(expectError(await postChange(relay, room, ada, byAda, [room.wrap(carol, ada)]), 409, 'conflict')).toBe('statement does not follow the record before it');
    const wrongPrev = room.sign(ada, { op: 'add', member: memberRef(carol), role: 'member', via: 'invite' }, room.links.length, toB64(crypto.randomBytes(32)));
    expectError(await postChange(relay, room, ada, wrongPrev, [room.wrap(carol, ada)]), 409, 'conflict');
    const ahead = room.sign(ada, { op: 'add', member: memberRef(carol), role: 'member', via: 'invite' }, room.links.length + 1);
    expectError(await postChange(relay, room, ada, ahead, [room.wrap(carol, ada)]), 409, 'conflict');
    const noPrev = room.sign(ada, { op: 'add', member: memberRef(carol), role: 'member', via: 'invite' }, room.links.length, null);
    expectError(await postChange(relay, room, ada, noPrev, [room.wrap(carol, ada)]), 409, 'conflict');
    expect(tableCounts(relay)).toEqual(before);
    // Rebuilt on the new head, the same change goes through.
    await addMember(relay, room, ada, carol);
  });

  it('refuses a link whose signature does not verify', async () => {
    const room = await createRoom(relay, alice);
    const before = tableCounts(relay);
    const signedByOther = room.sign({ name: alice.name, keys: generateIdentity() }, { op: 'add', member: memberRef(bob), role: 'member', via: 'invite' });
    expect(expectError(await postChange(relay, room, alice, signedByOther, [room.wrap(bob, alice)]), 400, 'bad_request')).toMatch(/not signed by/);
    const link = room.sign(alice, { op: 'add', member: memberRef(bob), role: 'member', via: 'invite' });
    const flipped = { statement: link.statement, sig: Uint8Array.from(link.sig, (b, i) => (i === 0 ? b ^ 1 : b)) };
    expectError(await postChange(relay, room, alice, flipped, [room.wrap(bob, alice)]), 400, 'bad_request');
    const edited = { statement: link.statement.replace('"role":"member"', '"role":"admin"'), sig: link.sig };
    expectError(await postChange(relay, room, alice, edited, [room.wrap(bob, alice)]), 400, 'bad_request');
    expect(tableCounts(relay)).toEqual(before);
    expect((await postChange(relay, room, alice, link, [room.wrap(bob, alice)])).status).toBe(201);
  });

  type Carried = [label: string, make: (room: RoomBuilder) => { by: Person; op: RoomOp; keys: WrappedKeyWire[]; meta?: any }];
  const addOf = (who: Signer): RoomOp => ({ op: 'add', member: memberRef(who), role: 'member', via: 'invite' });
  /** A key or settings for epoch 1: the relay checks the fields, not the crypto, so the epoch-0 key will do. */
  const at1 = (r: RoomBuilder, p: Signer, by: Signer = alice): WrappedKeyWire => ({ ...r.wrap(p, by, 0), epoch: 1 });
  const meta1 = (r: RoomBuilder) => ({ ...r.sealMeta(alice, 0), epoch: 1 });
  const carried: Carried[] = [
    ['an add with no key', () => ({ by: alice, op: addOf(jo), keys: [] })],
    ['an add with a key for the next epoch', (r) => ({ by: alice, op: addOf(jo), keys: [at1(r, jo)] })],
    ['an add with a key for someone else', (r) => ({ by: alice, op: addOf(jo), keys: [r.wrap(dee, alice)] })],
    ['an add with a key wrapped by someone else', (r) => ({ by: alice, op: addOf(jo), keys: [r.wrap(jo, bob)] })],
    ['an add with a second key', (r) => ({ by: alice, op: addOf(jo), keys: [r.wrap(jo, alice), r.wrap(bob, alice)] })],
    ['an add with the same key twice', (r) => ({ by: alice, op: addOf(jo), keys: [r.wrap(jo, alice), r.wrap(jo, alice)] })],
    ['an add with settings', (r) => ({ by: alice, op: addOf(jo), keys: [r.wrap(jo, alice)], meta: r.sealMeta(alice) })],
    ['an add under an identity key that is not the member’s', (r) => ({ by: alice, op: addOf({ name: jo.name, keys: generateIdentity() }), keys: [r.wrap(jo, alice)] })],
    [
      'an add of someone with no account',
      (r) => {
        const ghost = { name: `ghost-${crypto.randomBytes(4).toString('hex')}`, keys: generateIdentity() };
        return { by: alice, op: addOf(ghost), keys: [r.wrap(ghost, alice)] };
      },
    ],
    ['an add of a member', (r) => ({ by: alice, op: addOf(bob), keys: [r.wrap(bob, alice)] })],
    ['a remove without the key of a remaining member', (r) => ({ by: alice, op: { op: 'remove', member: carol.name, epoch: 1 }, keys: [at1(r, alice)], meta: meta1(r) })],
    ['a remove that gives the removed member the new key', (r) => ({ by: alice, op: { op: 'remove', member: carol.name, epoch: 1 }, keys: [alice, bob, carol].map((p) => at1(r, p)), meta: meta1(r) })],
    ['a remove with keys of the old epoch', (r) => ({ by: alice, op: { op: 'remove', member: carol.name, epoch: 1 }, keys: [r.wrap(alice, alice), r.wrap(bob, alice)], meta: meta1(r) })],
    ['a remove with keys wrapped by someone else', (r) => ({ by: alice, op: { op: 'remove', member: carol.name, epoch: 1 }, keys: [at1(r, alice), at1(r, bob, bob)], meta: meta1(r) })],
    ['a remove without settings', (r) => ({ by: alice, op: { op: 'remove', member: carol.name, epoch: 1 }, keys: [at1(r, alice), at1(r, bob)] })],
    ['a remove with settings by someone else', (r) => ({ by: alice, op: { op: 'remove', member: carol.name, epoch: 1 }, keys: [at1(r, alice), at1(r, bob)], meta: { ...r.sealMeta(bob, 0), epoch: 1 } })],
    [
      'a remove that skips an epoch',
      (r) => ({ by: alice, op: { op: 'remove', member: carol.name, epoch: 2 }, keys: [alice, bob].map((p) => ({ ...r.wrap(p, alice), epoch: 2 })), meta: { ...r.sealMeta(alice), epoch: 2 } }),
    ],
    ['a remove of the owner', (r) => ({ by: alice, op: { op: 'remove', member: alice.name, epoch: 1 }, keys: [at1(r, bob), at1(r, carol)], meta: meta1(r) })],
    ['a remove of someone who is not a member', (r) => ({ by: alice, op: { op: 'remove', member: eve.name, epoch: 1 }, keys: [alice, bob, carol].map((p) => at1(r, p)), meta: meta1(r) })],
    ['a rotate whose settings are for the old epoch', (r) => ({ by: alice, op: { op: 'rotate', epoch: 1 }, keys: [alice, bob, carol].map((p) => at1(r, p)), meta: r.sealMeta(alice, 0) })],
    ['a rotate without keys', (r) => ({ by: alice, op: { op: 'rotate', epoch: 1 }, keys: [], meta: meta1(r) })],
    ['a leave with keys', (r) => ({ by: bob, op: { op: 'leave' }, keys: [r.wrap(bob, bob)] })],
    ['a leave with settings', (r) => ({ by: bob, op: { op: 'leave' }, keys: [], meta: r.sealMeta(bob) })],
    ['a leave by the owner', () => ({ by: alice, op: { op: 'leave' }, keys: [] })],
    ['a role change with keys', (r) => ({ by: alice, op: { op: 'role', member: bob.name, role: 'admin' }, keys: [r.wrap(bob, alice)] })],
    ['a role change to the role held', () => ({ by: alice, op: { op: 'role', member: bob.name, role: 'member' }, keys: [] })],
    ['a role change for the owner', () => ({ by: alice, op: { op: 'role', member: alice.name, role: 'admin' }, keys: [] })],
    ['a second create', () => ({ by: alice, op: { op: 'create', owner: memberRef(alice) }, keys: [] })],
  ];
  describe('with the wrong keys or settings', () => {
    let room: RoomBuilder;
    beforeAll(async () => {
      room = await createRoom(relay, alice);
      await addMember(relay, room, alice, bob);
      await addMember(relay, room, alice, carol);
    });
    it.each(carried)('refuses %s with 400 and writes nothing', async (_label, make) => {
      const before = tableCounts(relay);
      const { by, op, keys, meta } = make(room);
      const res = await postChange(relay, room, by, room.sign(by, op), keys, meta ?? null);
      expectError(res, 400, 'bad_request');
      expect(tableCounts(relay)).toEqual(before);
    });

    it('then takes each kind of change when it carries what it should', async () => {
      await addMember(relay, room, alice, jo);
      expect((await postChange(relay, room, alice, room.sign(alice, { op: 'role', member: bob.name, role: 'admin' }))).status).toBe(201);
      expect((await postChange(relay, room, jo, room.sign(jo, { op: 'leave' }))).status).toBe(201);
      let epoch = room.nextEpoch();
      const removed = await postChange(relay, room, alice, room.sign(alice, { op: 'remove', member: carol.name, epoch }), [room.wrap(alice, alice), room.wrap(bob, alice)], room.sealMeta(alice));
      expect(removed.status, removed.text).toBe(201);
      epoch = room.nextEpoch();
      const rotated = await postChange(relay, room, bob, room.sign(bob, { op: 'rotate', epoch }), [room.wrap(alice, bob), room.wrap(bob, bob)], room.sealMeta(bob));
      expect(rotated.status, rotated.text).toBe(201);
      expect(ConversationSummary.parse(rotated.json)).toMatchObject({ members: [alice.name, bob.name].sort(), meta: { epoch: 2, author: bob.name } });
    });
  });

  it('removes a member, who then gets 403 everywhere and no pushes, while the others get the new epoch key', async () => {
    const room = await createRoom(relay, alice);
    await addMember(relay, room, alice, bob);
    await addMember(relay, room, alice, carol);
    const [pbob, pcarol] = await Promise.all([bob, carol].map((p) => liveProbe(relay, p)));
    expect((await pcarol!.request({ t: 'send', env: fakeEnvelope(room.id, carol.name, 1) })).t).toBe('ack');

    const epoch = room.nextEpoch();
    const link = room.sign(alice, { op: 'remove', member: carol.name, epoch });
    const res = await postChange(relay, room, alice, link, [room.wrap(alice, alice), room.wrap(bob, alice)], room.sealMeta(alice));
    expect(res.status, res.text).toBe(201);
    for (const probe of [pbob!, pcarol!]) await probe.next((f) => f.t === 'roster' && f.conv === room.id);

    expectError(await summaryOf(carol, room.id), 403, 'forbidden');
    expectError(await api(relay, 'GET', `/api/conversations/${room.id}/envelopes`, { cookie: carol.cookie }), 403, 'forbidden');
    const carolList = await api(relay, 'GET', '/api/conversations', { cookie: carol.cookie });
    expect(carolList.json.conversations.map((c: ConversationSummary) => c.id)).not.toContain(room.id);
    expect((await pcarol!.request({ t: 'sync', conv: room.id, after: 0, limit: 10 })).error.code).toBe('forbidden');
    const stored = queryDb(relay, 'select count(*) as n from envelopes where conv_id = ?', room.id);
    expect((await pcarol!.request({ t: 'send', env: fakeEnvelope(room.id, carol.name, 2) })).error.code).toBe('forbidden');
    expect(queryDb(relay, 'select count(*) as n from envelopes where conv_id = ?', room.id)).toEqual(stored);
    expect((await pcarol!.request({ t: 'hello' })).convs.map((c: { conv: string }) => c.conv)).not.toContain(room.id);

    const carolSeen = pcarol!.received.length;
    expect((await pbob!.request({ t: 'send', env: { ...fakeEnvelope(room.id, bob.name, 1), epoch } })).t).toBe('ack');
    await pbob!.next((f) => f.t === 'env' && f.conv === room.id && f.item.env.sender === bob.name);
    await settle();
    expect(pcarol!.received.slice(carolSeen).filter((f) => f.conv === room.id)).toEqual([]);

    const bobView = ConversationSummary.parse((await summaryOf(bob, room.id)).json);
    expect(bobView.members).toEqual([alice.name, bob.name].sort());
    expect(bobView.keys.map((k) => k.epoch)).toEqual([0, 1]);
    expect(unwrapFrom(bobView, bob, 1, alice)).toEqual(room.epochKeys[1]);
    expect(bobView.meta).toMatchObject({ epoch: 1, author: alice.name });
    expect(bobView.statements).toEqual(room.links.map(wire));
    expect(queryDb(relay, 'select k.epoch from wrapped_keys k join users u on u.id = k.recipient_id where k.conv_id = ? and u.username = ?', room.id, carol.name)).toEqual([
      { epoch: 0 },
    ]);
    pbob!.close();
    pcarol!.close();
  });

  it('lets a member leave, then an admin rotates the key for those who stay', async () => {
    const room = await createRoom(relay, alice);
    await addMember(relay, room, alice, bob);
    await addMember(relay, room, alice, carol);
    const pbob = await liveProbe(relay, bob);
    const left = await postChange(relay, room, bob, room.sign(bob, { op: 'leave' }));
    expect(left.status, left.text).toBe(201);
    expect(ConversationSummary.parse(left.json).members).toEqual([alice.name, carol.name].sort());
    await pbob.next((f) => f.t === 'roster' && f.conv === room.id);
    expectError(await summaryOf(bob, room.id), 403, 'forbidden');
    expect(queryDb(relay, 'select count(*) as n from members where conv_id = ?', room.id)).toEqual([{ n: 2 }]);

    const before = tableCounts(relay);
    const epoch = room.nextEpoch();
    const stale = [alice, bob, carol].map((p) => room.wrap(p, alice));
    expectError(await postChange(relay, room, alice, room.sign(alice, { op: 'rotate', epoch }), stale, room.sealMeta(alice)), 400, 'bad_request');
    expect(tableCounts(relay)).toEqual(before);
    const rotated = await postChange(relay, room, alice, room.sign(alice, { op: 'rotate', epoch }), [room.wrap(alice, alice), room.wrap(carol, alice)], room.sealMeta(alice));
    expect(rotated.status, rotated.text).toBe(201);
    const carolView = ConversationSummary.parse((await summaryOf(carol, room.id)).json);
    expect(unwrapFrom(carolView, carol, epoch, alice)).toEqual(room.epochKeys[epoch]);
    expect(carolView.meta?.epoch).toBe(epoch);
    await settle();
    expect(pbob.received.filter((f) => f.t === 'roster' && f.conv === room.id)).toHaveLength(1);
    pbob.close();
  });

  it('lets the owner promote a member, who may then admit others but not demote an admin', async () => {
    const room = await createRoom(relay, alice);
    await addMember(relay, room, alice, ada, 'admin');
    await addMember(relay, room, alice, bob);
    const promoted = await postChange(relay, room, alice, room.sign(alice, { op: 'role', member: bob.name, role: 'admin' }));
    expect(promoted.status, promoted.text).toBe(201);
    const role = (name: string) => queryDb<{ role: string }>(relay, 'select m.role from members m join users u on u.id = m.user_id where m.conv_id = ? and u.username = ?', room.id, name)[0]?.role;
    expect(role(bob.name)).toBe('admin');
    expect((await api(relay, 'GET', `/api/rooms/${room.id}/requests`, { cookie: bob.cookie })).status).toBe(200);
    await addMember(relay, room, bob, carol);
    expect(expectError(await postChange(relay, room, bob, room.sign(bob, { op: 'role', member: ada.name, role: 'member' })), 403, 'forbidden')).toMatch(/owner/);
    const epoch = room.nextEpoch();
    const removeAdmin = room.sign(bob, { op: 'remove', member: ada.name, epoch });
    expectError(await postChange(relay, room, bob, removeAdmin, [alice, bob, carol].map((p) => room.wrap(p, bob)), room.sealMeta(bob)), 403, 'forbidden');
    expect((await postChange(relay, room, alice, room.sign(alice, { op: 'role', member: bob.name, role: 'member' }))).status).toBe(201);
    expect(role(bob.name)).toBe('member');
    expectError(await api(relay, 'GET', `/api/rooms/${room.id}/requests`, { cookie: bob.cookie }), 403, 'forbidden');
  });

  it('refuses a change to a direct conversation or an unknown room with 404', async () => {
    const pair = await startPair(relay);
    const room = new RoomBuilder(alice);
    const link = room.sign(alice, { op: 'rotate', epoch: 1 }, 1, toB64(crypto.randomBytes(32)));
    for (const id of [pair.conv, toB64(crypto.randomBytes(16))]) {
      const res = await api(relay, 'POST', `/api/rooms/${id}/statements`, { cookie: pair.aliceCookie, body: { statement: wire(link), keys: [], meta: null } });
      expectError(res, 404, 'not_found');
    }
  });

  it('takes a change body larger than the general body limit, up to the room change limit', async () => {
    const room = await createRoom(relay, alice);
    const link = room.sign(alice, { op: 'rotate', epoch: 1 });
    const body = JSON.stringify({ statement: wire(link), keys: [], meta: null, pad: 'x'.repeat(300 * 1024) });
    const res = await postOnFreshConnection(`/api/rooms/${room.id}/statements`, alice.cookie, body);
    expect(res).toMatchObject({ status: 400, code: 'bad_request' }); // read and refused by the schema, not cut off at 256 KiB
    const huge = JSON.stringify({ statement: wire(link), keys: [], meta: null, pad: 'x'.repeat(LIMITS.maxRoomChangeBodyBytes) });
    expect(await postOnFreshConnection(`/api/rooms/${room.id}/statements`, alice.cookie, huge)).toMatchObject({ status: 413, code: 'payload_too_large' });
    const elsewhere = JSON.stringify({ nameHash: toB64(crypto.randomBytes(32)), pad: 'x'.repeat(300 * 1024) });
    expect(await postOnFreshConnection('/api/rooms/lookup', alice.cookie, elsewhere)).toMatchObject({ status: 413, code: 'payload_too_large' });
  });
});

describe('non-members', () => {
  it('get 403 on every part of a room, and nothing of it reaches them', async () => {
    const room = await createRoom(relay, alice);
    await addMember(relay, room, alice, bob);
    const [pbob, peve] = await Promise.all([bob, eve].map((p) => liveProbe(relay, p)));
    expectError(await summaryOf(eve, room.id), 403, 'forbidden');
    expectError(await api(relay, 'GET', `/api/conversations/${room.id}/envelopes`, { cookie: eve.cookie }), 403, 'forbidden');
    expectError(await api(relay, 'GET', `/api/conversations/${room.id}/envelopes?after=0`, { cookie: eve.cookie }), 403, 'forbidden');
    expectError(await api(relay, 'GET', `/api/rooms/${room.id}/requests`, { cookie: eve.cookie }), 403, 'forbidden');
    expectError(await api(relay, 'POST', `/api/rooms/${room.id}/requests/${bob.name}/decline`, { cookie: eve.cookie }), 403, 'forbidden');
    const list = await api(relay, 'GET', '/api/conversations', { cookie: eve.cookie });
    expect(list.json.conversations.map((c: ConversationSummary) => c.id)).not.toContain(room.id);
    expect((await peve!.request({ t: 'sync', conv: room.id, after: 0, limit: 10 })).error.code).toBe('forbidden');
    const stored = tableCounts(relay);
    expect((await peve!.request({ t: 'send', env: fakeEnvelope(room.id, eve.name, 1) })).error.code).toBe('forbidden');
    expect(tableCounts(relay)).toEqual(stored);
    expect(peve!.received.find((f) => f.t === 'hello').convs.map((c: { conv: string }) => c.conv)).not.toContain(room.id);

    const eveSeen = peve!.received.length;
    expect((await pbob!.request({ t: 'send', env: fakeEnvelope(room.id, bob.name, 1) })).t).toBe('ack');
    await addMember(relay, room, alice, carol);
    await pbob!.next((f) => f.t === 'roster' && f.conv === room.id);
    await settle();
    expect(peve!.received.slice(eveSeen)).toEqual([]);
    pbob!.close();
    peve!.close();
  });
});

describe('direct conversations', () => {
  it('keep their shape: no statements, no settings, both people plain members', async () => {
    const pair = await startPair(relay);
    const res = await api(relay, 'GET', '/api/conversations', { cookie: pair.aliceCookie });
    const direct = ConversationSummary.parse(res.json.conversations.find((c: ConversationSummary) => c.id === pair.conv));
    expect(direct).toMatchObject({ kind: 'direct', statements: [], meta: null, members: [pair.a, pair.b].sort() });
    expect(queryDb(relay, 'select role from members where conv_id = ?', pair.conv)).toEqual([{ role: 'member' }, { role: 'member' }]);
    expect(queryDb(relay, 'select name_hash, meta_epoch from conversations where id = ?', pair.conv)).toEqual([{ name_hash: null, meta_epoch: null }]);
  });
});
