// The relay is blind, proven over the wire from a real browser: random canary messages and
// passwords typed into the UI never reach the relay's disk, its logs, or any byte the browser
// sent or received, in plain text or the usual encodings.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  launchBrowser,
  logInViaUi,
  messageBodies,
  messageItem,
  openChatViaUi,
  openUser,
  sendViaUi,
  signUpViaUi,
  startChatViaUi,
  type UserPage,
} from '../helpers/browser.ts';
import { startTestRelay, uniqueName, type TestRelay } from '../helpers/relay.ts';

interface Recording {
  urls: string[];
  requestBodies: Buffer[];
  responseBodies: Buffer[];
  framesSent: Buffer[];
  framesReceived: Buffer[];
  pending: Promise<unknown>[];
}

/** Records everything one page exchanges with the relay. */
function record(page: Page, origin: string): Recording {
  const rec: Recording = { urls: [], requestBodies: [], responseBodies: [], framesSent: [], framesReceived: [], pending: [] };
  const asBuffer = (p: string | Buffer) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : p);
  page.on('request', (req) => {
    rec.urls.push(req.url());
    const body = req.postDataBuffer();
    if (body) rec.requestBodies.push(body);
  });
  page.on('response', (res) => {
    if (!res.url().startsWith(`${origin}/api/`)) return;
    rec.pending.push(
      res.body().then(
        (b) => rec.responseBodies.push(b),
        () => undefined, // the page navigated away before the body was read
      ),
    );
  });
  page.on('websocket', (ws) => {
    ws.on('framesent', (f) => rec.framesSent.push(asBuffer(f.payload)));
    ws.on('framereceived', (f) => rec.framesReceived.push(asBuffer(f.payload)));
  });
  return rec;
}

