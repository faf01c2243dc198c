// Tests over raw bytes that tell ciphertext from plaintext: readable text runs and Shannon entropy,
// with thresholds chosen so that random bytes (which ciphertext is) almost never trip them.

/**
 * A run of this many printable ASCII bytes is reported. In uniformly random bytes such a run
 * starts at a given offset with probability about 0.371^24 ≈ 5e-11: roughly one false alarm per
 * 20 GB of ciphertext.
 */
export const ASCII_RUN_BYTES = 24;
/**
 * A run of this many bytes of printable UTF-8 (any script) is reported. Random bytes decode as
 * printable UTF-8 at about 0.465 per byte, so a 32-byte run starts at an offset with probability
 * about 1e-11 (one false alarm per ~80 GB).
 */
export const UTF8_RUN_BYTES = 32;

export interface TextRun {
  offset: number;
  length: number;
}

/** Bytes in the printable UTF-8 character at `i` (ASCII 0x20–0x7E, tab, LF, CR, or ≥ U+00A0), or 0. */
function printableAt(b: Uint8Array, i: number): number {
  const x = b[i]!;
  if (x === 9 || x === 10 || x === 13 || (x >= 0x20 && x < 0x7f)) return 1;
  if (x < 0xc2 || x > 0xf4) return 0;
  const cont = (k: number): number => {
    const y = b[i + k];
    return y !== undefined && (y & 0xc0) === 0x80 ? y & 0x3f : -1;
  };
  if (x < 0xe0) {
    const c1 = cont(1);
    return c1 >= 0 && (((x & 0x1f) << 6) | c1) >= 0xa0 ? 2 : 0;
  }
  const c1 = cont(1);
  const c2 = cont(2);
  if (c1 < 0 || c2 < 0) return 0;
  if (x < 0xf0) {
    const cp = ((x & 0x0f) << 12) | (c1 << 6) | c2;
    return cp >= 0x800 && (cp < 0xd800 || cp > 0xdfff) ? 3 : 0;
  }
  const c3 = cont(3);
  if (c3 < 0) return 0;
  const cp = ((x & 0x07) << 18) | (c1 << 12) | (c2 << 6) | c3;
  return cp >= 0x10000 && cp <= 0x10ffff ? 4 : 0;
}

/**
 * The first run of readable text in `b` that reaches ASCII_RUN_BYTES of printable ASCII or
 * UTF8_RUN_BYTES of printable UTF-8, extended to its whole length; null if there is none.
 */
export function findTextRun(b: Uint8Array): TextRun | null {
  let utf8Start = 0;
  let utf8Len = 0;
  let asciiLen = 0;
  let found = false;
  let i = 0;
  while (i < b.length) {
    const n = printableAt(b, i);
    if (n === 0) {
      if (found) break;
      i++;
      utf8Start = i;
      utf8Len = 0;
      asciiLen = 0;
      continue;
    }
    utf8Len += n;
    asciiLen = n === 1 ? asciiLen + 1 : 0;
    i += n;
    if (asciiLen >= ASCII_RUN_BYTES || utf8Len >= UTF8_RUN_BYTES) found = true;
  }
  return found ? { offset: utf8Start, length: utf8Len } : null;
}

/** Shannon entropy of the byte histogram, in bits per byte (0 … 8). */
export function shannonEntropy(b: Uint8Array): number {
  if (b.length === 0) return 0;
  const counts = new Uint32Array(256);
  for (const x of b) counts[x]!++;
  let h = 0;
  for (const c of counts) {
    if (c === 0) continue;
    const p = c / b.length;
    h -= p * Math.log2(p);
  }
  return h;
}

const expectedCache = new Map<number, number>();

/**
 * The mean Shannon entropy of `n` uniformly random bytes. Below 8 for any finite n (about 5.17 at
 * 40 bytes, 7.18 at 256, 7.997 at 64 KiB): each byte value's count is Binomial(n, 1/256), so
 * E[H] = −256 · Σⱼ P(count = j) · (j/n) · log2(j/n).
 */
export function expectedRandomEntropy(n: number): number {
  if (n <= 1) return 0;
  const cached = expectedCache.get(n);
  if (cached !== undefined) return cached;
  const mean = n / 256;
  const last = Math.min(n, Math.ceil(mean + 12 * Math.sqrt(mean) + 12));
  let p = Math.exp(n * Math.log1p(-1 / 256)); // P(count = 0)
  let sum = 0;
  for (let j = 1; j <= last; j++) {
    p *= (n - j + 1) / j / 255;
    const q = j / n;
    sum -= p * q * Math.log2(q);
  }
  const h = 256 * sum;
  expectedCache.set(n, h);
  return h;
}

/** Blobs shorter than this get the relaxed entropy margin: their entropy varies more. */
export const SHORT_BLOB_BYTES = 256;
/**
 * How far below the random mean a ciphertext's entropy may fall. The standard deviation for
 * random bytes is about 0.08 bits at 40 bytes, 0.05 at 256 and 0.02 at 1 KiB, so these margins
 * sit 10 or more deviations out; English or JSON text sits at 4 to 4.5 bits per byte.
 */
export const ENTROPY_MARGIN_SHORT = 1.0;
export const ENTROPY_MARGIN = 0.5;

/** The lowest entropy (bits per byte) a ciphertext of `n` bytes may have. */
export function entropyFloor(n: number): number {
  return expectedRandomEntropy(n) - (n < SHORT_BLOB_BYTES ? ENTROPY_MARGIN_SHORT : ENTROPY_MARGIN);
}

/** Up to `max` bytes at `offset`, as a quoted, escaped string for a report. */
export function preview(b: Uint8Array, offset = 0, max = 48): string {
  const slice = Buffer.from(b.subarray(offset, offset + max)).toString('utf8');
  return JSON.stringify(slice) + (b.length > offset + max ? '…' : '');
}
