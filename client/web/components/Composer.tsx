// Writing a message: Enter sends, Shift+Enter starts a new line. Off, with the reason, while
// sending is not allowed (failed verification, an unverified key change, a room's standing).
export interface ComposerProps {
  draft: string;
  /** Why sending is off, or null. */
  blocked: string | null;
  error: string | null;
  placeholder: string;
  onDraft: (text: string) => void;
  onSend: () => void;
  /** Offered beside the reason when a contact's key change paused sending. */
  onReviewAlert?: () => void;
}

export function Composer({ draft, blocked, error, placeholder, onDraft, onSend, onReviewAlert }: ComposerProps) {
  const describedBy = [blocked ? 'composer-blocked' : '', error ? 'composer-error' : ''].filter(Boolean).join(' ') || undefined;
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
    </form>
  );
}
