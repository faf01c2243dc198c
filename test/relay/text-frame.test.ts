// The relay's pre-serialised text frames: byte for byte what `ws` itself would send, and read back
// by `ws`'s own frame parser as the same text, at every length boundary of RFC 6455 §5.2.
import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { textFrame } from '../../server/ws/text-frame.ts';

// `ws`'s own framer and parser; @types/ws leaves them out, so they are typed here as used.
interface WsInternals {
  Sender: { frame(data: Buffer, o: { fin: boolean; opcode: number; mask: boolean; readOnly: boolean; rsv1: boolean }): Buffer[] };
  Receiver: new (o: { isServer: boolean; maxPayload: number }) => EventEmitter & { write(chunk: Buffer): void };
}
const { Sender, Receiver } = createRequire(import.meta.url)('ws') as WsInternals;

/** What `ws` sends for this text from a server (unmasked, FIN, opcode 1). */
function wsFrame(text: string): Buffer {
  return Buffer.concat(Sender.frame(Buffer.from(text, 'utf8'), { fin: true, opcode: 1, mask: false, readOnly: false, rsv1: false }));
}

/** Every text message `ws`'s client-side parser reads out of these bytes. */
function parse(bytes: Buffer): string[] {
  const receiver = new Receiver({ isServer: false, maxPayload: 0 });
  const out: string[] = [];
  receiver.on('message', (data: Buffer, isBinary: boolean) => {
    expect(isBinary).toBe(false);
    out.push(data.toString('utf8'));
  });
  receiver.on('error', (err: Error) => {
    throw err;
  });
  receiver.write(bytes);
  return out;
}

// Lengths in UTF-8 bytes: each side of the 7-bit, 16-bit and 64-bit length forms.
const LENGTHS = [0, 1, 125, 126, 127, 65_535, 65_536, 70_000];

describe('textFrame', () => {
  it.each(LENGTHS)('frames %i ASCII bytes exactly as ws does', (n) => {
    const text = 'x'.repeat(n);
    const frame = textFrame(text);
    expect(frame.equals(wsFrame(text))).toBe(true);
    expect(parse(frame)).toEqual([text]);
  });

  it('counts multi-byte characters in bytes, not in string length', () => {
    // 42 four-byte characters: 84 UTF-16 units, 168 bytes, so the 16-bit length form.
    const text = '🔒'.repeat(42) + 'é';
    const frame = textFrame(text);
    expect(frame[1]).toBe(126);
    expect(frame.readUInt16BE(2)).toBe(170);
    expect(frame.equals(wsFrame(text))).toBe(true);
    expect(parse(frame)).toEqual([text]);
  });

  it('gives frames that parse back to back, as a corked socket writes them', () => {
    const texts = [JSON.stringify({ t: 'env', conv: 'c', item: { seq: 1 } }), 'y'.repeat(300), ''];
    expect(parse(Buffer.concat(texts.map(textFrame)))).toEqual(texts);
  });
});
