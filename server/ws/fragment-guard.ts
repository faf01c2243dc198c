// Counts WebSocket frames per message by reading frame headers off the raw socket (RFC 6455 §5.2),
// because `ws` caps a message's bytes but not how many fragments it arrives in. The state lives in
// a few fields of the connection itself, so an idle connection costs no extra objects.

/** Where a connection keeps its guard's state; starts as `FRAGMENT_GUARD_START`. */
export interface FragmentState {
  /** The bytes of a frame header read so far (a shared empty buffer between frames). */
  fgHeader: Buffer;
  /** Payload bytes of the current frame still to skip. */
  fgRemaining: number;
  /** Frames of the current message so far; -1 once the limit tripped. */
  fgFragments: number;
}

const NO_HEADER = Buffer.alloc(0);

export const FRAGMENT_GUARD_START: Readonly<FragmentState> = { fgHeader: NO_HEADER, fgRemaining: 0, fgFragments: 0 };

/**
 * Reads `chunk` (raw bytes from the socket) through the guard; returns false, once, when a
 * message passes `maxFragments` frames (the caller closes the connection), true otherwise.
 */
export function guardChunk(s: FragmentState, chunk: Buffer, maxFragments: number): boolean {
  let offset = 0;
  while (offset < chunk.length && s.fgFragments >= 0) {
    if (s.fgRemaining > 0) {
      const n = Math.min(s.fgRemaining, chunk.length - offset);
      s.fgRemaining -= n;
      offset += n;
      continue;
    }
    const need = headerLength(s.fgHeader);
    const take = Math.min(need - s.fgHeader.length, chunk.length - offset);
    s.fgHeader = Buffer.concat([s.fgHeader, chunk.subarray(offset, offset + take)]);
    offset += take;
    if (s.fgHeader.length < need) continue;
    if (need === 2 && headerLength(s.fgHeader) > 2) continue; // extended length or mask still to come
    if (!onFrame(s, maxFragments)) return false;
  }
  return true;
}

/** Bytes of the current frame's header, as far as can be told from what has arrived. */
function headerLength(h: Buffer): number {
  if (h.length < 2) return 2;
  const b1 = h[1]!;
  const len7 = b1 & 0x7f;
  return 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (b1 & 0x80 ? 4 : 0);
}

function onFrame(s: FragmentState, maxFragments: number): boolean {
  const h = s.fgHeader;
  s.fgHeader = NO_HEADER;
  const b0 = h[0]!;
  const len7 = h[1]! & 0x7f;
  s.fgRemaining = len7 === 126 ? h.readUInt16BE(2) : len7 === 127 ? Number(h.readBigUInt64BE(2)) : len7;
  const opcode = b0 & 0x0f;
  if (opcode >= 0x8) return true; // control frames may interleave and never fragment
  s.fgFragments = opcode === 0 ? s.fgFragments + 1 : 1;
  if (s.fgFragments > maxFragments) {
    s.fgFragments = -1;
    return false;
  }
  if (b0 & 0x80) s.fgFragments = 0; // FIN
  return true;
}
