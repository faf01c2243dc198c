// Canary search: a string the auditor typed into the app (a message, a room name) must not appear,
// in any common encoding, in any file of the relay's data folder.
import fs from 'node:fs';
import path from 'node:path';

/** Shorter canaries would match by chance somewhere in megabytes of ciphertext. */
export const MIN_CANARY_BYTES = 8;

export interface CanaryForm {
  /** `utf-8`, `utf-16le`, `base64`, `base64url`, or `base64/base64url` when both are the same text. */
  label: string;
  bytes: Buffer;
}

/**
 * The byte strings to look for: the UTF-8 and UTF-16LE text, and its base64 and base64url text at
 * each of the three alignments it can have inside a longer encoded value. For an alignment, only
 * the characters whose six bits all come from the canary are kept (RFC 4648 §4: character i
 * carries bits 6i … 6i+5 of the input).
 */
export function canaryForms(canary: string): CanaryForm[] {
  const utf8 = Buffer.from(canary, 'utf8');
  const forms: CanaryForm[] = [
    { label: 'utf-8', bytes: utf8 },
    { label: 'utf-16le', bytes: Buffer.from(canary, 'utf16le') },
  ];
  for (let shift = 0; shift < 3; shift++) {
    const encoded = Buffer.concat([Buffer.alloc(shift), utf8]).toString('base64').replace(/=+$/, '');
    const first = Math.ceil((8 * shift) / 6);
    const end = Math.floor((8 * (shift + utf8.length)) / 6);
    const std = encoded.slice(first, end);
    const url = std.replace(/\+/g, '-').replace(/\//g, '_');
    if (std === url) forms.push({ label: 'base64/base64url', bytes: Buffer.from(std, 'latin1') });
    else forms.push({ label: 'base64', bytes: Buffer.from(std, 'latin1') }, { label: 'base64url', bytes: Buffer.from(url, 'latin1') });
  }
  return forms;
}

export interface CanaryHit {
  canary: string;
  form: string;
  /** Relative to the data folder. */
  file: string;
  offset: number;
}

/** Hits reported per canary and file; the rest are counted. */
export const MAX_HITS_PER_FILE = 20;
const CHUNK_BYTES = 1 << 20;

/**
 * Every offset at which a form of a canary occurs in `file`, read in chunks (so a file of any size
 * fits in memory) that overlap by the longest form less one byte.
 */
export function scanFile(dataDir: string, file: string, canaries: readonly string[]): { hits: CanaryHit[]; more: number } {
  const needles = canaries.flatMap((canary) => canaryForms(canary).map((f) => ({ canary, ...f })));
  const overlap = Math.max(0, ...needles.map((n) => n.bytes.length)) - 1;
  const hits: CanaryHit[] = [];
  const perCanary = new Map<string, Set<number>>();
  let more = 0;
  const fd = fs.openSync(path.join(dataDir, file), 'r');
  try {
    let tail = Buffer.alloc(0);
    let position = 0;
    const chunk = Buffer.alloc(CHUNK_BYTES);
    for (;;) {
      const read = fs.readSync(fd, chunk, 0, CHUNK_BYTES, position);
      if (read === 0) break;
      const window = Buffer.concat([tail, chunk.subarray(0, read)]);
      const windowStart = position - tail.length;
      for (const n of needles) {
        for (let at = window.indexOf(n.bytes); at >= 0; at = window.indexOf(n.bytes, at + 1)) {
          // A match that ends inside the tail was already found in the previous window.
          if (at + n.bytes.length <= tail.length) continue;
          const offset = windowStart + at;
          const seen = perCanary.get(n.canary) ?? new Set<number>();
          perCanary.set(n.canary, seen);
          if (seen.has(offset)) continue; // the same bytes under two labels
          seen.add(offset);
          if (seen.size > MAX_HITS_PER_FILE) more++;
          else hits.push({ canary: n.canary, form: n.label, file, offset });
        }
      }
      position += read;
      tail = Buffer.from(window.subarray(Math.max(0, window.length - overlap)));
    }
  } finally {
    fs.closeSync(fd);
  }
  return { hits, more };
}

export interface DataFile {
  /** Relative to the data folder, with `/` separators. */
  file: string;
  bytes: number;
}

/**
 * Regular files under `dataDir`, recursively, except those in `exclude` (absolute paths: the relay
 * secret). Symbolic links and other special files are listed in `skipped`, never followed.
 */
export function listDataFiles(dataDir: string, exclude: ReadonlySet<string>): { files: DataFile[]; skipped: string[]; excluded: string[] } {
  const files: DataFile[] = [];
  const skipped: string[] = [];
  const excluded: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const abs = path.join(dir, entry.name);
      const rel = path.relative(dataDir, abs).split(path.sep).join('/');
      if (entry.isDirectory()) walk(abs);
      else if (!entry.isFile()) skipped.push(rel);
      else if (exclude.has(abs)) excluded.push(rel);
      else files.push({ file: rel, bytes: fs.statSync(abs).size });
    }
  };
  walk(dataDir);
  return { files, skipped, excluded };
}
