// Group rooms in the web client, end to end in three isolated Chromium profiles against a real
// relay: creating and joining by name, automatic admission in an open room, approval in a private
// one, members and fingerprints, three-way chat, and a removal the removed member cannot read past.
import type { Locator, Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import {
  closeMembersViaUi,
  createRoomViaUi,
  joinRoomViaUi,
  openMembersViaUi,
  openRoomViaUi,
  roomLog,
  roomMessage,
  sendInRoomViaUi,
  statusWith,
  submitNewRoomViaUi,
  unnamedControls,
  webRelay,
  type UserPage,
} from '../helpers/browser.ts';
import { PASSWORD, api, queryDb, uniqueName } from '../helpers/relay.ts';
import { keyHolderRows } from '../helpers/rooms.ts';

const web = webRelay();
const users = web.users;
let ann: UserPage;
let ben: UserPage;
/** On a phone-sized screen in dark mode. */
let cat: UserPage;
const a = uniqueName('ann');
const b = uniqueName('ben');
const c = uniqueName('cat');
const tag = uniqueName('r');
const openRoom = `Open ${tag}`;
const privateRoom = `Private ${tag}`;
/** Everything said in the private room while cat was a member, in order. */
const said: { by: string; text: string }[] = [];

/** [sender as shown, body] of every message in the open room, in display order. */
async function shown(page: Page, room: string): Promise<[string, string][]> {
  return roomLog(page, room)
    .locator('.message')
    .evaluateAll((items) => items.map((li) => [li.querySelector('.message-sender')?.textContent ?? '', li.querySelector('.message-body')?.textContent ?? '']));
}

async function fingerprintIn(dialog: Locator, who: string): Promise<string> {
  return (await dialog.getByRole('group', { name: `Fingerprint of ${who}` }).innerText()).trim();
}

describe('group rooms in the web client', { timeout: 60_000 }, () => {
  it('three people sign up in separate browsers', async () => {
    ann = await web.signedUpUser(a, PASSWORD);
    ben = await web.signedUpUser(b, PASSWORD);
    cat = await web.signedUpUser(c, PASSWORD, { viewport: { width: 375, height: 667 }, colorScheme: 'dark' });
    for (const u of users) await u.page.getByRole('navigation', { name: 'Rooms' }).waitFor();
    expect(await unnamedControls(ann.page)).toEqual([]);
  });

  it('ann creates an open room; an unknown name and a taken name are refused in words', async () => {
    const page = ann.page;
    ann.expectConsoleError(/status of 404 .*@ .*\/api\/rooms\/lookup$/);
    await joinRoomViaUi(page, `Nowhere ${tag}`);
    await page.getByRole('alert').filter({ hasText: 'There is no room with that name.' }).waitFor();

    await createRoomViaUi(page, openRoom, 'Anything goes', 'Open');
    await page.getByText('Anything goes', { exact: true }).waitFor();
    await page.getByRole('navigation', { name: 'Rooms' }).getByRole('button', { name: openRoom }).waitFor();

    ann.expectConsoleError(/status of 409 .*@ .*\/api\/rooms$/);
    await submitNewRoomViaUi(page, openRoom, 'again', 'Open');
    await page.getByRole('alert').filter({ hasText: 'A room with that name already exists.' }).waitFor();
  });

  it('ben joins the open room by name and is let in at once by ann’s client', async () => {
    await joinRoomViaUi(ben.page, openRoom);
    await ben.page.getByRole('heading', { name: openRoom, exact: true }).waitFor();
    await ben.page.getByRole('textbox', { name: 'Message' }).and(ben.page.locator(':enabled')).waitFor();
    await sendInRoomViaUi(ben.page, openRoom, 'hello open room');
    await roomMessage(ann.page, openRoom, 'hello open room').waitFor();
    expect(await shown(ann.page, openRoom)).toEqual([[b, 'hello open room']]);
  });

  it('cat asks to join a private room, waits, and ann approves in the members panel', async () => {
    await createRoomViaUi(ann.page, privateRoom, 'Invited only', 'Private');

    await joinRoomViaUi(cat.page, privateRoom);
    await statusWith(cat.page, 'Waiting for an admin to approve your request…').waitFor();
    expect(await cat.page.getByRole('textbox', { name: 'Message' }).isDisabled()).toBe(true);

    await ann.page.getByText('1 person asks to join.').waitFor();
    const dialog = await openMembersViaUi(ann.page, privateRoom);
    expect(await unnamedControls(ann.page)).toEqual([]);
    await dialog.getByRole('button', { name: `Approve ${c}` }).click();
    await dialog.getByRole('group', { name: `Fingerprint of ${c}` }).waitFor();
    await dialog.getByRole('button', { name: `Approve ${c}` }).waitFor({ state: 'detached' });

    await cat.page.getByRole('heading', { name: privateRoom, exact: true }).waitFor();
    await cat.page.getByText('Invited only', { exact: true }).waitFor();
    await statusWith(cat.page, 'Waiting for an admin').waitFor({ state: 'detached' });
    expect(await cat.page.getByRole('textbox', { name: 'Message' }).isEnabled()).toBe(true);

    // Ann brings ben in with the invite form.
    await dialog.getByLabel('Username to invite').fill(b);
    await dialog.getByRole('button', { name: 'Invite', exact: true }).click();
    await dialog.getByRole('group', { name: `Fingerprint of ${b}` }).waitFor();
    expect(await dialog.getByRole('listitem').filter({ hasText: c }).innerText()).toContain('Member');
    expect(await dialog.getByRole('listitem').filter({ hasText: a }).innerText()).toContain('Owner');
    expect(await dialog.getByRole('button', { name: 'Leave room' }).count()).toBe(0);
    const catSeenByAnn = await fingerprintIn(dialog, c);
    const annSeenByAnn = await fingerprintIn(dialog, a);
    await closeMembersViaUi(ann.page);

    // The fingerprints are the same on both screens: 30 digits in groups of five.
    expect(catSeenByAnn).toMatch(/^\d{5}( \d{5}){5}$/);
    const catsPanel = await openMembersViaUi(cat.page, privateRoom);
    expect(await fingerprintIn(catsPanel, c)).toBe(catSeenByAnn);
    expect(await fingerprintIn(catsPanel, a)).toBe(annSeenByAnn);
    expect(annSeenByAnn).not.toBe(catSeenByAnn);
    // A plain member gets no admin buttons, but may leave.
    expect(await catsPanel.getByRole('button', { name: new RegExp(`^(Remove|Make) `) }).count()).toBe(0);
    await catsPanel.getByRole('button', { name: 'Leave room' }).waitFor();
    expect(await unnamedControls(cat.page)).toEqual([]);
    await closeMembersViaUi(cat.page);

    await openRoomViaUi(ben.page, privateRoom);
  });

  it('all three chat in the private room and see each other’s names', async () => {
    const pages = { [a]: ann.page, [b]: ben.page, [c]: cat.page };
    for (const [by, text] of [
      [a, 'welcome both'],
      [b, 'thanks ann'],
      [c, 'hi from a phone'],
      [a, 'last words before a change'],
    ] as const) {
      await sendInRoomViaUi(pages[by]!, privateRoom, text);
      said.push({ by, text });
      for (const page of Object.values(pages)) await roomMessage(page, privateRoom, text).waitFor();
    }
    for (const [me, page] of Object.entries(pages)) {
      expect(await shown(page, privateRoom)).toEqual(said.map((m) => [m.by === me ? 'You' : m.by, m.text]));
    }
  });

  it('ann removes cat; the room moves to a key cat never gets; cat keeps the history and reads nothing new', async () => {
    // The private room is the only one cat ever held a key for.
    const [conv] = queryDb<{ conv_id: string }>(
      web.relay,
      'SELECT DISTINCT k.conv_id FROM wrapped_keys k JOIN users u ON u.id = k.recipient_id WHERE u.username = ?',
      c,
    );
    expect(conv).toBeDefined();
    // Cat's client learns of the removal when the relay refuses it the room; the browser logs that refusal.
    cat.expectConsoleError(new RegExp(`status of 403 .*@ .*/api/conversations/${conv!.conv_id.replace(/[^\w-]/g, '\\$&')}$`));

    const dialog = await openMembersViaUi(ann.page, privateRoom);
    await dialog.getByRole('button', { name: `Make ${b} admin` }).waitFor();
    await dialog.getByRole('button', { name: `Remove ${c}` }).click();
    await dialog.getByRole('group', { name: `Fingerprint of ${c}` }).waitFor({ state: 'detached' });
    await closeMembersViaUi(ann.page);

    await statusWith(cat.page, 'You were removed from this room.').waitFor();
    const catInput = cat.page.getByRole('textbox', { name: 'Message' });
    expect(await catInput.isDisabled()).toBe(true);

    // The relay holds a new epoch key for ann and ben, none for cat.
    const keys = keyHolderRows(web.relay, conv!.conv_id);
    const newest = Math.max(...keys.map((k) => k.epoch));
    expect(newest).toBeGreaterThan(0);
    expect(keys.filter((k) => k.epoch === newest).map((k) => k.username).sort()).toEqual([a, b].sort());
    expect(keys.filter((k) => k.username === c).every((k) => k.epoch < newest)).toBe(true);

    await sendInRoomViaUi(ann.page, privateRoom, 'said after cat left');
    await roomMessage(ben.page, privateRoom, 'said after cat left').waitFor();
    // Give cat's client every chance to (wrongly) show it.
    await cat.page.waitForTimeout(1500);
    const catSees = await shown(cat.page, privateRoom);
    expect(catSees.map(([, text]) => text)).toEqual(said.map((m) => m.text));
    expect(catSees.at(-1)).toEqual([a, 'last words before a change']);
    expect(await roomMessage(cat.page, privateRoom, 'said after cat left').count()).toBe(0);
    expect(await cat.page.getByRole('button', { name: 'Members', exact: true }).count()).toBe(0);

    // Below the UI: the relay no longer serves the room to cat's session.
    const relay = web.relay;
    const cookies = await cat.context.cookies(relay.url);
    const cookie = cookies.map((k) => `${k.name}=${k.value}`).join('; ');
    const summary = await api(relay, 'GET', `/api/conversations/${conv!.conv_id}`, { cookie });
    expect([403, 404]).toContain(summary.status);
    const history = await api(relay, 'GET', `/api/conversations/${conv!.conv_id}/envelopes?limit=50`, { cookie });
    expect([403, 404]).toContain(history.status);

    // The list says where cat stands, and the phone layout still fits.
    await cat.page.getByRole('button', { name: 'Back to the lists' }).click();
    await cat.page
      .getByRole('navigation', { name: 'Rooms' })
      .getByRole('button', { name: privateRoom })
      .filter({ hasText: 'You were removed from this room.' })
      .waitFor();
    expect(await cat.page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
  });

  it('no page logged an error or a CSP violation', () => {
    expect(users.length).toBe(3);
    for (const u of users) expect(u.problems).toEqual([]);
  });
});
