// The rooms side of the UI: the room list, creating and joining rooms, the open room with its
// draft and sending, and the members panel (roles, fingerprints, join requests, admin actions).
import { computed, signal, type ReadonlySignal, type Signal } from '@preact/signals-core';
import { UmbraError, type ChatMessage, type Room, type RoomMember, type SendOptions, type UmbraClient } from '../../sdk/index.ts';
import { USERNAME_PATTERN, fingerprintDigits, isAdmin, toB64 } from '../../../shared/index.ts';
import type { ChatsModel } from './chats.ts';
import { ROOM_WORDS, USERNAME_RULE, describeError } from './words.ts';

export type RoomPolicy = 'open' | 'private';

/** What a member may do to another member, as the room's rules allow it for this user. */
export interface MemberActions {
  remove: boolean;
  promote: boolean;
  demote: boolean;
}

export class RoomsModel {
  private readonly selectedIdSignal = signal<string | null>(null);
  private readonly createErrorSignal = signal<string | null>(null);
  private readonly joinErrorSignal = signal<string | null>(null);
  private readonly busySignal = signal(false);
  private readonly membersOpenSignal = signal(false);
  private readonly actionErrorSignal = signal<string | null>(null);
  private readonly actingSignal = signal(false);
  private readonly sendErrorsSignal = signal<Readonly<Record<string, string>>>({});
  /** Names this user typed for rooms it asked to join, shown until the room's own settings can be read. */
  private readonly typedNamesSignal = signal<Readonly<Record<string, string>>>({});
  /** Rooms this user left itself (the SDK's `removed` covers both ways out). */
  private readonly leftSignal = signal<ReadonlySet<string>>(new Set());
  private readonly drafts = new Map<string, Signal<string>>();
  private readonly fingerprints = new Map<string, string[]>();

  readonly rooms: ReadonlySignal<Room[]>;
  readonly selected: ReadonlySignal<Room | null>;

  constructor(
    readonly client: UmbraClient,
    private readonly chats: ChatsModel,
  ) {
    this.rooms = computed(() => [...client.rooms.value].sort((a, b) => activity(b) - activity(a)));
    this.selected = computed(() => client.rooms.value.find((r) => r.id === this.selectedIdSignal.value) ?? null);
    // One thing is open at a time: opening a conversation closes the room.
    chats.selectedId.subscribe((id) => {
      if (id !== null) this.selectedIdSignal.value = null;
    });
    client.me.subscribe(() => this.reset());
  }

  get selectedId(): ReadonlySignal<string | null> {
    return this.selectedIdSignal;
  }
  get createError(): ReadonlySignal<string | null> {
    return this.createErrorSignal;
  }
  get joinError(): ReadonlySignal<string | null> {
    return this.joinErrorSignal;
  }
  get busy(): ReadonlySignal<boolean> {
    return this.busySignal;
  }
  get membersOpen(): ReadonlySignal<boolean> {
    return this.membersOpenSignal;
  }
  get actionError(): ReadonlySignal<string | null> {
    return this.actionErrorSignal;
  }
  get acting(): ReadonlySignal<boolean> {
    return this.actingSignal;
  }
  get me(): string | null {
    return this.client.me.value;
  }

  select(id: string | null): void {
    if (id !== null) this.chats.select(null);
    this.membersOpenSignal.value = false;
    this.actionErrorSignal.value = null;
    this.selectedIdSignal.value = id;
  }

  /** The room's name: its sealed settings, else the name typed to join it. */
  name(room: Room): string {
    return room.meta.value?.name ?? this.typedNamesSignal.value[room.id] ?? 'A room you asked to join';
  }

  /** A sentence for the room's standing, or null for a plain member. */
  stateWords(room: Room): string | null {
    switch (room.state.value) {
      case 'member':
        return null;
      case 'waiting-for-approval':
        return ROOM_WORDS.waiting;
      case 'declined':
        return ROOM_WORDS.declined;
      case 'removed':
        return this.leftSignal.value.has(room.id) ? ROOM_WORDS.left : ROOM_WORDS.removed;
    }
  }

