// The relay stays blind to rooms: a room's name, topic and messages, used through the SDK in a
// full flow (create, join by name, approve, invite, chat, remove, leave, rotate, a new device),
// never reach the relay's disk, its logs, or any HTTP body or WebSocket frame, in any usual encoding.
import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UmbraClient } from '../../client/sdk/index.ts';
import { WireRecording, leaks, plantedLeak, relayRemains } from '../helpers/canary.ts';
import { PASSWORD, startTestRelay, uniqueName, waitFor, type TestRelay } from '../helpers/relay.ts';
import { roomBodies, roomOf } from '../helpers/rooms.ts';

const hex = (n: number) => crypto.randomBytes(n).toString('hex');
const roomName = `Canary Room ${hex(8)}`;
const topic = `canary topic ${hex(12)}`;
const messages = Array.from({ length: 6 }, (_, i) => `canary message ${i} ${hex(12)}`);

let relay: TestRelay;
const recordings: WireRecording[] = [];
const clients: UmbraClient[] = [];

async function user(prefix: string, login?: string): Promise<{ client: UmbraClient; name: string }> {
  const rec = new WireRecording(login ?? prefix);
  recordings.push(rec);
  const client = new UmbraClient({ baseUrl: relay.url, platform: rec.platform() });
  clients.push(client);
  const name = login ?? uniqueName(prefix);
  if (login) await client.logIn(login, PASSWORD);
  else await client.signUp(name, PASSWORD);
  return { client, name };
}

beforeAll(async () => {
  relay = await startTestRelay();
});
afterAll(async () => {
  for (const c of clients) c.disconnect();
  await relay.stop();
});

describe('the relay stays blind to rooms', () => {
  it('a whole room flow with canary name, topic and messages works', async () => {
    const ann = await user('ann');
    const bea = await user('bea');
    const cat = await user('cat');
    const room = await ann.client.createRoom(roomName, { topic, policy: 'private' });
    const beaRoom = await bea.client.joinRoom(roomName.toLowerCase());
    await waitFor(() => room.pendingRequests.value.length === 1, 5000, 'the request');
    await room.approve(bea.name);
    await room.invite(cat.name);
    const catRoom = await roomOf(cat.client, room.id);
    await waitFor(() => beaRoom.state.value === 'member', 5000, 'bea admitted');
    const views = [room, beaRoom, catRoom];
    for (const [i, body] of messages.slice(0, 3).entries()) {
      await views[i]!.sendText(body);
      await waitFor(() => views.every((v) => v.messages.value.length === i + 1), 5000, `message ${i}`);
    }
    await room.remove(cat.name);
    await room.sendText(messages[3]!);
    await beaRoom.sendText(messages[4]!);
    await waitFor(() => room.messages.value.length === 5, 5000, 'ann reads bea');
    await beaRoom.leave();
    await waitFor(() => room.epoch === 2 && !room.needsRotation.value, 5000, 'ann’s client rotates after the leave');
    await room.sendText(messages[5]!);
    expect(roomBodies(room)).toEqual(messages);
    expect(room.meta.value).toEqual({ name: roomName, topic, policy: 'private' });

    // Another device of ann's reads the room (settings resealed twice) from the relay alone.
    const laptop = await user('ann', ann.name);
    const onLaptop = await roomOf(laptop.client, room.id, (r) => r.messages.value.length === 6);
    expect([roomBodies(onLaptop), onLaptop.meta.value]).toEqual([messages, room.meta.value]);
    for (const c of clients) expect(c.stats.count()).toBe(0);
  });

  it('no canary is in the relay’s data, its logs, or any recorded HTTP body or frame', async () => {
    const wire = (await Promise.all(recordings.map((r) => r.done()))).flat();
    const { whileRunning, afterStop, logs } = await relayRemains(relay);

    // The search finds what is there: the recording holds the room calls and every message's
    // ciphertext, and the database holds the name hash and those ciphertexts.
    const sent = wire.filter((h) => h.where.includes('frame sent')).map((h) => JSON.parse(h.bytes.toString('utf8')) as { t: string; env?: { ct: string } });
    const ciphertexts = sent.filter((f) => f.t === 'send').map((f) => Buffer.from(f.env!.ct, 'base64url'));
    expect(ciphertexts.length).toBe(messages.length);
    const disk = [...whileRunning, ...afterStop];
    for (const ct of ciphertexts) expect(disk.some((h) => h.bytes.includes(ct))).toBe(true);
    const urls = recordings.flatMap((r) => r.urls).map((u) => new URL(u).pathname);
    for (const p of ['/api/rooms', '/api/rooms/lookup', '/api/rooms/requests/mine']) expect(urls).toContain(p);
    expect(urls.some((u) => /\/api\/rooms\/[^/]+\/join$/.test(u)) && urls.some((u) => /\/statements$/.test(u))).toBe(true);
    const create = wire.find((h) => h.where.includes('HTTP request body') && h.bytes.includes(Buffer.from('"nameHash"')))!;
    const nameHash = Buffer.from(JSON.parse(create.bytes.toString()).nameHash, 'base64url');
    expect(disk.some((h) => h.bytes.includes(nameHash))).toBe(true);
    // And the canary search itself can match: a username is found on disk, and the topic inside a
    // base64 blob, at an odd offset, is caught.
    const annsName = clients[0]!.me.value!;
    expect(leaks(disk, { "ann's username": annsName }).some((l) => l.startsWith("ann's username (utf-8) in data dir"))).toBe(true);
    expect(leaks([plantedLeak(topic)], { topic })).toContain('topic (base64+1) in a planted leak');

    const secrets: Record<string, string> = { 'room name': roomName, 'normalised room name': roomName.toLowerCase(), topic };
    messages.forEach((m, i) => (secrets[`message ${i}`] = m));
    // The random parts alone, so no partial leak slips by either.
    for (const [k, v] of Object.entries({ ...secrets })) secrets[`${k} (random part)`] = v.split(' ').at(-1)!;
    expect(leaks([...wire, ...disk, logs], secrets)).toEqual([]);
  });
});
