// The auditor's CLI over a real relay's data folder: clean after a real conversation and room whose
// canaries exist only as ciphertext, and failing, with the right finding, on planted plaintext, an
// expired row, a canary in the write-ahead log and an unclassified column. It never writes a byte.
import Database from 'better-sqlite3';
import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UmbraClient } from '../../client/sdk/index.ts';
import { runAudit, type AuditRun } from '../../server/audit/cli.ts';
import type { Finding } from '../../server/audit/findings.ts';
import type { AuditReport } from '../../server/audit/report.ts';
import { DB_FILE } from '../../server/db.ts';
import { PASSWORD, startTestRelay, uniqueName, waitFor, type TestRelay } from '../helpers/relay.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CANARY = `canary-${crypto.randomBytes(8).toString('hex')}`;
const ROOM_CANARY = `lantern ${crypto.randomBytes(6).toString('hex')}`;
const canaryArgs = ['--canary', CANARY, '--canary', ROOM_CANARY];

const scratch: string[] = [];
let relay: TestRelay;
let dataDir: string;
let running = true;
const clients: UmbraClient[] = [];

function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  scratch.push(dir);
  return dir;
}

async function audit(dir: string, ...extra: string[]): Promise<{ run: AuditRun; report: AuditReport }> {
  const run = await runAudit(['--data', dir, '--json', ...canaryArgs, ...extra]);
  expect(run.stderr).toBe('');
  return { run, report: JSON.parse(run.stdout) as AuditReport };
}

const errors = (r: AuditReport): Finding[] => r.findings.filter((f) => f.severity === 'error');

/** Every file under `dir` with the SHA-256 of its bytes. */
function fingerprint(dir: string, skip: (file: string) => boolean = () => false): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const rel = path.relative(dir, path.join(entry.parentPath, entry.name));
    if (!skip(rel)) out[rel] = crypto.createHash('sha256').update(fs.readFileSync(path.join(dir, rel))).digest('hex');
  }
  return out;
}

/** A copy of the stopped relay's data folder, changed through a read-write connection of its own. */
function plant(change: (db: Database.Database) => void): string {
  const dir = tempDir('umbra-audit-planted-');
  fs.cpSync(dataDir, dir, { recursive: true });
  const db = new Database(path.join(dir, DB_FILE));
  try {
    change(db);
  } finally {
    db.close();
  }
  return dir;
}

/** Inserts an envelope copied from a real one, with `changes` applied; returns its primary key in words. */
function insertEnvelope(db: Database.Database, changes: Record<string, unknown>): string {
  const row = db.prepare('SELECT * FROM envelopes ORDER BY seq LIMIT 1').get() as Record<string, unknown>;
  const { next } = db.prepare('SELECT max(seq) + 1 AS next FROM envelopes WHERE conv_id = ?').get(row.conv_id) as { next: number };
  const values = { ...row, seq: next, client_msg_id: crypto.randomBytes(16).toString('base64url'), ...changes };
  const cols = Object.keys(values);
  db.prepare(`INSERT INTO envelopes (${cols.join(', ')}) VALUES (${cols.map((c) => `@${c}`).join(', ')})`).run(values);
  return `conv_id=${String(row.conv_id)}, seq=${next}`;
}

beforeAll(async () => {
  dataDir = tempDir('umbra-audit-');
  relay = await startTestRelay({ dataDir });
  const alice = relay.client();
  const bob = relay.client();
  clients.push(alice, bob);
  const [a, b] = [uniqueName('alice'), uniqueName('bob')];
  await alice.signUp(a, PASSWORD);
  await bob.signUp(b, PASSWORD);

  const conv = await alice.startConversation(b);
  await alice.sendText(conv.id, `the code word is ${CANARY}, keep it quiet`);
  await waitFor(() => bob.conversation(conv.id)?.messages.value.length === 1, 5000, 'bob receives');
  await bob.sendText(conv.id, `got it: ${CANARY}`);
  await waitFor(() => conv.messages.value.length === 2, 5000, 'alice receives');

  const room = await alice.createRoom(ROOM_CANARY, { topic: `topic ${CANARY}`, policy: 'open' });
  const joined = await bob.joinRoom(ROOM_CANARY);
  await waitFor(() => joined.state.value === 'member', 5000, 'bob admitted');
  await joined.sendText(`room message ${CANARY}`);
  await waitFor(() => room.messages.value.length === 1, 5000, 'alice reads the room');
  // A private room, where bob's request waits for approval (a join_requests row).
  await alice.createRoom(`${ROOM_CANARY} annex`, { policy: 'private' });
  const waiting = await bob.joinRoom(`${ROOM_CANARY} annex`);
  expect(waiting.state.value).toBe('waiting-for-approval');
  expect([alice.stats.count(), bob.stats.count()]).toEqual([0, 0]);
});

