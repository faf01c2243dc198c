// The list of conversations: each entry names the other person and previews the last message.
import type { Conversation } from '../../sdk/index.ts';
import { lastMessage, type ChatsModel } from '../models/index.ts';
import { previewText } from './event-text.ts';
import { formatTime } from './time.ts';

export function ConversationList({ chats }: { chats: ChatsModel }) {
  const list = chats.conversations.value;
  const selectedId = chats.selectedId.value;
  return (
    <nav class="conversations" aria-label="Conversations">
      <h2 class="section-title">Conversations</h2>
      {list.length === 0 ? (
        <p class="hint">No conversations yet.</p>
      ) : (
        <ul>
          {list.map((c) => (
            <li key={c.id}>
              <ConversationEntry conv={c} current={c.id === selectedId} onOpen={() => chats.select(c.id)} />
            </li>
          ))}
        </ul>
      )}
    </nav>
  );
}

function ConversationEntry({ conv, current, onOpen }: { conv: Conversation; current: boolean; onOpen: () => void }) {
  const last = lastMessage(conv);
  const problem = conv.problem.value;
  const preview = problem ? 'Failed its security check' : last ? `${last.mine ? 'You: ' : ''}${previewText(last)}` : 'No messages yet';
  return (
    <button type="button" class="conversation" aria-current={current ? 'true' : undefined} onClick={onOpen}>
      <span class="conversation-top">
        <span class="conversation-peer">{conv.peer}</span>
        {last && (
          <time class="conversation-time" dateTime={new Date(last.at).toISOString()}>
            {formatTime(last.at)}
          </time>
        )}
      </span>
      <span class={`conversation-preview${problem ? ' warning' : ''}`}>{preview}</span>
    </button>
  );
}
