// Leaving a room and the new key that must follow, in three isolated Chromium profiles against a
// real relay: a leave with an admin online (the admin's client renews the key at once), and a leave
// while no admin is online, whose renewal is interrupted and then finished from the admin's screen.
import crypto from 'node:crypto';
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import {
  createRoomViaUi,
  joinRoomViaUi,
  logInViaUi,
  openMembersViaUi,
  openRoomViaUi,
  roomEntry,
  roomMessage,
  sendInRoomViaUi,
  statusWith,
  unnamedControls,
  webRelay,
  type UserPage,
} from '../helpers/browser.ts';
import { PASSWORD, uniqueName } from '../helpers/relay.ts';
import { keyHolderRows, newestRoomOf, storedChain } from '../helpers/rooms.ts';

const web = webRelay();
const users = web.users;
let ann: UserPage;
let ben: UserPage;
let cat: UserPage;
const a = uniqueName('ann');
const b = uniqueName('ben');
const c = uniqueName('cat');
const tag = uniqueName('r');
const circle = `Circle ${tag}`;
const vigil = `Vigil ${tag}`;
const secret = (what: string) => `${what} ${crypto.randomBytes(8).toString('hex')}`;
const WAITING_FOR_ADMIN = 'Waiting for an admin to renew the room key…';

/** The room's membership chain as the relay stored it, one "actor op [member] [epoch]" per link. */
function chainOps(conv: string): string[] {
  return storedChain(web.relay, conv).map((l) => [l.actor, l.op, l.member, l.epoch].filter((x) => x !== undefined).join(' '));
}

/** Who holds a key for each epoch of the room, as the relay stored them. */
function keyHolders(conv: string): Record<number, string[]> {
  const out: Record<number, string[]> = {};
  for (const r of keyHolderRows(web.relay, conv)) (out[r.epoch] ??= []).push(r.username);
  return out;
}

function composer(page: Page) {
  return page.getByRole('textbox', { name: 'Message' });
}

/** Three people in a fresh open room `room` of ann's, each having said hello. */
async function threeInOpenRoom(room: string, topic: string): Promise<string> {
  await createRoomViaUi(ann.page, room, topic, 'Open');
  for (const u of [ben, cat]) {
    await joinRoomViaUi(u.page, room);
    await u.page.getByText(topic, { exact: true }).waitFor();
    await composer(u.page).and(u.page.locator(':enabled')).waitFor();
  }
  for (const u of [ann, ben, cat]) {
    const hello = secret('hello');
    await sendInRoomViaUi(u.page, room, hello);
    for (const other of [ann, ben, cat]) await roomMessage(other.page, room, hello).waitFor();
  }
  return newestRoomOf(web.relay, a);
}

async function leaveViaUi(u: UserPage, room: string, conv: string): Promise<void> {
  // From then on the relay refuses the room to this user's client, which the browser logs.
  u.expectConsoleError(new RegExp(`status of 403 .*@ .*/api/conversations/${conv.replace(/[^\w]/g, '\\$&')}$`));
  const dialog = await openMembersViaUi(u.page, room);
  expect(await unnamedControls(u.page)).toEqual([]);
  await dialog.getByRole('button', { name: 'Leave room' }).click();
  await dialog.waitFor({ state: 'detached' });
}

/** Sends from ann, waits until ben reads it, then gives cat's open page every chance to (wrongly) show it. */
async function onlyAnnAndBenRead(room: string): Promise<void> {
  const text = secret('after cat left');
  await sendInRoomViaUi(ann.page, room, text);
  await roomMessage(ben.page, room, text).waitFor();
  const reply = secret('ben answers');
  await sendInRoomViaUi(ben.page, room, reply);
  await roomMessage(ann.page, room, reply).waitFor();
  await cat.page.waitForTimeout(1500);
  for (const t of [text, reply]) expect(await cat.page.getByText(t).count()).toBe(0);
}

