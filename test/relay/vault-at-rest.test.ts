// The stored vault is sealed again under the relay secret: the database file alone holds nothing a
// password guess can be checked against, and the secret can live outside the data folder.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { fromB64 } from '../../shared/index.ts';
import { openVaultAtRest } from '../../server/vault-at-rest.ts';
import { PASSWORD, api, dataFilesContain, queryDb, startTestRelay, uniqueName, type TestRelay } from '../helpers/relay.ts';

let relay: TestRelay;
const secretDir = fs.mkdtempSync(path.join(os.tmpdir(), 'umbra-secret-'));
const secretFile = path.join(secretDir, 'relay-secret');

beforeAll(async () => {
  relay = await startTestRelay({ secretFile });
});
afterAll(async () => {
  await relay.stop();
  fs.rmSync(secretDir, { recursive: true, force: true });
});

it('keeps the secret where it is told and the client-sealed vault out of the database files', async () => {
  const name = uniqueName('vault');
  const client = relay.client();
  await client.signUp(name, PASSWORD);
  const me = await api(relay, 'GET', '/api/me', { cookie: client.http.cookieHeader() });
  expect(me.status).toBe(200);
  const clientVault = fromB64(me.json.vault as string);
  expect(clientVault.length).toBeGreaterThan(64);

  expect(fs.existsSync(secretFile)).toBe(true);
  expect(fs.existsSync(path.join(relay.dataDir, 'relay-secret'))).toBe(false);

  relay.db.sqlite.pragma('wal_checkpoint(TRUNCATE)');
  const [row] = queryDb<{ vault: Buffer }>(relay, 'SELECT vault FROM users WHERE username = ?', name);
  expect(Buffer.from(row!.vault).equals(Buffer.from(clientVault))).toBe(false);
  expect(dataFilesContain(relay, clientVault.subarray(24, 88))).toBe(false);

  const secret = fs.readFileSync(secretFile);
  expect(openVaultAtRest(secret, name, row!.vault).equals(Buffer.from(clientVault))).toBe(true);
  expect(() => openVaultAtRest(Buffer.alloc(32, 7), name, row!.vault)).toThrow(/relay secret/);
  expect(() => openVaultAtRest(secret, `${name}x`, row!.vault)).toThrow();
  client.disconnect();
});

it('serves the same vault after a vault update, sealed afresh', async () => {
  const name = uniqueName('vault');
  const alice = relay.client();
  const bob = relay.client();
  await alice.signUp(name, PASSWORD);
  await bob.signUp(uniqueName('peer'), PASSWORD);
  const before = queryDb<{ vault: Buffer; vault_version: number }>(relay, 'SELECT vault, vault_version FROM users WHERE username = ?', name)[0]!;
  await alice.startConversation(bob.me.value!); // pins bob: the vault is rewritten
  const after = queryDb<{ vault: Buffer; vault_version: number }>(relay, 'SELECT vault, vault_version FROM users WHERE username = ?', name)[0]!;
  expect(after.vault_version).toBe(before.vault_version + 1);
  const laptop = relay.client();
  await laptop.logIn(name, PASSWORD);
  expect(laptop.directory.pinned(bob.me.value!)).toEqual(bob.identityKey);
  for (const c of [alice, bob, laptop]) c.disconnect();
});

it('refuses to start on a database with accounts when the secret is missing', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'umbra-nosecret-'));
  const first = await startTestRelay({ dataDir: dir });
  const c = first.client();
  await c.signUp(uniqueName('kept'), PASSWORD);
  c.disconnect();
  await first.stop();
  fs.rmSync(path.join(dir, 'relay-secret'));
  await expect(startTestRelay({ dataDir: dir })).rejects.toThrow(/relay secret .* is missing but the database has accounts/);
  expect(fs.existsSync(path.join(dir, 'relay-secret'))).toBe(false);
  fs.rmSync(dir, { recursive: true, force: true });
});
