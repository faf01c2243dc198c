// A group room as a member's client sees it: the verified membership chain and what follows from
// it (members and roles, epoch keys, settings, this user's standing), the receive checks for room
// envelopes, and the room's actions (docs/PROTOCOL.md §Rooms).
import { computed, signal, type ReadonlySignal, type Signal } from '@preact/signals-core';
import {
  ConversationSummary,
  UmbraError,
  equalBytes,
  fromB64,
  isAdmin,
  type Chain,
  type EnvelopeWire,
  type Role,
  type RoomMeta,
  type SealedEnvelope,
  type StoredEnvelope,
} from '../../shared/index.ts';
import { JoinRequests, type JoinRequestView } from './join-requests.ts';
import { addPlan, leavePlan, postChange, removePlan, rolePlan, rotatePlan, type ChangeTarget, type Plan } from './room-changes.ts';
import { verifyRoomView, type RoomView } from './room-view.ts';
import type { RejectReason } from './stats.ts';
import { Timeline, type Admission, type ChatMessage, type SendContext, type SendOptions, type TimelineDeps } from './timeline.ts';

/**
 * This user's standing: `member`; `waiting-for-approval` after joinRoom until an admin admits or
 * declines; `declined`; `removed` once no longer a member (removed by an admin, or left).
 */
export type RoomState = 'member' | 'waiting-for-approval' | 'declined' | 'removed';

export interface RoomMember {
  username: string;
  role: Role;
}

export class Room extends Timeline {
  private view: RoomView | null = null;
  private readonly stateSignal: Signal<RoomState>;
  private readonly membersSignal = signal<RoomMember[]>([]);
  private readonly metaSignal = signal<RoomMeta | null>(null);
  private readonly needsRotationSignal = signal(false);
  private readonly unreadableSignal = signal(0);
  private readonly unsignedSignal = signal<string[]>([]);
  private readonly requestedNameSignal = signal<string | null>(null);
  private readonly myRoleSignal: ReadonlySignal<Role | null>;
  private readonly requests: JoinRequests;
  private readonly target: ChangeTarget;
  /** Member who left or was removed → the last seq read when this client learnt it. */
  private readonly endedAt = new Map<string, number>();
  /** Epoch → the lowest seq of a message shown under it. */
  private readonly firstSeqOfEpoch = new Map<number, number>();
  private loads: Promise<unknown> = Promise.resolve();
  private changes: Promise<unknown> = Promise.resolve();

  private constructor(id: string, state: RoomState, d: TimelineDeps) {
    super(id, 0, d);
    this.stateSignal = signal<RoomState>(state);
    this.myRoleSignal = computed(() => this.membersSignal.value.find((m) => m.username === d.me.username)?.role ?? null);
    this.target = {
      id,
      deps: d,
      current: () => this.current(),
      reload: () => this.refresh(),
      take: (summary) => this.take(summary),
    };
    this.requests = new JoinRequests(this.target, (plan) => this.change(plan));
  }

  /** A room this user asked to join, before any admin answered. */
  static waiting(id: string, d: TimelineDeps): Room {
    return new Room(id, 'waiting-for-approval', d);
  }

  /** Verifies a room's summary; a failed verification leaves the room with a `problem`. */
  static async open(summary: ConversationSummary, d: TimelineDeps): Promise<Room> {
    const room = new Room(summary.id, 'member', d);
    await room.take(summary);
    return room;
  }

  // ---- state, as signals --------------------------------------------------------------------

