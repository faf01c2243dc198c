// The message stream of a conversation or a room as a member's client reads it: the receive
// pipeline that verifies, decrypts and orders envelopes, rejecting and counting anything forged,
// replayed, reflected or moved, and the one send path (docs/PROTOCOL.md §Receiving, §Delivery).
// Who may send under which key and roster is the membership's call, asked through three hooks.
import { signal, type ReadonlySignal } from '@preact/signals-core';
import {
  HistoryResponse,
  LIMITS,
  PROTOCOL_VERSION,
  SUITE_XCHACHA20_ED25519,
  TAG_BYTES,
  UmbraError,
  VerifiedEnvelopes,
  XNONCE_BYTES,
  TIMER_OFF,
  decodeEvent,
  effectiveExpiry,
  encodeEvent,
  expiryFields,
  envelopeTypeOf,
  fromB64,
  newClientMsgId,
  openEnvelope,
  randomBytes,
  sealEnvelope,
  toB64,
  verifyEnvelopeSignature,
  type EnvelopeWire,
  type IdentityKeys,
  type PlainEvent,
  type SealedEnvelope,
  type StoredEnvelope,
  type TimerSetting,
  type BatchVerifier,
} from '../../shared/index.ts';
import type { MessageCache } from './message-cache.ts';
import { SenderCounters, type Notice } from './counters.ts';
import type { Directory } from './directory.ts';
import type { HttpApi } from './http.ts';
import type { RejectReason, SecurityStats } from './stats.ts';
import type { Transport } from './transport.ts';

export interface ChatMessage {
  clientMsgId: string;
  /** Relay sequence number; null while sending. */
  seq: number | null;
  sender: string;
  mine: boolean;
  event: PlainEvent;
  /** When the relay stored it (ms), or when it was written, while sending. */
  at: number;
  status: 'sending' | 'sent' | 'failed';
  /**
   * `reordered`: arrived after a later message from the same sender. `expiry_extended`: the relay
   * said it would keep the message longer than its sender signed; it still goes at the signed time.
   */
  flags: MessageFlag[];
  /** When it disappears (ms): the signed expiry, or earlier once a burn-after-reading message was opened. */
  expiresAt: number | null;
  /** Burn after reading: ms from the first opening by a recipient to disappearing; signed. */
  burnAfterMs: number | null;
}

export type MessageFlag = 'reordered' | 'expiry_extended';

/** How a message sent now should disappear; by default the conversation's timer. */
export interface SendOptions {
  timer?: TimerSetting;
}

export interface TimelineDeps {
  me: { username: string; keys: IdentityKeys };
  directory: Directory;
  http: HttpApi;
  transport: Transport;
  stats: SecurityStats;
  /** Checks a page's signatures at once (the platform's Ed25519 where it has one). */
  verifier: BatchVerifier;
  /** Where messages are kept between visits; none in a client without storage. */
  cache?: MessageCache;
  now(): number;
}

/** What the membership says about an envelope's header, before any cryptography. */
export type Admission =
  | { ok: true; senderKey: Uint8Array; key: Uint8Array }
  /** Sent while this member was not in the room: its signature is checked, it is never shown or counted. */
  | { ok: 'quiet'; senderKey: Uint8Array }
  | { ok: false; reason: RejectReason };

/** What a message sent now carries. */
export interface SendContext {
  epoch: number;
  rosterHash: Uint8Array;
  key: Uint8Array;
}

const PAGE = 50;
/** Envelopes kept for the "what the server sees" view. */
const RAW_KEPT = 500;

