// Real Chromium (Debian's, never a downloaded one) driving the built web client on a test relay:
// a relay and browser per test file, isolated profiles per user, collected console errors and CSP
// violations, and UI steps.
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type ConsoleMessage, type Page } from 'playwright-core';
import { afterAll, beforeAll } from 'vitest';
import type { ConfigOverrides } from '../../server/config.ts';
import { startTestRelay, type TestRelay } from './relay.ts';

const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS });
}

export interface UserPage {
  context: BrowserContext;
  page: Page;
  /** Console errors, uncaught page errors and CSP violations not declared expected. */
  problems: string[];
  /** Declares console errors the test provokes on purpose (e.g. the 404 of an unknown user). */
  expectConsoleError(pattern: RegExp): void;
  /** Every text a role=status element showed, in order (recorded in the page as it changes). */
  statusLog(): Promise<string[]>;
}

export interface UserOptions {
  viewport?: { width: number; height: number };
  colorScheme?: 'light' | 'dark';
}

/** Records CSP violations as console errors and every role=status text, from before any page script. */
const PAGE_PROBES = `
  document.addEventListener('securitypolicyviolation', (e) => {
    console.error('CSP violation: ' + e.violatedDirective + ' blocked ' + e.blockedURI + ' at ' + e.sourceFile + ':' + e.lineNumber + ':' + e.columnNumber);
  });
  window.__statusLog = [];
  new MutationObserver(() => {
    for (const el of document.querySelectorAll('[role="status"]')) {
      const text = (el.textContent || '').trim();
      if (text && window.__statusLog[window.__statusLog.length - 1] !== text) window.__statusLog.push(text);
    }
  }).observe(document, { subtree: true, childList: true, characterData: true });
`;

/** A fresh browser profile (its own cookies, IndexedDB and localStorage) with one page. */
export async function openUser(browser: Browser, options: UserOptions = {}): Promise<UserPage> {
  const context = await browser.newContext({
    viewport: options.viewport ?? { width: 1200, height: 800 },
    colorScheme: options.colorScheme ?? 'light',
  });
  await context.addInitScript(PAGE_PROBES);
  const page = await context.newPage();
  const problems: string[] = [];
  const expected: RegExp[] = [];
  page.on('console', (msg: ConsoleMessage) => {
    if (msg.type() !== 'error') return;
    const line = `${msg.text()} @ ${msg.location().url}`;
    if (!expected.some((re) => re.test(line))) problems.push(`console: ${line}`);
  });
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  return {
    context,
    page,
    problems,
    expectConsoleError: (pattern) => expected.push(pattern),
    statusLog: () => page.evaluate(() => (window as unknown as { __statusLog: string[] }).__statusLog.slice()),
  };
}

export interface SignInTiming {
  /** From the click on the submit button until the conversation list shows. */
  uiMs: number;
  /** Argon2id alone, from the page's User Timing measure. */
  argon2idMs: number;
}

/** Signs up through the form; resolves when the chat screen is shown. */
export async function signUpViaUi(page: Page, username: string, password: string): Promise<SignInTiming> {
  await page.getByRole('button', { name: 'Create an account' }).click();
  return submitCredentials(page, 'Sign up', username, password);
}

/** Logs in through the form; resolves when the chat screen is shown. */
export async function logInViaUi(page: Page, username: string, password: string): Promise<SignInTiming> {
  return submitCredentials(page, 'Log in', username, password);
}

/** Fills the form and submits without waiting for the outcome. */
export async function fillCredentials(page: Page, username: string, password: string): Promise<void> {
  await page.getByLabel('Username', { exact: true }).fill(username);
  await page.getByLabel('Password', { exact: true }).fill(password);
}

async function submitCredentials(page: Page, button: string, username: string, password: string): Promise<SignInTiming> {
  await fillCredentials(page, username, password);
  const started = Date.now();
  await page.getByRole('button', { name: button, exact: true }).click();
  await page.getByRole('navigation', { name: 'Conversations' }).waitFor({ timeout: 30_000 });
  const uiMs = Date.now() - started;
  // KDF_MEASURE in client/web/models/session.ts.
  const argon2idMs = await page.evaluate(() => performance.getEntriesByName('umbra:argon2id').at(-1)?.duration ?? Number.NaN);
  return { uiMs, argon2idMs };
}

