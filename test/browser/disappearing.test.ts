// Disappearing messages in real Chromium, two people in separate profiles: a timer set through the
// dialog reaches both sides, messages leave both screens and both devices' IndexedDB on time and
// stay gone after a reload, burn after reading waits for the recipient to open the conversation,
// and "What the server sees" shows the relay's own bytes for each envelope.
import crypto from 'node:crypto';
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { messageItem, openChatViaUi, sendViaUi, startChatViaUi, unnamedControls, webRelay, type UserPage } from '../helpers/browser.ts';
import { PASSWORD, queryDb, uniqueName } from '../helpers/relay.ts';

const web = webRelay();
let alice: UserPage;
let bob: UserPage;
const a = uniqueName('alice');
const b = uniqueName('bob');
const unique = (what: string) => `${what} ${crypto.randomBytes(8).toString('hex')}`;

/** The 3-second timer used throughout, and how late a disappearance may be noticed. */
const TTL_MS = 3_000;
const LATE_MS = 3_000;

/** Sets the open conversation's timer through the "Disappearing messages" dialog. */
async function setTimerViaUi(page: Page, seconds: number | 'off', afterReading = false): Promise<void> {
  await page.getByRole('button', { name: /^Disappearing messages: / }).click();
  const dialog = page.getByRole('dialog', { name: 'Disappearing messages' });
  await dialog.waitFor();
  if (seconds === 'off') {
    await dialog.getByLabel('Timer', { exact: true }).selectOption({ label: 'Off' });
  } else {
    await dialog.getByLabel('Timer', { exact: true }).selectOption({ label: 'Custom…' });
    await dialog.getByLabel('Custom time in seconds').fill(String(seconds));
    await dialog.getByRole('checkbox', { name: 'Start the timer when a message is read (burn after reading)' }).setChecked(afterReading);
  }
  expect(await unnamedControls(page)).toEqual([]);
  await dialog.getByRole('button', { name: 'Set timer' }).click();
  await dialog.waitFor({ state: 'detached' });
}

/** The timer bar's button, showing exactly these words. */
function timerBar(page: Page, words: string) {
  return page.getByRole('button', { name: `Disappearing messages: ${words}`, exact: true });
}

interface IdbScan {
  /** "database/store" of every object store read. */
  stores: string[];
  /** "database/store/key" of every stored value whose structured form contains the text. */
  hits: string[];
}

/** Reads every value of every IndexedDB database of the page's origin, looking for `text`. */
function scanIndexedDb(page: Page, text: string): Promise<IdbScan> {
  return page.evaluate(async (needle) => {
    const done = <T,>(r: IDBRequest<T>) =>
      new Promise<T>((resolve, reject) => {
        r.onsuccess = () => resolve(r.result);
        r.onerror = () => reject(r.error);
      });
    const scan: { stores: string[]; hits: string[] } = { stores: [], hits: [] };
    for (const { name } of await indexedDB.databases()) {
      if (!name) continue;
      const db = await done(indexedDB.open(name));
      for (const storeName of Array.from(db.objectStoreNames)) {
        const store = db.transaction(storeName, 'readonly').objectStore(storeName);
        const [keys, values] = await Promise.all([done(store.getAllKeys()), done(store.getAll())]);
        scan.stores.push(`${name}/${storeName}`);
        values.forEach((value, i) => {
          if ((JSON.stringify(value) ?? '').includes(needle)) scan.hits.push(`${name}/${storeName}/${String(keys[i])}`);
        });
      }
      db.close();
    }
    return scan;
  }, text);
}

/** Where in IndexedDB the text is (client/web/platform.ts keeps the store in database "umbra", object store "kv"). */
async function storedAt(page: Page, text: string): Promise<string[]> {
  const scan = await scanIndexedDb(page, text);
  expect(scan.stores).toContain('umbra/kv');
  return scan.hits;
}

/** Everything the page's document says, hidden parts included (list previews, dialogs). */
function pageText(page: Page): Promise<string> {
  return page.evaluate(() => document.body.textContent ?? '');
}