  get state(): ReadonlySignal<RoomState> {
    return this.stateSignal;
  }
  /** The current members with their roles, by name, as the verified chain has them. */
  get members(): ReadonlySignal<RoomMember[]> {
    return this.membersSignal;
  }
  get myRole(): ReadonlySignal<Role | null> {
    return this.myRoleSignal;
  }
  /** Name, topic and policy, as an admin sealed them; null until readable. */
  get meta(): ReadonlySignal<RoomMeta | null> {
    return this.metaSignal;
  }
  /** Someone left and the key they hold is still current: nobody sends until an admin rotates. */
  get needsRotation(): ReadonlySignal<boolean> {
    return this.needsRotationSignal;
  }
  /** For admins: verified join requests waiting for approval (private rooms). */
  get pendingRequests(): ReadonlySignal<JoinRequestView[]> {
    return this.requests.pending;
  }
  /**
   * Messages sent while this user was not a member (before it joined, or while it was out): their
   * signatures are checked, they are never shown, and they are not counted as rejections.
   */
  get unreadable(): ReadonlySignal<number> {
    return this.unreadableSignal;
  }
  /** Names the relay lists as members without any admin's signature: they get no key and no trust. */
  get unsignedMembers(): ReadonlySignal<string[]> {
    return this.unsignedSignal;
  }
  /** The name this device typed to ask to join (kept on this device only), until `meta` can be read. */
  get requestedName(): ReadonlySignal<string | null> {
    return this.requestedNameSignal;
  }
  /** The current key epoch, or -1 before the room could be read. */
  get epoch(): number {
    return this.view?.chain.head.epoch ?? -1;
  }

  // ---- actions ----------------------------------------------------------------------------

  sendText(body: string, options: SendOptions = {}): Promise<ChatMessage> {
    return this.send({ kind: 'text', body }, options);
  }

  /** Admins: adds `username` (looked up and pinned now) with the current key wrapped for them. */
  async invite(username: string): Promise<void> {
    const contact = await this.d.directory.lookup(username, true);
    if (this.current().chain.head.members.has(username)) throw new UmbraError('bad_request', `${username} is already in this room`);
    await this.change(addPlan(this.target, contact, 'member', 'invite'));
  }
  /** Admins: admits a pending join request. */
  approve(username: string): Promise<void> {
    return this.requests.approve(username);
  }
  /** Admins: declines a pending join request; the requester is told. */
  decline(username: string): Promise<void> {
    return this.requests.decline(username);
  }
  /** Admins: removes a member; everyone else moves to a new key the removed member never gets. */
  async remove(username: string): Promise<void> {
    if (!this.current().chain.head.members.has(username)) throw new UmbraError('not_found', `${username} is not in this room`);
    await this.change(removePlan(this.target, username));
  }
  /** Leaves the room; an admin's client then rotates the key. */
  async leave(): Promise<void> {
    await this.change(leavePlan(this.target));
  }
  async promote(username: string): Promise<void> {
    await this.change(rolePlan(this.target, username, 'admin'));
  }
  /** The owner only: an admin becomes a member again. */
  async demote(username: string): Promise<void> {
    await this.change(rolePlan(this.target, username, 'member'));
  }
  /** Admins: moves the room to a new key, wrapped for every current member. */
  async rotate(): Promise<void> {
    await this.change(rotatePlan(this.target, false));
  }

  /** One change at a time per room; each is rebuilt on the newest chain if another got in first. */
  private change(plan: Plan): Promise<boolean> {
    const run = this.changes.then(() => postChange(this.target, plan));
    this.changes = run.catch(() => {});
    return run;
  }

  private current(): RoomView {
    if (this.problemSignal.value) throw new UmbraError('verification_failed', this.problemSignal.value);
    if (!this.view || this.stateSignal.value !== 'member') throw new UmbraError('forbidden', 'you are not a member of this room');
    return this.view;
  }

  // ---- keeping up with the relay ------------------------------------------------------------

  /**
   * Fetches and verifies the room again. Refused (403/404) means this user is no longer a member:
   * the room becomes `removed`, keeps what it showed, and decrypts nothing new.
   */
  async refresh(): Promise<void> {
    let summary: ConversationSummary;
    try {
      summary = await this.d.http.get(`/api/conversations/${this.id}`, ConversationSummary);
    } catch (err) {
      if (err instanceof UmbraError && (err.code === 'forbidden' || err.code === 'not_found')) {
        if (this.stateSignal.value === 'member') this.stateSignal.value = 'removed';
        return;
      }
      throw err;
    }
    await this.update(summary);
  }

  /** Takes a summary fetched elsewhere; if that made the room readable, loads its messages. */
  async update(summary: ConversationSummary): Promise<void> {
    const wasReadable = this.readable;
    await this.take(summary);
    if (!wasReadable && this.readable) await (this.relaySeq === 0 ? this.loadLatest() : this.catchUp());
  }

