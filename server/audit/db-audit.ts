// Reads the relay's SQLite file without writing to it and checks every stored value against its
// class in columns.ts: ciphertext looks like ciphertext, fixed-size values have their size, text
// columns hold only ids and names, and nothing is kept past its expiry.
import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { DB_FILE } from '../db.ts';
import { entropyFloor, findTextRun, preview, shannonEntropy } from './bytes.ts';
import { ALL_TABLES, CLASS_LABELS, ENVELOPE_SUITES, type ColumnClass, type ColumnSpec, type Framing } from './columns.ts';
import type { Finding } from './findings.ts';

/**
 * Expired rows are deleted by timers (envelopes every 5 s by the sweeper, sessions every 60 s by
 * housekeeping). A row past its expiry by less than this is a warning (the next sweep may not have
 * run yet, or the relay is stopped); by more, an error.
 */
export const EXPIRY_GRACE_MS = 2 * 60_000;

/** Columns holding the time after which the relay must no longer keep the row. */
const EXPIRY_COLUMNS: Readonly<Record<string, string>> = { envelopes: 'expires_at', sessions: 'expires_at' };

/** Findings reported per check and column; the rest are counted in one more finding. */
export const MAX_FINDINGS_PER_CHECK = 20;

export interface ColumnReport {
  name: string;
  /** null: found in the database but not classified (a finding). */
  class: ColumnClass | null;
  label: string;
  /** Total bytes of the column's blob and text values (integers are not counted). */
  bytes: number;
  nulls: number;
}

export interface TableReport {
  name: string;
  rows: number;
  columns: ColumnReport[];
}

export interface DbAudit {
  /** How the file was read: through the WAL (a relay has it open, or did not stop cleanly), or as a snapshot of the file alone. */
  access: 'wal' | 'file';
  tables: TableReport[];
  findings: Finding[];
}

/** A missing or unreadable database file: a usage error rather than a finding. */
export class AuditUsageError extends Error {}

/**
 * Opens `umbra.db` so that nothing in the data folder is written.
 * - With a `-wal` file present (a running relay, or one that did not stop cleanly), committed rows
 *   may be in the WAL only, so SQLite must read it: a read-only connection, which never writes the
 *   database or the WAL (it takes its read lock in the `-shm`, SQLite's shared-memory index, which
 *   holds no rows and is rebuilt from the WAL).
 * - Without one, the file alone holds everything. A read-only SQLite connection would still create
 *   `-wal` and `-shm` files for a WAL-mode database, so the file is read into memory instead (memory
 *   use: the file's size) and opened from there, its header switched to rollback mode (bytes 18–19,
 *   SQLite file format §1.3) so SQLite does not look for a WAL.
 */
function openReadOnly(dataDir: string): { db: Database.Database; access: DbAudit['access'] } {
  const file = path.join(dataDir, DB_FILE);
  if (!fs.existsSync(file)) throw new AuditUsageError(`no ${DB_FILE} in ${dataDir}`);
  if (fs.existsSync(`${file}-wal`)) return { db: new Database(file, { readonly: true, fileMustExist: true }), access: 'wal' };
  const image = fs.readFileSync(file);
  if (image.length < 100 || image.subarray(0, 16).toString('latin1') !== 'SQLite format 3\0') {
    throw new AuditUsageError(`${file} is not an SQLite database`);
  }
  if (image[18] === 2) image[18] = 1;
  if (image[19] === 2) image[19] = 1;
  return { db: new Database(image, { readonly: true }), access: 'file' };
}

/** Collects findings, keeping MAX_FINDINGS_PER_CHECK per check and column and counting the rest. */
class Findings {
  readonly list: Finding[] = [];
  private readonly counts = new Map<string, { n: number; first: Finding }>();

  add(f: Finding): void {
    const k = `${f.severity}|${f.check}|${f.table ?? ''}|${f.column ?? ''}`;
    const c = this.counts.get(k);
    if (!c) this.counts.set(k, { n: 1, first: f });
    else c.n++;
    if ((c?.n ?? 1) <= MAX_FINDINGS_PER_CHECK) this.list.push(f);
  }

  done(): Finding[] {
    for (const { n, first } of this.counts.values()) {
      if (n <= MAX_FINDINGS_PER_CHECK) continue;
      const { severity, check, table, column } = first;
      this.list.push({ severity, check, table, column, message: `${n - MAX_FINDINGS_PER_CHECK} more like the above` });
    }
    return this.list;
  }
}

type Where = Pick<Finding, 'table' | 'column' | 'rowid' | 'key'>;
type Value = number | bigint | string | Buffer | null;

function storageType(v: Value): 'integer' | 'real' | 'text' | 'blob' | 'null' {
  if (v === null) return 'null';
  if (typeof v === 'bigint') return 'integer';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'real';
  if (typeof v === 'string') return 'text';
  return 'blob';
}