afterAll(async () => {
  for (const c of clients) c.disconnect();
  if (running) await relay.stop();
  for (const dir of scratch) fs.rmSync(dir, { recursive: true, force: true });
});

describe('a real relay’s data folder', () => {
  it('passes while the relay is running, reading through the WAL, with no canary found', async () => {
    const { run, report } = await audit(dataDir);
    expect(errors(report)).toEqual([]);
    expect(run.exitCode).toBe(0);
    expect(report.access).toBe('wal');
    expect(report.files.map((f) => f.file)).toEqual(expect.arrayContaining([DB_FILE, `${DB_FILE}-wal`, `${DB_FILE}-shm`]));
  });

  it('passes after the relay stopped, with every table and column classified and counted', async () => {
    for (const c of clients) c.disconnect();
    await relay.stop();
    running = false;
    expect(fs.existsSync(path.join(dataDir, `${DB_FILE}-wal`))).toBe(false);

    const { run, report } = await audit(dataDir);
    expect(report.findings).toEqual([]);
    expect([run.exitCode, report.ok, report.access, report.canaries]).toEqual([0, true, 'file', 2]);
    expect(report.excluded).toEqual(['relay-secret']);

    const table = (name: string) => report.tables.find((t) => t.name === name)!;
    const column = (t: string, c: string) => table(t).columns.find((col) => col.name === c)!;
    expect(report.tables.every((t) => t.columns.every((c) => c.class !== null))).toBe(true);
    const rows = ['users', 'conversations', 'envelopes', 'statements', 'join_requests'].map((t) => table(t).rows);
    expect(rows).toEqual([2, 3, 3, 3, 1]);
    expect(column('envelopes', 'ct')).toMatchObject({ class: 'ciphertext', label: 'ciphertext' });
    expect(column('envelopes', 'ct').bytes).toBeGreaterThan(3 * 40);
    expect(column('users', 'vault').class).toBe('ciphertext');
    expect(column('users', 'auth_hash').label).toBe('secret-derived verifier');
    expect(column('conversations', 'genesis').class).toBe('signed-statement');
    expect(column('conversations', 'meta_sealed')).toMatchObject({ class: 'ciphertext', nulls: 1 });
    expect(column('join_requests', 'request').class).toBe('signed-statement');
    expect(column('wrapped_keys', 'wrapped').bytes).toBe(104 * table('wrapped_keys').rows);

    const text = await runAudit(['--data', dataDir, ...canaryArgs]);
    expect(text.exitCode).toBe(0);
    expect(text.stdout).toMatch(/^envelopes: 3 rows$/m);
    expect(text.stdout).toMatch(/^ {2}ct +ciphertext +\d/m);
    expect(text.stdout).toContain('No findings.');
  });

  it('leaves the data folder byte for byte as it was, with or without a WAL', async () => {
    const before = fingerprint(dataDir);
    const listing = fs.readdirSync(dataDir).sort();
    await audit(dataDir);
    expect(fs.readdirSync(dataDir).sort()).toEqual(listing);
    expect(fingerprint(dataDir)).toEqual(before);

    // A writer holding the WAL open: the database file and the WAL are untouched by the audit.
    const dir = plant(() => {});
    const writer = new Database(path.join(dir, DB_FILE));
    try {
      writer.pragma('wal_autocheckpoint = 0');
      insertEnvelope(writer, { ct: crypto.randomBytes(90) });
      const shm = (f: string) => f.endsWith('-shm');
      const withWal = fingerprint(dir, shm);
      expect(Object.keys(withWal)).toContain(`${DB_FILE}-wal`);
      const { report } = await audit(dir);
      expect([report.access, errors(report)]).toEqual(['wal', []]);
      expect(fingerprint(dir, shm)).toEqual(withWal);
    } finally {
      writer.close();
    }
  });

  it('fails on an envelope whose ciphertext is readable text', async () => {
    const plaintext = Buffer.from('{"kind":"text","body":"meet me at the old mill at nine, bring the documents"}');
    let key = '';
    const dir = plant((db) => (key = insertEnvelope(db, { ct: plaintext })));
    const { run, report } = await audit(dir);
    expect(run.exitCode).toBe(1);
    expect(report.ok).toBe(false);
    const at = { severity: 'error', table: 'envelopes', column: 'ct', key };
    expect(report.findings).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ ...at, check: 'ciphertext-text', message: expect.stringContaining('meet me at the old mill') }),
        expect.objectContaining({ ...at, check: 'ciphertext-entropy' }),
      ]),
    );
    expect(errors(report).every((f) => f.key === key)).toBe(true);
  });

  it('fails on two ciphertexts sharing a nonce', async () => {
    let key = '';
    const dir = plant((db) => {
      const { ct } = db.prepare('SELECT ct FROM envelopes ORDER BY seq LIMIT 1').get() as { ct: Buffer };
      key = insertEnvelope(db, { ct: Buffer.concat([ct.subarray(0, 24), crypto.randomBytes(60)]) });
    });
    const { report } = await audit(dir);
    expect(errors(report)).toEqual([
      expect.objectContaining({ check: 'nonce-reuse', table: 'envelopes', column: 'ct', key, message: expect.stringMatching(/^same 24-byte nonce as \[conv_id=.*, seq=1\]$/) }),
    ]);
  });

  it('fails on an envelope kept past its expiry, and only warns within the sweep’s grace', async () => {
    let expired = '';
    let recent = '';
    const dir = plant((db) => {
      expired = insertEnvelope(db, { ct: crypto.randomBytes(120), expires_at: Date.now() - 3_600_000 });
      recent = insertEnvelope(db, { ct: crypto.randomBytes(120), expires_at: Date.now() - 1_000 });
    });
    const { run, report } = await audit(dir);
    expect(run.exitCode).toBe(1);
    expect(errors(report)).toEqual([expect.objectContaining({ check: 'expiry', table: 'envelopes', column: 'expires_at', key: expired })]);
    expect(errors(report)[0]!.message).toMatch(/^kept 60 min past its expiry/);
    expect(report.findings).toContainEqual(expect.objectContaining({ severity: 'warning', check: 'expiry', key: recent }));
  });

  it('finds a canary sitting in the WAL and names the -wal file', async () => {
    const dir = plant(() => {});
    const writer = new Database(path.join(dir, DB_FILE));
    try {
      writer.pragma('journal_mode = WAL');
      writer.pragma('wal_autocheckpoint = 0');
      insertEnvelope(writer, { ct: Buffer.concat([crypto.randomBytes(40), Buffer.from(CANARY), crypto.randomBytes(40)]) });
      const wal = fs.readFileSync(path.join(dir, `${DB_FILE}-wal`));
      expect(wal.includes(Buffer.from(CANARY))).toBe(true);
      expect(fs.readFileSync(path.join(dir, DB_FILE)).includes(Buffer.from(CANARY))).toBe(false);

      const { run, report } = await audit(dir);
      expect(run.exitCode).toBe(1);
      const hits = report.findings.filter((f) => f.check === 'canary');
      expect(hits).toEqual([expect.objectContaining({ severity: 'error', file: `${DB_FILE}-wal`, offset: wal.indexOf(Buffer.from(CANARY)) })]);
      expect(hits[0]!.message).toBe(`canary ${JSON.stringify(CANARY)} found as utf-8`);
    } finally {
      writer.close();
    }
  });

  it('finds a canary in any encoding in any file of the folder, but never reads the relay secret', async () => {
    const dir = plant(() => {});
    fs.mkdirSync(path.join(dir, 'blobs'));
    const inner = Buffer.concat([crypto.randomBytes(7), Buffer.from(ROOM_CANARY), crypto.randomBytes(5)]);
    fs.writeFileSync(path.join(dir, 'blobs', 'upload.json'), JSON.stringify({ data: inner.toString('base64url') }));
    fs.writeFileSync(path.join(dir, 'notes.txt'), Buffer.concat([Buffer.from('log: '), Buffer.from(CANARY, 'utf16le')]));
    fs.writeFileSync(path.join(dir, 'relay-secret'), Buffer.from(CANARY.padEnd(32, '!')));
    const { report } = await audit(dir);
    const hits = report.findings.filter((f) => f.check === 'canary').map((f) => [f.file, f.message]);
    expect(hits).toEqual([
      ['blobs/upload.json', `canary ${JSON.stringify(ROOM_CANARY)} found as base64/base64url`],
      ['notes.txt', `canary ${JSON.stringify(CANARY)} found as utf-16le`],
    ]);
    expect(report.excluded).toEqual(['relay-secret']);
  });

  it('fails on a column nobody classified (schema drift) and on a text column carrying free text', async () => {
    const dir = plant((db) => {
      db.exec("ALTER TABLE users ADD COLUMN note TEXT; UPDATE users SET note = 'hello'");
      db.prepare('UPDATE envelopes SET client_msg_id = ? WHERE seq = 1').run('see you at the station at noon');
    });
    const { report } = await audit(dir);
    expect(errors(report)).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ check: 'schema', table: 'users', column: 'note', message: expect.stringContaining('unclassified column') }),
        expect.objectContaining({ check: 'format', table: 'envelopes', column: 'client_msg_id' }),
      ]),
    );
    expect(report.tables.find((t) => t.name === 'users')!.columns.find((c) => c.name === 'note')).toMatchObject({ class: null, label: 'UNCLASSIFIED' });
  });
});

