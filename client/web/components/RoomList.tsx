// The list of rooms: each entry names the room and shows where this user stands or the last message.
import type { Room } from '../../sdk/index.ts';
import { lastRoomMessage, type RoomsModel } from '../models/index.ts';
import { previewText } from './event-text.ts';
import { formatTime } from './time.ts';

export function RoomList({ rooms }: { rooms: RoomsModel }) {
  const list = rooms.rooms.value;
  const selectedId = rooms.selectedId.value;
  return (
    <nav class="conversations rooms" aria-label="Rooms">
      <h2 class="section-title">Rooms</h2>
      {list.length === 0 ? (
        <p class="hint">No rooms yet. Create one, or join one by its name.</p>
      ) : (
        <ul>
          {list.map((r) => (
            <li key={r.id}>
              <RoomEntry rooms={rooms} room={r} current={r.id === selectedId} />
            </li>
          ))}
        </ul>
      )}
    </nav>
  );
}

function RoomEntry({ rooms, room, current }: { rooms: RoomsModel; room: Room; current: boolean }) {
  const last = lastRoomMessage(room);
  const problem = room.problem.value;
  const standing = rooms.stateWords(room);
  const preview = problem
    ? 'Failed its security check'
    : standing ?? (last ? `${last.mine ? 'You' : last.sender}: ${previewText(last)}` : 'No messages yet');
  return (
    <button type="button" class="conversation" aria-current={current ? 'true' : undefined} onClick={() => rooms.select(room.id)}>
      <span class="conversation-top">
        <span class="conversation-peer">{rooms.name(room)}</span>
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
