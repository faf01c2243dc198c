// A long history in the browser: the newest page scrolled into view, older pages on request,
// and what the relay did to the order shown to the reader (a dropped message, a swapped pair).
import { beforeAll, describe, expect, it } from 'vitest';
import { logInViaUi, messageItem, messageLog, openChatViaUi, webRelay } from '../helpers/browser.ts';
import { PASSWORD, uniqueName } from '../helpers/relay.ts';

const TOTAL = 60;
const DROPPED = 55;
const SWAPPED = [58, 59] as const;

const web = webRelay();
const a = uniqueName('alice');
const b = uniqueName('bob');
const text = (n: number) => `history message ${n}`;

beforeAll(async () => {
  const relay = web.relay;
  // The history is written by SDK clients in Node: quicker than typing sixty messages.
  const bobSdk = relay.client();
  await bobSdk.signUp(b, PASSWORD);
  bobSdk.disconnect();
  const aliceSdk = relay.client();
  await aliceSdk.signUp(a, PASSWORD);
  const conv = await aliceSdk.startConversation(b);
  for (let n = 1; n <= TOTAL; n++) await aliceSdk.sendText(conv.id, text(n));
  aliceSdk.disconnect();
  // The relay drops one envelope and swaps the order of two others.
  const db = relay.db.sqlite;
  db.prepare('DELETE FROM envelopes WHERE conv_id = ? AND seq = ?').run(conv.id, DROPPED);
  const move = db.prepare('UPDATE envelopes SET seq = ? WHERE conv_id = ? AND seq = ?');
  db.transaction(() => {
    move.run(-1, conv.id, SWAPPED[0]);
    move.run(SWAPPED[0], conv.id, SWAPPED[1]);
    move.run(SWAPPED[1], conv.id, -1);
  })();
});

describe('a long conversation in the browser', { timeout: 60_000 }, () => {
  it('shows the newest page scrolled to the end, marks what the relay changed, and loads older pages', async () => {
    const bob = await web.loadedUser();
    await logInViaUi(bob.page, b, PASSWORD);
    await openChatViaUi(bob.page, a);
    const page = bob.page;
    const log = messageLog(page, a);
    await messageItem(page, a, text(TOTAL)).waitFor();

    // Scrolled to the newest: the last message is inside the visible part of the list.
    const logBox = (await log.boundingBox())!;
    const lastBox = (await log.getByRole('listitem').last().boundingBox())!;
    expect(lastBox.y + lastBox.height).toBeLessThanOrEqual(logBox.y + logBox.height + 1);
    expect(await log.evaluate((el) => el.scrollTop)).toBeGreaterThan(0);

    // The dropped message is announced; the message that came after a later one is marked.
    await log.getByRole('note').filter({ hasText: `1 message from ${a} is missing.` }).first().waitFor();
    expect(await messageItem(page, a, text(DROPPED)).count()).toBe(0);
    expect(await messageItem(page, a, text(SWAPPED[0])).innerText()).toContain('arrived out of order');
    expect(await messageItem(page, a, text(SWAPPED[1])).innerText()).not.toContain('arrived out of order');
    expect(await messageItem(page, a, text(1)).count()).toBe(0);

    // Older messages on request; the reader stays where they were.
    const older = page.getByRole('button', { name: 'Load older messages' });
    const firstShown = log.getByRole('listitem').first();
    const firstText = await firstShown.locator('.message-body').innerText();
    await log.evaluate((el) => (el.scrollTop = 0));
    const before = (await messageItem(page, a, firstText).boundingBox())!;
    await older.click();
    await messageItem(page, a, text(1)).waitFor();
    await older.waitFor({ state: 'detached' });
    const after = (await messageItem(page, a, firstText).boundingBox())!;
    // Nine messages came in above it, yet it moved less than one message height.
    expect(Math.abs(after.y - before.y)).toBeLessThan(before.height);
    expect(await log.evaluate((el) => el.scrollTop)).toBeGreaterThan(0);
    const bodies = await log.locator('.message-body').allInnerTexts();
    expect(bodies).toHaveLength(TOTAL - 1);
    expect(bodies[0]).toBe(text(1));
    expect(bob.problems).toEqual([]);
  });
});
