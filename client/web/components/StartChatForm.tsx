// "Start a chat": a username and a button; says so when there is no such user.
import type { ChatsModel } from '../models/index.ts';

export function StartChatForm({ chats }: { chats: ChatsModel }) {
  const error = chats.startError.value;
  const busy = chats.starting.value;
  const onSubmit = async (e: SubmitEvent) => {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    const data = new FormData(form);
    if (await chats.startChat(String(data.get('peer') ?? ''))) form.reset();
  };
  return (
    <form class="start-chat" onSubmit={onSubmit} noValidate>
      <h2 class="section-title">Start a chat</h2>
      <label for="start-chat-username">Username to chat with</label>
      <div class="row">
        <input
          id="start-chat-username"
          name="peer"
          autocomplete="off"
          autocapitalize="none"
          spellcheck={false}
          required
          maxLength={32}
          aria-invalid={error ? true : undefined}
          aria-describedby={error ? 'start-chat-error' : undefined}
        />
        <button type="submit" disabled={busy}>
          Start chat
        </button>
      </div>
      {error && (
        <p id="start-chat-error" class="error" role="alert">
          {error}
        </p>
      )}
    </form>
  );
}
