// When the relay lies, the UI says so: a contact's key swapped on the relay raises the blocking
// key-change warning and pauses sending until it is accepted; a conversation whose signed record
// was tampered with is shown as a problem, with sending off.
import { beforeAll, describe, expect, it } from 'vitest';
import { generateIdentity, initCrypto, publicKeysOf } from '../../shared/index.ts';
import {
  messageItem,
  messageLog,
  openChatViaUi,
  readSafetyNumber,
  sendViaUi,
  startChatViaUi,
  webRelay,
  type UserPage,
} from '../helpers/browser.ts';
import { PASSWORD, uniqueName } from '../helpers/relay.ts';

interface KeyRow {
  identity_key: Buffer;
  x25519_key: Buffer;
  x25519_sig: Buffer;
}

const web = webRelay();
let alice: UserPage;
let bob: UserPage;
const a = uniqueName('alice');
const b = uniqueName('bob');
let bobsOriginalKeys: KeyRow;

beforeAll(() => initCrypto());

function keysOf(username: string): KeyRow {
  return web.relay.db.sqlite.prepare('SELECT identity_key, x25519_key, x25519_sig FROM users WHERE username = ?').get(username) as KeyRow;
}

function setKeys(username: string, k: KeyRow): void {
  web.relay.db.sqlite
    .prepare('UPDATE users SET identity_key = ?, x25519_key = ?, x25519_sig = ? WHERE username = ?')
    .run(k.identity_key, k.x25519_key, k.x25519_sig, username);
}

describe('the UI when the relay lies', { timeout: 60_000 }, () => {
  it('a swapped key blocks sending behind a warning until the new key is accepted', async () => {
    alice = await web.signedUpUser(a, PASSWORD);
    bob = await web.signedUpUser(b, PASSWORD);
    await startChatViaUi(alice.page, b);
    await sendViaUi(alice.page, b, 'before the change');
    await openChatViaUi(bob.page, a);
    await messageItem(bob.page, a, 'before the change').waitFor();
    const oldNumber = (await readSafetyNumber(alice.page, b)).text;

    // The relay starts serving a different (validly self-signed) key for bob.
    bobsOriginalKeys = keysOf(b);
    const fresh = publicKeysOf(generateIdentity(), b);
    setKeys(b, { identity_key: Buffer.from(fresh.identityKey), x25519_key: Buffer.from(fresh.x25519Key), x25519_sig: Buffer.from(fresh.x25519Sig) });

    const page = alice.page;
    const input = page.getByRole('textbox', { name: 'Message' });
    await input.fill('after the change');
    await input.press('Enter');
    const warning = page.getByRole('alertdialog', { name: `${b}'s security key has changed` });
    await warning.waitFor();
    expect(await warning.getAttribute('aria-modal')).toBe('true');
    expect(await warning.innerText()).toContain('pretending to be');
    const newNumber = (await warning.getByRole('group', { name: `New safety number with ${b}` }).innerText()).trim();
    expect(newNumber).toMatch(/^\d{5}( \d{5}){11}$/);
    expect(newNumber).not.toBe(oldNumber);

    // "Not now" puts the warning off, but sending stays paused and the composer says why.
    await warning.getByRole('button', { name: 'Not now' }).click();
    await warning.waitFor({ state: 'detached' });
    expect(await input.isDisabled()).toBe(true);
    expect(await input.inputValue()).toBe('after the change');
    await page.getByText(`${b}'s security key has changed. Sending is paused until you verify the new key.`).waitFor();
    expect(await messageItem(page, b, 'after the change').count()).toBe(0);

    // The warning comes back on request; Escape puts it off again.
    await page.getByRole('button', { name: 'Review the key change' }).click();
    await warning.waitFor();
    await page.keyboard.press('Escape');
    await warning.waitFor({ state: 'detached' });
    expect(await input.isDisabled()).toBe(true);

    await page.getByRole('button', { name: 'Review the key change' }).click();
    await warning.getByRole('button', { name: 'I verified the new key' }).click();
    await warning.waitFor({ state: 'detached' });
    expect(await input.isDisabled()).toBe(false);
    await input.press('Enter');
    await messageItem(bob.page, a, 'after the change').waitFor();
    expect((await readSafetyNumber(page, b)).text).toBe(newNumber);
    expect(alice.problems).toEqual([]);
    await alice.context.close();
  });

  it('a conversation whose signed record was tampered with shows the problem and cannot send', async () => {
    // Bob's own keys are his again (his client refuses to start otherwise); then one bit of the
    // conversation's signed genesis is flipped on the relay.
    setKeys(b, bobsOriginalKeys);
    const sqlite = web.relay.db.sqlite;
    const conv = sqlite.prepare('SELECT id, genesis_sig FROM conversations').get() as { id: string; genesis_sig: Buffer };
    const forged = Buffer.from(conv.genesis_sig);
    forged[0]! ^= 1;
    sqlite.prepare('UPDATE conversations SET genesis_sig = ? WHERE id = ?').run(forged, conv.id);

    const page = bob.page;
    await page.reload();
    const entry = page.getByRole('navigation', { name: 'Conversations' }).getByRole('button', { name: a });
    await entry.filter({ hasText: 'Failed its security check' }).waitFor();
    await entry.click();
    await page.getByRole('alert').filter({ hasText: "This conversation can't be shown safely" }).waitFor();
    expect(await messageLog(page, a).count()).toBe(0);
    expect(await page.getByText('before the change').count()).toBe(0);
    expect(await page.getByRole('textbox', { name: 'Message' }).isDisabled()).toBe(true);
    await page.getByText('This conversation failed its security check, so sending is turned off.').waitFor();
    expect(bob.problems).toEqual([]);
  });
});