export abstract class Timeline {
  readonly id: string;
  protected readonly problemSignal = signal<string | null>(null);
  private readonly messagesSignal = signal<ChatMessage[]>([]);
  private readonly noticesSignal = signal<Notice[]>([]);
  private readonly hasOlderSignal = signal(false);
  private lastSeq = 0;
  private oldestSeq = Number.POSITIVE_INFINITY;
  /** True once the loaded history reaches back to the conversation's first message. */
  private fromStart = false;
  private myCounter: number;
  private readonly counters = new SenderCounters(this.noticesSignal);
  /** sender + clientMsgId → seq it was first seen at. */
  private readonly seenIds = new Map<string, number>();
  private catchingUp: Promise<void> | null = null;
  private pushedDuringCatchUp = false;
  // ---- disappearing messages (docs/PROTOCOL.md §Disappearing messages) ----
  private readonly timerSignal = signal<TimerSetting>(TIMER_OFF);
  private timerSeq = 0;
  /** sender/clientMsgId → the earliest time a recipient (maybe this one) opened it. */
  private readonly openedAt = new Map<string, number>();
  /** sender/clientMsgId of burn-after-reading messages this device has reported opened. */
  private readonly reportedOpen = new Set<string>();
  /** sender/clientMsgId → signed expiry fields, and the relay's own (earlier) deletion time. */
  private readonly expiryOf = new Map<string, { signed: number | null; burn: number | null; relay: number | null }>();
  /** sender/clientMsgId of messages gone for good: never shown again, whatever is served. */
  private readonly gone = new Set<string>();
  private purgeTimer: ReturnType<typeof setTimeout> | null = null;
  private cacheWrite: Promise<void> = Promise.resolve();
  private restored = false;
  /** Messages shown from the device's store, until the relay's first page confirms them. */
  private readonly restoredKeys = new Set<string>();
  /** The envelopes the relay served for what is loaded, newest last (for the "what the server sees" view). */
  private readonly rawSignal = signal<StoredEnvelope[]>([]);

  /** Signatures of fetched pages, checked at once before the page is read in order. */
  private readonly verified: VerifiedEnvelopes;
  /** The envelope each fetched wire form was checked as, so reading it opens that same object. */
  private readonly sealedOf = new WeakMap<EnvelopeWire, SealedEnvelope>();

  protected constructor(
    id: string,
    myLastCounter: number,
    protected readonly d: TimelineDeps,
  ) {
    this.id = id;
    this.myCounter = myLastCounter;
    this.verified = new VerifiedEnvelopes(d.verifier);
  }

  get messages(): ReadonlySignal<ChatMessage[]> {
    return this.messagesSignal;
  }
  get notices(): ReadonlySignal<Notice[]> {
    return this.noticesSignal;
  }
  get hasOlder(): ReadonlySignal<boolean> {
    return this.hasOlderSignal;
  }
  /** Non-null when the membership failed verification; nothing is shown or sent then. */
  get problem(): ReadonlySignal<string | null> {
    return this.problemSignal;
  }
  get relaySeq(): number {
    return this.lastSeq;
  }
  /** The disappearing-message timer everyone in the conversation last set. */
  get timer(): ReadonlySignal<TimerSetting> {
    return this.timerSignal;
  }
  /** The envelopes as the relay holds them, for what is loaded: ciphertext and routing fields only. */
  get relayView(): ReadonlySignal<StoredEnvelope[]> {
    return this.rawSignal;
  }

  // ---- what the membership decides ------------------------------------------------------

  /** Sender, epoch and key checks on the header (checks 3 and 4 of §Receiving). */
  protected abstract admit(env: EnvelopeWire, seq: number): Admission;
  /** The roster hash check, once the signature held and the AEAD opened: a reason, 'quiet', or null. */
  protected abstract checkRoster(env: SealedEnvelope): RejectReason | 'quiet' | null;
  /** What the next message carries; throws when this member may not send now. */
  protected abstract sendContext(): Promise<SendContext>;
  /** False while nothing new may be read: failed verification (and, in a room, not being a member). */
  protected get readable(): boolean {
    return this.problemSignal.value === null;
  }
  /** True when these envelopes may need a fresher membership before they can be judged. */
  protected needsPrepare(_items: readonly StoredEnvelope[]): boolean {
    return false;
  }
  /** Brings the membership up to date before `items` are judged. */
  protected async prepare(_items: readonly StoredEnvelope[]): Promise<void> {}
  /** Told about every envelope shown, in the order read. */
  protected accepted(_item: StoredEnvelope): void {}
  /** Told about every envelope passed over quietly. */
  protected passedOver(_item: StoredEnvelope): void {}

