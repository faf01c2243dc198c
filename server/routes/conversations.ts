// Conversations: create (with the creator's signed genesis and wrapped keys), list, read history.
// The relay checks shape and authorization; members' clients check every signature.
import { Hono } from 'hono';
import {
  ConvId,
  CreateConversationRequest,
  HistoryQuery,
  UmbraError,
  peekGenesis,
} from '../../shared/index.ts';
import { decodeB64, parseWith, readBody, type AppEnv, type Services } from '../context.ts';

export function conversationRoutes(s: Services): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  app.get('/', (c) => {
    const me = c.get('user');
    const conversations = s.store.conversationIdsOf(me.id).map(({ conv }) => s.store.summary(conv, me.id)!);
    return c.json({ conversations });
  });

  app.post('/', async (c) => {
    const me = c.get('user');
    const body = await readBody(c, CreateConversationRequest);
    const members = new Set(body.members);
    if (members.size !== body.members.length) throw new UmbraError('bad_request', 'members: listed twice');
    if (!members.has(me.username)) throw new UmbraError('bad_request', 'members: must include yourself');
    if (members.size !== 2) throw new UmbraError('bad_request', 'members: a direct conversation has exactly two members');
    const rows = body.members.map((name) => {
      const u = s.store.userByName(name);
      if (!u) throw new UmbraError('not_found', `no user called ${name}`);
      return u;
    });
    const genesis = peekGenesis(body.genesis.statement);
    if (!genesis || genesis.conv !== body.id || genesis.createdBy !== me.username) {
      throw new UmbraError('bad_request', 'genesis: must be a genesis statement for this conversation by you');
    }
    const genesisMembers = genesis.members.map((m) => m.username).sort();
    if (genesisMembers.join(',') !== [...members].sort().join(',')) {
      throw new UmbraError('bad_request', 'genesis: members differ from the request');
    }
    const byName = new Map(rows.map((u) => [u.username, u]));
    const seen = new Set<string>();
    const keys = body.keys.map((k) => {
      const recipient = byName.get(k.recipient);
      if (k.conv !== body.id || k.epoch !== 0 || k.wrappedBy !== me.username || !recipient) {
        throw new UmbraError('bad_request', 'keys: each must be epoch 0 of this conversation, wrapped by you for a member');
      }
      if (seen.has(k.recipient)) throw new UmbraError('bad_request', 'keys: one per member');
      seen.add(k.recipient);
      return { epoch: 0, recipientId: recipient.id, wrappedById: me.id, wrapped: decodeB64(k.wrapped, 'keys.wrapped'), sig: decodeB64(k.sig, 'keys.sig') };
    });
    if (seen.size !== members.size) throw new UmbraError('bad_request', 'keys: one for every member');
    s.store.createConversation({
      id: body.id,
      kind: 'direct',
      directKey: [...members].sort().join('\n'),
      createdBy: me.id,
      memberIds: rows.map((u) => u.id),
      genesis: body.genesis.statement,
      genesisSig: decodeB64(body.genesis.sig, 'genesis.sig'),
      keys,
    });
    s.hub.conversationCreated(body.id, rows.map((u) => u.id));
    return c.json(s.store.summary(body.id, me.id), 201);
  });

  app.get('/:id', (c) => {
    const id = memberConversation(s, c.req.param('id'), c.get('user').id);
    return c.json(s.store.summary(id, c.get('user').id));
  });

  app.get('/:id/envelopes', (c) => {
    const me = c.get('user');
    const id = memberConversation(s, c.req.param('id'), me.id);
    const q = parseWith(HistoryQuery, c.req.query());
    if (q.after !== undefined && (q.before !== undefined || q.sender !== undefined || q.type !== undefined)) {
      throw new UmbraError('bad_request', 'after cannot be combined with before, sender or type');
    }
    if (q.after !== undefined) {
      const page = s.store.envelopesAfter(id, q.after, q.limit);
      return c.json({ envelopes: page.items, more: page.more });
    }
    let senderId: number | undefined;
    if (q.sender !== undefined) {
      senderId = s.store.userByName(q.sender)?.id;
      if (senderId === undefined) return c.json({ envelopes: [], more: false });
    }
    const page = s.store.envelopesBefore(id, q.before, q.limit, senderId, q.type);
    return c.json({ envelopes: page.items, more: page.more });
  });

  return app;
}

/** The conversation id if the caller is a member: unknown is 404, not a member is 403. */
function memberConversation(s: Services, rawId: string, userId: number): string {
  const id = parseWith(ConvId, rawId);
  if (!s.store.conversationExists(id)) throw new UmbraError('not_found', 'no such conversation');
  if (!s.store.isMember(id, userId)) throw new UmbraError('forbidden', 'you are not a member of this conversation');
  return id;
}
