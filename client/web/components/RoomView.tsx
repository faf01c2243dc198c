// One open room: its header (back, name, topic, members), where this user stands, the messages
// and the composer.
import type { Room } from '../../sdk/index.ts';
import type { RoomsModel } from '../models/index.ts';
import { Composer } from './Composer.tsx';
import { MembersDialog } from './MembersDialog.tsx';
import { MessageList } from './MessageList.tsx';
import { TimelineTools } from './TimelineTools.tsx';

export function RoomView({ rooms, room }: { rooms: RoomsModel; room: Room }) {
  const name = rooms.name(room);
  const topic = room.meta.value?.topic;
  const problem = room.problem.value;
  const state = room.state.value;
  const standing = rooms.stateWords(room);
  const unreadable = room.unreadable.value;
  const myRole = room.myRole.value;
  const admin = state === 'member' && (myRole === 'owner' || myRole === 'admin');
  // Only an admin can answer: a member who was just demoted is not sent to a panel with nothing in it.
  const requests = admin ? room.pendingRequests.value.length : 0;
  // Someone left and the key they hold is still current: an admin's client renews it, and offers
  // the admin a way to finish it when that did not get through.
  const renew = admin && !problem && room.needsRotation.value;
  const membersOpen = rooms.membersOpen.value;
  const actionError = renew && !membersOpen ? rooms.actionError.value : null;
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
      {state === 'member' && !problem && <TimelineTools timeline={room} />}
      {standing && (
        <p class={`room-state room-state-${state}`} role="status">
          {standing}
        </p>
      )}
      {renew && (
        <div class="room-state room-renew">
          <p role="status">Someone left, so this room needs a new key before anyone can write again.</p>
          <button type="button" disabled={rooms.acting.value} onClick={() => void rooms.renewKey(room)}>
            Renew the room key
          </button>
          {actionError && (
            <p class="error" role="alert">
              {actionError}
            </p>
          )}
        </div>
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
        onSend={(options) => void rooms.send(room, options)}
      />
      {membersOpen && state === 'member' && <MembersDialog rooms={rooms} room={room} name={name} />}
    </section>
  );
}
