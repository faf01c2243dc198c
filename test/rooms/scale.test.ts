// Rooms at the size limit (LIMITS.maxMembers = 1,000): the crypto of a rotation, measured on its
// own, and a whole rotation through the SDK and a real relay, with the members made straight in the
// relay's tables (no 1,000 sign-ups) and their links signed with the owner's device key.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sealRekey } from '../../client/sdk/index.ts';
import {
  ConversationSummary,
  LIMITS,
  decodeEvent,
  equalBytes,
  fromB64,
  initCrypto,
  mayWrap,
  nextLink,
  openEnvelope,
  openRoomMeta,
  publicKeysOf,
  randomBytes,
  replayRoomChain,
  signStatement,
  toB64,
  unwrapConversationKey,
  type RoomMeta,
} from '../../shared/index.ts';
import { startTestRelay, uniqueName, waitFor, type TestRelay } from '../helpers/relay.ts';
import { RelayTamper } from '../helpers/tamper.ts';
import { ChainBuilder, RoomTamper, actor, deviceKeys, nextStatement, roomOf, signUpPerson, type Actor, type Person } from '../helpers/rooms.ts';

const MEMBERS = LIMITS.maxMembers;
const meta: RoomMeta = { name: 'Everyone', topic: 'a big room', policy: 'private' };
const ms = (from: number) => Math.round(performance.now() - from);
const figures: Record<string, number> = {};

let relay: TestRelay;
const people: Person[] = [];
beforeAll(async () => {
  await initCrypto();
  relay = await startTestRelay();
});
afterAll(async () => {
  for (const p of people) p.client.disconnect();
  await relay.stop();
  console.info(`rooms at ${MEMBERS} members (ms or bytes):`, figures);
});

