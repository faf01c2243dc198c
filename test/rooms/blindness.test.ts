// The relay stays blind to rooms: a room's name, topic and messages, used through the SDK in a
// full flow (create, join by name, approve, invite, chat, remove, leave, rotate, a new device),
// never reach the relay's disk, its logs, or any HTTP body or WebSocket frame, in any usual encoding.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UmbraClient, type Platform } from '../../client/sdk/index.ts';
import { PASSWORD, startTestRelay, uniqueName, waitFor, type TestRelay } from '../helpers/relay.ts';
import { SocketTap } from '../helpers/tamper.ts';
import { roomBodies, roomOf } from '../helpers/rooms.ts';

interface Haystack {
  where: string;
  bytes: Buffer;
}

/** Everything one client exchanged with the relay: URLs, HTTP bodies both ways, frames both ways. */
class Recording {
  readonly wire: Haystack[] = [];
  private readonly pending: Promise<unknown>[] = [];
  private readonly tap = new SocketTap();

  constructor(private readonly who: string) {
    this.tap.inbound = (frame) => {
      this.add('WebSocket frame received', JSON.stringify(frame));
      return undefined;
    };
  }

  private add(what: string, text: string | Buffer): void {
    this.wire.push({ where: `${this.who}'s ${what} #${this.wire.length}`, bytes: typeof text === 'string' ? Buffer.from(text, 'utf8') : text });
  }

  platform(): Platform {
    const base = this.tap.platform();
    return {
      ...base,
      fetch: async (input, init) => {
        this.add('request URL', String(input));
        if (typeof init?.body === 'string') this.add('HTTP request body', init.body);
        const res = await base.fetch(input, init);
        this.pending.push(res.clone().arrayBuffer().then((b) => this.add('HTTP response body', Buffer.from(b))));
        return res;
      },
    };
  }

  async done(): Promise<Haystack[]> {
    await Promise.all(this.pending);
    for (const f of this.tap.sent) this.add('WebSocket frame sent', JSON.stringify(f));
    return this.wire;
  }
}

/** A secret in the forms a leak could take: UTF-8, UTF-16, hex, URL-encoded, base64(url) at each alignment. */
function encodings(secret: string): { form: string; bytes: Buffer }[] {
  const utf8 = Buffer.from(secret, 'utf8');
  const forms = [
    { form: 'utf-8', bytes: utf8 },
    { form: 'utf-16le', bytes: Buffer.from(secret, 'utf16le') },
    { form: 'hex', bytes: Buffer.from(utf8.toString('hex')) },
    { form: 'url-encoded', bytes: Buffer.from(encodeURIComponent(secret)) },
  ];
  for (let shift = 0; shift < 3; shift++) {
    const b64 = Buffer.concat([Buffer.alloc(shift), utf8]).toString('base64').replace(/=+$/, '');
    const core = b64.slice(shift ? 4 : 0, b64.length - 4);
    forms.push({ form: `base64+${shift}`, bytes: Buffer.from(core) });
    forms.push({ form: `base64url+${shift}`, bytes: Buffer.from(core.replace(/\+/g, '-').replace(/\//g, '_')) });
  }
  return forms;
}

function filesIn(dir: string, label: string): Haystack[] {
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => {
      const full = path.join(e.parentPath, e.name);
      return { where: `${label}: ${path.relative(dir, full)}`, bytes: fs.readFileSync(full) };
    });
}

function leaks(haystacks: Haystack[], secrets: Record<string, string>): string[] {
  const found: string[] = [];
  for (const [name, secret] of Object.entries(secrets)) {
    for (const { form, bytes } of encodings(secret)) {
      for (const h of haystacks) if (h.bytes.includes(bytes)) found.push(`${name} (${form}) in ${h.where}`);
    }
  }
  return found;
}

const hex = (n: number) => crypto.randomBytes(n).toString('hex');
const roomName = `Canary Room ${hex(8)}`;
const topic = `canary topic ${hex(12)}`;
const messages = Array.from({ length: 6 }, (_, i) => `canary message ${i} ${hex(12)}`);

let relay: TestRelay;
let dataDir: string;
let stopped = false;
const recordings: Recording[] = [];
const clients: UmbraClient[] = [];

async function user(prefix: string, login?: string): Promise<{ client: UmbraClient; name: string }> {
  const rec = new Recording(login ?? prefix);
  recordings.push(rec);
  const client = new UmbraClient({ baseUrl: relay.url, platform: rec.platform() });
  clients.push(client);
  const name = login ?? uniqueName(prefix);
  if (login) await client.logIn(login, PASSWORD);
  else await client.signUp(name, PASSWORD);
  return { client, name };
}

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'umbra-rooms-blind-'));
  relay = await startTestRelay({ dataDir });
});
afterAll(async () => {
  for (const c of clients) c.disconnect();
  if (!stopped) await relay.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
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
    const whileRunning = filesIn(dataDir, 'data dir while running');
    await relay.stop();
    stopped = true;
    const afterStop = filesIn(dataDir, 'data dir after stop');
    const logs: Haystack = { where: 'relay logs', bytes: Buffer.from(relay.logs.join('')) };

    // The search finds what is there: the recording holds the room calls and every message's
    // ciphertext, and the database holds the name hash and those ciphertexts.
    const sent = wire.filter((h) => h.where.includes('frame sent')).map((h) => JSON.parse(h.bytes.toString('utf8')) as { t: string; env?: { ct: string } });
    const ciphertexts = sent.filter((f) => f.t === 'send').map((f) => Buffer.from(f.env!.ct, 'base64url'));
    expect(ciphertexts.length).toBe(messages.length);
    const disk = [...whileRunning, ...afterStop];
    for (const ct of ciphertexts) expect(disk.some((h) => h.bytes.includes(ct))).toBe(true);
    const urls = wire.filter((h) => h.where.includes('request URL')).map((h) => new URL(h.bytes.toString()).pathname);
    for (const p of ['/api/rooms', '/api/rooms/lookup', '/api/rooms/requests/mine']) expect(urls).toContain(p);
    expect(urls.some((u) => /\/api\/rooms\/[^/]+\/join$/.test(u)) && urls.some((u) => /\/statements$/.test(u))).toBe(true);
    const create = wire.find((h) => h.where.includes('HTTP request body') && h.bytes.includes(Buffer.from('"nameHash"')))!;
    const nameHash = Buffer.from(JSON.parse(create.bytes.toString()).nameHash, 'base64url');
    expect(disk.some((h) => h.bytes.includes(nameHash))).toBe(true);

    const secrets: Record<string, string> = { 'room name': roomName, 'normalised room name': roomName.toLowerCase(), topic };
    messages.forEach((m, i) => (secrets[`message ${i}`] = m));
    // The random parts alone, so no partial leak slips by either.
    for (const [k, v] of Object.entries({ ...secrets })) secrets[`${k} (random part)`] = v.split(' ').at(-1)!;
    expect(leaks([...wire, ...disk, logs], secrets)).toEqual([]);
  });
});
