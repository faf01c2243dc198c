// The one error vocabulary shared by relay, SDK and UI (docs/PROTOCOL.md §Errors).

/** Every error code the relay or the SDK can produce. */
export const ERROR_CODES = [
  'bad_request',
  'payload_too_large',
  'unsupported_media_type',
  'unauthorized',
  'forbidden',
  'bad_origin',
  'not_found',
  'conflict',
  'username_taken',
  'invalid_credentials',
  'rate_limited',
  'weak_password',
  'weak_kdf_params',
  'identity_changed',
  'verification_failed',
  'duplicate_message',
  'timeout',
  'disconnected',
  'internal',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** The body of every failed HTTP response and every WebSocket `error` frame. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string };
}

/** A typed failure; the relay turns it into an ErrorBody, the SDK rethrows it. */
export class UmbraError extends Error {
  readonly code: ErrorCode;
  /** Seconds to wait before retrying, when the code is `rate_limited`. */
  readonly retryAfter: number | undefined;
  constructor(code: ErrorCode, message: string, retryAfter?: number) {
    super(message);
    this.name = 'UmbraError';
    this.code = code;
    this.retryAfter = retryAfter;
  }
  toBody(): ErrorBody {
    return { error: { code: this.code, message: this.message } };
  }
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && (ERROR_CODES as readonly string[]).includes(value);
}

/** Ends an exhaustive switch: a new union member becomes a compile error here. */
export function missingCase(value: never): never {
  throw new Error(`unhandled case: ${JSON.stringify(value)}`);
}
