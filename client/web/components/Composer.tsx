// Writing a message: Enter sends, Shift+Enter starts a new line. Off, with the reason, while the
// conversation failed verification or the contact's key change is not yet verified.
import type { Conversation } from '../../sdk/index.ts';
import type { ChatsModel } from '../models/index.ts';

export function Composer({ chats, conv }: { chats: ChatsModel; conv: Conversation }) {
  const draft = chats.draft(conv.id).value;
  const blocked = chats.sendBlockedReason(conv);
  const error = chats.sendError(conv.id);
  const hasAlert = chats.alerts.value.some((a) => a.username === conv.peer);
  const describedBy = [blocked ? 'composer-blocked' : '', error ? 'composer-error' : ''].filter(Boolean).join(' ') || undefined;
  const onSubmit = (e: SubmitEvent) => {
    e.preventDefault();
    void chats.send(conv);
  };
  const onKeyDown = (e: KeyboardEvent) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      void chats.send(conv);
    }
  };
  return (
    <form class="composer" onSubmit={onSubmit}>
      {blocked && (
        <p id="composer-blocked" class="composer-blocked">
          {blocked}{' '}
          {hasAlert && (
            <button type="button" class="link" onClick={() => chats.reviewAlert(conv.peer)}>
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
          placeholder={blocked ? 'Sending is off' : `Message ${conv.peer}`}
          value={draft}
          disabled={blocked !== null}
          aria-describedby={describedBy}
          onInput={(e) => chats.setDraft(conv.id, e.currentTarget.value)}
          onKeyDown={onKeyDown}
        />
        <button type="submit" class="primary" disabled={blocked !== null || !draft.trim()}>
          Send
        </button>
      </div>
    </form>
  );
}
