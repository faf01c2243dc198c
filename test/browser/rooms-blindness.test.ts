// The relay stays blind to rooms, proven from real browsers: a room's name, topic and messages,
// typed into the UI as random canaries through a whole room's life (create, join by name, approve,
// invite, chat, leave and a new key, a reload), never reach the relay's disk, its logs, or any HTTP
// body or WebSocket frame the browsers exchanged with it, in plain text or the usual encodings.
import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  createRoomViaUi,
  joinRoomViaUi,
  openMembersViaUi,
  openRoomViaUi,
  roomBodies,
  roomMessage,
  sendInRoomViaUi,
  statusWith,
  webRelay,
  type UserPage,
} from '../helpers/browser.ts';
import { WireRecording, leaks, plantedLeak, relayRemains } from '../helpers/canary.ts';
import { uniqueName } from '../helpers/relay.ts';

const hex = (n: number) => crypto.randomBytes(n).toString('hex');
const roomName = `Canary Room ${hex(8)}`;
const topic = `canary topic ${hex(12)}`;
const messages = Array.from({ length: 7 }, (_, i) => `canary message ${i} ${hex(12)}`);
const passwords = {
  ann: `quiet ünïcode harbour ${hex(12)} lantern ${hex(6)}`,
  ben: `maple früh orbit ${hex(12)} willow ${hex(6)}`,
  cat: `copper rïver meadow ${hex(12)} ember ${hex(6)}`,
};
const a = uniqueName('ann');
const b = uniqueName('ben');
const c = uniqueName('cat');

const web = webRelay();
const users = web.users;
const recordings: WireRecording[] = [];

async function user(who: keyof typeof passwords, username: string): Promise<UserPage> {
  // Recording starts before the page's first request.
  return web.signedUpUser(username, passwords[who], { beforeLoad: (u) => recordings.push(WireRecording.ofPage(who, u.page, web.relay.url)) });
}

