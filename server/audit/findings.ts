// What an audit reports: one finding per problem, with where it was found. Shared by the data
// folder audit and the served-bundle check.

export type Severity = 'error' | 'warning';

export interface Finding {
  /** `error` fails the audit (exit code 1); `warning` is reported but does not. */
  severity: Severity;
  /** The check that found it, e.g. `ciphertext-text`, `expiry`, `canary`, `schema`. */
  check: string;
  table?: string;
  column?: string;
  /** SQLite rowid, for tables that have one. */
  rowid?: number;
  /** The row's primary key in words (`conv_id=…, seq=4`), for tables without a rowid. */
  key?: string;
  /** A file (relative to the data folder) and a byte offset in it. */
  file?: string;
  offset?: number;
  message: string;
}

/** True if any finding is an error. */
export function hasErrors(findings: readonly Finding[]): boolean {
  return findings.some((f) => f.severity === 'error');
}

/** Where a finding is, in words: `envelopes.ct [conv_id=…, seq=4]`, `umbra.db-wal @ 8232`. */
export function findingPlace(f: Finding): string {
  const parts: string[] = [];
  if (f.table) parts.push(f.column ? `${f.table}.${f.column}` : f.table);
  if (f.key !== undefined) parts.push(`[${f.key}]`);
  else if (f.rowid !== undefined) parts.push(`[rowid ${f.rowid}]`);
  if (f.file) parts.push(f.offset !== undefined ? `${f.file} @ byte ${f.offset}` : f.file);
  return parts.join(' ');
}
