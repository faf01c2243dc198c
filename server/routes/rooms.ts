// Rooms: create (with the creator's signed first link, key and sealed settings), find by name hash,
// ask to join, answer requests, and grow the membership chain. The relay checks every link against
// the chain's rules so it can authorize; members' clients verify everything again themselves.
import { Hono } from 'hono';
import {
  ConvId,
  CreateRoomRequest,
  JoinRoomRequest,
  PostStatementRequest,
  RoomLookupRequest,
  UmbraError,
  Username,
  equalBytes,
  fromB64,
  isAdmin,
  replayRoomChain,
  toB64,
  verifyJoinRequest,
  type Chain,
  type SignedStatement,
} from '../../shared/index.ts';
import { decodeB64, parseWith, readBody, type AppEnv, type Services } from '../context.ts';
import { headOf } from '../rooms/chain.ts';

export function roomRoutes(s: Services): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  app.post('/', async (c) => {
    const me = c.get('user');
    const body = await readBody(c, CreateRoomRequest);
    const genesis = { statement: body.genesis.statement, sig: decodeB64(body.genesis.sig, 'genesis.sig') };
    let chain: Chain;
    try {
      chain = replayRoomChain(body.id, [genesis]);
    } catch (err) {
      throw new UmbraError('bad_request', `genesis: ${(err as Error).message}`);
    }
    const owner = chain.head.members.get(me.username);
    if (chain.head.statement.actor !== me.username || owner?.role !== 'owner') {
      throw new UmbraError('bad_request', 'genesis: must create this room with you as its owner');
    }
    if (!equalBytes(owner.identityKey, me.identity_key)) throw new UmbraError('bad_request', 'genesis: the owner key must be your identity key');
    const key = body.keys[0]!;
    if (key.conv !== body.id || key.epoch !== 0 || key.recipient !== me.username || key.wrappedBy !== me.username) {
      throw new UmbraError('bad_request', 'keys: must be epoch 0 of this room, wrapped by you for yourself');
    }
    if (body.meta.epoch !== 0 || body.meta.author !== me.username) throw new UmbraError('bad_request', 'meta: must be sealed for epoch 0 by you');
    s.rooms.createRoom({
      id: body.id,
      nameHash: decodeB64(body.nameHash, 'nameHash'),
      ownerId: me.id,
      genesis,
      head: headOf(chain),
      key: { epoch: 0, recipientId: me.id, wrapped: decodeB64(key.wrapped, 'keys.wrapped'), sig: decodeB64(key.sig, 'keys.sig') },
      meta: { epoch: 0, sealed: decodeB64(body.meta.sealed, 'meta.sealed'), sig: decodeB64(body.meta.sig, 'meta.sig') },
    });
    s.hub.push([me.id], { t: 'conv', conv: body.id });
    return c.json(s.store.summary(body.id, me.id), 201);
  });

  // A POST, so the name hash stays out of URLs and access logs.
  app.post('/lookup', async (c) => {
    const body = await readBody(c, RoomLookupRequest);
    const id = s.rooms.roomIdByNameHash(decodeB64(body.nameHash, 'nameHash'));
    if (id === undefined) throw new UmbraError('not_found', 'no room with that name');
    return c.json({ id });
  });

  app.get('/requests/mine', (c) => c.json({ requests: s.rooms.requestsOf(c.get('user').id) }));

  app.post('/:id/join', async (c) => {
    const me = c.get('user');
    const id = parseWith(ConvId, c.req.param('id'));
    const body = await readBody(c, JoinRoomRequest);
    s.rooms.room(id);
    const signed: SignedStatement = { statement: body.statement, sig: decodeB64(body.sig, 'sig') };
    const request = verifyJoinRequest(signed);
    if (!request) throw new UmbraError('bad_request', 'the join request is malformed or not signed by the key it names');
    if (request.conv !== id || request.username !== me.username) throw new UmbraError('bad_request', 'the join request must be yours, for this room');
    if (!equalBytes(fromB64(request.identityKey), me.identity_key)) {
      throw new UmbraError('bad_request', 'the join request must carry your identity key');
    }
    if (s.rooms.roleOf(id, me.id) !== undefined) throw new UmbraError('conflict', 'you are already a member of this room');
    // Each request notifies every admin: a requester asks a room a few times per window at most.
    const throttleKey = `${id}/${me.id}`;
    const wait = s.throttles.joinRequest.retryAfter(throttleKey);
    if (wait) throw new UmbraError('rate_limited', 'you have asked to join this room too often; try again later', wait);
    s.rooms.requestJoin(id, me.id, signed);
    s.throttles.joinRequest.record(throttleKey);
    s.hub.push(s.rooms.adminIds(id), { t: 'join-request', conv: id, username: me.username });
    return c.json({ ok: true }, 202);
  });

  app.get('/:id/requests', (c) => {
    const id = adminRoom(s, c.req.param('id'), c.get('user').id);
    return c.json({ requests: s.rooms.pendingRequests(id).map((r) => ({ statement: r.statement, sig: toB64(r.sig) })) });
  });

  app.post('/:id/requests/:username/decline', (c) => {
    const id = adminRoom(s, c.req.param('id'), c.get('user').id);
    const user = s.store.userByName(parseWith(Username, c.req.param('username')));
    if (!user || !s.rooms.declineRequest(id, user.id)) throw new UmbraError('not_found', 'no pending request from that user');
    s.hub.push([user.id], { t: 'join-declined', conv: id });
    return c.json({ ok: true });
  });

  app.post('/:id/statements', async (c) => {
    const me = c.get('user');
    const id = parseWith(ConvId, c.req.param('id'));
    const body = await readBody(c, PostStatementRequest);
    const change = s.rooms.appendChange(id, me, body);
    // Everyone who is a member now, and whoever just left or was removed, reloads the room.
    const told = [...s.store.memberIds(id)];
    if (change.removedId !== null) told.push(change.removedId);
    s.hub.push(told, { t: 'roster', conv: id });
    return c.json(s.store.summary(id, me.id), 201);
  });

  return app;
}

/** The room id if the caller is one of its admins: unknown is 404, anyone else 403. */
function adminRoom(s: Services, rawId: string, userId: number): string {
  const id = parseWith(ConvId, rawId);
  s.rooms.room(id);
  if (!isAdmin(s.rooms.roleOf(id, userId))) throw new UmbraError('forbidden', "only the room's admins see and answer join requests");
  return id;
}
