// Signed in: the conversation and room lists beside the open chat or room (one at a time on a phone).
import type { ChatsModel, RoomsModel } from '../models/index.ts';
import { ChatView } from './ChatView.tsx';
import { ConversationList } from './ConversationList.tsx';
import { IdentityAlertDialog } from './IdentityAlertDialog.tsx';
import { CreateRoomForm, JoinRoomForm } from './RoomForms.tsx';
import { RoomList } from './RoomList.tsx';
import { RoomView } from './RoomView.tsx';
import { StartChatForm } from './StartChatForm.tsx';

export function ChatScreen({ chats, rooms }: { chats: ChatsModel; rooms: RoomsModel }) {
  const selected = chats.selected.value;
  const room = rooms.selected.value;
  const alert = chats.activeAlert.value;
  return (
    <div class={`chat-screen ${selected || room ? 'showing-chat' : 'showing-list'}`}>
      <aside class="sidebar">
        <StartChatForm chats={chats} />
        <ConversationList chats={chats} />
        <RoomList rooms={rooms} />
        <JoinRoomForm rooms={rooms} />
        <CreateRoomForm rooms={rooms} />
      </aside>
      <main class="chat-pane">
        {selected ? (
          <ChatView key={selected.id} chats={chats} conv={selected} />
        ) : room ? (
          <RoomView key={room.id} rooms={rooms} room={room} />
        ) : (
          <p class="empty-chat">Choose a conversation or a room, start a chat with someone's username, or create or join a room.</p>
        )}
      </main>
      {alert && <IdentityAlertDialog key={alert.username} chats={chats} alert={alert} />}
    </div>
  );
}