  protected raiseCounter(n: number): void {
    this.myCounter = Math.max(this.myCounter, n);
  }

  // ---- reading ----------------------------------------------------------------------------

  /** Loads the newest page of history, then whatever arrived since. */
  async loadLatest(): Promise<void> {
    if (!this.readable) return;
    let page: HistoryResponse;
    try {
      page = await this.d.http.get(`/api/conversations/${this.id}/envelopes?limit=${PAGE}`, HistoryResponse);
    } catch (err) {
      // Offline: show what this device kept, until the relay can be asked again.
      if (err instanceof UmbraError && (err.code === 'disconnected' || err.code === 'timeout')) await this.restoreCached();
      throw err;
    }
    const items = [...page.envelopes].reverse();
    await this.prepareFor(items);
    if (items.length) this.oldestSeq = items[0]!.seq;
    this.hasOlderSignal.value = page.more;
    this.fromStart = !page.more;
    this.ingest(items, 'forward');
    this.dropUnserved(items, page.more);
    if (page.more && this.timerSeq === 0) await this.loadNewestSetting();
  }

  /**
   * Kept messages inside the range the relay just answered for, that it did not serve, are gone
   * there (expired, burnt on another device): they go here too.
   */
  private dropUnserved(items: readonly StoredEnvelope[], more: boolean): void {
    if (!this.restoredKeys.size) return;
    const served = new Set(items.map((i) => i.env.sender + '/' + i.env.clientMsgId));
    const lowest = more ? (items[0]?.seq ?? Number.POSITIVE_INFINITY) : 0;
    const highest = items[items.length - 1]?.seq ?? 0;
    let dropped = false;
    for (const m of this.messagesSignal.value) {
      const key = m.sender + '/' + m.clientMsgId;
      if (!this.restoredKeys.has(key) || served.has(key) || m.seq === null || m.seq < lowest || m.seq > highest) continue;
      this.gone.add(key);
      dropped = true;
    }
    this.restoredKeys.clear();
    if (dropped) this.refreshExpiries();
  }

  /** Shows what this device kept from earlier visits (not expired) while the relay cannot be reached. */
  private async restoreCached(): Promise<void> {
    if (this.restored || !this.d.cache) return;
    this.restored = true;
    try {
      const kept = await this.d.cache.load(this.id);
      const known = new Set(this.messagesSignal.value.map((m) => m.sender + '/' + m.clientMsgId));
      const fresh = kept.filter((m) => !known.has(m.sender + '/' + m.clientMsgId) && !this.gone.has(m.sender + '/' + m.clientMsgId));
      for (const m of fresh) {
        this.expiryOf.set(m.sender + '/' + m.clientMsgId, { signed: m.expiresAt, burn: m.burnAfterMs, relay: null });
        this.restoredKeys.add(m.sender + '/' + m.clientMsgId);
      }
      if (fresh.length) this.messagesSignal.value = sortMessages([...this.messagesSignal.value, ...fresh]);
      this.schedulePurge();
    } catch {
      // A device without working storage still shows what the relay serves.
    }
  }

  /** The timer is set by the newest `setting` envelope, which may be older than the loaded page. */
  private async loadNewestSetting(): Promise<void> {
    const page = await this.d.http.get(`/api/conversations/${this.id}/envelopes?type=setting&limit=1`, HistoryResponse);
    const item = page.envelopes[0];
    if (!item || item.seq <= this.timerSeq) return;
    await this.prepareFor([item]);
    const event = this.verifyOnly(item);
    if (event?.kind === 'timer') this.noteTimer(event, item.seq);
  }

