// One open conversation: its header (back, name, safety number), the messages and the composer.
import type { Conversation } from '../../sdk/index.ts';
import type { ChatsModel } from '../models/index.ts';
import { Composer } from './Composer.tsx';
import { TimelineTools } from './TimelineTools.tsx';
import { MessageList } from './MessageList.tsx';
import { SafetyDialog } from './SafetyDialog.tsx';

export function ChatView({ chats, conv }: { chats: ChatsModel; conv: Conversation }) {
  const problem = conv.problem.value;
  const safety = chats.safety.value;
  return (
    <section class="chat-view" aria-labelledby="chat-title">
      <header class="chat-header">
        <button type="button" class="back icon-button" onClick={() => chats.select(null)}>
          <span aria-hidden="true">←</span>
          <span class="visually-hidden">Back to conversations</span>
        </button>
        <h2 id="chat-title" class="chat-title">
          {conv.peer}
        </h2>
        <button type="button" onClick={() => chats.openSafetyNumber(conv.peer)}>
          Verify safety number
        </button>
      </header>
      {!problem && <TimelineTools timeline={conv} />}
      {problem ? (
        <div class="problem" role="alert">
          <h3>This conversation can't be shown safely</h3>
          <p>Umbra checked it and found that {problem}. Its messages are hidden and sending is turned off.</p>
        </div>
      ) : (
        <MessageList
          conv={conv}
          label={`Messages with ${conv.peer}`}
          empty={`No messages yet. Only you and ${conv.peer} can read what is written here.`}
          onLoadOlder={() => void chats.loadOlder(conv)}
        />
      )}
      <ChatComposer chats={chats} conv={conv} />
      {safety && safety.username === conv.peer && <SafetyDialog chats={chats} view={safety} />}
    </section>
  );
}

function ChatComposer({ chats, conv }: { chats: ChatsModel; conv: Conversation }) {
  const hasAlert = chats.alerts.value.some((a) => a.username === conv.peer);
  return (
    <Composer
      draft={chats.draft(conv.id).value}
      blocked={chats.sendBlockedReason(conv)}
      error={chats.sendError(conv.id)}
      placeholder={`Message ${conv.peer}`}
      onDraft={(text) => chats.setDraft(conv.id, text)}
      onSend={(options) => void chats.send(conv, options)}
      onReviewAlert={hasAlert ? () => chats.reviewAlert(conv.peer) : undefined}
    />
  );
}
