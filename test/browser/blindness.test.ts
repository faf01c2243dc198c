// The relay is blind, proven over the wire from a real browser: random canary messages and
// passwords typed into the UI never reach the relay's disk, its logs, or any byte the browser
// sent or received, in plain text or the usual encodings.
import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  logInViaUi,
  messageBodies,
  messageItem,
  openChatViaUi,
  sendViaUi,
  startChatViaUi,
  webRelay,
  type UserPage,
} from '../helpers/browser.ts';
import { WireRecording, leaks, plantedLeak, relayRemains, type Haystack } from '../helpers/canary.ts';
import { uniqueName } from '../helpers/relay.ts';

const web = webRelay();
let alice: UserPage;
let bob: UserPage;
let recA: WireRecording;
let recB: WireRecording;
const a = uniqueName('alice');
const b = uniqueName('bob');
const hex = (n: number) => crypto.randomBytes(n).toString('hex');
const canaries = Array.from({ length: 6 }, () => `canary-${hex(16)}`);
const passwords = {
  alice: `quiet ünïcode harbour ${hex(12)} lantern ${hex(6)}`,
  bob: `maple früh orbit ${hex(12)} willow ${hex(6)}`,
};

describe('the relay stays blind to what people type', { timeout: 60_000 }, () => {
  it('a conversation with canaries, through the UI, arrives intact', async () => {
    // Recording starts before each page's first request.
    alice = await web.signedUpUser(a, passwords.alice, { beforeLoad: (u) => (recA = WireRecording.ofPage('alice', u.page, web.relay.url)) });
    bob = await web.signedUpUser(b, passwords.bob, { beforeLoad: (u) => (recB = WireRecording.ofPage('bob', u.page, web.relay.url)) });
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
    const wire: Haystack[] = [];
    for (const rec of [recA, recB]) {
      wire.push(...(await rec.done()));
      // The recording is real: both pages talked HTTP and WebSocket both ways.
      expect(rec.count('HTTP request body')).toBeGreaterThan(2);
      expect(rec.count('HTTP response body')).toBeGreaterThan(2);
      expect(rec.count('WebSocket frame sent')).toBeGreaterThanOrEqual(canaries.length / 2);
      expect(rec.count('WebSocket frame received')).toBeGreaterThanOrEqual(canaries.length / 2);
    }

    const relay = web.relay;
    const { whileRunning, afterStop, logs } = await relayRemains(relay);
    expect(whileRunning.some((h) => h.where.endsWith(': umbra.db-wal') && h.bytes.length > 0)).toBe(true);
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

    // And the canary search itself can match: a username is found on disk, and a canary inside a
    // base64 blob, at an odd offset, is caught.
    expect(leaks(disk, { "alice's username": a }).some((l) => l.startsWith("alice's username (utf-8) in data dir"))).toBe(true);
    expect(leaks([plantedLeak(canaries[0]!)], { 'canary 0': canaries[0]! })).toContain('canary 0 (base64+1) in a planted leak');

    const secrets: Record<string, string> = { "alice's password": passwords.alice, "bob's password": passwords.bob };
    canaries.forEach((c, i) => (secrets[`canary ${i}`] = c));
    expect(leaks(everything, secrets)).toEqual([]);
  });
});