describe('the command line', () => {
  const outDir = path.join(ROOT, 'node_modules', '.cache', `umbra-audit-test-${process.pid}`);
  const cli = path.join(outDir, 'server', 'audit', 'cli.js');

  beforeAll(() => {
    // The same compile as `npm run audit`, into a folder of its own. Type errors elsewhere in the
    // tree do not stop the emit, and `npm test` type-checks separately.
    try {
      execFileSync(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json', '--outDir', outDir], { cwd: ROOT, stdio: 'pipe' });
    } catch (err) {
      if (!fs.existsSync(cli)) throw err;
    }
  }, 120_000);
  afterAll(() => fs.rmSync(outDir, { recursive: true, force: true }));

  const node = (args: string[], env: NodeJS.ProcessEnv = process.env) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', env, timeout: 60_000 });

  it('audits the stopped relay’s folder as a compiled program, taking the folder from DATA_DIR', () => {
    const res = node(['--json', ...canaryArgs], { ...process.env, DATA_DIR: dataDir });
    expect(res.stderr).toBe('');
    expect(res.status).toBe(0);
    const report = JSON.parse(res.stdout) as AuditReport;
    expect([report.ok, report.dataDir, report.findings]).toEqual([true, dataDir, []]);
  });

  it('exits 1 on planted plaintext, printing the finding', () => {
    const dir = plant((db) => insertEnvelope(db, { ct: Buffer.from('this envelope was stored as plain readable text by the relay') }));
    const res = node(['--data', dir]);
    expect(res.status).toBe(1);
    expect(res.stdout).toMatch(/ERROR +ciphertext-text +envelopes\.ct \[conv_id=.*, seq=\d+\]: \d+ bytes of readable text/);
    expect(res.stdout).toContain('FAILED');
  });

  it('exits 2 with a clear message on a usage error', async () => {
    const missing = path.join(os.tmpdir(), `umbra-audit-missing-${process.pid}`);
    const res = node(['--data', missing]);
    expect([res.status, res.stdout]).toEqual([2, '']);
    expect(res.stderr).toContain(`no data folder at ${missing}`);
    for (const args of [['--nope'], ['--data'], ['--canary', 'short', '--data', dataDir], ['--bundle', 'http://127.0.0.1:1/', '--data', dataDir]]) {
      const r = await runAudit(args);
      expect(r.exitCode, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/^audit: /);
    }
    const empty = tempDir('umbra-audit-empty-');
    expect((await runAudit(['--data', empty])).stderr).toContain(`no ${DB_FILE} in ${empty}`);
    const help = await runAudit(['--help']);
    expect([help.exitCode, help.stdout]).toEqual([0, expect.stringContaining('--canary <text>')]);
  });
});
