// The rooms a user is in or has asked to join: creating a room, finding one by name and asking to
// join it, and routing the relay's room pushes (docs/PROTOCOL.md §Rooms).
import { signal, type ReadonlySignal } from '@preact/signals-core';
import {
  ConversationSummary,
  MyJoinRequests,
  OkResponse,
  RoomLookupResponse,
  RoomMetaSchema,
  UmbraError,
  randomBytes,
  randomKey,
  roomNameHash,
  sealRoomMeta,
  signJoinRequest,
  signStatement,
  toB64,
  wipe,
  wrapConversationKey,
  type RoomMeta,
  type ServerFrame,
} from '../../shared/index.ts';
import { Room } from './room.ts';
import { keyWire, metaWire } from './room-changes.ts';
import type { TimelineDeps } from './timeline.ts';

export interface RoomOptions {
  topic?: string;
  /** `open`: any online admin's client admits whoever asks; `private`: an admin approves each request. */
  policy: 'open' | 'private';
}

type RoomPush = Extract<ServerFrame, { t: 'roster' | 'join-request' | 'join-declined' }>;

export class RoomList {
  private readonly map = new Map<string, Room>();
  private readonly listSignal = signal<Room[]>([]);
  /** Rooms being created or opened: a push for the same id waits for the same object. */
  private readonly opening = new Map<string, Promise<Room>>();

  constructor(private readonly deps: () => TimelineDeps) {}

  get rooms(): ReadonlySignal<Room[]> {
    return this.listSignal;
  }

  get(id: string): Room | undefined {
    return this.map.get(id);
  }

  clear(): void {
    this.map.clear();
    this.opening.clear();
    this.listSignal.value = [];
  }

  private add(room: Room): Room {
    this.map.set(room.id, room);
    this.listSignal.value = [...this.map.values()];
    return room;
  }

  private drop(id: string): void {
    this.map.delete(id);
    this.listSignal.value = [...this.map.values()];
  }

  /**
   * Creates a room owned by this user: a signed first link, the epoch-0 key wrapped for itself, and
   * the settings sealed under it. The relay learns only the Argon2id hash of the normalised name.
   * Throws `conflict` if a room with that name exists.
   */
  async create(name: string, o: RoomOptions): Promise<Room> {
    const d = this.deps();
    const me = d.me.username;
    const nameHash = roomNameHash(name);
    const parsed = RoomMetaSchema.safeParse({ name: name.normalize('NFKC').trim().replace(/\s+/gu, ' '), topic: o.topic ?? '', policy: o.policy });
    if (!parsed.success) throw new UmbraError('bad_request', 'the room’s topic is too long');
    const meta: RoomMeta = parsed.data;
    const id = toB64(randomBytes(16));
    const sk = d.me.keys.signing.secretKey;
    const genesis = signStatement(
      { v: 1, kind: 'room-statement', conv: id, seq: 0, prev: null, actor: me, at: d.now(), body: { op: 'create', owner: { username: me, identityKey: toB64(d.me.keys.signing.publicKey) } } },
      sk,
    );
    const key = randomKey();
    const wrapped = wrapConversationKey(key, d.me.keys.agreement.publicKey, { conv: id, epoch: 0, recipient: me, wrappedBy: me }, sk);
    const sealed = sealRoomMeta(meta, id, 0, me, key, sk);
    wipe(key);
    const body = { id, nameHash: toB64(nameHash), genesis: { statement: genesis.statement, sig: toB64(genesis.sig) }, keys: [keyWire(wrapped)], meta: metaWire(sealed) };
    const creating = (async () => {
      let summary: ConversationSummary;
      try {
        summary = await d.http.post('/api/rooms', body, ConversationSummary);
      } catch (err) {
        if (err instanceof UmbraError && err.code === 'conflict') throw new UmbraError('conflict', 'a room with that name already exists');
        throw err;
      }
      return this.openNew(summary);
    })().finally(() => this.opening.delete(id));
    this.opening.set(id, creating);
    return creating;
  }

