// Encoding of the typed plaintext event carried inside an envelope (docs/PROTOCOL.md §Events).
import { UmbraError, missingCase } from './errors.ts';
import type { EnvelopeType } from './protocol.ts';
import { PlainEvent } from './schemas.ts';
import { fromUtf8, utf8 } from './crypto/bytes.ts';

/** The envelope type an event must travel under; checked again after decryption. */
export function envelopeTypeOf(event: PlainEvent): EnvelopeType {
  switch (event.kind) {
    case 'text':
      return 'content';
    case 'timer':
      return 'setting';
    case 'opened':
      return 'control';
    default:
      return missingCase(event);
  }
}

/** JSON, uncompressed (compression before encryption leaks length information). */
export function encodeEvent(event: PlainEvent): Uint8Array {
  return utf8(JSON.stringify(PlainEvent.parse(event)));
}

export function decodeEvent(bytes: Uint8Array): PlainEvent {
  try {
    return PlainEvent.parse(JSON.parse(fromUtf8(bytes)));
  } catch {
    throw new UmbraError('verification_failed', 'decrypted event is malformed');
  }
}