describe('leaving a room and renewing its key in the web client', { timeout: 60_000 }, () => {
  it('three people sign up in separate browsers', async () => {
    for (const name of [a, b, c]) await web.signedUpUser(name, PASSWORD);
    [ann, ben, cat] = users as [UserPage, UserPage, UserPage];
  });

  it('cat leaves while ann is online: ann’s client renews the key, and cat reads nothing new', async () => {
    const conv = await threeInOpenRoom(circle, 'Round the table');
    expect(keyHolders(conv)).toEqual({ 0: [a, b, c].sort() });

    await leaveViaUi(cat, circle, conv);
    await statusWith(cat.page, 'You left this room.').waitFor();
    expect(await composer(cat.page).isDisabled()).toBe(true);
    await cat.page.getByText('You can no longer write in this room.').waitFor();
    expect(await cat.page.getByRole('button', { name: 'Members', exact: true }).count()).toBe(0);
    await roomEntry(cat.page, circle).filter({ hasText: 'You left this room.' }).waitFor();

    // Ann's client follows the leave with a new key for those who stay; ben may write again.
    await composer(ben.page).and(ben.page.locator(':enabled')).waitFor();
    const ops = chainOps(conv);
    expect(ops.slice(-2)).toEqual([`${c} leave`, `${a} rotate 1`]);
    expect(keyHolders(conv)).toEqual({ 0: [a, b, c].sort(), 1: [a, b].sort() });
    await onlyAnnAndBenRead(circle);

    // Back after a reload, cat's client no longer lists the room at all, once it has asked the
    // relay where it stands (its last step after connecting).
    const settled = cat.page.waitForResponse((res) => res.url().endsWith('/api/rooms/requests/mine'));
    await cat.page.reload();
    await settled;
    await cat.page.getByRole('navigation', { name: 'Rooms' }).getByText('No rooms yet.', { exact: false }).waitFor();
    await cat.page.waitForTimeout(300);
    expect(await roomEntry(cat.page, circle).count()).toBe(0);
  });

  it('cat leaves while no admin is online: the room waits, visibly, for a new key', async () => {
    const conv = await threeInOpenRoom(vigil, 'Keep watch');
    await ann.page.getByRole('button', { name: 'Log out' }).click();
    await ann.page.getByRole('button', { name: 'Log in', exact: true }).waitFor();

    await leaveViaUi(cat, vigil, conv);
    await statusWith(cat.page, 'You left this room.').waitFor();
    // Nobody may write under the key cat still holds: ben's composer says why.
    await ben.page.getByText(WAITING_FOR_ADMIN).waitFor();
    expect(await composer(ben.page).isDisabled()).toBe(true);
    expect(await ben.page.getByRole('button', { name: 'Send' }).isDisabled()).toBe(true);
    await ben.page.waitForTimeout(1000);
    expect(chainOps(conv).at(-1)).toBe(`${c} leave`);
    expect(keyHolders(conv)).toEqual({ 0: [a, b, c].sort() });
    expect(await ben.page.getByText(WAITING_FOR_ADMIN).count()).toBe(1);
  });

  it('ann comes back, her automatic renewal is cut off, and she renews the key from the room', async () => {
    const conv = newestRoomOf(web.relay, a);
    let cutOff = 0;
    await ann.page.route('**/api/rooms/*/statements', (route) => {
      cutOff++;
      return route.abort('connectionreset');
    });
    ann.expectConsoleError(/net::ERR_CONNECTION_RESET .*\/api\/rooms\/.*\/statements$/);
    await logInViaUi(ann.page, a, PASSWORD);
    await openRoomViaUi(ann.page, vigil);
    await expect.poll(() => cutOff).toBeGreaterThan(0);

    // The room says what it needs, and offers the admin the way to do it.
    await statusWith(ann.page, 'Someone left, so this room needs a new key before anyone can write again.').waitFor();
    await ann.page.getByText('Renew the room key to write here again.').waitFor();
    expect(await composer(ann.page).isDisabled()).toBe(true);
    expect(await unnamedControls(ann.page)).toEqual([]);
    expect(chainOps(conv).at(-1)).toBe(`${c} leave`);
    await ben.page.getByText(WAITING_FOR_ADMIN).waitFor();

    // Still cut off: the attempt fails in words and the room keeps waiting.
    await ann.page.getByRole('button', { name: 'Renew the room key' }).click();
    await ann.page.getByRole('alert').filter({ hasText: "Can't reach the server." }).waitFor();
    expect(chainOps(conv).at(-1)).toBe(`${c} leave`);

    await ann.page.unroute('**/api/rooms/*/statements');
    await ann.page.getByRole('button', { name: 'Renew the room key' }).click();
    await ann.page.getByRole('button', { name: 'Renew the room key' }).waitFor({ state: 'detached' });
    await statusWith(ann.page, 'needs a new key').waitFor({ state: 'detached' });
    await composer(ann.page).and(ann.page.locator(':enabled')).waitFor();
    await composer(ben.page).and(ben.page.locator(':enabled')).waitFor();
    expect(await ben.page.getByText(WAITING_FOR_ADMIN).count()).toBe(0);

    expect(chainOps(conv).slice(-2)).toEqual([`${c} leave`, `${a} rotate 1`]);
    expect(keyHolders(conv)).toEqual({ 0: [a, b, c].sort(), 1: [a, b].sort() });
    await onlyAnnAndBenRead(vigil);
  });

  it('no page logged an unexpected error or a CSP violation', () => {
    expect(users.length).toBe(3);
    for (const u of users) expect(u.problems).toEqual([]);
  });
});
