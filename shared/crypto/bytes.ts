// Byte helpers: length checks, base64url, and the canonical field encoding used for
// associated data and signed statements (docs/PROTOCOL.md §Canonical encoding).

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder('utf-8', { fatal: true });

export function utf8(text: string): Uint8Array {
  return textEncoder.encode(text);
}

export function fromUtf8(bytes: Uint8Array): string {
  return textDecoder.decode(bytes);
}

/** Throws `expected 32-byte X25519 public key, got 31` style errors. */
export function assertBytes(value: Uint8Array, length: number, what: string): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new TypeError(`expected ${what} as bytes`);
  if (value.length !== length) {
    throw new RangeError(`expected ${length}-byte ${what}, got ${value.length}`);
  }
  return value;
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let total = 0;
  for (const p of parts) total += p.length;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const B64_INDEX = new Int16Array(128).fill(-1);
for (let i = 0; i < B64.length; i++) B64_INDEX[B64.charCodeAt(i)] = i;

/** Unpadded base64url (RFC 4648 §5), the only binary-to-text encoding on the wire. */
export function toB64(bytes: Uint8Array): string {
  let out = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += B64[(n >> 18) & 63]! + B64[(n >> 12) & 63]! + B64[(n >> 6) & 63]! + B64[n & 63]!;
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i]! << 16;
    out += B64[(n >> 18) & 63]! + B64[(n >> 12) & 63]!;
  } else if (rest === 2) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    out += B64[(n >> 18) & 63]! + B64[(n >> 12) & 63]! + B64[(n >> 6) & 63]!;
  }
  return out;
}

/** Strict unpadded base64url decode; rejects padding, other alphabets and non-canonical tails. */
export function fromB64(text: string): Uint8Array {
  if (text.length % 4 === 1) throw new RangeError('invalid base64url length');
  const out = new Uint8Array(Math.floor((text.length * 3) / 4));
  let o = 0;
  let acc = 0;
  let bits = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const v = c < 128 ? B64_INDEX[c]! : -1;
    if (v < 0) throw new RangeError('invalid base64url character');
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  if (bits > 0 && (acc & ((1 << bits) - 1)) !== 0) throw new RangeError('non-canonical base64url');
  return out;
}

/**
 * True exactly when fromB64 would accept `text`, without decoding it: only alphabet characters, a
 * length that is not 1 more than a multiple of 4, and no unused bit set in the last character.
 */
export function isCanonicalB64(text: string): boolean {
  const tail = text.length % 4;
  if (tail === 1) return false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 128 || B64_INDEX[c]! < 0) return false;
  }
  if (tail === 0) return true;
  // Two characters carry one byte (4 unused bits), three carry two (2 unused bits).
  const last = B64_INDEX[text.charCodeAt(text.length - 1)]!;
  return (last & (tail === 2 ? 0x0f : 0x03)) === 0;
}

/** Length in bytes that `n` base64url characters decode to. */
export function b64Length(bytes: number): number {
  return Math.ceil((bytes * 4) / 3);
}

/** A field of the canonical encoding. */
export type Field = string | number | Uint8Array | null | readonly Field[];

const TAG_NULL = 0;
const TAG_UINT = 1;
const TAG_BYTES = 2;
const TAG_STRING = 3;
const TAG_LIST = 4;

/** A surrogate code unit not part of a pair; TextEncoder would turn it into U+FFFD. */
const LONE_SURROGATE = /\p{Surrogate}/u;

/**
 * Canonical, injective encoding of a field list: each field is a 1-byte tag
 * followed by a fixed-width integer or a u32 big-endian length and its bytes.
 * Numbers must be non-negative safe integers (encoded as u64 big-endian); strings must be
 * well-formed UTF-16. Throws RangeError otherwise.
 */
export function encodeFields(fields: readonly Field[]): Uint8Array {
  // Two passes over the fields: one sizes the output (encoding each string once), one writes it.
  const strings: EncodedStrings = [];
  const size = sizeFields(fields, strings);
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  const at = { o: 0, s: 0 };
  writeFields(fields, out, view, strings, at);
  return out;
}

function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
}

/** Each string field in order: itself where it is ASCII (its own UTF-8), else its UTF-8 bytes. */
type EncodedStrings = (string | Uint8Array)[];

function sizeFields(fields: readonly Field[], strings: EncodedStrings): number {
  let n = 0;
  for (const f of fields) {
    if (f === null) n += 1;
    else if (typeof f === 'number') {
      if (!Number.isSafeInteger(f) || f < 0) throw new RangeError(`not a non-negative safe integer: ${f}`);
      n += 9;
    } else if (typeof f === 'string') {
      if (isAscii(f)) {
        // Most fields (ids, names, contexts) are ASCII: one byte per code unit, written directly.
        strings.push(f);
        n += 5 + f.length;
        continue;
      }
      // Lone surrogates all encode as U+FFFD, which would make distinct strings collide.
      if (LONE_SURROGATE.test(f)) throw new RangeError('string field is not well-formed UTF-16 (lone surrogate)');
      const b = utf8(f);
      strings.push(b);
      n += 5 + b.length;
    } else if (f instanceof Uint8Array) n += 5 + f.length;
    else n += 5 + sizeFields(f, strings);
  }
  return n;
}

function writeFields(fields: readonly Field[], out: Uint8Array, view: DataView, strings: Readonly<EncodedStrings>, at: { o: number; s: number }): void {
  for (const f of fields) {
    if (f === null) out[at.o++] = TAG_NULL;
    else if (typeof f === 'number') {
      out[at.o] = TAG_UINT;
      // u64 big-endian from a safe integer: the high 21 bits, then the low 32.
      view.setUint32(at.o + 1, Math.floor(f / 0x1_0000_0000));
      view.setUint32(at.o + 5, f >>> 0);
      at.o += 9;
    } else if (typeof f === 'string') {
      const b = strings[at.s++]!;
      out[at.o] = TAG_STRING;
      view.setUint32(at.o + 1, b.length);
      if (typeof b === 'string') for (let i = 0; i < b.length; i++) out[at.o + 5 + i] = b.charCodeAt(i);
      else out.set(b, at.o + 5);
      at.o += 5 + b.length;
    } else if (f instanceof Uint8Array) {
      out[at.o] = TAG_BYTES;
      view.setUint32(at.o + 1, f.length);
      out.set(f, at.o + 5);
      at.o += 5 + f.length;
    } else {
      out[at.o] = TAG_LIST;
      view.setUint32(at.o + 1, f.length);
      at.o += 5;
      writeFields(f, out, view, strings, at);
    }
  }
}
