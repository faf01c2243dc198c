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
  XNONCE_BYTES,
  decodeEvent,
  encodeEvent,
  envelopeTypeOf,
  fromB64,
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
} from '../../shared/index.ts';
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
  /** `reordered`: arrived after a later message from the same sender. */
  flags: 'reordered'[];
  expiresAt: number | null;
}

export interface TimelineDeps {
  me: { username: string; keys: IdentityKeys };
  directory: Directory;
  http: HttpApi;
  transport: Transport;
  stats: SecurityStats;
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

  protected constructor(
    id: string,
    myLastCounter: number,
    protected readonly d: TimelineDeps,
  ) {
    this.id = id;
    this.myCounter = myLastCounter;
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
    const page = await this.d.http.get(`/api/conversations/${this.id}/envelopes?limit=${PAGE}`, HistoryResponse);
    const items = [...page.envelopes].reverse();
    await this.prepareFor(items);
    if (items.length) this.oldestSeq = items[0]!.seq;
    this.hasOlderSignal.value = page.more;
    this.fromStart = !page.more;
    this.ingest(items, 'forward');
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

  private async prepareFor(items: readonly StoredEnvelope[]): Promise<void> {
    if (this.needsPrepare(items)) await this.prepare(items);
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
    if (!added.length && !removed.size && !notices.length) return;
    const bySeqOrId = new Map<string, ChatMessage>();
    for (const m of this.messagesSignal.value) if (!removed.has(m.clientMsgId + m.sender)) bySeqOrId.set(m.sender + '/' + m.clientMsgId, m);
    for (const m of added) bySeqOrId.set(m.sender + '/' + m.clientMsgId, m);
    this.messagesSignal.value = sortMessages([...bySeqOrId.values()]);
    if (notices.length) this.noticesSignal.value = [...this.noticesSignal.value, ...notices];
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
      env = fromWire(w);
      if (admission.ok === 'quiet') {
        if (!verifyEnvelopeSignature(env, admission.senderKey)) throw new Error('signature');
        return this.passOver(item, mode);
      }
      plain = openEnvelope(env, admission.key, admission.senderKey);
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
    const flags = this.counters.track(item, mode, this.fromStart, notices);
    this.seenIds.set(idKey, item.seq);
    if (mine) this.myCounter = Math.max(this.myCounter, w.counter);
    if (firstSeq === item.seq) return null; // our own message, already shown from its ack
    return { clientMsgId: w.clientMsgId, seq: item.seq, sender: w.sender, mine, event, at: item.receivedAt, status: 'sent', flags, expiresAt: w.expiresAt };
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
  async send(event: PlainEvent, expiresAt: number | null = null): Promise<ChatMessage> {
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
    const header = {
      v: PROTOCOL_VERSION,
      suite: SUITE_XCHACHA20_ED25519,
      type: envelopeTypeOf(event),
      conv: this.id,
      epoch: ctx.epoch,
      sender: this.d.me.username,
      rosterHash: ctx.rosterHash,
      clientMsgId: toB64(randomBytes(16)),
      counter: ++this.myCounter,
      expiresAt,
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
      expiresAt,
    };
    this.seenIds.set(header.sender + '/' + header.clientMsgId, 0);
    this.upsert(local);
    for (let attempt = 0; ; attempt++) {
      try {
        await this.d.transport.whenOnline();
        const ack = await this.d.transport.request({ t: 'send', env: wire }, 'ack');
        const idKey = header.sender + '/' + header.clientMsgId;
        if (this.seenIds.get(idKey) === 0) this.seenIds.set(idKey, ack.seq);
        const current = this.messagesSignal.value.find((m) => m.mine && m.clientMsgId === header.clientMsgId) ?? local;
        const sent = { ...current, seq: ack.seq, at: ack.receivedAt, status: 'sent' as const };
        this.upsert(sent);
        return sent;
      } catch (err) {
        // Lost connections and timeouts are retried with the same envelope: the relay stores it once.
        const retriable = err instanceof UmbraError && (err.code === 'disconnected' || err.code === 'timeout');
        if (!retriable || attempt >= 20) {
          this.upsert({ ...local, status: 'failed' });
          throw err;
        }
        await new Promise((r) => setTimeout(r, Math.min(2000, 100 * 2 ** attempt)));
      }
    }
  }

  private upsert(m: ChatMessage): void {
    const rest = this.messagesSignal.value.filter((x) => !(x.sender === m.sender && x.clientMsgId === m.clientMsgId));
    this.messagesSignal.value = sortMessages([...rest, m]);
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