/** The relay's row for the newest envelope `sender` stored of this type, read from its SQLite file. */
function newestRow(sender: string, type: string) {
  return queryDb<{ conv_id: string; seq: number; expires_at: number | null; opened_at: number | null; ct: string }>(
    web.relay,
    `select e.conv_id, e.seq, e.expires_at, e.opened_at, hex(e.ct) as ct from envelopes e join users u on u.id = e.sender_id
     where u.username = ? and e.type = ? order by e.seq desc limit 1`,
    sender,
    type,
  )[0];
}

describe('disappearing messages in Chromium', { timeout: 60_000 }, () => {
  it('a custom 3-second timer reaches both sides; a message leaves both screens and both stores on time, and stays gone', async () => {
    alice = await web.signedUpUser(a, PASSWORD);
    bob = await web.signedUpUser(b, PASSWORD);
    await startChatViaUi(alice.page, b);
    await timerBar(alice.page, 'Off').click();
    // Under a second or over a year is refused in the dialog, and nothing is sent.
    const dialog = alice.page.getByRole('dialog', { name: 'Disappearing messages' });
    await dialog.getByLabel('Timer', { exact: true }).selectOption({ label: 'Custom…' });
    const custom = dialog.getByLabel('Custom time in seconds');
    await custom.fill('0.5');
    await dialog.getByRole('button', { name: 'Set timer' }).click();
    expect(await custom.evaluate((el) => (el as HTMLInputElement).validity.rangeUnderflow)).toBe(true);
    await custom.fill(String(366 * 86_400));
    await dialog.getByRole('button', { name: 'Set timer' }).click();
    await dialog.getByRole('alert').filter({ hasText: 'Choose between 1 second and 365 days.' }).waitFor();
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'detached' });
    await timerBar(alice.page, 'Off').waitFor();

    await setTimerViaUi(alice.page, 3);
    await bob.page.getByRole('navigation', { name: 'Conversations' }).getByRole('button', { name: a }).waitFor();
    await openChatViaUi(bob.page, a);
    for (const [u, peer] of [
      [alice, b],
      [bob, a],
    ] as const) {
      const line = messageItem(u.page, peer, 'set messages to disappear after 3 seconds');
      await line.waitFor();
      expect(await line.locator('.message-sender').innerText()).toBe(u === alice ? 'You' : a);
      await timerBar(u.page, '3 seconds').waitFor();
    }

    const gone = unique('gone in three seconds');
    const stays = unique('kept for good');
    const sentAt = Date.now();
    await sendViaUi(alice.page, b, gone);
    const goneRow = newestRow(a, 'content')!;
    expect(goneRow.expires_at! - sentAt).toBeGreaterThanOrEqual(TTL_MS);
    expect(goneRow.expires_at! - sentAt).toBeLessThan(TTL_MS + 1_000);
    // The next one overrides the conversation's timer from the composer.
    const override = alice.page.getByLabel('This message disappears');
    await override.selectOption({ label: 'never' });
    await sendViaUi(alice.page, b, stays);
    // It was for that message only: the next one follows the conversation again.
    expect(await override.locator('option:checked').innerText()).toBe('as the conversation is set');
    await messageItem(bob.page, a, gone).waitFor();
    await messageItem(bob.page, a, stays).waitFor();
    for (const [u, peer] of [
      [alice, b],
      [bob, a],
    ] as const) {
      expect(await messageItem(u.page, peer, gone).innerText()).toContain('disappears');
      expect(await messageItem(u.page, peer, stays).innerText()).not.toContain('disappears');
    }
    // Before the expiry both devices really keep it (so "not in IndexedDB" below can fail).
    for (const u of [bob, alice]) {
      await expect
        .poll(() => storedAt(u.page, gone), { timeout: 1_500, interval: 100 })
        .toEqual([expect.stringMatching(/^umbra\/kv\/messages:/)]);
    }
    expect(Date.now() - sentAt, 'the message was still live when found in IndexedDB').toBeLessThan(TTL_MS);

    for (const [u, peer] of [
      [alice, b],
      [bob, a],
    ] as const) {
      await messageItem(u.page, peer, gone).waitFor({ state: 'detached', timeout: sentAt + TTL_MS + LATE_MS - Date.now() });
      const after = Date.now() - sentAt;
      expect(after, 'not before its time').toBeGreaterThanOrEqual(TTL_MS - 200);
      expect(after).toBeLessThanOrEqual(TTL_MS + LATE_MS);
      // The one sent with "never" stays, on screen and in the store.
      await messageItem(u.page, peer, stays).waitFor();
      expect(await pageText(u.page)).not.toContain(gone);
      await expect.poll(() => storedAt(u.page, gone), { timeout: 2_000, interval: 100 }).toEqual([]);
      expect(await storedAt(u.page, stays)).toEqual([expect.stringMatching(/^umbra\/kv\/messages:/)]);
    }

    // After a reload the history reaches past it (the later message shows) and it does not come back.
    for (const [u, peer] of [
      [alice, b],
      [bob, a],
    ] as const) {
      await u.page.reload();
      await openChatViaUi(u.page, peer);
      await messageItem(u.page, peer, stays).waitFor();
      await timerBar(u.page, '3 seconds').waitFor();
      expect(await pageText(u.page)).not.toContain(gone);
      expect(await storedAt(u.page, gone)).toEqual([]);
    }
    // The relay no longer serves it, and has deleted it or will at its next sweep.
    const left = queryDb<{ expires_at: number }>(web.relay, 'select expires_at from envelopes where conv_id = ? and seq = ?', goneRow.conv_id, goneRow.seq);
    for (const row of left) expect(row.expires_at).toBeLessThanOrEqual(Date.now());
    expect(await unnamedControls(alice.page)).toEqual([]);
  });

  it('burn after reading: the timer waits until the recipient opens the conversation', async () => {
    await setTimerViaUi(alice.page, 3, true);
    const line = 'set messages to disappear 3 seconds after they are read';
    await messageItem(alice.page, b, line).waitFor();
    await messageItem(bob.page, a, line).waitFor();
    await timerBar(alice.page, '3 seconds after reading').waitFor();
    await timerBar(bob.page, '3 seconds after reading').waitFor();

    // Bob leaves the conversation: after a reload his page shows the list with nothing open.
    await bob.page.reload();
    const bobsEntry = bob.page.getByRole('navigation', { name: 'Conversations' }).getByRole('button', { name: a });
    await bobsEntry.filter({ hasText: line }).waitFor();
    expect(await bob.page.getByRole('log').count()).toBe(0);

    const burn = unique('burn after reading');
    const sentAt = Date.now();
    await sendViaUi(alice.page, b, burn);
    expect(await messageItem(alice.page, b, burn).innerText()).toContain('burns 3 seconds after reading');
    // Bob's device has it (the list moved on from the timer line) but nobody has displayed it.
    await bobsEntry.filter({ hasNotText: line }).waitFor();
    await alice.page.waitForTimeout(5_000 - (Date.now() - sentAt));
    expect(await messageItem(alice.page, b, burn).count(), 'still shown 5 s after sending').toBe(1);
    const unopened = newestRow(a, 'content');
    expect(unopened?.opened_at).toBeNull();
    // Unopened, the relay keeps it for the signed fallback (30 days), not 3 seconds.
    expect(unopened!.expires_at! - Date.now()).toBeGreaterThan(86_400_000);

    await openChatViaUi(bob.page, a);
    const seen = messageItem(bob.page, a, burn);
    await seen.waitFor();
    const openedAt = Date.now();
    expect(await seen.innerText()).toContain('burns 3 seconds after reading');
    for (const [u, peer] of [
      [bob, a],
      [alice, b],
    ] as const) {
      await messageItem(u.page, peer, burn).waitFor({ state: 'detached', timeout: openedAt + TTL_MS + LATE_MS - Date.now() });
      expect(Date.now() - openedAt, 'not before its time').toBeGreaterThanOrEqual(TTL_MS - 1_000);
      expect(await pageText(u.page)).not.toContain(burn);
      await expect.poll(() => storedAt(u.page, burn), { timeout: 2_000, interval: 100 }).toEqual([]);
    }
    // The relay learnt only the new deletion time: opened now, gone 3 seconds later (or swept already).
    const [row] = queryDb<{ expires_at: number; opened_at: number }>(
      web.relay,
      'select expires_at, opened_at from envelopes where conv_id = ? and seq = ?',
      unopened!.conv_id,
      unopened!.seq,
    );
    if (row) {
      expect(row.opened_at).toBeGreaterThanOrEqual(sentAt + 4_000);
      expect(row.expires_at).toBe(row.opened_at + TTL_MS);
    }
  });

  it('"What the server sees" lists each envelope with its sender and the start of its ciphertext', async () => {
    await setTimerViaUi(alice.page, 'off');
    await messageItem(bob.page, a, 'turned off disappearing messages').waitFor();
    await timerBar(bob.page, 'Off').waitFor();
    const text = unique('look at the relay');
    await sendViaUi(alice.page, b, text);
    await messageItem(bob.page, a, text).waitFor();
    const stored = newestRow(a, 'content')!;
    const live = queryDb<{ seq: number }>(
      web.relay,
      'select seq from envelopes where conv_id = ? and (expires_at is null or expires_at > ?) order by seq',
      stored.conv_id,
      Date.now(),
    ).map((r) => String(r.seq));

    for (const u of [bob, alice]) {
      await u.page.getByRole('button', { name: 'What the server sees' }).click();
      const dialog = u.page.getByRole('dialog', { name: 'What the server sees' });
      await dialog.waitFor();
      const rows = dialog.getByRole('row').filter({ has: u.page.getByRole('cell') });
      const row = rows.filter({ hasText: text });
      expect(await row.count()).toBe(1);
      const cells = (await row.getByRole('cell').allInnerTexts()).map((c) => c.trim());
      const [seq, sender, type, bytes, , deletedAt, prefix, decrypted] = cells;
      expect(seq).toBe(String(stored.seq));
      expect(sender).toBe(a);
      expect(type).toBe('content');
      expect(Number(bytes)).toBe(stored.ct.length / 2);
      expect(deletedAt).toBe('never');
      // The prefix is the relay's own ciphertext, in hex, and nothing of the message.
      expect(prefix).toMatch(/^[0-9a-f]{24}…$/);
      expect(prefix).toBe(`${stored.ct.slice(0, 24).toLowerCase()}…`);
      expect(prefix).not.toContain(text);
      expect(decrypted).toBe(text);
      expect(await unnamedControls(u.page)).toEqual([]);
      // One row per envelope the relay holds for this conversation, and none for what has expired.
      const seqs = (await rows.evaluateAll((trs) => trs.map((tr) => tr.querySelector('td')?.textContent ?? ''))).map((s) => s.trim());
      expect(seqs).toEqual(live);
      await dialog.getByRole('button', { name: 'Close' }).click();
      await dialog.waitFor({ state: 'detached' });
    }
  });

  it('a message that cannot be sent comes back to the composer with its own timer', async () => {
    const override = alice.page.getByLabel('This message disappears');
    const input = alice.page.getByRole('textbox', { name: 'Message' });
    await override.selectOption({ label: 'after 30 seconds' });
    await input.fill('x'.repeat(70_000));
    await input.press('Enter');
    await alice.page.getByRole('alert').filter({ hasText: /./ }).waitFor();
    expect((await input.inputValue()).length).toBe(70_000);
    expect(await override.locator('option:checked').innerText()).toBe('after 30 seconds');
    await input.fill('');
    await override.selectOption({ label: 'as the conversation is set' });
  });

  it('no page logged an error or a CSP violation', () => {
    for (const u of [alice, bob]) expect(u.problems).toEqual([]);
  });
});
