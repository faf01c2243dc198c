// Maps the shared error vocabulary onto HTTP statuses; the one place that does.
import { missingCase, type ErrorCode } from '../shared/index.ts';

export function httpStatus(code: ErrorCode): 400 | 401 | 403 | 404 | 409 | 413 | 415 | 429 | 500 | 503 | 504 {
  switch (code) {
    case 'bad_request':
    case 'weak_password':
    case 'weak_kdf_params':
    case 'verification_failed':
      return 400;
    case 'unauthorized':
    case 'invalid_credentials':
      return 401;
    case 'forbidden':
    case 'bad_origin':
      return 403;
    case 'not_found':
      return 404;
    case 'conflict':
    case 'username_taken':
    case 'identity_changed':
    case 'duplicate_message':
      return 409;
    case 'payload_too_large':
      return 413;
    case 'unsupported_media_type':
      return 415;
    case 'rate_limited':
      return 429;
    case 'internal':
      return 500;
    case 'disconnected':
      return 503;
    case 'timeout':
      return 504;
    default:
      return missingCase(code);
  }
}