/** Checks a ciphertext's length against its framing, then looks for text and low entropy. */
function checkCiphertext(out: Findings, at: Where, ct: Buffer, framing: Framing, nonces: Map<string, string>): void {
  if (ct.length < framing.min || ct.length > framing.max) {
    const expected = framing.min === framing.max ? `${framing.min}` : `${framing.min} to ${framing.max}`;
    out.add({ ...at, severity: 'error', check: 'ciphertext-framing', message: `${ct.length} bytes, expected ${expected} for ${framing.name} (nonce ${framing.nonce} + tag ${framing.tag})` });
  }
  const run = findTextRun(ct);
  if (run) {
    const text = preview(ct.subarray(run.offset, run.offset + run.length));
    out.add({ ...at, severity: 'error', check: 'ciphertext-text', message: `${run.length} bytes of readable text at offset ${run.offset}: ${text}` });
  }
  const h = shannonEntropy(ct);
  const floor = entropyFloor(ct.length);
  if (h < floor) {
    out.add({ ...at, severity: 'error', check: 'ciphertext-entropy', message: `entropy ${h.toFixed(2)} bits/byte, below ${floor.toFixed(2)} for ${ct.length} random bytes` });
  }
  if (ct.length >= framing.prefix + framing.nonce) {
    const nonce = ct.subarray(framing.prefix, framing.prefix + framing.nonce).toString('latin1');
    const place = at.key !== undefined ? `[${at.key}]` : `rowid ${at.rowid ?? '?'}`;
    const earlier = nonces.get(nonce);
    if (earlier !== undefined) out.add({ ...at, severity: 'error', check: 'nonce-reuse', message: `same ${framing.nonce}-byte nonce as ${earlier}` });
    else nonces.set(nonce, place);
  }
}

/** Checks one stored value against its column's class. */
function checkValue(out: Findings, at: Where, spec: ColumnSpec, v: Value, row: Record<string, Value>, nonces: Map<string, string>): void {
  const type = storageType(v);
  if (type === 'null') {
    if (!spec.nullable) out.add({ ...at, severity: 'error', check: 'column-type', message: 'NULL in a column that is never null' });
    return;
  }
  if (type !== spec.type) {
    const shown = typeof v === 'string' ? `: ${preview(Buffer.from(v))}` : '';
    out.add({ ...at, severity: 'error', check: 'column-type', message: `holds ${type}, expected ${spec.type}${shown}` });
    return;
  }
  if (typeof v === 'string') {
    if (spec.pattern && !spec.pattern.test(v)) out.add({ ...at, severity: 'error', check: 'format', message: `value does not have the form of a ${CLASS_LABELS[spec.class]} field: ${preview(Buffer.from(v))}` });
    return;
  }
  if (!Buffer.isBuffer(v)) return;
  if (spec.bytes !== undefined && v.length !== spec.bytes) {
    out.add({ ...at, severity: 'error', check: 'length', message: `${v.length} bytes, expected ${spec.bytes} for a ${CLASS_LABELS[spec.class]}` });
  }
  if (spec.class === 'ciphertext') {
    let framing = spec.framing;
    if (framing === 'envelope-suite') {
      const suite = Number(row.suite);
      framing = ENVELOPE_SUITES[suite];
      if (!framing) {
        out.add({ ...at, severity: 'error', check: 'ciphertext-framing', message: `suite ${String(row.suite)} is not a known cipher suite` });
        return;
      }
    }
    if (framing) checkCiphertext(out, at, v, framing, nonces);
    return;
  }
  if (spec.class === 'signed-statement') {
    checkStatement(out, at, v, spec.statementKinds);
    return;
  }
  const run = findTextRun(v);
  if (run) out.add({ ...at, severity: 'error', check: 'readable-text', message: `${run.length} bytes of readable text in a ${CLASS_LABELS[spec.class]}: ${preview(v.subarray(run.offset, run.offset + run.length))}` });
}

/** A signed statement is public membership data by design: it must be the JSON of its kind, nothing else. */
function checkStatement(out: Findings, at: Where, v: Buffer, kinds: readonly string[] | undefined): void {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(v));
  } catch {
    out.add({ ...at, severity: 'error', check: 'statement', message: `not UTF-8 JSON: ${preview(v)}` });
    return;
  }
  const actual = typeof parsed === 'object' && parsed !== null ? (parsed as { kind?: unknown }).kind : undefined;
  if (kinds && !kinds.includes(actual as string)) {
    out.add({ ...at, severity: 'error', check: 'statement', message: `JSON of kind ${JSON.stringify(actual)}, expected ${kinds.map((k) => `"${k}"`).join(' or ')}` });
  }
}

