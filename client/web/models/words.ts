// The words people see for the SDK's error codes and progress steps.
import { UmbraError, type ErrorCode, type Progress } from '../../sdk/index.ts';
import { missingCase } from '../../../shared/index.ts';

/** What the failed action was about, so "not found" can name the thing that was not found. */
export interface ErrorContext {
  username?: string;
  /** The action named a room: "not found" and "already exists" are about the room's name. */
  roomName?: boolean;
}

/** A sentence for any thrown value; UmbraErrors get one per code. */
export function describeError(err: unknown, context: ErrorContext = {}): string {
  if (!(err instanceof UmbraError)) return 'Something went wrong. Try again.';
  return describeCode(err.code, err, context);
}

function describeCode(code: ErrorCode, err: UmbraError, context: ErrorContext): string {
  switch (code) {
    case 'invalid_credentials':
      return 'Wrong username or password.';
    case 'rate_limited':
      return err.retryAfter ? `Too many attempts. Try again in ${waitWords(err.retryAfter)}.` : 'Too many attempts. Try again later.';
    case 'username_taken':
      return 'That username is already taken. Choose another one.';
    case 'weak_password':
      // The SDK's own sentence says which rule the password broke.
      return err.message;
    case 'weak_kdf_params':
      return 'The server asked for unsafe key settings, so Umbra stopped. Your password was not used.';
    case 'disconnected':
      return "Can't reach the server. Check your connection and try again.";
    case 'timeout':
      return 'The server took too long to answer. Try again.';
    case 'not_found':
      if (context.roomName) return 'There is no room with that name.';
      return context.username ? `There is no user called “${context.username}”.` : 'That does not exist (any more).';
    case 'identity_changed':
      return context.username
        ? `${context.username}'s security key has changed. Verify it before sending.`
        : "A contact's security key has changed. Verify it before sending.";
    case 'verification_failed':
      return 'Something the server sent failed its security check, so Umbra did not use it.';
    case 'unauthorized':
      return 'You are not logged in any more. Log in again.';
    case 'forbidden':
      return 'You are not allowed to do that.';
    case 'bad_origin':
      return 'The server refused this page. Open Umbra from its own address.';
    case 'bad_request':
      return capitalise(err.message);
    case 'payload_too_large':
      return 'That is too long to send.';
    case 'unsupported_media_type':
      return 'The server did not understand this request. Reload the page and try again.';
    case 'conflict':
      if (context.roomName) return 'A room with that name already exists.';
      return 'Something changed at the same time on another device. Try again.';
    case 'duplicate_message':
      return 'That message was already sent.';
    case 'internal':
      return 'Something went wrong on the server. Try again in a moment.';
    default:
      return missingCase(code);
  }
}

function waitWords(seconds: number): string {
  if (seconds < 120) return seconds === 1 ? '1 second' : `${seconds} seconds`;
  const minutes = Math.ceil(seconds / 60);
  return `${minutes} minutes`;
}

function capitalise(s: string): string {
  const t = s.charAt(0).toUpperCase() + s.slice(1);
  return /[.!?]$/.test(t) ? t : `${t}.`;
}

export function progressLabel(p: Progress): string {
  switch (p) {
    case 'checking-password':
      return 'Checking your password…';
    case 'deriving-keys':
      return 'Deriving keys…';
    case 'generating-keys':
      return 'Generating your keys…';
    case 'contacting-relay':
      return 'Contacting the server…';
    case 'opening-vault':
      return 'Opening your key vault…';
    default:
      return missingCase(p);
  }
}

export const USERNAME_RULE = 'Usernames are 3 to 32 characters: lowercase letters, digits, “_”, “.” and “-”, starting with a letter or digit.';

/** The room-state sentences the room view shows, one per state that is not plain membership. */
export const ROOM_WORDS = {
  waiting: 'Waiting for an admin to approve your request…',
  declined: 'Your request was declined.',
  removed: 'You were removed from this room.',
  left: 'You left this room.',
  renewing: 'Waiting for an admin to renew the room key…',
} as const;
