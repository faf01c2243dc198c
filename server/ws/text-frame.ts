// One WebSocket text frame (RFC 6455 §5.2), serialised once and written as is to every reader.
// A push goes to every member of a conversation: framing it here once, instead of handing the
// string to `ws` for each reader, spares each reader a UTF-8 length scan, a header buffer, a second
// socket write and a string-to-bytes conversion in the kernel write (docs/PROTOCOL.md §Delivery).

/** Server frames are never masked: FIN + opcode 1 (text), then the length in 7, 7+16 or 7+64 bits. */
const FIN_TEXT = 0x81;

/** The frame's bytes: header and UTF-8 payload in one buffer. */
export function textFrame(payload: string): Buffer {
  const length = Buffer.byteLength(payload, 'utf8');
  const header = length < 126 ? 2 : length < 65_536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(header + length);
  frame[0] = FIN_TEXT;
  if (header === 2) frame[1] = length;
  else if (header === 4) {
    frame[1] = 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 127;
    frame.writeBigUInt64BE(BigInt(length), 2);
  }
  frame.write(payload, header, 'utf8');
  return frame;
}
