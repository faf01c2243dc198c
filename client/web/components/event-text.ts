// The text a message event shows as, in the chat and in the list preview.
import type { ChatMessage } from '../../sdk/index.ts';
import { missingCase } from '../../../shared/index.ts';

export function eventText(event: ChatMessage['event']): string {
  switch (event.kind) {
    case 'text':
      return event.body;
    default:
      return missingCase(event.kind);
  }
}