  /** Full receive checks of one envelope, without showing it: its event, or null. */
  private verifyOnly(item: StoredEnvelope): PlainEvent | null {
    const w = item.env;
    if (w.conv !== this.id) return null;
    const admission = this.admit(w, item.seq);
    if (admission.ok !== true) return null;
    try {
      const env = this.sealedOf.get(w) ?? fromWire(w);
      const event = decodeEvent(openEnvelope(env, admission.key, admission.senderKey, this.verified));
      if (this.checkRoster(env) !== null || envelopeTypeOf(event) !== w.type) return null;
      return event;
    } catch {
      return null;
    }
  }

  private noteTimer(event: Extract<PlainEvent, { kind: 'timer' }>, seq: number): void {
    if (seq <= this.timerSeq) return;
    this.timerSeq = seq;
    this.timerSignal.value = { ttlMs: event.ttlMs, mode: event.mode };
  }

  /** Loads the page before the oldest loaded message. */
  async loadOlder(): Promise<void> {
    if (!this.readable || !this.hasOlderSignal.value) return;
    const page = await this.d.http.get(`/api/conversations/${this.id}/envelopes?before=${this.oldestSeq}&limit=${PAGE}`, HistoryResponse);
    await this.prepareFor(page.envelopes);
    this.hasOlderSignal.value = page.more;
    this.fromStart = !page.more;
    this.ingest(page.envelopes, 'older');
  }

  /** Fetches everything after the last seen sequence number, in order (resume). */
  catchUp(): Promise<void> {
    this.pushedDuringCatchUp = true;
    this.catchingUp ??= (async () => {
      try {
        // A push that lands while the last page is in flight sets the flag again: one more round.
        while (this.pushedDuringCatchUp && this.readable) {
          this.pushedDuringCatchUp = false;
          for (;;) {
            const batch = await this.d.transport.request({ t: 'sync', conv: this.id, after: this.lastSeq, limit: 100 }, 'batch');
            await this.prepareFor(batch.envelopes);
            this.ingest(batch.envelopes, 'forward');
            if (!batch.more || batch.envelopes.length === 0) break;
          }
        }
      } finally {
        this.catchingUp = null;
      }
    })();
    return this.catchingUp;
  }

  /** A live push from the relay: in order it is taken; after a gap, the gap is fetched first. */
  onPush(item: StoredEnvelope): void {
    if (!this.readable) return;
    if (item.seq === this.lastSeq + 1 && !this.catchingUp && !this.needsPrepare([item])) this.ingest([item], 'forward');
    else if (item.seq > this.lastSeq) void this.catchUp().catch(() => {});
  }

  /**
   * Before a fetched page is read: the membership it needs, then every signature checked at once
   * against the key its sender would be admitted with now (docs/PROTOCOL.md §Receiving). Reading
   * in order still runs every check; an envelope admitted under another key by then, or not found
   * here, has its signature checked one by one as it is read.
   */
  private async prepareFor(items: readonly StoredEnvelope[]): Promise<void> {
    if (this.needsPrepare(items)) await this.prepare(items);
    const checks: { env: SealedEnvelope; senderIdentityKey: Uint8Array }[] = [];
    for (const item of items) {
      const w = item.env;
      if (w.conv !== this.id || !this.readable) continue;
      const admission = this.admit(w, item.seq);
      if (admission.ok === false) continue;
      let env: SealedEnvelope;
      try {
        env = fromWire(w);
      } catch {
        continue;
      }
      this.sealedOf.set(w, env);
      checks.push({ env, senderIdentityKey: admission.senderKey });
    }
    if (checks.length > 1) await this.verified.check(checks);
  }

