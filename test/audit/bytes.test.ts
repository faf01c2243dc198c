// The audit's byte tests on their own: the text-run and entropy thresholds separate random bytes
// from text, and every encoded form of a canary is found wherever it sits.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ASCII_RUN_BYTES, UTF8_RUN_BYTES, entropyFloor, expectedRandomEntropy, findTextRun, shannonEntropy } from '../../server/audit/bytes.ts';
import { canaryForms, scanFile } from '../../server/audit/canary.ts';
import { COLUMNS } from '../../server/audit/columns.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'umbra-audit-bytes-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('readable text runs', () => {
  it('finds a run of printable ASCII at the threshold, and reports it whole', () => {
    const text = Buffer.from('a'.repeat(ASCII_RUN_BYTES));
    const b = Buffer.concat([Buffer.from([0, 1]), text, Buffer.from(' and more'), Buffer.from([0xff])]);
    expect(findTextRun(b)).toEqual({ offset: 2, length: ASCII_RUN_BYTES + 9 });
    expect(findTextRun(Buffer.concat([Buffer.from([0]), text.subarray(1), Buffer.from([0])]))).toBeNull();
  });

  it('counts UTF-8 text in any script against its own threshold', () => {
    const greek = Buffer.from('καλημέρα κόσμε, τι κάνεις'); // mostly 2-byte characters
    expect(greek.length).toBeGreaterThanOrEqual(UTF8_RUN_BYTES);
    expect(findTextRun(Buffer.concat([Buffer.from([0]), greek, Buffer.from([0])]))).toEqual({ offset: 1, length: greek.length });
    expect(findTextRun(Buffer.from('κόσμε'))).toBeNull();
    // Ill-formed sequences are not text: a lone continuation byte, an overlong encoding, a surrogate.
    expect(findTextRun(Buffer.from([...Buffer.from('a'.repeat(20)), 0x80, ...Buffer.from('b'.repeat(20))]))).toBeNull();
    expect(findTextRun(Buffer.from([...Buffer.from('a'.repeat(20)), 0xc0, 0xaf, ...Buffer.from('b'.repeat(20))]))).toBeNull();
    expect(findTextRun(Buffer.from([...Buffer.from('a'.repeat(20)), 0xed, 0xa0, 0x80, ...Buffer.from('b'.repeat(20))]))).toBeNull();
  });

  it('finds none in 4 MiB of random bytes', () => {
    for (let i = 0; i < 64; i++) expect(findTextRun(crypto.randomBytes(64 * 1024))).toBeNull();
  });
});

describe('entropy', () => {
  it('knows what random bytes of each length average', () => {
    // Means of 3000 random samples each.
    expect(expectedRandomEntropy(40)).toBeCloseTo(5.17, 1);
    expect(expectedRandomEntropy(104)).toBeCloseTo(6.33, 1);
    expect(expectedRandomEntropy(256)).toBeCloseTo(7.175, 2);
    expect(expectedRandomEntropy(65536)).toBeCloseTo(7.997, 3);
  });

  it('passes random blobs of every size and fails text and structured data', () => {
    for (const n of [40, 41, 64, 104, 255, 256, 1000, 65536]) {
      for (let i = 0; i < 200; i++) expect(shannonEntropy(crypto.randomBytes(n))).toBeGreaterThan(entropyFloor(n));
    }
    const json = Buffer.from(JSON.stringify({ kind: 'text', body: 'see you at the station at noon, bring the map' }));
    expect(shannonEntropy(json)).toBeLessThan(entropyFloor(json.length));
    const zeros = Buffer.concat([crypto.randomBytes(40), Buffer.alloc(200)]);
    expect(shannonEntropy(zeros)).toBeLessThan(entropyFloor(zeros.length));
  });
});

describe('canaries', () => {
  const canary = 'a secret phrase ✓ ~~~???'; // its base64 holds '+' and '/', so base64url differs
  const scan = (bytes: Buffer) => {
    fs.writeFileSync(path.join(dir, 'f'), bytes);
    return scanFile(dir, 'f', [canary]).hits.map((h) => [h.form, h.offset]);
  };

  it('finds the base64 and base64url text of a canary at each of the three alignments', () => {
    for (let shift = 0; shift < 3; shift++) {
      const value = Buffer.concat([crypto.randomBytes(shift + 3), Buffer.from(canary), crypto.randomBytes(4)]);
      for (const encoding of ['base64', 'base64url'] as const) {
        const hits = scan(Buffer.from(`{"v":"${value.toString(encoding)}"}`));
        expect(hits.length, `${encoding} at shift ${shift}`).toBe(1);
        expect(hits[0]![0]).toBe(encoding);
      }
    }
    expect(canaryForms(canary).map((f) => f.label)).toEqual(['utf-8', 'utf-16le', ...Array(3).fill(['base64', 'base64url']).flat()]);
    expect(canaryForms('plain words 42').filter((f) => f.label === 'base64/base64url')).toHaveLength(3);
  });

  it('reports the byte offset of every occurrence, across chunk boundaries too', () => {
    const at = (1 << 20) - 5; // straddles the first 1 MiB read
    const bytes = crypto.randomBytes(3 << 20);
    Buffer.from(canary).copy(bytes, at);
    Buffer.from(canary, 'utf16le').copy(bytes, 2 << 20);
    expect(scan(bytes)).toEqual([
      ['utf-8', at],
      ['utf-16le', 2 << 20],
    ]);
  });
});

describe('the classification', () => {
  it('gives every ciphertext a framing and every fixed-size value its size', () => {
    const all = Object.entries(COLUMNS).flatMap(([t, cols]) => Object.entries(cols).map(([c, spec]) => ({ at: `${t}.${c}`, ...spec })));
    expect(all.filter((c) => c.class === 'ciphertext').map((c) => c.at)).toEqual(['users.vault', 'conversations.meta_sealed', 'wrapped_keys.wrapped', 'envelopes.ct']);
    for (const c of all) {
      if (c.class === 'ciphertext') expect(c.framing, c.at).toBeDefined();
      if (c.class === 'signature') expect(c.bytes, c.at).toBe(64);
      if (c.class === 'public-key' || c.class === 'hash' || c.class === 'verifier') expect(c.bytes, c.at).toBe(32);
      if (c.type === 'text') expect(c.pattern, `${c.at} must not hold free text`).toBeDefined();
    }
  });
});
