// One conversation as a member's client sees it: verified roster, epoch keys, and the receive
// pipeline that verifies, decrypts and orders envelopes, rejecting and counting anything forged,
// replayed, reflected or moved (docs/PROTOCOL.md §Receiving).
import { signal, type ReadonlySignal } from '@preact/signals-core';
import {
  LIMITS,
  PROTOCOL_VERSION,
  TAG_BYTES,
  XNONCE_BYTES,
  SUITE_XCHACHA20_ED25519,
  UmbraError,
  decodeEvent,
  encodeEvent,
  envelopeTypeOf,
  equalBytes,
  fromB64,
  openEnvelope,
  peekGenesis,
  randomBytes,
  rosterHash,
  sealEnvelope,
  toB64,
  unwrapConversationKey,
  verifyGenesis,
  type ConversationSummary,
  type EnvelopeWire,
  type PlainEvent,
  type SealedEnvelope,
  type StoredEnvelope,
} from '../../shared/index.ts';
import type { Directory } from './directory.ts';
import type { HttpApi } from './http.ts';
import type { IdentityKeys } from '../../shared/index.ts';
import type { Transport } from './transport.ts';
import { HistoryResponse } from '../../shared/index.ts';

/** Why an envelope was dropped; every drop is counted in SecurityStats. */
export type RejectReason =
  | 'wrong_conversation'
  | 'unknown_sender'
  | 'unknown_epoch'
  | 'unsupported'
  | 'bad_signature_or_ciphertext'
  | 'roster_mismatch'
  | 'type_mismatch'
  | 'replay';

export interface Rejection {
  conv: string;
  seq: number;
  sender: string;
  reason: RejectReason;
}

export class SecurityStats {
  private readonly list = signal<Rejection[]>([]);
  get rejections(): ReadonlySignal<Rejection[]> {
    return this.list;
  }
  count(reason?: RejectReason): number {
    return reason ? this.list.value.filter((r) => r.reason === reason).length : this.list.value.length;
  }
  record(r: Rejection): void {
    this.list.value = [...this.list.value, r];
  }
}

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

/** Something the user should be told about the conversation's integrity. */
export interface Notice {
  kind: 'gap';
  sender: string;
  /** How many of the sender's counters in [fromCounter, toCounter] have not arrived. */
  missing: number;
  atSeq: number;
  fromCounter: number;
  toCounter: number;
}

export interface ConversationDeps {
  me: { username: string; keys: IdentityKeys };
  directory: Directory;
  http: HttpApi;
  transport: Transport;
  stats: SecurityStats;
  now(): number;
}

/** A sender's counters as loaded so far: newer pages move `max`, older pages move `min`. */
interface SenderState {
  max: number;
  min: number;
  /** Where the message with counter `min` sits; a gap found before it is reported there. */
  minSeq: number;
}

const PAGE = 50;

export class Conversation {
  readonly id: string;
  readonly members: string[];
  /** The other member of a direct conversation. */
  readonly peer: string;
  private readonly messagesSignal = signal<ChatMessage[]>([]);
  private readonly noticesSignal = signal<Notice[]>([]);
  private readonly hasOlderSignal = signal(false);
  private readonly problemSignal = signal<string | null>(null);
  private readonly keys = new Map<number, Uint8Array>();
  private memberKeys = new Map<string, Uint8Array>();
  private roster: Uint8Array = new Uint8Array(32);
  private epoch = 0;
  private lastSeq = 0;
  private oldestSeq = Number.POSITIVE_INFINITY;
  /** True once the loaded history reaches back to the conversation's first message. */
  private fromStart = false;
  private myCounter: number;
  private readonly senders = new Map<string, SenderState>();
  /** sender + clientMsgId → seq it was first seen at. */
  private readonly seenIds = new Map<string, number>();
  private catchingUp: Promise<void> | null = null;
  private pushedDuringCatchUp = false;

