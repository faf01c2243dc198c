// One open room: its header (back, name, topic, members), where this user stands, the messages
// and the composer.
import type { Room } from '../../sdk/index.ts';
import type { RoomsModel } from '../models/index.ts';
import { Composer } from './Composer.tsx';
import { MembersDialog } from './MembersDialog.tsx';
import { MessageList } from './MessageList.tsx';

export function RoomView({ rooms, room }: { rooms: RoomsModel; room: Room }) {
  const name = rooms.name(room);
  const topic = room.meta.value?.topic;
  const problem = room.problem.value;
  const state = room.state.value;
  const standing = rooms.stateWords(room);
  const unreadable = room.unreadable.value;
  const requests = state === 'member' ? room.pendingRequests.value.length : 0;
  return (
    <section class="chat-view" aria-labelledby="room-title">
      <header class="chat-header">
        <button type="button" class="back icon-button" onClick={() => rooms.select(null)}>
          <span aria-hidden="true">←</span>
          <span class="visually-hidden">Back to the lists</span>
        </button>
        <div class="room-heading">
          <h2 id="room-title" class="chat-title">
            {name}
          </h2>
          {topic && <p class="room-topic">{topic}</p>}
        </div>
        {state === 'member' && (
          <button type="button" onClick={() => rooms.openMembers()}>
            Members
          </button>
        )}
      </header>
      {standing && (
        <p class={`room-state room-state-${state}`} role="status">
          {standing}
        </p>
      )}
      {requests > 0 && (
        <p class="room-requests">
          {requests === 1 ? '1 person asks to join.' : `${requests} people ask to join.`} Open Members to answer.
        </p>
      )}
      {problem ? (
        <div class="problem" role="alert">
          <h3>This room can't be shown safely</h3>
          <p>Umbra checked it and found that {problem}. Its messages are hidden and sending is turned off.</p>
        </div>
      ) : (
        <>
          {unreadable > 0 && (
            <p class="hint room-unreadable">
              {unreadable === 1 ? '1 message was' : `${unreadable} messages were`} sent while you were not a member; they are not
              readable for you.
            </p>
          )}
          <MessageList
            conv={room}
            label={`Messages in ${name}`}
            empty={state === 'member' ? 'No messages yet. Only the members of this room can read what is written here.' : 'No messages to show.'}
            onLoadOlder={() => void rooms.loadOlder(room)}
          />
        </>
      )}
      <Composer
        draft={rooms.draft(room.id).value}
        blocked={rooms.sendBlockedReason(room)}
        error={rooms.sendError(room.id)}
        placeholder={`Message ${name}`}
        onDraft={(text) => rooms.setDraft(room.id, text)}
        onSend={() => void rooms.send(room)}
      />
      {rooms.membersOpen.value && state === 'member' && <MembersDialog rooms={rooms} room={room} name={name} />}
    </section>
  );
}