describe('the relay stays blind to rooms used in the browser', { timeout: 60_000 }, () => {
  it('a whole room’s life with canary name, topic and messages, typed in the UI, works', async () => {
    const ann = await user('ann', a);
    const ben = await user('ben', b);
    const cat = await user('cat', c);
    await createRoomViaUi(ann.page, roomName, topic, 'Private');

    // Ben types the name differently; it finds the same room.
    await joinRoomViaUi(ben.page, roomName.toLowerCase());
    await statusWith(ben.page, 'Waiting for an admin to approve your request…').waitFor();
    const annsPanel = await openMembersViaUi(ann.page, roomName);
    await annsPanel.getByRole('button', { name: `Approve ${b}` }).click();
    await annsPanel.getByLabel('Username to invite').fill(c);
    await annsPanel.getByRole('button', { name: 'Invite', exact: true }).click();
    await annsPanel.getByRole('group', { name: `Fingerprint of ${c}` }).waitFor();
    await annsPanel.getByRole('button', { name: 'Close' }).click();
    await ben.page.getByRole('heading', { name: roomName, exact: true }).waitFor();
    await ben.page.getByText(topic, { exact: true }).waitFor();
    await openRoomViaUi(cat.page, roomName);

    const everyone = [ann, ben, cat];
    for (const [i, body] of messages.slice(0, 3).entries()) {
      await sendInRoomViaUi(everyone[i]!.page, roomName, body);
      for (const u of everyone) await roomMessage(u.page, roomName, body).waitFor();
    }

    // Cat leaves; ann's client renews the key and reseals the settings under it.
    cat.expectConsoleError(/status of 403 .*@ .*\/api\/conversations\/[\w-]+$/);
    const catsPanel = await openMembersViaUi(cat.page, roomName);
    await catsPanel.getByRole('button', { name: 'Leave room' }).click();
    await statusWith(cat.page, 'You left this room.').waitFor();
    await ben.page.getByRole('textbox', { name: 'Message' }).and(ben.page.locator(':enabled')).waitFor();
    for (const [i, body] of messages.slice(3, 6).entries()) {
      const from = i % 2 === 0 ? ann : ben;
      await sendInRoomViaUi(from.page, roomName, body);
      for (const u of [ann, ben]) await roomMessage(u.page, roomName, body).waitFor();
    }

    // Ben reloads: the room, its settings and its history come back from the relay alone.
    await ben.page.reload();
    await openRoomViaUi(ben.page, roomName);
    await ben.page.getByText(topic, { exact: true }).waitFor();
    await roomMessage(ben.page, roomName, messages[5]!).waitFor();
    expect(await roomBodies(ben.page, roomName)).toEqual(messages.slice(0, 6));
    await sendInRoomViaUi(ben.page, roomName, messages[6]!);
    await roomMessage(ann.page, roomName, messages[6]!).waitFor();
    expect(await roomBodies(ann.page, roomName)).toEqual(messages);
    for (const u of users) expect(u.problems).toEqual([]);
  });

  it('no canary is in the relay’s data, its logs, or any recorded HTTP body or frame', async () => {
    const wire = (await Promise.all(recordings.map((r) => r.done()))).flat();
    const relay = web.relay;
    const { whileRunning, afterStop, logs } = await relayRemains(relay);
    expect(whileRunning.some((h) => h.where.endsWith(': umbra.db-wal') && h.bytes.length > 0)).toBe(true);
    const disk = [...whileRunning, ...afterStop];

    // The search finds what is there. Every page talked HTTP and WebSocket both ways; each
    // message's ciphertext, the room's name hash and its newest sealed settings are on disk, as
    // bytes; the usernames are in the database and the sign-ups in the logs.
    for (const r of recordings) {
      for (const what of ['HTTP request body', 'HTTP response body', 'WebSocket frame sent', 'WebSocket frame received']) {
        expect(r.count(what), what).toBeGreaterThan(0);
      }
    }
    const sent = recordings.flatMap((r) => r.framesSent).map((f) => JSON.parse(f.toString('utf8')) as { t: string; env?: { ct: string } });
    const ciphertexts = sent.filter((f) => f.t === 'send').map((f) => Buffer.from(f.env!.ct, 'base64'));
    expect(ciphertexts.length).toBe(messages.length);
    for (const ct of ciphertexts) expect(disk.some((h) => h.bytes.includes(ct))).toBe(true);
    const create = wire.find((h) => h.where.includes('HTTP request body') && h.bytes.includes(Buffer.from('"nameHash"')));
    expect(create).toBeDefined();
    const created = JSON.parse(create!.bytes.toString('utf8')) as { nameHash: string };
    // Sealed settings a client sent: the current ones are on disk (replaced ones may have been
    // wiped by secure_delete and the checkpoints).
    const withMeta = wire
      .filter((h) => h.where.includes('HTTP request body') && h.bytes.includes(Buffer.from('"sealed"')))
      .map((h) => JSON.parse(h.bytes.toString('utf8')) as { meta?: { sealed: string } | null })
      .filter((b) => b.meta);
    expect(withMeta.some((b) => disk.some((h) => h.bytes.includes(Buffer.from(b.meta!.sealed, 'base64'))))).toBe(true);
    for (const field of [created.nameHash]) {
      expect(disk.some((h) => h.bytes.includes(Buffer.from(field, 'base64')))).toBe(true);
    }
    for (const name of [a, b, c]) expect(disk.some((h) => h.bytes.includes(Buffer.from(name)))).toBe(true);
    expect(relay.logs.some((l) => l.includes('"signup"'))).toBe(true);
    const paths = recordings.flatMap((r) => r.urls).map((u) => new URL(u).pathname);
    for (const p of ['/api/rooms', '/api/rooms/lookup']) expect(paths).toContain(p);
    expect(paths.some((p) => /^\/api\/rooms\/[^/]+\/join$/.test(p))).toBe(true);
    expect(paths.filter((p) => /^\/api\/rooms\/[^/]+\/statements$/.test(p)).length).toBeGreaterThanOrEqual(4);

    // And it would see a leak: the topic inside a base64 blob, at an odd offset, is caught.
    expect(leaks([plantedLeak(topic)], { topic })).toContain('topic (base64+1) in a planted leak');

    const secrets: Record<string, string> = { 'room name': roomName, 'room name as ben typed it': roomName.toLowerCase(), topic };
    messages.forEach((m, i) => (secrets[`message ${i}`] = m));
    for (const [who, pw] of Object.entries(passwords)) secrets[`${who}'s password`] = pw;
    // The random parts alone, so no partial leak slips by either.
    for (const [k, v] of Object.entries({ ...secrets })) secrets[`${k} (random part)`] = v.split(' ').at(-1)!;
    expect(leaks([...wire, ...disk, logs], secrets)).toEqual([]);
  });
});