  private constructor(
    private readonly summary: ConversationSummary,
    private readonly d: ConversationDeps,
  ) {
    this.id = summary.id;
    this.members = summary.members;
    this.peer = summary.members.find((m) => m !== d.me.username) ?? d.me.username;
    this.myCounter = summary.myLastCounter;
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
  /** Non-null when the conversation failed verification; nothing is shown or sent then. */
  get problem(): ReadonlySignal<string | null> {
    return this.problemSignal;
  }
  get relaySeq(): number {
    return this.lastSeq;
  }

  /** Verifies the signed genesis against pinned keys and unwraps this member's keys. */
  static async open(summary: ConversationSummary, d: ConversationDeps): Promise<Conversation> {
    const c = new Conversation(summary, d);
    try {
      await c.verify();
    } catch (err) {
      // A network failure is not a verdict: the caller retries the whole load later.
      if (err instanceof UmbraError && (err.code === 'disconnected' || err.code === 'timeout')) throw err;
      c.problemSignal.value = err instanceof UmbraError ? err.message : 'this conversation failed verification';
    }
    return c;
  }

  private async verify(): Promise<void> {
    const fail = (why: string): never => {
      throw new UmbraError('verification_failed', why);
    };
    const genesis = peekGenesis(this.summary.genesis.statement);
    if (!genesis || genesis.conv !== this.id) fail('the conversation record is not for this conversation');
    const g = genesis!;
    const listed = [...g.members.map((m) => m.username)].sort().join(',');
    if (listed !== [...this.members].sort().join(',')) fail('the relay lists members the creator did not sign');
    if (!g.members.some((m) => m.username === this.d.me.username)) fail('you are not in the signed member list');
    for (const m of g.members) {
      const key = fromB64(m.identityKey);
      if (m.username === this.d.me.username) {
        if (!equalBytes(key, this.d.me.keys.signing.publicKey)) fail('the signed member list has a different key for you');
      } else {
        try {
          await this.d.directory.lookup(m.username);
        } catch (err) {
          if (!(err instanceof UmbraError && err.code === 'identity_changed')) throw err;
        }
        const pinned = this.d.directory.pinned(m.username);
        if (!pinned || !equalBytes(pinned, key)) fail(`the signed member list has a key for ${m.username} that you have not verified`);
      }
      this.memberKeys.set(m.username, key);
    }
    const creatorKey = this.memberKeys.get(g.createdBy);
    if (!creatorKey || !verifyGenesis({ statement: this.summary.genesis.statement, sig: fromB64(this.summary.genesis.sig) }, creatorKey)) {
      fail('the member list is not signed by its creator');
    }
    this.roster = rosterHash(this.id, g.members.map((m) => ({ username: m.username, identityKey: fromB64(m.identityKey) })));
    for (const w of this.summary.keys) {
      const wrapperKey = this.memberKeys.get(w.wrappedBy);
      if (w.recipient !== this.d.me.username || w.conv !== this.id || !wrapperKey) continue;
      try {
        const key = unwrapConversationKey(
          { conv: w.conv, epoch: w.epoch, recipient: w.recipient, wrappedBy: w.wrappedBy, wrapped: fromB64(w.wrapped), sig: fromB64(w.sig) },
          this.d.me.keys.agreement.secretKey,
          wrapperKey,
        );
        this.keys.set(w.epoch, key);
        this.epoch = Math.max(this.epoch, w.epoch);
      } catch {
        // An unverifiable wrapped key is ignored: messages under that epoch will be rejected.
      }
    }
    if (!this.keys.has(this.epoch)) fail('no conversation key you can verify was shared with you');
  }

  /** Loads the newest page of history, then whatever arrived since. */
  async loadLatest(): Promise<void> {
    if (this.problemSignal.value) return;
    const page = await this.d.http.get(`/api/conversations/${this.id}/envelopes?limit=${PAGE}`, HistoryResponse);
    const items = [...page.envelopes].reverse();
    if (items.length) this.oldestSeq = items[0]!.seq;
    this.hasOlderSignal.value = page.more;
    this.fromStart = !page.more;
    this.ingest(items, 'forward');
  }

  /** Loads the page before the oldest loaded message. */
  async loadOlder(): Promise<void> {
    if (this.problemSignal.value || !this.hasOlderSignal.value) return;
    const page = await this.d.http.get(`/api/conversations/${this.id}/envelopes?before=${this.oldestSeq}&limit=${PAGE}`, HistoryResponse);
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
        while (this.pushedDuringCatchUp) {
          this.pushedDuringCatchUp = false;
          for (;;) {
            const batch = await this.d.transport.request({ t: 'sync', conv: this.id, after: this.lastSeq, limit: 100 }, 'batch');
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
    if (this.problemSignal.value) return;
    if (item.seq === this.lastSeq + 1 && !this.catchingUp) this.ingest([item], 'forward');
    else if (item.seq > this.lastSeq) void this.catchUp().catch(() => {});
  }

  private ingest(items: StoredEnvelope[], mode: 'forward' | 'older'): void {
    if (this.problemSignal.value) return;
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
      if (result) added.push(result);
    }
    if (mode === 'older' && this.fromStart) {
      // The first page is in: a sender whose first message is not counter 1 lost the ones before it.
      for (const [sender, s] of this.senders) {
        if (s.min > 1) notices.push(gap(sender, 1, s.min - 1, s.minSeq));
      }
    }
    if (!added.length && !removed.size && !notices.length) return;
    const bySeqOrId = new Map<string, ChatMessage>();
    for (const m of this.messagesSignal.value) if (!removed.has(m.clientMsgId + m.sender)) bySeqOrId.set(m.sender + '/' + m.clientMsgId, m);
    for (const m of added) bySeqOrId.set(m.sender + '/' + m.clientMsgId, m);
    this.messagesSignal.value = sortMessages([...bySeqOrId.values()]);
    if (notices.length) this.noticesSignal.value = [...this.noticesSignal.value, ...notices];
  }

  /** A late message arrived: the gap notice that counted it as missing counts one fewer. */
  private fillGap(sender: string, counter: number, fresh: Notice[]): void {
    const covers = (n: Notice) => n.sender === sender && n.fromCounter <= counter && counter <= n.toCounter && n.missing > 0;
    const inFresh = fresh.find(covers);
    if (inFresh) {
      inFresh.missing--;
      fresh.splice(0, fresh.length, ...fresh.filter((n) => n.missing > 0));
      return;
    }
    const shown = this.noticesSignal.value.find(covers);
    if (!shown) return;
    this.noticesSignal.value = this.noticesSignal.value
      .map((n) => (n === shown ? { ...n, missing: n.missing - 1 } : n))
      .filter((n) => n.missing > 0);
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
    const senderKey = this.memberKeys.get(w.sender);
    if (!senderKey) return this.reject(item, 'unknown_sender');
    const key = this.keys.get(w.epoch);
    if (!key) return this.reject(item, 'unknown_epoch');
    let plain: Uint8Array;
    let env: SealedEnvelope;
    try {
      env = fromWire(w);
      plain = openEnvelope(env, key, senderKey);
    } catch {
      return this.reject(item, 'bad_signature_or_ciphertext');
    }
    // Signed and authentic from here; now check it belongs where and when the relay put it.
    if (!equalBytes(env.rosterHash, this.roster)) return this.reject(item, 'roster_mismatch');
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
    const state = this.senders.get(w.sender);
    const flags: 'reordered'[] = [];
    // A repeated counter under another client message id is not a replay (the relay cannot sign):
    // two devices of one sender can pick the same counter.
    if (mode === 'forward') {
      if (state) {
        if (w.counter > state.max + 1) notices.push(gap(w.sender, state.max + 1, w.counter - 1, item.seq));
        else if (w.counter < state.max) {
          flags.push('reordered');
          this.fillGap(w.sender, w.counter, notices);
        }
      } else if (this.fromStart && w.counter > 1) {
        notices.push(gap(w.sender, 1, w.counter - 1, item.seq));
      }
    } else if (state && w.counter < state.min - 1) {
      notices.push(gap(w.sender, w.counter + 1, state.min - 1, state.minSeq));
    }
    const s = state ?? { max: w.counter, min: w.counter, minSeq: item.seq };
    if (mode === 'forward') s.max = Math.max(s.max, w.counter);
    else if (w.counter < s.min) {
      s.min = w.counter;
      s.minSeq = item.seq;
    }
    this.senders.set(w.sender, s);
    this.seenIds.set(idKey, item.seq);
    if (mine) this.myCounter = Math.max(this.myCounter, w.counter);
    if (firstSeq === item.seq) return null; // our own message, already shown from its ack
    return { clientMsgId: w.clientMsgId, seq: item.seq, sender: w.sender, mine, event, at: item.receivedAt, status: 'sent', flags, expiresAt: w.expiresAt };
  }

  /**
   * Encrypts, signs and sends an event; resolves when the relay acknowledged it durably.
   * Throws `identity_changed` (nothing sent) while any member's key change is unaccepted.
   */
  async send(event: PlainEvent, expiresAt: number | null = null): Promise<ChatMessage> {
    if (this.problemSignal.value) throw new UmbraError('verification_failed', this.problemSignal.value);
    for (const m of this.members) {
      if (m === this.d.me.username) continue;
      await this.d.directory.lookup(m, true);
      if (this.d.directory.hasAlert(m)) throw new UmbraError('identity_changed', `${m}'s security key changed; verify it before sending`);
    }
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
    const key = this.keys.get(this.epoch)!;
    const header = {
      v: PROTOCOL_VERSION,
      suite: SUITE_XCHACHA20_ED25519,
      type: envelopeTypeOf(event),
      conv: this.id,
      epoch: this.epoch,
      sender: this.d.me.username,
      rosterHash: this.roster,
      clientMsgId: toB64(randomBytes(16)),
      counter: ++this.myCounter,
      expiresAt,
    };
    const sealed = sealEnvelope(header, plaintext, key, this.d.me.keys.signing.secretKey);
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

function gap(sender: string, fromCounter: number, toCounter: number, atSeq: number): Notice {
  return { kind: 'gap', sender, missing: toCounter - fromCounter + 1, atSeq, fromCounter, toCounter };
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
