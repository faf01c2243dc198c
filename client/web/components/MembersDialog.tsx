// A room's members with their roles and fingerprints (to compare out of band), and for admins the
// join requests, inviting, removing and changing roles; leaving for everyone but the owner.
import type { JoinRequestView, Room, RoomMember } from '../../sdk/index.ts';
import type { RoomsModel } from '../models/index.ts';
import { useModal } from './modal.ts';
import { SafetyDigits } from './SafetyDigits.tsx';

const ROLE_WORDS: Record<RoomMember['role'], string> = { owner: 'Owner', admin: 'Admin', member: 'Member' };

export function MembersDialog({ rooms, room, name }: { rooms: RoomsModel; room: Room; name: string }) {
  const ref = useModal();
  const members = room.members.value;
  const myRole = room.myRole.value;
  const admin = myRole === 'owner' || myRole === 'admin';
  const requests = admin ? room.pendingRequests.value : [];
  const error = rooms.actionError.value;
  const busy = rooms.acting.value;
  const onInvite = async (e: SubmitEvent) => {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    if (await rooms.invite(room, String(new FormData(form).get('username') ?? ''))) form.reset();
  };
  return (
    <dialog ref={ref} class="dialog members-dialog" aria-labelledby="members-title" onClose={() => rooms.closeMembers()}>
      <h2 id="members-title">Members of {name}</h2>
      <p class="hint">
        Each person's fingerprint is 30 digits. Compare them with what the others see on their own screens, in person or on a call:
        if they match, messages in this room reach exactly these people.
      </p>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {requests.length > 0 && (
        <section aria-labelledby="requests-title">
          <h3 id="requests-title" class="section-title">
            Asking to join
          </h3>
          <ul class="member-list">
            {requests.map((r) => (
              <RequestItem key={r.username} rooms={rooms} room={room} request={r} busy={busy} />
            ))}
          </ul>
        </section>
      )}
      <section aria-labelledby="member-list-title">
        <h3 id="member-list-title" class="section-title">
          {members.length === 1 ? '1 member' : `${members.length} members`}
        </h3>
        <ul class="member-list">
          {members.map((m) => (
            <MemberItem key={m.username} rooms={rooms} room={room} member={m} busy={busy} />
          ))}
        </ul>
      </section>
      {admin && (
        <form class="invite" onSubmit={onInvite} noValidate>
          <label for="invite-username">Username to invite</label>
          <div class="row">
            <input id="invite-username" name="username" autocomplete="off" autocapitalize="none" spellcheck={false} maxLength={32} required />
            <button type="submit" disabled={busy}>
              Invite
            </button>
          </div>
        </form>
      )}
      <div class="dialog-actions">
        {myRole !== 'owner' && (
          <button type="button" class="danger" disabled={busy} onClick={() => void rooms.leave(room)}>
            Leave room
          </button>
        )}
        <button type="button" class="primary" onClick={() => ref.current?.close()}>
          Close
        </button>
      </div>
    </dialog>
  );
}

function MemberItem({ rooms, room, member, busy }: { rooms: RoomsModel; room: Room; member: RoomMember; busy: boolean }) {
  const who = member.username;
  const me = who === rooms.me;
  const can = rooms.actionsFor(room, member);
  const groups = rooms.fingerprint(who);
  return (
    <li class="member">
      <p class="member-top">
        <span class="member-name">{me ? `${who} (you)` : who}</span> <span class="member-role">{ROLE_WORDS[member.role]}</span>
      </p>
      {groups ? <SafetyDigits groups={groups} label={`Fingerprint of ${who}`} /> : <p class="hint">Fingerprint not known yet.</p>}
      {(can.remove || can.promote || can.demote) && (
        <div class="member-actions">
          {can.promote && (
            <button type="button" disabled={busy} onClick={() => void rooms.promote(room, who)}>
              Make {who} admin
            </button>
          )}
          {can.demote && (
            <button type="button" disabled={busy} onClick={() => void rooms.demote(room, who)}>
              Make {who} a member
            </button>
          )}
          {can.remove && (
            <button type="button" class="danger" disabled={busy} onClick={() => void rooms.remove(room, who)}>
              Remove {who}
            </button>
          )}
        </div>
      )}
    </li>
  );
}

function RequestItem({ rooms, room, request, busy }: { rooms: RoomsModel; room: Room; request: JoinRequestView; busy: boolean }) {
  const who = request.username;
  const groups = rooms.fingerprint(who, request.identityKey);
  return (
    <li class="member">
      <p class="member-top">
        <span class="member-name">{who}</span>
      </p>
      {groups && <SafetyDigits groups={groups} label={`Fingerprint of ${who}`} />}
      <div class="member-actions">
        <button type="button" class="primary" disabled={busy} onClick={() => void rooms.approve(room, who)}>
          Approve {who}
        </button>
        <button type="button" disabled={busy} onClick={() => void rooms.decline(room, who)}>
          Decline {who}
        </button>
      </div>
    </li>
  );
}