function quote(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * Audits the database in `dataDir` as of `now` (Unix ms), inside one read transaction so every
 * table is seen at the same moment. Throws AuditUsageError if there is no database to read.
 */
export function auditDatabase(dataDir: string, now: number): DbAudit {
  const { db, access } = openReadOnly(dataDir);
  const out = new Findings();
  const tables: TableReport[] = [];
  try {
    db.exec('BEGIN');
    const listed = db.prepare(`SELECT name, wr FROM pragma_table_list WHERE schema = 'main' AND type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name`).all() as { name: string; wr: number }[];
    const present = new Set(listed.map((t) => t.name));
    for (const name of Object.keys(ALL_TABLES)) {
      if (!present.has(name)) out.add({ severity: 'warning', check: 'schema', table: name, message: 'classified table is missing from the database (an older schema?)' });
    }
    // The relay's own tables first, in the order of the classification, then anything else.
    const order = Object.keys(ALL_TABLES);
    listed.sort((a, b) => (order.includes(a.name) ? order.indexOf(a.name) : order.length) - (order.includes(b.name) ? order.indexOf(b.name) : order.length));
    for (const t of listed) tables.push(auditTable(db, t.name, t.wr === 1, out, now));
    db.exec('COMMIT');
  } finally {
    db.close();
  }
  return { access, tables, findings: out.done() };
}

function auditTable(db: Database.Database, table: string, withoutRowid: boolean, out: Findings, now: number): TableReport {
  const specs = ALL_TABLES[table];
  const info = db.prepare(`SELECT name, pk FROM pragma_table_info(?) ORDER BY cid`).all(table) as { name: string; pk: number }[];
  const names = info.map((c) => c.name);
  const keyColumns = info.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk).map((c) => c.name);
  const columns: ColumnReport[] = names.map((name) => {
    const spec = specs?.[name];
    if (!spec) {
      const why = specs ? 'column' : 'table';
      out.add({ severity: 'error', check: 'schema', table, column: name, message: `unclassified ${why}: classify it in server/audit/columns.ts before the relay stores it` });
    }
    return { name, class: spec?.class ?? null, label: spec ? CLASS_LABELS[spec.class] : 'UNCLASSIFIED', bytes: 0, nulls: 0 };
  });
  for (const name of Object.keys(specs ?? {})) {
    if (!names.includes(name)) out.add({ severity: 'warning', check: 'schema', table, column: name, message: 'classified column is missing from the database (an older schema?)' });
  }

  const select = `SELECT ${withoutRowid ? 'NULL' : '_rowid_'}, ${names.map(quote).join(', ')} FROM ${quote(table)}`;
  const nonces = new Map<string, Map<string, string>>();
  const expiryColumn = EXPIRY_COLUMNS[table];
  let rows = 0;
  for (const raw of db.prepare(select).raw().iterate() as IterableIterator<Value[]>) {
    rows++;
    const row: Record<string, Value> = {};
    names.forEach((n, i) => (row[n] = raw[i + 1] ?? null));
    const rowid = raw[0] === null || raw[0] === undefined ? undefined : Number(raw[0]);
    const keyParts = keyColumns.filter((k) => typeof row[k] === 'string' || typeof row[k] === 'number').map((k) => `${k}=${String(row[k])}`);
    const place: Where = { table, ...(rowid !== undefined ? { rowid } : {}), ...(keyParts.length > 0 ? { key: keyParts.join(', ') } : {}) };
    names.forEach((name, i) => {
      const v = row[name]!;
      const col = columns[i]!;
      if (v === null) col.nulls++;
      else if (typeof v === 'string') col.bytes += Buffer.byteLength(v, 'utf8');
      else if (Buffer.isBuffer(v)) col.bytes += v.length;
      const spec = specs?.[name];
      if (!spec) return;
      let seen = nonces.get(name);
      if (!seen) nonces.set(name, (seen = new Map()));
      checkValue(out, { ...place, column: name }, spec, v, row, seen);
    });
    if (expiryColumn) checkExpiry(out, { ...place, column: expiryColumn }, row[expiryColumn] ?? null, now);
  }
  return { name: table, rows, columns };
}

function checkExpiry(out: Findings, at: Where, expiresAt: Value, now: number): void {
  if (typeof expiresAt !== 'number' && typeof expiresAt !== 'bigint') return;
  const past = now - Number(expiresAt);
  if (past < 0) return;
  const ago = past < 120_000 ? `${Math.round(past / 1000)} s` : past < 2 * 3_600_000 ? `${Math.round(past / 60_000)} min` : `${(past / 3_600_000).toFixed(1)} h`;
  const when = new Date(Number(expiresAt)).toISOString();
  if (past > EXPIRY_GRACE_MS) out.add({ ...at, severity: 'error', check: 'expiry', message: `kept ${ago} past its expiry (${when})` });
  else out.add({ ...at, severity: 'warning', check: 'expiry', message: `${ago} past its expiry (${when}); within the ${EXPIRY_GRACE_MS / 1000} s the relay's timers may take` });
}