  private ingest(items: StoredEnvelope[], mode: 'forward' | 'older'): void {
    if (!this.readable) return;
    const added: ChatMessage[] = [];
    const removed = new Set<string>();
    const notices: Notice[] = [];
    const ordered = [...items].sort((a, b) => (mode === 'older' ? b.seq - a.seq : a.seq - b.seq));
    for (const item of ordered) {
      if (mode === 'forward') {
        if (item.seq <= this.lastSeq) continue;
        this.lastSeq = item.seq;
        if (this.oldestSeq === Number.POSITIVE_INFINITY) this.oldestSeq = item.seq;
      } else {
        if (item.seq >= this.oldestSeq) continue;
        this.oldestSeq = item.seq;
      }
      const result = this.accept(item, mode, notices, removed);
      if (result) {
        added.push(result);
        this.accepted(item);
      }
    }
    if (mode === 'older' && this.fromStart) this.counters.reachedStart(notices);
    this.recordRaw(ordered);
    if (!added.length && !removed.size && !notices.length) {
      this.refreshExpiries();
      return;
    }
    const bySeqOrId = new Map<string, ChatMessage>();
    for (const m of this.messagesSignal.value) if (!removed.has(m.clientMsgId + m.sender)) bySeqOrId.set(m.sender + '/' + m.clientMsgId, m);
    for (const m of added) bySeqOrId.set(m.sender + '/' + m.clientMsgId, m);
    this.messagesSignal.value = sortMessages([...bySeqOrId.values()]);
    if (notices.length) this.noticesSignal.value = [...this.noticesSignal.value, ...notices];
    this.refreshExpiries();
    this.persistSoon();
  }

  private recordRaw(items: readonly StoredEnvelope[]): void {
    if (!items.length) return;
    const bySeq = new Map(this.rawSignal.value.map((i) => [i.seq, i]));
    for (const i of items) bySeq.set(i.seq, i);
    this.rawSignal.value = [...bySeq.values()].sort((a, b) => a.seq - b.seq).slice(-RAW_KEPT);
  }

  // ---- disappearing messages ----------------------------------------------------------------

  /** Records a message's signed expiry and what the relay said; flags a relay that would keep it longer. */
  private trackExpiry(idKey: string, item: StoredEnvelope, flags: MessageFlag[]): number | null {
    const { expiresAt: signed, burnAfterMs: burn } = item.env;
    let relay = item.expiresAt;
    if (signed !== null && (relay === null || relay > signed)) {
      // The relay cannot change the signed expiry, only what it says it will do: noted, and ignored.
      flags.push('expiry_extended');
      this.d.stats.record({ conv: this.id, seq: item.seq, sender: item.env.sender, reason: 'expiry_extended' });
      relay = null;
    }
    this.expiryOf.set(idKey, { signed, burn, relay });
    return this.expiryFor(idKey);
  }

  private expiryFor(idKey: string): number | null {
    const e = this.expiryOf.get(idKey);
    if (!e) return null;
    const t = effectiveExpiry(e.signed, e.burn, this.openedAt.get(idKey) ?? null);
    if (e.relay === null) return t;
    return t === null ? e.relay : Math.min(t, e.relay);
  }

  /** Another member's signed "opened": the burn timers of those messages start at `at`. */
  private noteOpened(opener: string, event: Extract<PlainEvent, { kind: 'opened' }>): void {
    for (const ref of event.refs) {
      if (ref.sender === opener) continue; // a sender cannot start the timer of its own message
      const key = ref.sender + '/' + ref.clientMsgId;
      this.openedAt.set(key, Math.min(this.openedAt.get(key) ?? Number.POSITIVE_INFINITY, event.at));
    }
  }

  /** Recomputes every shown message's expiry, removes what is due and arms the timer for the next. */
  private refreshExpiries(): void {
    const now = this.d.now();
    let changed = false;
    const kept: ChatMessage[] = [];
    for (const m of this.messagesSignal.value) {
      const key = m.sender + '/' + m.clientMsgId;
      const expiresAt = this.expiryOf.has(key) ? this.expiryFor(key) : m.expiresAt;
      if (this.gone.has(key) || (expiresAt !== null && expiresAt <= now)) {
        this.gone.add(key);
        changed = true;
        continue;
      }
      if (expiresAt !== m.expiresAt) changed = true;
      kept.push(expiresAt === m.expiresAt ? m : { ...m, expiresAt });
    }
    if (changed) {
      this.messagesSignal.value = kept;
      const goneSeqs = new Set(this.rawSignal.value.filter((i) => this.gone.has(i.env.sender + '/' + i.env.clientMsgId)).map((i) => i.seq));
      if (goneSeqs.size) this.rawSignal.value = this.rawSignal.value.filter((i) => !goneSeqs.has(i.seq));
      this.persistNow();
    }
    this.schedulePurge();
  }

