// Writing a message: Enter sends, Shift+Enter starts a new line. Off, with the reason, while
// sending is not allowed (failed verification, an unverified key change, a room's standing).
// The next message may disappear on its own timer instead of the conversation's; the choice
// holds for that one message.
import { useEffect, useRef, useState } from 'preact/hooks';
import type { TimerSetting } from '../../../shared/index.ts';
import type { SendOptions } from '../../sdk/index.ts';
import { PRESET_CHOICES } from './timer-options.ts';

export interface ComposerProps {
  draft: string;
  /** Why sending is off, or null. */
  blocked: string | null;
  error: string | null;
  placeholder: string;
  onDraft: (text: string) => void;
  onSend: (options: SendOptions) => void;
  /** Offered beside the reason when a contact's key change paused sending. */
  onReviewAlert?: () => void;
}

export function Composer({ draft, blocked, error, placeholder, onDraft, onSend: send, onReviewAlert }: ComposerProps) {
  const [expiry, setExpiry] = useState('default');
  /** The text and choice of the message last sent: if it comes back to the draft unsent, so does the choice. */
  const sent = useRef<{ text: string; expiry: string } | null>(null);
  useEffect(() => {
    const last = sent.current;
    if (!last || draft === '') return;
    sent.current = null;
    if (draft === last.text) setExpiry(last.expiry);
  }, [draft]);
  const describedBy = [blocked ? 'composer-blocked' : '', error ? 'composer-error' : ''].filter(Boolean).join(' ') || undefined;
  const onSend = () => {
    if (blocked === null && draft.trim()) {
      // The choice is for this message only; the next one follows the conversation's timer.
      sent.current = { text: draft, expiry };
      setExpiry('default');
    }
    send(optionsFor(expiry));
  };
  const onSubmit = (e: SubmitEvent) => {
    e.preventDefault();
    onSend();
  };
  const onKeyDown = (e: KeyboardEvent) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      onSend();
    }
  };
  return (
    <form class="composer" onSubmit={onSubmit}>
      {blocked && (
        <p id="composer-blocked" class="composer-blocked">
          {blocked}{' '}
          {onReviewAlert && (
            <button type="button" class="link" onClick={onReviewAlert}>
              Review the key change
            </button>
          )}
        </p>
      )}
      {error && (
        <p id="composer-error" class="error" role="alert">
          {error}
        </p>
      )}
      <div class="composer-row">
        <label for="composer-input" class="visually-hidden">
          Message
        </label>
        <textarea
          id="composer-input"
          rows={2}
          placeholder={blocked ? 'Sending is off' : placeholder}
          value={draft}
          disabled={blocked !== null}
          aria-describedby={describedBy}
          onInput={(e) => onDraft(e.currentTarget.value)}
          onKeyDown={onKeyDown}
        />
        <button type="submit" class="primary" disabled={blocked !== null || !draft.trim()}>
          Send
        </button>
      </div>
      <div class="composer-options">
        <label for="composer-expiry">This message disappears</label>
        <select id="composer-expiry" value={expiry} disabled={blocked !== null} onChange={(e) => setExpiry(e.currentTarget.value)}>
          <option value="default">as the conversation is set</option>
          <option value="never">never</option>
          {PRESET_CHOICES.map((p) => (
            <option key={p.value} value={p.value}>
              after {p.label}
            </option>
          ))}
          {PRESET_CHOICES.map((p) => (
            <option key={`read-${p.value}`} value={`read-${p.value}`}>
              {p.label} after it is read
            </option>
          ))}
        </select>
      </div>
    </form>
  );
}

function optionsFor(choice: string): SendOptions {
  if (choice === 'default') return {};
  if (choice === 'never') return { timer: { ttlMs: null, mode: 'sent' } };
  const read = choice.startsWith('read-');
  const timer: TimerSetting = { ttlMs: Number(read ? choice.slice(5) : choice), mode: read ? 'read' : 'sent' };
  return { timer };
}