/** Opens (or creates) the conversation with `peer` through the "Start a chat" form. */
export async function startChatViaUi(page: Page, peer: string): Promise<void> {
  await page.getByLabel('Username to chat with').fill(peer);
  await page.getByRole('button', { name: 'Start chat' }).click();
  await page.getByRole('heading', { name: peer, exact: true }).waitFor();
}

/** Opens an existing conversation from the list. */
export async function openChatViaUi(page: Page, peer: string): Promise<void> {
  await page.getByRole('navigation', { name: 'Conversations' }).getByRole('button', { name: peer }).click();
  await page.getByRole('heading', { name: peer, exact: true }).waitFor();
}

/** Types into the composer and presses Enter; resolves when the relay acknowledged it. */
export async function sendViaUi(page: Page, peer: string, text: string): Promise<void> {
  const input = page.getByRole('textbox', { name: 'Message' });
  await input.fill(text);
  await input.press('Enter');
  await sentMessage(page, peer, text).waitFor();
}

/** The message list of the open conversation with `peer`. */
export function messageLog(page: Page, peer: string) {
  return page.getByRole('log', { name: `Messages with ${peer}` });
}

/** A message with exactly this text, in the open conversation. */
export function messageItem(page: Page, peer: string, text: string) {
  return messageLog(page, peer)
    .getByRole('listitem')
    .filter({ has: page.getByText(text, { exact: true }) });
}

/** One of my messages that the relay acknowledged (no "sending…" left on it). */
function sentMessage(page: Page, peer: string, text: string) {
  return messageItem(page, peer, text).filter({ hasNotText: 'sending…' }).filter({ hasNotText: 'failed' });
}

/** The bodies of all messages in the open conversation, in display order. */
export async function messageBodies(page: Page, peer: string): Promise<string[]> {
  return messageLog(page, peer).locator('.message-body').allInnerTexts();
}

/** Reads the 60 digits of the open safety number dialog and closes it. */
export async function readSafetyNumber(page: Page, peer: string): Promise<{ text: string; qrLabel: string | null; qrRects: number }> {
  await page.getByRole('button', { name: 'Verify safety number' }).click();
  const dialog = page.getByRole('dialog', { name: `Safety number with ${peer}` });
  await dialog.waitFor();
  const text = (await dialog.getByRole('group', { name: `Safety number with ${peer}` }).innerText()).trim();
  const qr = dialog.getByRole('img', { name: `QR code of your safety number with ${peer}` });
  const qrLabel = await qr.getAttribute('aria-label');
  const qrRects = await qr.locator('rect').count();
  await dialog.getByRole('button', { name: 'Close' }).click();
  await dialog.waitFor({ state: 'detached' });
  return { text, qrLabel, qrRects };
}

/** Lines of the page's accessibility tree for controls that have no accessible name. */
export async function unnamedControls(page: Page): Promise<string[]> {
  const tree = await page.locator('body').ariaSnapshot();
  return tree.split('\n').filter((line) => /^\s*- (button|textbox|link|img|checkbox|combobox|dialog|alertdialog|group)(?: \[[^\]]*\])?:?$/.test(line));
}

export interface LoadOptions extends UserOptions {
  /** Runs on the new profile before the web client loads (e.g. to start recording its traffic). */
  beforeLoad?: (user: UserPage) => void;
}

/** A fresh profile showing the web client of the relay at `url`, its log-in form ready. */
export async function loadedUser(browser: Browser, url: string, options: LoadOptions = {}): Promise<UserPage> {
  const user = await openUser(browser, options);
  options.beforeLoad?.(user);
  await user.page.goto(url);
  await user.page.getByRole('button', { name: 'Log in', exact: true }).waitFor();
  return user;
}

/** A fresh profile on the relay at `url`, signed up through the form as `username`. */
export async function signedUpUser(browser: Browser, url: string, username: string, password: string, options?: LoadOptions): Promise<UserPage> {
  const user = await loadedUser(browser, url, options);
  await signUpViaUi(user.page, username, password);
  return user;
}

/** A test relay serving the built web client, and Chromium, shared by one test file's tests. */
export interface WebRelay {
  /** Started in `beforeAll`; stopped (its data directory removed) in `afterAll`. */
  readonly relay: TestRelay;
  readonly browser: Browser;
  /** Every profile opened through `loadedUser` or `signedUpUser` below, in order. */
  readonly users: UserPage[];
  /** A fresh profile with the web client loaded and its log-in form ready. */
  loadedUser(options?: LoadOptions): Promise<UserPage>;
  /** A fresh profile signed up through the form as `username`. */
  signedUpUser(username: string, password: string, options?: LoadOptions): Promise<UserPage>;
}

