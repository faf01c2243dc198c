// The sign-up and log-in form in plain words: its rules, and a sentence for each way it can fail
// (bad username, weak or common password, taken name, wrong password, throttling, no server).
import type { Page } from 'playwright-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { fillCredentials, webRelay, type UserPage } from '../helpers/browser.ts';
import { PASSWORD, uniqueName } from '../helpers/relay.ts';

const web = webRelay({ throttle: { accountFailures: 2, windowMs: 90_000 } });
let user: UserPage;
const taken = uniqueName('bob');

beforeAll(async () => {
  const sdk = web.relay.client();
  await sdk.signUp(taken, PASSWORD);
  sdk.disconnect();
  user = await web.loadedUser();
});

/** On a freshly loaded form, submits once and returns the sentence of the alert it ends with. */
async function submitFor(page: Page, button: 'Sign up' | 'Log in', username: string, password: string): Promise<string> {
  await page.reload();
  if (button === 'Sign up') await page.getByRole('button', { name: 'Create an account' }).click();
  await fillCredentials(page, username, password);
  await page.getByRole('button', { name: button, exact: true }).click();
  const alert = page.getByRole('alert');
  await alert.waitFor({ timeout: 30_000 });
  return (await alert.innerText()).trim();
}

describe('sign-up and log-in errors in words', { timeout: 60_000 }, () => {
  it('the sign-up form states its rules', async () => {
    const page = user.page;
    await page.getByRole('button', { name: 'Create an account' }).click();
    await page.getByRole('heading', { name: 'Create your account' }).waitFor();
    const described = await page.getByLabel('Password', { exact: true }).getAttribute('aria-describedby');
    const rules = await page.locator(`#${described}`).innerText();
    expect(rules).toContain('At least 8 characters');
    expect(rules).toContain('Long passphrases are welcome');
    expect(rules).toContain('most common passwords are refused');
  });

  it('refuses bad usernames and weak or common passwords before anything is sent', async () => {
    const page = user.page;
    const before = web.relay.logs.length;
    expect(await submitFor(page, 'Sign up', 'Not Valid!', PASSWORD)).toMatch(/^Usernames are 3 to 32 characters/);
    expect(await submitFor(page, 'Sign up', uniqueName('carol'), 'short')).toBe('Use at least 8 characters.');
    expect(await submitFor(page, 'Sign up', uniqueName('carol'), 'password')).toBe('That password is one of the most common ones; choose another.');
    expect(web.relay.logs.slice(before).filter((l) => l.includes('/api/'))).toEqual([]);
  });

  it('says when the username is taken', async () => {
    user.expectConsoleError(/status of 409 .*@ .*\/api\/auth\/signup$/);
    expect(await submitFor(user.page, 'Sign up', taken, `${PASSWORD} but different`)).toBe('That username is already taken. Choose another one.');
  });

  it('says "wrong username or password", then how long to wait when throttled', async () => {
    const page = user.page;
    user.expectConsoleError(/status of 401 .*@ .*\/api\/auth\/login$/);
    user.expectConsoleError(/status of 429 .*@ .*\/api\/auth\/login$/);
    expect(await submitFor(page, 'Log in', taken, 'not the password 1')).toBe('Wrong username or password.');
    expect(await submitFor(page, 'Log in', taken, 'not the password 2')).toBe('Wrong username or password.');
    const throttled = await submitFor(page, 'Log in', taken, 'not the password 3');
    const seconds = Number(/^Too many attempts\. Try again in (\d+) seconds\.$/.exec(throttled)?.[1]);
    expect(seconds).toBeGreaterThan(60);
    expect(seconds).toBeLessThanOrEqual(90);
  });

  it("says it can't reach the server when the relay is gone", async () => {
    await web.relay.stop();
    user.expectConsoleError(/net::ERR_CONNECTION_REFUSED .*@ .*\/api\/auth\/salt$/);
    const page = user.page;
    await fillCredentials(page, taken, PASSWORD);
    await page.getByRole('button', { name: 'Log in', exact: true }).click();
    await page.getByRole('alert').filter({ hasText: "Can't reach the server. Check your connection and try again." }).waitFor();
    expect(user.problems).toEqual([]);
  });
});