  /** The chain changed (a `roster` push), or this client reconnected: refresh, then do an admin's duties. */
  async resume(): Promise<void> {
    await this.refresh();
    if (this.readable) await this.requests.review();
  }

  /** A `join-request` push: an admin's client admits (open room) or lists (private room) it. */
  onJoinRequest(): void {
    if (this.readable) void this.requests.review().catch(() => {});
  }

  /** This user's request was declined. */
  onDeclined(): void {
    if (this.stateSignal.value === 'waiting-for-approval') this.stateSignal.value = 'declined';
  }

  /** This user (again) asked to join, under `name` if it was typed on this device. */
  markWaiting(name?: string): void {
    if (name !== undefined) this.requestedNameSignal.value = name;
    if (this.stateSignal.value !== 'member') this.stateSignal.value = 'waiting-for-approval';
  }

  /** The request `markWaiting` announced was refused (e.g. `rate_limited`): back to `before`, unless something else happened since. */
  unmarkWaiting(before: RoomState): void {
    if (this.stateSignal.value === 'waiting-for-approval') this.stateSignal.value = before;
  }

  /** Verifies and takes a summary, one at a time; then an admin's client rotates if a leave asks for it. */
  private async take(summary: ConversationSummary): Promise<void> {
    const run = this.loads.then(() => this.apply(summary));
    this.loads = run.catch(() => {});
    const ended = await run;
    if (ended.length) void this.markEnded(ended).catch(() => {});
    if (this.readable && this.view?.chain.head.needsRotation && isAdmin(this.myRoleSignal.value ?? undefined)) {
      void this.change(rotatePlan(this.target, true)).catch(() => {});
    }
  }

  /** Returns the members who left or were removed since the last view. */
  private async apply(summary: ConversationSummary): Promise<string[]> {
    let view: RoomView;
    try {
      if (summary.id !== this.id) throw new UmbraError('verification_failed', 'the relay served another room here');
      view = await verifyRoomView(summary, { me: this.d.me, directory: this.d.directory, previous: this.view });
    } catch (err) {
      if (err instanceof UmbraError && (err.code === 'disconnected' || err.code === 'timeout')) throw err;
      this.problemSignal.value = err instanceof UmbraError ? err.message : 'this room failed verification';
      return [];
    }
    const before = this.view?.chain.head.members;
    this.view = view;
    this.raiseCounter(summary.myLastCounter);
    const head = view.chain.head;
    const me = this.d.me.username;
    this.membersSignal.value = [...head.members.values()]
      .map((m) => ({ username: m.username, role: m.role }))
      .sort((a, b) => (a.username < b.username ? -1 : 1));
    this.metaSignal.value = view.meta;
    this.needsRotationSignal.value = head.needsRotation;
    this.unsignedSignal.value = view.unsigned;
    if (head.members.has(me)) this.stateSignal.value = 'member';
    else if (view.chain.states.some((s) => s.members.has(me))) this.stateSignal.value = 'removed';
    else this.problemSignal.value = 'you are not in this room’s signed member list';
    this.requests.settle(new Set(head.members.keys()));
    for (const name of head.members.keys()) this.endedAt.delete(name);
    return before ? [...before.keys()].filter((name) => !head.members.has(name) && name !== me) : [];
  }

  /**
   * Everything the relay stored before the change is read first; from then on an old-epoch
   * message from someone who has gone is `stale_epoch`.
   */
  private async markEnded(names: string[]): Promise<void> {
    if (this.readable) await this.catchUp();
    for (const name of names) if (!this.view?.chain.head.members.has(name)) this.endedAt.set(name, this.relaySeq);
  }

  // ---- the receive checks for rooms (docs/PROTOCOL.md §Rooms) ---------------------------------

  protected override get readable(): boolean {
    return this.problemSignal.value === null && this.view !== null && this.stateSignal.value === 'member';
  }

