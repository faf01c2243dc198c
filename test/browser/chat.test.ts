// The web client end to end in real Chromium against a real relay: sign-up, chat both ways,
// history after reload and on a new device, safety numbers, dark mode, a phone-sized screen,
// and a page that never logs an error or breaks its CSP.
import { describe, expect, it } from 'vitest';
import {
  fillCredentials,
  logInViaUi,
  messageBodies,
  messageItem,
  messageLog,
  openChatViaUi,
  readSafetyNumber,
  sendViaUi,
  signUpViaUi,
  startChatViaUi,
  unnamedControls,
  webRelay,
  type UserPage,
} from '../helpers/browser.ts';
import { PASSWORD, uniqueName } from '../helpers/relay.ts';

const web = webRelay();
const users = web.users;
let alice: UserPage;
let bob: UserPage;
const a = uniqueName('alice');
const b = uniqueName('bob');
/** Everything sent in the conversation, in order. */
const history: string[] = [];

describe('the web client in Chromium', { timeout: 60_000 }, () => {
  it('two people sign up through the form, watching the key derivation progress', async () => {
    alice = await web.loadedUser();
    bob = await web.loadedUser();
    await alice.page.getByRole('button', { name: 'Log in', exact: true }).waitFor();
    expect(await unnamedControls(alice.page)).toEqual([]);
    const timings = [await signUpViaUi(alice.page, a, PASSWORD), await signUpViaUi(bob.page, b, PASSWORD)];
    for (const u of [alice, bob]) {
      const log = await u.statusLog();
      expect(log).toContain('Deriving keys…');
      // The derivation label is up before the relay is contacted, and replaced after it.
      expect(log.indexOf('Deriving keys…')).toBeLessThan(log.indexOf('Contacting the server…'));
      await u.page.getByRole('status').filter({ hasText: 'Connected' }).waitFor();
    }
    for (const [i, t] of timings.entries()) {
      expect(t.argon2idMs).toBeGreaterThan(0);
      console.log(`sign-up ${i + 1} in Chromium: Argon2id ${t.argon2idMs.toFixed(0)} ms, click to chat screen ${t.uiMs} ms`);
    }
  });

  it('refuses an unknown username, then starts a chat by username', async () => {
    const ghost = uniqueName('nobody');
    alice.expectConsoleError(new RegExp(`status of 404 .*@ .*/api/users/${ghost}$`));
    await alice.page.getByLabel('Username to chat with').fill(ghost);
    await alice.page.getByRole('button', { name: 'Start chat' }).click();
    await alice.page.getByRole('alert').filter({ hasText: `There is no user called “${ghost}”.` }).waitFor();
    await startChatViaUi(alice.page, b);
    await messageLog(alice.page, b).waitFor();
  });

  it('they chat both ways in real time', async () => {
    await sendViaUi(alice.page, b, 'hello bob');
    history.push('hello bob');
    // The new conversation appears in bob's list with the preview of the last message.
    const entry = bob.page.getByRole('navigation', { name: 'Conversations' }).getByRole('button', { name: a });
    await entry.filter({ hasText: 'hello bob' }).waitFor();
    await openChatViaUi(bob.page, a);
    const received = messageItem(bob.page, a, 'hello bob');
    await received.waitFor();
    expect(await received.getAttribute('class')).toContain('theirs');
    expect(await received.locator('.message-sender').innerText()).toBe(a);
    const datetime = await received.locator('time').getAttribute('datetime');
    expect(Math.abs(Date.parse(datetime ?? '') - Date.now())).toBeLessThan(60_000);
    const mine = messageItem(alice.page, b, 'hello bob');
    expect(await mine.getAttribute('class')).toContain('mine');
    expect(await mine.locator('.message-sender').innerText()).toBe('You');

    // Bob answers with the Send button; Shift+Enter makes a new line instead of sending.
    const input = bob.page.getByRole('textbox', { name: 'Message' });
    await input.fill('hi alice');
    await input.press('Shift+Enter');
    await input.pressSequentially('second line');
    expect(await input.inputValue()).toBe('hi alice\nsecond line');
    await bob.page.getByRole('button', { name: 'Send' }).click();
    history.push('hi alice\nsecond line');
    await messageItem(alice.page, b, 'hi alice\nsecond line').waitFor();
    expect(await input.inputValue()).toBe('');

    for (let i = 1; i <= 3; i++) {
      const text = `message ${i} from ${i % 2 ? 'alice' : 'bob'}`;
      if (i % 2) await sendViaUi(alice.page, b, text);
      else await sendViaUi(bob.page, a, text);
      history.push(text);
      await messageItem(i % 2 ? bob.page : alice.page, i % 2 ? a : b, text).waitFor();
    }
    expect(await messageBodies(alice.page, b)).toEqual(history);
    expect(await messageBodies(bob.page, a)).toEqual(history);
    expect(await unnamedControls(alice.page)).toEqual([]);
  });

  it('both reload and still see the history', async () => {
    for (const [u, peer] of [
      [alice, b],
      [bob, a],
    ] as const) {
      await u.page.reload();
      await openChatViaUi(u.page, peer);
      await messageItem(u.page, peer, history[history.length - 1]!).waitFor();
      expect(await messageBodies(u.page, peer)).toEqual(history);
    }
  });

  it('a fresh browser logs in as alice, reads the history and logs out', async () => {
    const laptop = await web.loadedUser();
    laptop.expectConsoleError(/status of 401 .*@ .*\/api\/auth\/login$/);
    await fillCredentials(laptop.page, a, 'not the right password');
    await laptop.page.getByRole('button', { name: 'Log in', exact: true }).click();
    await laptop.page.getByRole('alert').filter({ hasText: 'Wrong username or password.' }).waitFor({ timeout: 30_000 });

    const timing = await logInViaUi(laptop.page, a, PASSWORD);
    console.log(`log-in in Chromium: Argon2id ${timing.argon2idMs.toFixed(0)} ms, click to chat screen ${timing.uiMs} ms`);
    await openChatViaUi(laptop.page, b);
    await messageItem(laptop.page, b, history[history.length - 1]!).waitFor();
    expect(await messageBodies(laptop.page, b)).toEqual(history);

    await laptop.page.getByRole('button', { name: 'Log out' }).click();
    await laptop.page.getByRole('button', { name: 'Log in', exact: true }).waitFor();
    await laptop.page.reload();
    await laptop.page.getByRole('button', { name: 'Log in', exact: true }).waitFor();
    expect(await laptop.page.getByRole('navigation', { name: 'Conversations' }).count()).toBe(0);
  });

  it('the safety number dialog shows the same 60 digits on both sides', async () => {
    const seenByAlice = await readSafetyNumber(alice.page, b);
    const seenByBob = await readSafetyNumber(bob.page, a);
    expect(seenByAlice.text).toMatch(/^\d{5}( \d{5}){11}$/);
    expect(seenByAlice.text.replace(/ /g, '')).toHaveLength(60);
    expect(seenByBob.text).toBe(seenByAlice.text);
    expect(seenByAlice.qrRects).toBeGreaterThan(20);
    expect(seenByBob.qrRects).toBe(seenByAlice.qrRects);
    await alice.page.getByRole('button', { name: 'Verify safety number' }).click();
    await alice.page.getByRole('dialog', { name: `Safety number with ${b}` }).waitFor();
    expect(await unnamedControls(alice.page)).toEqual([]);
    await alice.page.keyboard.press('Escape');
    await alice.page.getByRole('dialog').waitFor({ state: 'detached' });
  });

  it('dark mode toggles, is remembered, and localStorage holds nothing else', async () => {
    const page = alice.page;
    const toggle = page.getByRole('button', { name: 'Dark mode' });
    const background = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    expect(await toggle.getAttribute('aria-pressed')).toBe('false');
    const light = await background();
    await toggle.click();
    expect(await toggle.getAttribute('aria-pressed')).toBe('true');
    const dark = await background();
    expect(dark).not.toBe(light);
    await page.reload();
    await page.getByRole('navigation', { name: 'Conversations' }).waitFor();
    expect(await page.getByRole('button', { name: 'Dark mode' }).getAttribute('aria-pressed')).toBe('true');
    expect(await background()).toBe(dark);
    expect(await page.evaluate(() => Object.keys(localStorage))).toEqual(['umbra.theme']);
    await page.getByRole('button', { name: 'Dark mode' }).click();
    expect(await background()).toBe(light);

    // Keyboard focus is visible.
    await page.getByRole('heading', { name: 'Umbra' }).click();
    await page.keyboard.press('Tab');
    const focus = await page.evaluate(() => {
      const el = document.activeElement as HTMLElement;
      const style = getComputedStyle(el);
      return { tag: el.tagName, outline: style.outlineStyle, width: parseFloat(style.outlineWidth) };
    });
    expect(focus.tag).toBe('BUTTON');
    expect(focus.outline).not.toBe('none');
    expect(focus.width).toBeGreaterThanOrEqual(2);
  });

  it('on a 375×667 phone screen the list and the chat are separate views and the composer works', async () => {
    const page = alice.page;
    await page.setViewportSize({ width: 375, height: 667 });
    await page.reload();
    const nav = page.getByRole('navigation', { name: 'Conversations' });
    await nav.waitFor();
    await openChatViaUi(page, b);
    expect(await nav.isVisible()).toBe(false);
    const input = page.getByRole('textbox', { name: 'Message' });
    const send = page.getByRole('button', { name: 'Send' });
    for (const box of [await input.boundingBox(), await send.boundingBox()]) {
      expect(box).not.toBeNull();
      expect(box!.x).toBeGreaterThanOrEqual(0);
      expect(box!.y).toBeGreaterThanOrEqual(0);
      expect(box!.x + box!.width).toBeLessThanOrEqual(375);
      expect(box!.y + box!.height).toBeLessThanOrEqual(667);
    }
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
    await input.fill('sent from a phone');
    await send.click();
    history.push('sent from a phone');
    await messageItem(bob.page, a, 'sent from a phone').waitFor();
    expect(await unnamedControls(page)).toEqual([]);
    // The new message shows above the composer.
    const newest = await messageItem(page, b, 'sent from a phone').boundingBox();
    expect(newest).not.toBeNull();
    expect(newest!.y + newest!.height).toBeLessThanOrEqual(667);
    await page.getByRole('button', { name: 'Back to conversations' }).click();
    await nav.waitFor();
    expect(await input.count()).toBe(0);
  });

  it('no page logged an error or a CSP violation', () => {
    expect(users.length).toBe(3);
    for (const u of users) expect(u.problems).toEqual([]);
  });
});
