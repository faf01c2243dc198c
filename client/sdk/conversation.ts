// A direct conversation as a member's client sees it: the creator-signed member list checked
// against pinned keys, the epoch keys wrapped for this member, and the checks that tie each
// envelope to them (docs/PROTOCOL.md §Membership, §Receiving).
import {
  UmbraError,
  equalBytes,
  fromB64,
  peekGenesis,
  rosterHash,
  unwrapConversationKey,
  verifyGenesis,
  type ConversationSummary,
  type EnvelopeWire,
  type SealedEnvelope,
} from '../../shared/index.ts';
import type { RejectReason } from './stats.ts';
import { Timeline, type Admission, type SendContext, type TimelineDeps } from './timeline.ts';

export { SecurityStats, type RejectReason, type Rejection } from './stats.ts';
export type { ChatMessage } from './timeline.ts';
export type { Notice } from './counters.ts';

export type ConversationDeps = TimelineDeps;

export class Conversation extends Timeline {
  readonly members: string[];
  /** The other member of a direct conversation. */
  readonly peer: string;
  private readonly keys = new Map<number, Uint8Array>();
  private memberKeys = new Map<string, Uint8Array>();
  private roster: Uint8Array = new Uint8Array(32);
  private epoch = 0;

  private constructor(
    private readonly summary: ConversationSummary,
    d: TimelineDeps,
  ) {
    super(summary.id, summary.myLastCounter, d);
    this.members = summary.members;
    this.peer = summary.members.find((m) => m !== d.me.username) ?? d.me.username;
  }

  /** Verifies the signed genesis against pinned keys and unwraps this member's keys. */
  static async open(summary: ConversationSummary, d: TimelineDeps): Promise<Conversation> {
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

  protected override admit(w: EnvelopeWire): Admission {
    const senderKey = this.memberKeys.get(w.sender);
    if (!senderKey) return { ok: false, reason: 'unknown_sender' };
    const key = this.keys.get(w.epoch);
    if (!key) return { ok: false, reason: 'unknown_epoch' };
    return { ok: true, senderKey, key };
  }

  protected override checkRoster(env: SealedEnvelope): RejectReason | null {
    return equalBytes(env.rosterHash, this.roster) ? null : 'roster_mismatch';
  }

  /** Throws `identity_changed` (nothing sent) while any member's key change is unaccepted. */
  protected override async sendContext(): Promise<SendContext> {
    if (this.problemSignal.value) throw new UmbraError('verification_failed', this.problemSignal.value);
    for (const m of this.members) {
      if (m === this.d.me.username) continue;
      await this.d.directory.lookup(m, true);
      if (this.d.directory.hasAlert(m)) throw new UmbraError('identity_changed', `${m}'s security key changed; verify it before sending`);
    }
    return { epoch: this.epoch, rosterHash: this.roster, key: this.keys.get(this.epoch)! };
  }
}
