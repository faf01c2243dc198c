// Answering join requests and handing out admin rights in the web client, in four isolated Chromium
// profiles against a real relay: a declined request that reads nothing, an admin made and unmade
// in the members panel, and a demoted admin whose stale buttons the relay and the client refuse.
import crypto from 'node:crypto';
import type { Locator, Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import {
  closeMembersViaUi,
  createRoomViaUi,
  joinRoomViaUi,
  openMembersViaUi,
  openRoomViaUi,
  roomBodies,
  roomEntry,
  roomLog,
  roomMessage,
  sendInRoomViaUi,
  statusWith,
  unnamedControls,
  webRelay,
  type UserPage,
} from '../helpers/browser.ts';
import { PASSWORD, api, queryDb, uniqueName } from '../helpers/relay.ts';
import { keyHolderRows, newestRoomOf, storedChain } from '../helpers/rooms.ts';

const web = webRelay();
const users = web.users;
let ann: UserPage;
let ben: UserPage;
let cat: UserPage;
let dan: UserPage;
const a = uniqueName('ann');
const b = uniqueName('ben');
const c = uniqueName('cat');
const d = uniqueName('dan');
const tag = uniqueName('r');
const quiet = `Quiet ${tag}`;
const council = `Council ${tag}`;
const secret = (what: string) => `${what} ${crypto.randomBytes(8).toString('hex')}`;
/** Frames of the relay's `roster` pushes to ben are held back while this is set (a push lost on the way). */
let holdBensRosterPushes = false;
const heldBack: string[] = [];

// ---- reading the relay's file ------------------------------------------------------------------

/** The room's membership chain as the relay stored it, one "actor op [member] [role]" per link. */
function chainOps(conv: string): string[] {
  return storedChain(web.relay, conv).map((l) => [l.actor, l.op, l.member, l.role].filter(Boolean).join(' '));
}

function requestStatus(conv: string, username: string): string | undefined {
  return queryDb<{ status: string }>(
    web.relay,
    'SELECT r.status FROM join_requests r JOIN users u ON u.id = r.user_id WHERE r.conv_id = ? AND u.username = ?',
    conv,
    username,
  )[0]?.status;
}

async function cookieOf(u: UserPage): Promise<string> {
  return (await u.context.cookies(web.relay.url)).map((k) => `${k.name}=${k.value}`).join('; ');
}

// ---- reading the members panel ----------------------------------------------------------------

function memberList(dialog: Locator): Locator {
  return dialog.getByRole('region', { name: /^\d+ members?$/ });
}

async function members(dialog: Locator): Promise<string[]> {
  return memberList(dialog).locator('.member-name').allInnerTexts();
}

async function roleIn(dialog: Locator, who: string): Promise<string> {
  return (await memberList(dialog).getByRole('listitem').filter({ hasText: who }).locator('.member-role').innerText()).trim();
}

/** Waits until the panel shows `who` with `role`. */
async function waitForRole(dialog: Locator, who: string, role: string): Promise<void> {
  await memberList(dialog).getByRole('listitem').filter({ hasText: who }).locator('.member-role', { hasText: role }).waitFor();
}

/** The admin controls a panel offers: anything that invites, answers requests or changes a member. */
function adminControls(page: Page, dialog: Locator): Locator {
  return dialog
    .getByRole('button', { name: /^(Approve|Decline|Remove|Make) / })
    .or(dialog.getByLabel('Username to invite'))
    .or(page.getByText(/asks? to join\./));
}

function alertIn(dialog: Locator, text: string): Locator {
  return dialog.getByRole('alert').filter({ hasText: text });
}

describe('answering requests and admin rights in the web client', { timeout: 60_000 }, () => {
  it('four people sign up in separate browsers', async () => {
    for (const name of [a, b, c, d]) await web.signedUpUser(name, PASSWORD);
    [ann, ben, cat, dan] = users as [UserPage, UserPage, UserPage, UserPage];
    // Ben's pushes go through a route that can hold back `roster` frames; all else passes as is.
    await ben.page.routeWebSocket(/\/ws$/, (ws) => {
      const server = ws.connectToServer();
      server.onMessage((frame) => {
        if (holdBensRosterPushes && typeof frame === 'string' && (JSON.parse(frame) as { t?: string }).t === 'roster') heldBack.push(frame);
        else ws.send(frame);
      });
    });
    await ben.page.reload();
    await ben.page.getByRole('navigation', { name: 'Rooms' }).waitFor();
  });

  it('ann declines dan’s request: dan is told, gets no key, and reads nothing of the room', async () => {
    const before = secret('said before dan asked');
    await createRoomViaUi(ann.page, quiet, 'Only the two of us', 'Private');
    await sendInRoomViaUi(ann.page, quiet, before);
    const conv = newestRoomOf(web.relay, a);

    await joinRoomViaUi(dan.page, quiet);
    await statusWith(dan.page, 'Waiting for an admin to approve your request…').waitFor();
    expect(requestStatus(conv, d)).toBe('pending');

    await ann.page.getByText('1 person asks to join.').waitFor();
    const dialog = await openMembersViaUi(ann.page, quiet);
    await dialog.getByRole('group', { name: `Fingerprint of ${d}` }).waitFor();
    await dialog.getByRole('button', { name: `Decline ${d}` }).click();
    await dialog.getByRole('button', { name: `Approve ${d}` }).waitFor({ state: 'detached' });
    await dialog.getByRole('group', { name: `Fingerprint of ${d}` }).waitFor({ state: 'detached' });
    expect(await members(dialog)).toEqual([`${a} (you)`]);
    await closeMembersViaUi(ann.page);
    await ann.page.getByText('1 person asks to join.').waitFor({ state: 'detached' });

    // Dan's screen says so at once, in the room and in the list; nothing can be written or read.
    await statusWith(dan.page, 'Your request was declined.').waitFor();
    await statusWith(dan.page, 'Waiting for an admin').waitFor({ state: 'detached' });
    expect(await dan.page.getByRole('textbox', { name: 'Message' }).isDisabled()).toBe(true);
    await dan.page.getByText('You are not a member of this room.').waitFor();
    expect(await dan.page.getByRole('button', { name: 'Members', exact: true }).count()).toBe(0);
    await roomEntry(dan.page, quiet).filter({ hasText: 'Your request was declined.' }).waitFor();
    expect(requestStatus(conv, d)).toBe('declined');

    // Ann keeps writing; dan's page shows none of it, nor anything said before.
    const after = secret('said after the decline');
    await sendInRoomViaUi(ann.page, quiet, after);
    await dan.page.waitForTimeout(1500);
    expect(await roomLog(dan.page, quiet).getByRole('listitem').count()).toBe(0);
    await roomLog(dan.page, quiet).getByText('No messages to show.').waitFor();
    for (const text of [before, after, 'Only the two of us']) expect(await dan.page.getByText(text).count()).toBe(0);
    expect(await roomBodies(ann.page, quiet)).toEqual([before, after]);

    // The relay never held a key for dan, lists ann alone, and refuses dan the room and its history.
    expect(keyHolderRows(web.relay, conv)).toEqual([{ username: a, epoch: 0 }]);
    expect(chainOps(conv)).toEqual([`${a} create`]);
    const cookie = await cookieOf(dan);
    expect([403, 404]).toContain((await api(web.relay, 'GET', `/api/conversations/${conv}`, { cookie })).status);
    expect([403, 404]).toContain((await api(web.relay, 'GET', `/api/conversations/${conv}/envelopes?limit=50`, { cookie })).status);

    // After a reload the answer still stands, learnt from the relay (the typed name is gone with the page).
    await dan.page.reload();
    const entry = roomEntry(dan.page, 'A room you asked to join');
    await entry.filter({ hasText: 'Your request was declined.' }).waitFor();
    await entry.click();
    await statusWith(dan.page, 'Your request was declined.').waitFor();
    expect(await dan.page.getByRole('textbox', { name: 'Message' }).isDisabled()).toBe(true);
    for (const text of [before, after, quiet, 'Only the two of us']) expect(await dan.page.getByText(text).count()).toBe(0);
  });

  it('ann makes ben an admin; ben approves cat and removes her again', async () => {
    await createRoomViaUi(ann.page, council, 'Who decides', 'Private');
    const conv = newestRoomOf(web.relay, a);
    const annsPanel = await openMembersViaUi(ann.page, council);
    await annsPanel.getByLabel('Username to invite').fill(b);
    await annsPanel.getByRole('button', { name: 'Invite', exact: true }).click();
    await annsPanel.getByRole('group', { name: `Fingerprint of ${b}` }).waitFor();

    await openRoomViaUi(ben.page, council);
    const bensPanel = await openMembersViaUi(ben.page, council);
    expect(await roleIn(bensPanel, b)).toBe('Member');
    expect(await adminControls(ben.page, bensPanel).count()).toBe(0);

    await annsPanel.getByRole('button', { name: `Make ${b} admin` }).click();
    await waitForRole(annsPanel, b, 'Admin');
    // Ben's open panel follows: he may now invite, but not touch the owner.
    await waitForRole(bensPanel, b, 'Admin');
    await bensPanel.getByLabel('Username to invite').waitFor();
    expect(await bensPanel.getByRole('button', { name: new RegExp(`^(Remove|Make) ${a}`) }).count()).toBe(0);
    expect(await unnamedControls(ben.page)).toEqual([]);

    await joinRoomViaUi(cat.page, council);
    await statusWith(cat.page, 'Waiting for an admin to approve your request…').waitFor();
    await bensPanel.getByRole('button', { name: `Approve ${c}` }).click();
    await waitForRole(bensPanel, c, 'Member');
    await cat.page.getByText('Who decides', { exact: true }).waitFor();
    await cat.page.getByRole('textbox', { name: 'Message' }).and(cat.page.locator(':enabled')).waitFor();
    const hello = secret('cat says hello');
    await sendInRoomViaUi(cat.page, council, hello);
    await roomMessage(ben.page, council, hello).waitFor();

    // Removing cat refuses her the room from then on; her browser logs that refusal.
    cat.expectConsoleError(new RegExp(`status of 403 .*@ .*/api/conversations/${conv.replace(/[^\w]/g, '\\$&')}$`));
    await bensPanel.getByRole('button', { name: `Remove ${c}` }).click();
    await memberList(bensPanel).getByRole('listitem').filter({ hasText: c }).waitFor({ state: 'detached' });
    await statusWith(cat.page, 'You were removed from this room.').waitFor();
    expect(await annsPanel.getByRole('group', { name: `Fingerprint of ${c}` }).count()).toBe(0);

    // Ben's client signed the admission and the removal; the new key is for ann and ben only.
    expect(chainOps(conv)).toEqual([`${a} create`, `${a} add ${b} member`, `${a} role ${b} admin`, `${b} add ${c} member`, `${b} remove ${c}`]);
    const keys = keyHolderRows(web.relay, conv);
    expect(keys.filter((k) => k.epoch === 1).map((k) => k.username)).toEqual([a, b].sort());
    expect(keys.filter((k) => k.username === c).map((k) => k.epoch)).toEqual([0]);
  });

  it('ann demotes ben: his admin controls go while his panel is open', async () => {
    await joinRoomViaUi(dan.page, council);
    await statusWith(dan.page, 'Waiting for an admin to approve your request…').waitFor();
    const bensPanel = ben.page.getByRole('dialog', { name: `Members of ${council}` });
    await bensPanel.getByRole('button', { name: `Decline ${d}` }).waitFor();
    await ben.page.getByText('1 person asks to join.').waitFor();

    const annsPanel = ann.page.getByRole('dialog', { name: `Members of ${council}` });
    await annsPanel.getByRole('button', { name: `Make ${b} a member` }).click();
    await waitForRole(annsPanel, b, 'Member');
    await waitForRole(bensPanel, b, 'Member');
    await bensPanel.getByLabel('Username to invite').waitFor({ state: 'detached' });
    await ben.page.getByText('1 person asks to join.').waitFor({ state: 'detached' });
    expect(await adminControls(ben.page, bensPanel).count()).toBe(0);
    await bensPanel.getByRole('button', { name: 'Leave room' }).waitFor();
    // Ann, the owner, still has the request to answer.
    await annsPanel.getByRole('button', { name: `Approve ${d}` }).waitFor();
  });

  it('demoted while a push is lost, ben’s stale buttons are refused in words and nothing changes', async () => {
    const conv = newestRoomOf(web.relay, a);
    const annsPanel = ann.page.getByRole('dialog', { name: `Members of ${council}` });
    const bensPanel = ben.page.getByRole('dialog', { name: `Members of ${council}` });
    await annsPanel.getByRole('button', { name: `Make ${b} admin` }).click();
    await waitForRole(bensPanel, b, 'Admin');
    await bensPanel.getByRole('button', { name: `Decline ${d}` }).waitFor();

    holdBensRosterPushes = true;
    await annsPanel.getByRole('button', { name: `Make ${b} a member` }).click();
    await waitForRole(annsPanel, b, 'Member');
    await ben.page.waitForTimeout(500);
    // The relay told ben's client, and the route held that back: his panel still offers admin controls.
    expect(heldBack.length).toBeGreaterThan(0);
    expect(await roleIn(bensPanel, b)).toBe('Admin');
    await bensPanel.getByRole('button', { name: `Decline ${d}` }).waitFor();

    // The relay refuses the decline: only admins answer requests.
    const escaped = conv.replace(/[^\w]/g, '\\$&');
    ben.expectConsoleError(new RegExp(`status of 403 .*@ .*/api/rooms/${escaped}/requests/${d}/decline$`));
    await bensPanel.getByRole('button', { name: `Decline ${d}` }).click();
    await alertIn(bensPanel, 'You are not allowed to do that.').waitFor();
    expect(requestStatus(conv, d)).toBe('pending');
    await statusWith(dan.page, 'Waiting for an admin to approve your request…').waitFor();

    // An invite, signed on the chain ben last saw, loses to ann's change; rebuilt on the newest
    // chain, his own client refuses it, and his panel catches up.
    ben.expectConsoleError(new RegExp(`status of 409 .*@ .*/api/rooms/${escaped}/statements$`));
    await bensPanel.getByLabel('Username to invite').fill(c);
    await bensPanel.getByRole('button', { name: 'Invite', exact: true }).click();
    await bensPanel.getByLabel('Username to invite').waitFor({ state: 'detached' });
    await alertIn(bensPanel, 'You are not allowed to do that.').waitFor();
    expect(await roleIn(bensPanel, b)).toBe('Member');
    expect(await adminControls(ben.page, bensPanel).count()).toBe(0);
    expect(chainOps(conv).slice(5)).toEqual([`${a} role ${b} member`, `${a} role ${b} admin`, `${a} role ${b} member`]);

    // Pushes flow again; ann answers dan, and every screen agrees.
    holdBensRosterPushes = false;
    await annsPanel.getByRole('button', { name: `Approve ${d}` }).click();
    await waitForRole(annsPanel, d, 'Member');
    await waitForRole(bensPanel, d, 'Member');
    expect(await members(bensPanel)).toEqual([a, `${b} (you)`, d].sort((x, y) => (x < y ? -1 : 1)));
    expect(await adminControls(ben.page, bensPanel).count()).toBe(0);
    await statusWith(dan.page, 'Waiting for an admin').waitFor({ state: 'detached' });
    await dan.page.getByText('Who decides', { exact: true }).waitFor();
    expect(chainOps(conv).at(-1)).toBe(`${a} add ${d} member`);
    await closeMembersViaUi(ben.page);
    await closeMembersViaUi(ann.page);
  });

  it('no page logged an unexpected error or a CSP violation', () => {
    expect(users.length).toBe(4);
    for (const u of users) expect(u.problems).toEqual([]);
  });
});