  /** Why the composer of this room is off, or null when sending is allowed. */
  sendBlockedReason(room: Room): string | null {
    if (room.problem.value) return 'This room failed its security check, so sending is turned off.';
    switch (room.state.value) {
      case 'waiting-for-approval':
        return 'You can write here once an admin approves your request.';
      case 'declined':
        return 'You are not a member of this room.';
      case 'removed':
        return 'You can no longer write in this room.';
      case 'member':
        break;
    }
    if (room.needsRotation.value) {
      return isAdmin(room.myRole.value ?? undefined) ? 'Renew the room key to write here again.' : ROOM_WORDS.renewing;
    }
    const alerted = this.client.identityAlerts.value.find((a) => room.members.value.some((m) => m.username === a.username));
    if (alerted) return `${alerted.username}'s security key has changed. Sending is paused until you verify the new key.`;
    return null;
  }

  // ---- creating and joining ------------------------------------------------------------------

  /** Creates a room owned by this user and opens it. Resolves true when it is open. */
  async create(rawName: string, topic: string, policy: RoomPolicy): Promise<boolean> {
    const name = rawName.trim();
    this.createErrorSignal.value = null;
    if (!name) {
      this.createErrorSignal.value = 'Give the room a name.';
      return false;
    }
    return this.busyWith(async () => {
      try {
        const room = await this.client.createRoom(name, { topic: topic.trim(), policy });
        this.select(room.id);
        return true;
      } catch (err) {
        this.createErrorSignal.value = describeError(err, { roomName: true });
        return false;
      }
    });
  }

  /** Asks to join the room with this name and opens it (waiting, or member at once). */
  async join(rawName: string): Promise<boolean> {
    const name = rawName.trim();
    this.joinErrorSignal.value = null;
    if (!name) {
      this.joinErrorSignal.value = 'Enter the name of the room.';
      return false;
    }
    return this.busyWith(async () => {
      try {
        const room = await this.client.joinRoom(name);
        this.typedNamesSignal.value = { ...this.typedNamesSignal.peek(), [room.id]: name };
        this.select(room.id);
        return true;
      } catch (err) {
        this.joinErrorSignal.value = describeError(err, { roomName: true });
        return false;
      }
    });
  }

  private async busyWith<T>(run: () => Promise<T>): Promise<T> {
    this.busySignal.value = true;
    try {
      return await run();
    } finally {
      this.busySignal.value = false;
    }
  }

  // ---- writing -------------------------------------------------------------------------------

  draft(roomId: string): ReadonlySignal<string> {
    let d = this.drafts.get(roomId);
    if (!d) {
      d = signal('');
      this.drafts.set(roomId, d);
    }
    return d;
  }

  setDraft(roomId: string, text: string): void {
    (this.draft(roomId) as Signal<string>).value = text;
  }

  sendError(roomId: string): string | null {
    return this.sendErrorsSignal.value[roomId] ?? null;
  }

  /** Sends the draft; if sending fails, the text goes back into the draft. */
  async send(room: Room, options: SendOptions = {}): Promise<void> {
    const draft = this.draft(room.id) as Signal<string>;
    const text = draft.peek();
    if (!text.trim() || this.sendBlockedReason(room)) return;
    draft.value = '';
    this.setSendError(room.id, null);
    try {
      await room.sendText(text, options);
    } catch (err) {
      if (!draft.peek()) draft.value = text;
      // A blocked room says why in the composer; other failures are told here.
      if (!(err instanceof UmbraError && (err.code === 'identity_changed' || err.code === 'conflict'))) {
        this.setSendError(room.id, describeError(err));
      }
    }
  }

  async loadOlder(room: Room): Promise<void> {
    try {
      await room.loadOlder();
    } catch (err) {
      this.setSendError(room.id, describeError(err));
    }
  }

  private setSendError(roomId: string, message: string | null): void {
    const next = { ...this.sendErrorsSignal.peek() };
    if (message) next[roomId] = message;
    else delete next[roomId];
    this.sendErrorsSignal.value = next;
  }

  // ---- the members panel ---------------------------------------------------------------------

  openMembers(): void {
    this.actionErrorSignal.value = null;
    this.membersOpenSignal.value = true;
  }

