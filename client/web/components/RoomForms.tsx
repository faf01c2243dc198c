// "Create a room" (name, topic, open or private) and "Join a room" (by name).
import type { RoomPolicy, RoomsModel } from '../models/index.ts';

export function CreateRoomForm({ rooms }: { rooms: RoomsModel }) {
  const error = rooms.createError.value;
  const busy = rooms.busy.value;
  const onSubmit = async (e: SubmitEvent) => {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    const data = new FormData(form);
    const policy: RoomPolicy = data.get('policy') === 'private' ? 'private' : 'open';
    if (await rooms.create(String(data.get('name') ?? ''), String(data.get('topic') ?? ''), policy)) form.reset();
  };
  return (
    <form class="room-form" onSubmit={onSubmit} aria-labelledby="create-room-title" noValidate>
      <h2 id="create-room-title" class="section-title">
        Create a room
      </h2>
      <label for="create-room-name">Room name</label>
      <input
        id="create-room-name"
        name="name"
        autocomplete="off"
        required
        maxLength={64}
        aria-invalid={error ? true : undefined}
        aria-describedby={error ? 'create-room-error' : undefined}
      />
      <label for="create-room-topic">Topic (optional)</label>
      <input id="create-room-topic" name="topic" autocomplete="off" maxLength={512} />
      <fieldset class="policy">
        <legend>Who gets in</legend>
        <label class="choice">
          <input type="radio" name="policy" value="open" checked aria-describedby="policy-open-hint" />
          Open
        </label>
        <span id="policy-open-hint" class="hint">
          Anyone who knows the name gets in at once.
        </span>
        <label class="choice">
          <input type="radio" name="policy" value="private" aria-describedby="policy-private-hint" />
          Private
        </label>
        <span id="policy-private-hint" class="hint">
          An admin approves each request.
        </span>
      </fieldset>
      <button type="submit" disabled={busy}>
        Create room
      </button>
      {error && (
        <p id="create-room-error" class="error" role="alert">
          {error}
        </p>
      )}
    </form>
  );
}

export function JoinRoomForm({ rooms }: { rooms: RoomsModel }) {
  const error = rooms.joinError.value;
  const busy = rooms.busy.value;
  const onSubmit = async (e: SubmitEvent) => {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    const data = new FormData(form);
    if (await rooms.join(String(data.get('name') ?? ''))) form.reset();
  };
  return (
    <form class="room-form" onSubmit={onSubmit} aria-labelledby="join-room-title" noValidate>
      <h2 id="join-room-title" class="section-title">
        Join a room
      </h2>
      <label for="join-room-name">Room name</label>
      <div class="row">
        <input
          id="join-room-name"
          name="name"
          autocomplete="off"
          required
          maxLength={64}
          aria-invalid={error ? true : undefined}
          aria-describedby={error ? 'join-room-error' : undefined}
        />
        <button type="submit" disabled={busy}>
          Join
        </button>
      </div>
      {error && (
        <p id="join-room-error" class="error" role="alert">
          {error}
        </p>
      )}
    </form>
  );
}