  /**
   * The sender must have been a member while the epoch was current, and this user too (else the
   * message is passed over quietly: sent before it joined); a sender who has gone since may not
   * keep writing under an old key.
   */
  protected override admit(w: EnvelopeWire, seq: number): Admission {
    const chain = this.view!.chain;
    const me = this.d.me.username;
    let everMember = false;
    let epochExists = false;
    let meThen = false;
    let senderKey: Uint8Array | undefined;
    for (const s of chain.states) {
      const m = s.members.get(w.sender);
      if (m) everMember = true;
      if (s.epoch !== w.epoch) continue;
      epochExists = true;
      if (m) senderKey ??= m.identityKey;
      if (s.members.has(me)) meThen = true;
    }
    if (!everMember) return { ok: false, reason: 'unknown_sender' };
    if (!epochExists) return { ok: false, reason: 'unknown_epoch' };
    if (!senderKey) return { ok: false, reason: 'unknown_sender' };
    if (!meThen) return { ok: 'quiet', senderKey };
    const key = this.view!.keys.get(w.epoch);
    if (!key) return { ok: false, reason: 'unknown_epoch' };
    if (this.isStale(chain, w, seq)) return { ok: false, reason: 'stale_epoch' };
    return { ok: true, senderKey, key };
  }

  private isStale(chain: Chain, w: EnvelopeWire, seq: number): boolean {
    if (chain.head.members.has(w.sender)) return false;
    const ended = this.endedAt.get(w.sender);
    if (ended !== undefined && seq > ended) return true;
    for (const [epoch, first] of this.firstSeqOfEpoch) if (epoch > w.epoch && first < seq) return true;
    return false;
  }

  /** The roster the sender saw must be one the chain had at that epoch with the sender in it. */
  protected override checkRoster(env: SealedEnvelope): RejectReason | 'quiet' | null {
    const me = this.d.me.username;
    let matched = false;
    // Newest first: most messages carry the head's roster, and each state hashes its roster on first use.
    const states = this.view!.chain.states;
    for (let i = states.length - 1; i >= 0; i--) {
      const s = states[i]!;
      if (s.epoch !== env.epoch || !s.members.has(env.sender) || !equalBytes(s.rosterHash, env.rosterHash)) continue;
      if (s.members.has(me)) return null;
      matched = true;
    }
    // A roster without this user: written before it joined, though under the key it now holds.
    return matched ? 'quiet' : 'roster_mismatch';
  }

  protected override accepted(item: StoredEnvelope): void {
    const first = this.firstSeqOfEpoch.get(item.env.epoch);
    if (first === undefined || item.seq < first) this.firstSeqOfEpoch.set(item.env.epoch, item.seq);
  }

  protected override passedOver(): void {
    this.unreadableSignal.value++;
  }

  /** A sender, epoch or roster the chain does not know yet may be a change this client has not fetched. */
  protected override needsPrepare(items: readonly StoredEnvelope[]): boolean {
    const chain = this.view?.chain;
    if (!chain) return false;
    return items.some(({ env }) => {
      if (env.conv !== this.id) return false;
      if (env.epoch > chain.head.epoch) return true;
      let hash: Uint8Array;
      try {
        hash = fromB64(env.rosterHash);
      } catch {
        return false;
      }
      return !chain.states.findLast((s) => s.epoch === env.epoch && s.members.has(env.sender) && equalBytes(s.rosterHash, hash));
    });
  }

  protected override async prepare(): Promise<void> {
    await this.refresh();
  }

  /**
   * Messages carry the head's epoch and roster hash. Refused while this user is not a member,
   * while a leave waits for a rotation (`conflict`), or while a member's key change is unaccepted.
   */
  protected override async sendContext(): Promise<SendContext> {
    const view = this.current();
    const head = view.chain.head;
    if (head.needsRotation) {
      throw new UmbraError('conflict', 'someone left this room; nobody can send until an admin’s client renews the key');
    }
    for (const name of head.members.keys()) {
      if (this.d.directory.hasAlert(name)) throw new UmbraError('identity_changed', `${name}'s security key changed; verify it before sending`);
    }
    const key = view.keys.get(head.epoch);
    if (!key) throw new UmbraError('verification_failed', 'no key for the room’s current epoch was shared with you');
    return { epoch: head.epoch, rosterHash: head.rosterHash, key };
  }
}