  private schedulePurge(): void {
    if (this.purgeTimer) clearTimeout(this.purgeTimer);
    this.purgeTimer = null;
    let next = Number.POSITIVE_INFINITY;
    for (const m of this.messagesSignal.value) if (m.expiresAt !== null) next = Math.min(next, m.expiresAt);
    if (next === Number.POSITIVE_INFINITY) return;
    // setTimeout holds at most 2^31-1 ms; a later expiry re-arms when that fires.
    const delay = Math.min(Math.max(0, next - this.d.now()), 2 ** 31 - 1);
    this.purgeTimer = setTimeout(() => this.refreshExpiries(), delay);
    (this.purgeTimer as { unref?: () => void }).unref?.();
  }

  /** Stops the expiry timer (the timeline is being dropped). */
  dispose(): void {
    if (this.purgeTimer) clearTimeout(this.purgeTimer);
    this.purgeTimer = null;
  }

  private persistSoon(): void {
    if (!this.d.cache) return;
    const cache = this.d.cache;
    this.cacheWrite = this.cacheWrite.then(() => cache.save(this.id, this.messagesSignal.value)).catch(() => {});
  }

  /** Writes the kept messages now; resolves when the store has them (used after a purge). */
  private persistNow(): Promise<void> {
    this.persistSoon();
    return this.cacheWrite;
  }

  /** Resolves once everything shown so far is in the device's store (tests, and before closing). */
  flushCache(): Promise<void> {
    return this.cacheWrite;
  }

  /**
   * The UI calls this when the conversation is on screen: burn-after-reading messages from others
   * that this device has not opened yet start their timers now, and their senders (and the relay,
   * which learns only the new deletion time) are told with a signed, encrypted "opened" event.
   */
  async markRead(): Promise<void> {
    if (!this.readable) return;
    const now = this.d.now();
    const opened: ChatMessage[] = [];
    for (const m of this.messagesSignal.value) {
      const key = m.sender + '/' + m.clientMsgId;
      if (m.mine || m.burnAfterMs === null || m.seq === null || this.reportedOpen.has(key)) continue;
      this.reportedOpen.add(key);
      if (!this.openedAt.has(key)) this.openedAt.set(key, now);
      opened.push(m);
    }
    if (!opened.length) return;
    this.refreshExpiries();
    for (let i = 0; i < opened.length; i += LIMITS.maxPage) {
      const chunk = opened.slice(i, i + LIMITS.maxPage);
      // The event outlives the messages it names until their signed expiry, so a device of the
      // recipient's that was away while they burnt still learns they were opened.
      const until = Math.max(...chunk.map((m) => this.expiryOf.get(m.sender + '/' + m.clientMsgId)?.signed ?? now));
      await this.sendSealed(
        { kind: 'opened', refs: chunk.map((m) => ({ sender: m.sender, clientMsgId: m.clientMsgId })), at: now },
        { expiresAt: Math.max(until, now + 1000), burnAfterMs: null },
        chunk.map((m) => m.seq!),
      );
    }
  }

  /** Sets the conversation's disappearing-message timer for everyone, with a signed event. */
  async setTimer(setting: TimerSetting): Promise<void> {
    await this.sendSealed({ kind: 'timer', ttlMs: setting.ttlMs, mode: setting.mode }, { expiresAt: null, burnAfterMs: null });
  }

  private reject(item: StoredEnvelope, reason: RejectReason): null {
    this.d.stats.record({ conv: this.id, seq: item.seq, sender: item.env.sender, reason });
    return null;
  }

