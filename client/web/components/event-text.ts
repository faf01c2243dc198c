// The text a message event shows as, in the chat and in the list preview.
import type { ChatMessage } from '../../sdk/index.ts';
import { describeTimer, missingCase } from '../../../shared/index.ts';

/** A list preview: a burn-after-reading message from someone else is not shown before it is opened. */
export function previewText(m: ChatMessage): string {
  if (!m.mine && m.burnAfterMs !== null) return 'Burn-after-reading message: open the conversation to read it';
  return eventText(m.event);
}

export function eventText(event: ChatMessage['event']): string {
  switch (event.kind) {
    case 'text':
      return event.body;
    case 'timer':
      if (event.ttlMs === null) return 'turned off disappearing messages';
      return event.mode === 'read'
        ? `set messages to disappear ${describeTimer(event.ttlMs)} after they are read`
        : `set messages to disappear after ${describeTimer(event.ttlMs)}`;
    case 'opened':
      return 'opened messages';
    default:
      return missingCase(event);
  }
}