/**
 * Starts a relay serving dist/web (with `overrides`) and launches Chromium before the file's tests,
 * and closes both after them. Call it at the top of a test file.
 */
export function webRelay(overrides: ConfigOverrides = {}): WebRelay {
  let relay: TestRelay | undefined;
  let browser: Browser | undefined;
  const users: UserPage[] = [];
  beforeAll(async () => {
    relay = await startTestRelay({ webDir: path.resolve('dist/web'), ...overrides });
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await relay?.stop();
  });
  const started = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('the relay and the browser start in beforeAll');
    return value;
  };
  const track = (user: UserPage) => {
    users.push(user);
    return user;
  };
  return {
    get relay() {
      return started(relay);
    },
    get browser() {
      return started(browser);
    },
    users,
    loadedUser: async (options) => track(await loadedUser(started(browser), started(relay).url, options)),
    signedUpUser: async (username, password, options) => track(await signedUpUser(started(browser), started(relay).url, username, password, options)),
  };
}

// ---- rooms ----

/** Fills and submits the "Create a room" form, without waiting for the outcome. */
export async function submitNewRoomViaUi(page: Page, name: string, topic: string, policy: 'Open' | 'Private'): Promise<void> {
  const form = page.getByRole('form', { name: 'Create a room' });
  await form.getByLabel('Room name').fill(name);
  await form.getByLabel('Topic (optional)').fill(topic);
  await form.getByRole('radio', { name: policy, exact: true }).check();
  await form.getByRole('button', { name: 'Create room' }).click();
}

/** Creates a room through the "Create a room" form; resolves when it is open. */
export async function createRoomViaUi(page: Page, name: string, topic: string, policy: 'Open' | 'Private'): Promise<void> {
  await submitNewRoomViaUi(page, name, topic, policy);
  await page.getByRole('heading', { name, exact: true }).waitFor();
}

/** Asks to join the room with this name through the "Join a room" form, without waiting for the outcome. */
export async function joinRoomViaUi(page: Page, name: string): Promise<void> {
  const form = page.getByRole('form', { name: 'Join a room' });
  await form.getByLabel('Room name').fill(name);
  await form.getByRole('button', { name: 'Join', exact: true }).click();
}

/** The entry for a room in the list of rooms. */
export function roomEntry(page: Page, room: string) {
  return page.getByRole('navigation', { name: 'Rooms' }).getByRole('button', { name: room });
}

/** Opens a room from the list. */
export async function openRoomViaUi(page: Page, room: string): Promise<void> {
  await roomEntry(page, room).click();
  await page.getByRole('heading', { name: room, exact: true }).waitFor();
}

/** The message list of the open room. */
export function roomLog(page: Page, room: string) {
  return page.getByRole('log', { name: `Messages in ${room}` });
}

/** A message with exactly this text, in the open room. */
export function roomMessage(page: Page, room: string, text: string) {
  return roomLog(page, room).getByRole('listitem').filter({ has: page.getByText(text, { exact: true }) });
}

/** Types into the composer of the open room and presses Enter; resolves when the relay acknowledged it. */
export async function sendInRoomViaUi(page: Page, room: string, text: string): Promise<void> {
  const input = page.getByRole('textbox', { name: 'Message' });
  await input.fill(text);
  await input.press('Enter');
  await roomMessage(page, room, text).filter({ hasNotText: 'sending…' }).filter({ hasNotText: 'failed' }).waitFor();
}

/** The bodies of all messages in the open room, in display order. */
export async function roomBodies(page: Page, room: string): Promise<string[]> {
  return roomLog(page, room).locator('.message-body').allInnerTexts();
}

/** Opens the members panel of the open room. */
export async function openMembersViaUi(page: Page, room: string) {
  await page.getByRole('button', { name: 'Members', exact: true }).click();
  const dialog = page.getByRole('dialog', { name: `Members of ${room}` });
  await dialog.waitFor();
  return dialog;
}

export async function closeMembersViaUi(page: Page): Promise<void> {
  await page.getByRole('dialog').getByRole('button', { name: 'Close' }).click();
  await page.getByRole('dialog').waitFor({ state: 'detached' });
}

/** A role=status element showing this text. */
export function statusWith(page: Page, text: string) {
  return page.getByRole('status').filter({ hasText: text });
}