  /** The receive checks of docs/PROTOCOL.md §Receiving, in order. Returns the message to show, or null. */
  private accept(item: StoredEnvelope, mode: 'forward' | 'older', notices: Notice[], removed: Set<string>): ChatMessage | null {
    const w = item.env;
    if (w.conv !== this.id) return this.reject(item, 'wrong_conversation');
    if (w.v !== PROTOCOL_VERSION || w.suite !== SUITE_XCHACHA20_ED25519) return this.reject(item, 'unsupported');
    const admission = this.admit(w, item.seq);
    if (admission.ok === false) return this.reject(item, admission.reason);
    let plain: Uint8Array;
    let env: SealedEnvelope;
    try {
      env = this.sealedOf.get(w) ?? fromWire(w);
      if (admission.ok === 'quiet') {
        if (!verifyEnvelopeSignature(env, admission.senderKey, this.verified)) throw new Error('signature');
        return this.passOver(item, mode);
      }
      plain = openEnvelope(env, admission.key, admission.senderKey, this.verified);
    } catch {
      return this.reject(item, 'bad_signature_or_ciphertext');
    }
    // Signed and authentic from here; now check it belongs where and when the relay put it.
    const roster = this.checkRoster(env);
    if (roster === 'quiet') return this.passOver(item, mode);
    if (roster) return this.reject(item, roster);
    let event: PlainEvent;
    try {
      event = decodeEvent(plain);
    } catch {
      return this.reject(item, 'bad_signature_or_ciphertext');
    }
    if (envelopeTypeOf(event) !== w.type) return this.reject(item, 'type_mismatch');

    const idKey = w.sender + '/' + w.clientMsgId;
    const firstSeq = this.seenIds.get(idKey);
    const mine = w.sender === this.d.me.username;
    if (firstSeq !== undefined && firstSeq !== 0 && firstSeq !== item.seq) {
      if (mode === 'older' && firstSeq > item.seq) {
        // The copy shown earlier (higher seq) was the replay: take it back.
        removed.add(w.clientMsgId + w.sender);
        this.d.stats.record({ conv: this.id, seq: firstSeq, sender: w.sender, reason: 'replay' });
      } else {
        return this.reject(item, 'replay');
      }
    }
    const flags: MessageFlag[] = [...this.counters.track(item, mode, this.fromStart, notices)];
    this.seenIds.set(idKey, item.seq);
    if (mine) this.myCounter = Math.max(this.myCounter, w.counter);
    if (event.kind === 'opened') {
      this.noteOpened(w.sender, event);
      return null;
    }
    if (event.kind === 'timer') this.noteTimer(event, item.seq);
    const expiresAt = this.trackExpiry(idKey, item, flags);
    if (this.gone.has(idKey) || (expiresAt !== null && expiresAt <= this.d.now())) {
      this.gone.add(idKey);
      return null;
    }
    if (firstSeq === item.seq) return null; // our own message, already shown from its ack
    return { clientMsgId: w.clientMsgId, seq: item.seq, sender: w.sender, mine, event, at: item.receivedAt, status: 'sent', flags, expiresAt, burnAfterMs: w.burnAfterMs };
  }

  /** An authentic envelope this member is not meant to read: its counter still counts, so no gap is reported for it. */
  private passOver(item: StoredEnvelope, mode: 'forward' | 'older'): null {
    this.counters.track(item, mode, this.fromStart, []);
    this.passedOver(item);
    return null;
  }

  // ---- sending ----------------------------------------------------------------------------

  /**
   * Encrypts, signs and sends an event; resolves when the relay acknowledged it durably.
   * Throws before anything is sent when this member may not send (see sendContext).
   */
  send(event: PlainEvent, options: SendOptions = {}): Promise<ChatMessage> {
    const timer = event.kind === 'text' ? (options.timer ?? this.timerSignal.value) : TIMER_OFF;
    return this.sendSealed(event, expiryFields(timer, this.d.now()));
  }