  /**
   * Finds a room by name and asks to join it with a signed request. Resolves with the room in
   * `waiting-for-approval` (or `member`, if this user already is one). Throws `not_found` ("no room
   * with that name").
   */
  async join(name: string): Promise<Room> {
    const d = this.deps();
    const nameHash = toB64(roomNameHash(name));
    let id: string;
    try {
      ({ id } = await d.http.post('/api/rooms/lookup', { nameHash }, RoomLookupResponse));
    } catch (err) {
      if (err instanceof UmbraError && err.code === 'not_found') throw new UmbraError('not_found', 'no room with that name');
      throw err;
    }
    const known = this.map.get(id);
    if (known?.state.value === 'member') return known;
    const room = known ?? this.add(Room.waiting(id, d));
    const before = room.state.value;
    room.markWaiting(name);
    const signed = signJoinRequest(
      { v: 1, kind: 'join-request', conv: id, username: d.me.username, identityKey: toB64(d.me.keys.signing.publicKey), at: d.now() },
      d.me.keys.signing.secretKey,
    );
    try {
      await d.http.post(`/api/rooms/${id}/join`, { statement: signed.statement, sig: toB64(signed.sig) }, OkResponse);
    } catch (err) {
      if (!(err instanceof UmbraError && err.code === 'conflict')) {
        // No request was made: a room this device had not known goes again, a known one is as it was.
        if (!known) this.drop(id);
        else room.unmarkWaiting(before);
        throw err;
      }
      await room.refresh(); // already a member
    }
    return room;
  }

  /** Opens (or updates) a room from a summary the client fetched. */
  async open(summary: ConversationSummary): Promise<Room> {
    const known = this.map.get(summary.id) ?? (await this.opening.get(summary.id));
    if (known) {
      await known.update(summary);
      return known;
    }
    const opening = this.openNew(summary).finally(() => this.opening.delete(summary.id));
    this.opening.set(summary.id, opening);
    return opening;
  }

  private async openNew(summary: ConversationSummary): Promise<Room> {
    const room = this.add(await Room.open(summary, this.deps()));
    await room.loadLatest();
    return room;
  }

  /** Fetches and opens a room this client has not seen (it was invited, or admitted elsewhere). */
  async load(id: string): Promise<Room> {
    const summary = await this.deps().http.get(`/api/conversations/${id}`, ConversationSummary);
    return this.open(summary);
  }

  onPush(frame: RoomPush): void {
    const room = this.map.get(frame.conv);
    switch (frame.t) {
      case 'roster':
        if (room) void room.resume().catch(() => {});
        else void this.load(frame.conv).catch(() => {});
        return;
      case 'join-request':
        room?.onJoinRequest();
        return;
      case 'join-declined':
        room?.onDeclined();
        return;
    }
  }

  /**
   * After every (re)connection: re-verifies each known room (the chain may have moved, this user
   * may have been admitted or removed while away), catches up, does an admin's duties, and learns
   * where this user's own join requests stand.
   */
  async afterConnect(lastSeqs: ReadonlyMap<string, number>): Promise<void> {
    await Promise.all(
      [...this.map.values()].map(async (room) => {
        try {
          await room.resume();
          if ((lastSeqs.get(room.id) ?? 0) > room.relaySeq) await room.catchUp();
        } catch {
          // Tried again on the next push or connection.
        }
      }),
    );
    let mine;
    try {
      mine = await this.deps().http.get('/api/rooms/requests/mine', MyJoinRequests);
    } catch {
      return;
    }
    for (const r of mine.requests) {
      const room = this.map.get(r.conv) ?? this.add(Room.waiting(r.conv, this.deps()));
      if (room.state.value === 'member') continue;
      room.markWaiting();
      if (r.status === 'declined') room.onDeclined();
    }
  }
}