/**
 * A secret as bytes in the forms a leak could take: UTF-8, UTF-16, hex, URL-encoded, and base64
 * and base64url at each of the three alignments it could have inside a longer encoded blob.
 */
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
    // Keep only the characters fixed by the secret alone (not by the bytes around it).
    const core = b64.slice(shift ? 4 : 0, b64.length - 4);
    forms.push({ form: `base64+${shift}`, bytes: Buffer.from(core) });
    forms.push({ form: `base64url+${shift}`, bytes: Buffer.from(core.replace(/\+/g, '-').replace(/\//g, '_')) });
  }
  return forms;
}

interface Haystack {
  where: string;
  bytes: Buffer;
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

let relay: TestRelay;
let browser: Browser;
let dataDir: string;
let stopped = false;
let alice: UserPage;
let bob: UserPage;
let recA: Recording;
let recB: Recording;
const a = uniqueName('alice');
const b = uniqueName('bob');
const hex = (n: number) => crypto.randomBytes(n).toString('hex');
const canaries = Array.from({ length: 6 }, () => `canary-${hex(16)}`);
const passwords = {
  alice: `quiet ünïcode harbour ${hex(12)} lantern ${hex(6)}`,
  bob: `maple früh orbit ${hex(12)} willow ${hex(6)}`,
};

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'umbra-blind-'));
  relay = await startTestRelay({ webDir: path.resolve('dist/web'), dataDir });
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  if (!stopped) await relay?.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

describe('the relay stays blind to what people type', { timeout: 60_000 }, () => {
  it('a conversation with canaries, through the UI, arrives intact', async () => {
    alice = await openUser(browser);
    bob = await openUser(browser);
    recA = record(alice.page, relay.url);
    recB = record(bob.page, relay.url);
    await alice.page.goto(relay.url);
    await bob.page.goto(relay.url);
    await signUpViaUi(alice.page, a, passwords.alice);
    await signUpViaUi(bob.page, b, passwords.bob);
    await startChatViaUi(alice.page, b);
    const sent: string[] = [];
    for (const [i, canary] of canaries.entries()) {
      const fromAlice = i % 2 === 0;
      const text = `${fromAlice ? 'from alice' : 'from bob'}: ${canary}`;
      if (fromAlice) await sendViaUi(alice.page, b, text);
      else await sendViaUi(bob.page, a, text);
      sent.push(text);
      if (i === 0) await openChatViaUi(bob.page, a);
      await messageItem(fromAlice ? bob.page : alice.page, fromAlice ? a : b, text).waitFor();
    }
    expect(await messageBodies(alice.page, b)).toEqual(sent);
    expect(await messageBodies(bob.page, a)).toEqual(sent);

    // Bob logs out and back in, so the log-in path carries his password too.
    await bob.page.getByRole('button', { name: 'Log out' }).click();
    await logInViaUi(bob.page, b, passwords.bob);
    await openChatViaUi(bob.page, a);
    await messageItem(bob.page, a, sent[sent.length - 1]!).waitFor();
    expect(await messageBodies(bob.page, a)).toEqual(sent);
    for (const u of [alice, bob]) expect(u.problems).toEqual([]);
  });

  it('no canary or password is in the relay data, logs, or any recorded traffic', async () => {
    await Promise.all([...recA.pending, ...recB.pending]);
    const wire: Haystack[] = [];
    for (const [who, rec] of [
      ['alice', recA],
      ['bob', recB],
    ] as const) {
      // The recording is real: both pages talked HTTP and WebSocket both ways.
      expect(rec.requestBodies.length).toBeGreaterThan(2);
      expect(rec.responseBodies.length).toBeGreaterThan(2);
      expect(rec.framesSent.length).toBeGreaterThanOrEqual(canaries.length / 2);
      expect(rec.framesReceived.length).toBeGreaterThanOrEqual(canaries.length / 2);
      wire.push({ where: `${who}'s request URLs`, bytes: Buffer.from(rec.urls.join('\n')) });
      rec.requestBodies.forEach((bytes, i) => wire.push({ where: `${who}'s HTTP request body ${i}`, bytes }));
      rec.responseBodies.forEach((bytes, i) => wire.push({ where: `${who}'s HTTP response body ${i}`, bytes }));
      rec.framesSent.forEach((bytes, i) => wire.push({ where: `${who}'s WebSocket frame sent ${i}`, bytes }));
      rec.framesReceived.forEach((bytes, i) => wire.push({ where: `${who}'s WebSocket frame received ${i}`, bytes }));
    }

    const whileRunning = filesIn(dataDir, 'data dir while running');
    expect(whileRunning.some((h) => h.where.endsWith(': umbra.db-wal') && h.bytes.length > 0)).toBe(true);
    await relay.stop();
    stopped = true;
    const afterStop = filesIn(dataDir, 'data dir after stop');
    const logs: Haystack = { where: 'relay logs', bytes: Buffer.from(relay.logs.join('')) };
    const everything = [...wire, ...whileRunning, ...afterStop, logs];

    // The search finds what is there: usernames in the database and the sign-up bodies, log
    // lines about the sign-ups, and each message's ciphertext, as raw bytes, in the database.
    const disk = [...whileRunning, ...afterStop];
    expect(disk.some((h) => h.bytes.includes(Buffer.from(a)))).toBe(true);
    expect(wire.some((h) => h.where.includes('HTTP request body') && h.bytes.includes(Buffer.from(b)))).toBe(true);
    expect(relay.logs.some((l) => l.includes('"signup"'))).toBe(true);
    const ciphertexts = [...recA.framesSent, ...recB.framesSent]
      .map((f) => JSON.parse(f.toString('utf8')) as { t: string; env?: { ct: string } })
      .filter((f) => f.t === 'send')
      .map((f) => Buffer.from(f.env!.ct, 'base64'));
    expect(ciphertexts.length).toBeGreaterThanOrEqual(canaries.length);
    for (const ct of ciphertexts) expect(disk.some((h) => h.bytes.includes(ct))).toBe(true);

    const secrets: Record<string, string> = { "alice's password": passwords.alice, "bob's password": passwords.bob };
    canaries.forEach((c, i) => (secrets[`canary ${i}`] = c));
    expect(leaks(everything, secrets)).toEqual([]);
  });
});