  private async sendSealed(
    event: PlainEvent,
    expiry: { expiresAt: number | null; burnAfterMs: number | null },
    opens: number[] = [],
  ): Promise<ChatMessage> {
    const ctx = await this.sendContext();
    // Validate and size the event before a counter is spent on it: a spent counter would read as a gap.
    let plaintext: Uint8Array;
    try {
      plaintext = encodeEvent(event);
    } catch {
      throw new UmbraError('bad_request', 'this message cannot be sent (empty or too long)');
    }
    if (plaintext.length + XNONCE_BYTES + TAG_BYTES > LIMITS.maxCiphertextBytes) {
      throw new UmbraError('payload_too_large', `messages are limited to ${LIMITS.maxCiphertextBytes - XNONCE_BYTES - TAG_BYTES} bytes once encoded`);
    }
    const counter = ++this.myCounter;
    const header = {
      v: PROTOCOL_VERSION,
      suite: SUITE_XCHACHA20_ED25519,
      type: envelopeTypeOf(event),
      conv: this.id,
      epoch: ctx.epoch,
      sender: this.d.me.username,
      rosterHash: ctx.rosterHash,
      clientMsgId: newClientMsgId(counter, randomBytes(8)),
      counter,
      expiresAt: expiry.expiresAt,
      burnAfterMs: expiry.burnAfterMs,
    };
    const sealed = sealEnvelope(header, plaintext, ctx.key, this.d.me.keys.signing.secretKey);
    const wire = toWire(sealed);
    const local: ChatMessage = {
      clientMsgId: header.clientMsgId,
      seq: null,
      sender: header.sender,
      mine: true,
      event,
      at: this.d.now(),
      status: 'sending',
      flags: [],
      expiresAt: expiry.expiresAt,
      burnAfterMs: expiry.burnAfterMs,
    };
    this.seenIds.set(header.sender + '/' + header.clientMsgId, 0);
    this.expiryOf.set(header.sender + '/' + header.clientMsgId, { signed: expiry.expiresAt, burn: expiry.burnAfterMs, relay: null });
    // "opened" is bookkeeping, never a line in the conversation.
    const shown = event.kind !== 'opened';
    if (shown) this.upsert(local);
    for (let attempt = 0; ; attempt++) {
      try {
        await this.d.transport.whenOnline();
        const ack = await this.d.transport.request(opens.length ? { t: 'send', env: wire, opens } : { t: 'send', env: wire }, 'ack');
        const idKey = header.sender + '/' + header.clientMsgId;
        if (this.seenIds.get(idKey) === 0) this.seenIds.set(idKey, ack.seq);
        if (event.kind === 'timer') this.noteTimer(event, ack.seq);
        const current = this.messagesSignal.value.find((m) => m.mine && m.clientMsgId === header.clientMsgId) ?? local;
        const sent = { ...current, seq: ack.seq, at: ack.receivedAt, status: 'sent' as const };
        if (shown && !this.gone.has(idKey)) {
          this.upsert(sent);
          this.persistSoon();
        }
        return sent;
      } catch (err) {
        // Lost connections and timeouts are retried with the same envelope: the relay stores it once.
        const retriable = err instanceof UmbraError && (err.code === 'disconnected' || err.code === 'timeout');
        if (!retriable || attempt >= 20) {
          if (shown) this.upsert({ ...local, status: 'failed' });
          throw err;
        }
        await new Promise((r) => setTimeout(r, Math.min(2000, 100 * 2 ** attempt)));
      }
    }
  }

  private upsert(m: ChatMessage): void {
    const rest = this.messagesSignal.value.filter((x) => !(x.sender === m.sender && x.clientMsgId === m.clientMsgId));
    this.messagesSignal.value = sortMessages([...rest, m]);
    this.schedulePurge();
  }
}

function sortMessages(list: ChatMessage[]): ChatMessage[] {
  return list.sort((a, b) => (a.seq ?? Number.MAX_SAFE_INTEGER) - (b.seq ?? Number.MAX_SAFE_INTEGER) || a.at - b.at);
}

export function fromWire(w: EnvelopeWire): SealedEnvelope {
  return { ...w, rosterHash: fromB64(w.rosterHash), ct: fromB64(w.ct), sig: fromB64(w.sig) };
}

export function toWire(e: SealedEnvelope): EnvelopeWire {
  return { ...e, rosterHash: toB64(e.rosterHash), ct: toB64(e.ct), sig: toB64(e.sig) };
}