describe(`a room of ${MEMBERS} members`, () => {
  it('the crypto of a rotation (every key wrapped, settings resealed, link signed) takes under 2 s', () => {
    const conv = toB64(randomBytes(16));
    const owner = actor('owner');
    const members = Array.from({ length: MEMBERS - 1 }, (_, i) => actor(`member${i}`));
    const b = new ChainBuilder(conv, owner);
    for (const m of members) b.add(owner, m);
    let t = performance.now();
    const chain = b.replay();
    figures.replayBeforeMs = ms(t);
    expect(chain.head.members.size).toBe(MEMBERS);

    t = performance.now();
    const everyone = [owner, ...members];
    const sealed = sealRekey(conv, 1, everyone.map((a) => ({ username: a.name, x25519Key: a.keys.agreement.publicKey })), meta, {
      username: owner.name,
      signingSecret: owner.keys.signing.secretKey,
    });
    const link = signStatement(
      { v: 1, kind: 'room-statement', conv, ...nextLink(chain), actor: owner.name, at: Date.now(), body: { op: 'rotate', epoch: 1 } },
      owner.keys.signing.secretKey,
    );
    const body = JSON.stringify({ statement: { statement: link.statement, sig: toB64(link.sig) }, keys: sealed.keys, meta: sealed.meta });
    figures.rotationCryptoMs = ms(t);
    figures.rotationBodyBytes = body.length;
    expect(figures.rotationCryptoMs).toBeLessThan(2000);
    expect(sealed.keys).toHaveLength(MEMBERS);
    // Past the general body limit, within the one the relay allows for chain changes.
    expect(body.length).toBeGreaterThan(LIMITS.maxBodyBytes);
    expect(body.length).toBeLessThan(LIMITS.maxRoomChangeBodyBytes);

    // Correct for everyone: each member, with only its own secret, gets the same key, and the settings open under it.
    t = performance.now();
    const after = replayRoomChain(conv, [...b.links, link]);
    figures.replayAfterMs = ms(t);
    t = performance.now();
    let first: Uint8Array | null = null;
    for (const [i, w] of sealed.keys.entries()) {
      const who = everyone[i]!;
      expect(w.recipient).toBe(who.name);
      expect(mayWrap(after, 1, w.wrappedBy, w.recipient)).toBe(true);
      const key = unwrapConversationKey({ ...w, wrapped: fromB64(w.wrapped), sig: fromB64(w.sig) }, who.keys.agreement.secretKey, owner.keys.signing.publicKey);
      first ??= key;
      expect(equalBytes(key, first)).toBe(true);
    }
    figures.unwrapAllMs = ms(t);
    const m = sealed.meta;
    expect(openRoomMeta({ ...m, sealed: fromB64(m.sealed), sig: fromB64(m.sig) }, conv, first!, owner.keys.signing.publicKey)).toEqual(meta);
  });

  it('through the SDK and a real relay: the owner’s client verifies the room, rotates it, and members read on', async () => {
    const ann = await signUpPerson(relay, 'ann');
    const bea = await signUpPerson(relay, 'bea');
    people.push(ann, bea);
    const room = await ann.client.createRoom(`Everyone ${uniqueName('r')}`, { topic: meta.topic, policy: 'private' });
    await room.invite(bea.name);
    const beaRoom = await roomOf(bea.client, room.id);
    const owner: Actor = { name: ann.name, keys: await deviceKeys(ann) };

    // The other members, made straight in the relay's tables, added by links the owner's key signs.
    const made = Array.from({ length: MEMBERS - 2 }, (_, i) => actor(uniqueName(`m${i}x`)));
    const tamper = new RoomTamper(relay);
    const sql = relay.db.sqlite;
    const links = tamper.links(room.id);
    const addUser = sql.prepare(
      'INSERT INTO users (username, salt, kdf_ops, kdf_mem_kib, auth_hash, identity_key, x25519_key, x25519_sig, vault, vault_version, created_at) VALUES (?, ?, 2, 19456, ?, ?, ?, ?, ?, 1, ?)',
    );
    const addMember = sql.prepare("INSERT INTO members (conv_id, user_id, joined_at, role) VALUES (?, ?, ?, 'member')");
    const addLink = sql.prepare('INSERT INTO statements (conv_id, seq, body, sig) VALUES (?, ?, ?, ?)');
    sql.transaction(() => {
      for (const m of made) {
        const pub = publicKeysOf(m.keys, m.name);
        const id = addUser.run(m.name, Buffer.alloc(16), Buffer.alloc(32), Buffer.from(pub.identityKey), Buffer.from(pub.x25519Key), Buffer.from(pub.x25519Sig), Buffer.alloc(64), Date.now()).lastInsertRowid;
        addMember.run(room.id, id, Date.now());
        const link = nextStatement(links, room.id, owner, { op: 'add', member: { username: m.name, identityKey: toB64(m.keys.signing.publicKey) }, role: 'member', via: 'invite' });
        addLink.run(room.id, links.length, Buffer.from(link.statement, 'utf8'), Buffer.from(link.sig));
        links.push(link);
      }
    })();

    let t = performance.now();
    await room.refresh();
    figures.ownerVerifyMs = ms(t); // chain replay plus a directory lookup of every member not yet pinned
    expect([room.members.value.length, room.problem.value]).toEqual([MEMBERS, null]);
    t = performance.now();
    await beaRoom.refresh();
    figures.memberVerifyMs = ms(t);
    expect(beaRoom.members.value).toHaveLength(MEMBERS);

    t = performance.now();
    await room.rotate();
    figures.sdkRotateMs = ms(t); // lookups (cached), wraps, the post, and verifying the relay's answer
    expect(room.epoch).toBe(1);
    const rows = sql.prepare('SELECT count(*) AS n FROM wrapped_keys WHERE conv_id = ? AND epoch = 1').get(room.id) as { n: number };
    expect(rows.n).toBe(MEMBERS);

    t = performance.now();
    await waitFor(() => beaRoom.epoch === 1, 20_000, 'bea takes the new key');
    figures.memberTakesRotationMs = ms(t);
    const sent = await room.sendText('to everyone');
    await waitFor(() => beaRoom.messages.value.length === 1, 5000, 'bea reads it');
    // A member made in the tables, with only its own secret, opens it too.
    const last = made.at(-1)!;
    const summary = ConversationSummary.parse(JSON.parse(JSON.stringify(await ann.client.http.get(`/api/conversations/${room.id}`, ConversationSummary))));
    expect(summary.statements).toHaveLength(MEMBERS + 1);
    const wire = sql.prepare('SELECT wrapped, sig FROM wrapped_keys JOIN users ON users.id = recipient_id WHERE conv_id = ? AND epoch = 1 AND username = ?').get(room.id, last.name) as { wrapped: Buffer; sig: Buffer };
    const key = unwrapConversationKey(
      { conv: room.id, epoch: 1, recipient: last.name, wrappedBy: ann.name, wrapped: new Uint8Array(wire.wrapped), sig: new Uint8Array(wire.sig) },
      last.keys.agreement.secretKey,
      ann.client.identityKey,
    );
    const row = new RelayTamper(relay).row(room.id, sent.seq!);
    const env = {
      v: row.v,
      suite: row.suite,
      type: 'content' as const,
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
    expect(decodeEvent(openEnvelope(env, key, ann.client.identityKey))).toEqual({ kind: 'text', body: 'to everyone' });
    expect(ann.client.stats.count() + bea.client.stats.count()).toBe(0);
  }, 60_000);
});
