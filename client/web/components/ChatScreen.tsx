// Signed in: the conversation list beside the open chat (one at a time on a phone).
import type { ChatsModel } from '../models/index.ts';
import { ChatView } from './ChatView.tsx';
import { ConversationList } from './ConversationList.tsx';
import { IdentityAlertDialog } from './IdentityAlertDialog.tsx';
import { StartChatForm } from './StartChatForm.tsx';

export function ChatScreen({ chats }: { chats: ChatsModel }) {
  const selected = chats.selected.value;
  const alert = chats.activeAlert.value;
  return (
    <div class={`chat-screen ${selected ? 'showing-chat' : 'showing-list'}`}>
      <aside class="sidebar">
        <StartChatForm chats={chats} />
        <ConversationList chats={chats} />
      </aside>
      <main class="chat-pane">
        {selected ? (
          <ChatView key={selected.id} chats={chats} conv={selected} />
        ) : (
          <p class="empty-chat">Choose a conversation, or start one with someone's username.</p>
        )}
      </main>
      {alert && <IdentityAlertDialog key={alert.username} chats={chats} alert={alert} />}
    </div>
  );
}