  closeMembers(): void {
    this.membersOpenSignal.value = false;
    this.actionErrorSignal.value = null;
  }

  /** What this user may do to `member`, by the room's rules (docs/PROTOCOL.md §Rooms). */
  actionsFor(room: Room, member: RoomMember): MemberActions {
    const mine = room.myRole.value;
    const other = member.username !== this.client.me.value && member.role !== 'owner';
    const admin = room.state.value === 'member' && isAdmin(mine ?? undefined) && other;
    return {
      remove: admin && (member.role !== 'admin' || mine === 'owner'),
      promote: admin && member.role === 'member',
      demote: admin && mine === 'owner' && member.role === 'admin',
    };
  }

  /**
   * The 30-digit fingerprint of a member, as six groups of five: from the key this device pinned
   * for them (the room's record must carry that same key), or this user's own key. Null if unknown.
   */
  fingerprint(username: string, key?: Uint8Array): string[] | null {
    const identityKey = key ?? (username === this.client.me.value ? this.client.identityKey : this.client.directory.pinned(username));
    if (!identityKey) return null;
    const cacheKey = `${username}/${toB64(identityKey)}`;
    let groups = this.fingerprints.get(cacheKey);
    if (!groups) {
      groups = fingerprintDigits(username, identityKey).match(/\d{5}/g) ?? [];
      this.fingerprints.set(cacheKey, groups);
    }
    return groups;
  }

  remove(room: Room, username: string): Promise<boolean> {
    return this.act(() => room.remove(username), username);
  }
  promote(room: Room, username: string): Promise<boolean> {
    return this.act(() => room.promote(username), username);
  }
  demote(room: Room, username: string): Promise<boolean> {
    return this.act(() => room.demote(username), username);
  }
  approve(room: Room, username: string): Promise<boolean> {
    return this.act(() => room.approve(username), username);
  }
  decline(room: Room, username: string): Promise<boolean> {
    return this.act(() => room.decline(username), username);
  }

  /**
   * Admins: moves the room to a new key after someone left. This device's client does that by
   * itself; this is for when that attempt did not get through. Resolves true when it is done.
   */
  renewKey(room: Room): Promise<boolean> {
    if (!room.needsRotation.peek()) return Promise.resolve(true);
    return this.act(() => room.rotate());
  }

  /** Adds `rawUsername` to the room. Resolves true when they are in. */
  async invite(room: Room, rawUsername: string): Promise<boolean> {
    const username = rawUsername.trim().toLowerCase();
    this.actionErrorSignal.value = null;
    if (!USERNAME_PATTERN.test(username)) {
      this.actionErrorSignal.value = USERNAME_RULE;
      return false;
    }
    return this.act(() => room.invite(username), username);
  }

  /** Leaves the room; what was read stays visible. */
  async leave(room: Room): Promise<void> {
    const left = await this.act(() => room.leave());
    if (left) {
      this.leftSignal.value = new Set([...this.leftSignal.peek(), room.id]);
      this.membersOpenSignal.value = false;
    }
  }

  private async act(run: () => Promise<unknown>, username?: string): Promise<boolean> {
    if (this.actingSignal.peek()) return false;
    this.actingSignal.value = true;
    this.actionErrorSignal.value = null;
    try {
      await run();
      return true;
    } catch (err) {
      this.actionErrorSignal.value = describeError(err, { username });
      return false;
    } finally {
      this.actingSignal.value = false;
    }
  }

  private reset(): void {
    this.selectedIdSignal.value = null;
    this.createErrorSignal.value = null;
    this.joinErrorSignal.value = null;
    this.membersOpenSignal.value = false;
    this.actionErrorSignal.value = null;
    this.sendErrorsSignal.value = {};
    this.typedNamesSignal.value = {};
    this.leftSignal.value = new Set();
    this.drafts.clear();
    this.fingerprints.clear();
  }
}

/** The newest message of a room, for the list's preview line. */
export function lastRoomMessage(room: Room): ChatMessage | null {
  const list = room.messages.value;
  return list[list.length - 1] ?? null;
}

function activity(room: Room): number {
  return lastRoomMessage(room)?.at ?? Number.MAX_SAFE_INTEGER;
}
