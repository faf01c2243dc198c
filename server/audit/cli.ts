// `npm run audit`: lets an auditor check, without trusting the operator, what a relay stores
// (its data folder) or serves (its web client, with --bundle).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { SECRET_FILE } from '../secrets.ts';
import { checkBundle } from './bundle.ts';
import { MIN_CANARY_BYTES, listDataFiles, scanFile } from './canary.ts';
import { AuditUsageError, auditDatabase } from './db-audit.ts';
import { hasErrors, type Finding } from './findings.ts';
import { formatFindings, formatReport, type AuditReport } from './report.ts';

export const USAGE = `Usage: npm run audit -- [options]
       node dist/node/server/audit/cli.js [options]

Checks what an Umbra relay stores, reading its data folder without writing to it:
every column's class, row counts and sizes; that ciphertext is framed as its
suite says, holds no readable text and has the entropy of random bytes; that no
row is kept past its expiry; and that no canary string appears in any file.

Options:
  --data <dir>      the relay's data folder (default: $DATA_DIR, else ./data)
  --canary <text>   a string you typed into the app, e.g. in a message; it must not
                    appear in any file of the data folder as UTF-8, UTF-16LE,
                    base64 or base64url (at least ${MIN_CANARY_BYTES} bytes; repeatable)
  --bundle <url>    check instead that the web client served at <url> is
                    byte-identical to a build of this checkout
  --json            print one JSON object instead of text
  --help            print this text

Exit status: 0 no errors (warnings allowed), 1 errors found, 2 usage error.
`;

export interface AuditRun {
  exitCode: 0 | 1 | 2;
  stdout: string;
  stderr: string;
}

export interface AuditEnv {
  /** The relay's environment: DATA_DIR and RELAY_SECRET_FILE are read as the relay reads them. */
  env?: NodeJS.ProcessEnv;
  /** The clock for expiry checks (Unix ms). */
  now?: number;
}

function usageError(message: string): AuditRun {
  return { exitCode: 2, stdout: '', stderr: `audit: ${message}\nRun with --help for the options.\n` };
}

/** Runs the audit for `argv` (the arguments after the script name) and returns what to print. */
export async function runAudit(argv: readonly string[], o: AuditEnv = {}): Promise<AuditRun> {
  const env = o.env ?? process.env;
  let values: { data?: string; canary?: string[]; bundle?: string; json?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        data: { type: 'string' },
        canary: { type: 'string', multiple: true },
        bundle: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    return usageError((err as Error).message);
  }
  if (values.help) return { exitCode: 0, stdout: USAGE, stderr: '' };
  const json = values.json ?? false;

  if (values.bundle !== undefined) {
    if (values.data !== undefined || values.canary !== undefined) return usageError('--bundle checks the served client; run the data folder audit (--data, --canary) separately');
    return runBundleCheck(values.bundle, json);
  }

  const canaries = values.canary ?? [];
  for (const c of canaries) {
    if (Buffer.byteLength(c, 'utf8') < MIN_CANARY_BYTES) return usageError(`canary ${JSON.stringify(c)} is shorter than ${MIN_CANARY_BYTES} bytes: it would match by chance`);
  }
  // The relay's own default (server/config.ts configFromEnv).
  const dataDir = path.resolve(values.data ?? env.DATA_DIR ?? 'data');
  if (!fs.existsSync(dataDir) || !fs.statSync(dataDir).isDirectory()) {
    return usageError(`no data folder at ${dataDir} (give --data <dir>, or set DATA_DIR as for the relay)`);
  }

  let report: AuditReport;
  try {
    report = auditDataFolder(dataDir, canaries, env, o.now ?? Date.now());
  } catch (err) {
    if (err instanceof AuditUsageError) return usageError(err.message);
    throw err;
  }
  return { exitCode: report.ok ? 0 : 1, stdout: json ? JSON.stringify(report, null, 2) + '\n' : formatReport(report), stderr: '' };
}

/** The whole data folder audit: the database, then every file searched for the canaries. */
export function auditDataFolder(dataDir: string, canaries: readonly string[], env: NodeJS.ProcessEnv, now: number): AuditReport {
  const secrets = new Set([path.join(dataDir, SECRET_FILE)]);
  if (env.RELAY_SECRET_FILE) secrets.add(path.resolve(env.RELAY_SECRET_FILE));
  const { files, skipped, excluded } = listDataFiles(dataDir, secrets);
  const db = auditDatabase(dataDir, now);
  const findings: Finding[] = [...db.findings];
  if (canaries.length > 0) {
    for (const f of files) {
      const { hits, more } = scanFile(dataDir, f.file, canaries);
      for (const h of hits) {
        findings.push({ severity: 'error', check: 'canary', file: h.file, offset: h.offset, message: `canary ${JSON.stringify(h.canary)} found as ${h.form}` });
      }
      if (more > 0) findings.push({ severity: 'error', check: 'canary', file: f.file, message: `${more} more canary occurrences` });
    }
  }
  return { ok: !hasErrors(findings), dataDir, access: db.access, files, excluded, skipped, canaries: canaries.length, tables: db.tables, findings };
}

async function runBundleCheck(url: string, json: boolean): Promise<AuditRun> {
  try {
    new URL(url);
  } catch {
    return usageError(`--bundle needs a URL such as http://127.0.0.1:8080/, got ${JSON.stringify(url)}`);
  }
  let result: Awaited<ReturnType<typeof checkBundle>>;
  try {
    result = await checkBundle(url, { json });
  } catch (err) {
    return { exitCode: 2, stdout: '', stderr: `audit: cannot check the bundle at ${url}: ${(err as Error).message}\n` };
  }
  const ok = result.ok && !hasErrors(result.findings);
  if (json) return { exitCode: ok ? 0 : 1, stdout: JSON.stringify({ ...result, ok }, null, 2) + '\n', stderr: '' };
  const lines = [`Umbra web client check of ${url}`];
  const matched = result.files.filter((f) => f.match).length;
  lines.push(`${matched} of ${result.files.length} files byte-identical to the local build.`);
  if (result.findings.length === 0) lines.push('No findings.');
  else lines.push(`Findings (${result.findings.length}):`, ...formatFindings(result.findings));
  lines.push(ok ? 'OK: no errors.' : 'FAILED: see the errors above.');
  return { exitCode: ok ? 0 : 1, stdout: lines.join('\n') + '\n', stderr: '' };
}

async function main(): Promise<void> {
  const run = await runAudit(process.argv.slice(2));
  process.stdout.write(run.stdout);
  process.stderr.write(run.stderr);
  process.exitCode = run.exitCode;
}

// Run only as the entry point, so tests can import runAudit.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    process.stderr.write(`audit: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 2;
  });
}

