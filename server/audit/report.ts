// The audit as a person reads it: the files, then table by table each column's class, row count
// and bytes, then the findings.
import type { DataFile } from './canary.ts';
import type { TableReport } from './db-audit.ts';
import { findingPlace, type Finding } from './findings.ts';

export interface AuditReport {
  /** True when no finding is an error. */
  ok: boolean;
  dataDir: string;
  /** How the database was read (see auditDatabase). */
  access: 'wal' | 'file';
  /** Files searched for canaries; the relay secret is never read. */
  files: DataFile[];
  excluded: string[];
  skipped: string[];
  canaries: number;
  tables: TableReport[];
  findings: Finding[];
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

/** Findings, errors first, one per line. */
export function formatFindings(findings: readonly Finding[]): string[] {
  const sorted = [...findings].sort((a, b) => (a.severity === b.severity ? 0 : a.severity === 'error' ? -1 : 1));
  return sorted.map((f) => {
    const place = findingPlace(f);
    return `  ${pad(f.severity.toUpperCase(), 8)}${pad(f.check, 20)}${place ? `${place}: ` : ''}${f.message}`;
  });
}

export function formatReport(r: AuditReport): string {
  const lines: string[] = [];
  lines.push(`Umbra relay audit of ${r.dataDir}`);
  const how = r.access === 'wal' ? 'read-only, through its write-ahead log' : 'from a copy in memory (no write-ahead log present)';
  lines.push(`Database read ${how}.`, '');
  lines.push('Files:');
  for (const f of r.files) lines.push(`  ${pad(f.file, 32)}${formatBytes(f.bytes)}`);
  for (const f of r.excluded) lines.push(`  ${pad(f, 32)}not read (the relay secret)`);
  for (const f of r.skipped) lines.push(`  ${pad(f, 32)}not read (not a regular file)`);
  lines.push('');
  for (const t of r.tables) {
    lines.push(`${t.name}: ${t.rows} ${t.rows === 1 ? 'row' : 'rows'}`);
    const width = Math.max(...t.columns.map((c) => c.name.length)) + 2;
    for (const c of t.columns) {
      const size = c.bytes > 0 ? formatBytes(c.bytes) : '';
      const nulls = c.nulls > 0 ? `  (${c.nulls} null)` : '';
      lines.push(`  ${pad(c.name, width)}${pad(c.label, 38)}${pad(size, 12)}${nulls}`.trimEnd());
    }
    lines.push('');
  }
  const canaries = r.canaries === 0 ? 'no canaries given' : `${r.canaries} ${r.canaries === 1 ? 'canary' : 'canaries'} searched in ${r.files.length} ${r.files.length === 1 ? 'file' : 'files'}`;
  lines.push(`Checks: column classes, ciphertext framing, readable text, entropy, nonce reuse, expiry; ${canaries}.`);
  if (r.findings.length === 0) lines.push('No findings.');
  else lines.push(`Findings (${r.findings.length}):`, ...formatFindings(r.findings));
  lines.push(r.ok ? 'OK: no errors.' : 'FAILED: see the errors above.');
  return lines.join('\n') + '\n';
}
