// The direct conversations a user is in: opening them from the relay's summaries, and starting
// one with a fresh key wrapped for both members (docs/PROTOCOL.md §Membership, §Key wrapping).
import { signal, type ReadonlySignal } from '@preact/signals-core';
import {
  ConversationSummary,
  UmbraError,
  randomBytes,
  randomKey,
  signGenesis,
  toB64,
  wipe,
  wrapConversationKeyForAll,
  type GenesisStatement,
} from '../../shared/index.ts';
import { Conversation } from './conversation.ts';
import type { TimelineDeps } from './timeline.ts';

export class ConversationList {
  private readonly map = new Map<string, Conversation>();
  private readonly listSignal = signal<Conversation[]>([]);
  /** Conversations being started or opened: a push for the same id waits for the same object. */
  private readonly opening = new Map<string, Promise<Conversation>>();

  constructor(private readonly deps: () => TimelineDeps) {}

  get list(): ReadonlySignal<Conversation[]> {
    return this.listSignal;
  }

  get(id: string): Conversation | undefined {
    return this.map.get(id);
  }

  clear(): void {
    this.map.clear();
    this.opening.clear();
    this.listSignal.value = [];
  }

  /** The direct conversation with `username`, if one exists. */
  directWith(username: string): Conversation | undefined {
    return [...this.map.values()].find((c) => c.members.length === 2 && c.members.includes(username));
  }

  /** Verifies and opens a conversation from its summary and loads its newest messages (once per id). */
  async open(summary: ConversationSummary): Promise<Conversation> {
    const known = this.map.get(summary.id) ?? (await this.opening.get(summary.id));
    if (known) return known;
    const opening = this.openNew(summary).finally(() => this.opening.delete(summary.id));
    this.opening.set(summary.id, opening);
    return opening;
  }

  private async openNew(summary: ConversationSummary): Promise<Conversation> {
    const conv = await Conversation.open(summary, this.deps());
    this.map.set(summary.id, conv);
    this.listSignal.value = [...this.map.values()];
    await conv.loadLatest();
    return conv;
  }

  /**
   * Starts (or returns the existing) private conversation with `username`: a fresh key, wrapped
   * for both members' verified X25519 keys, and a genesis statement signed by us.
   */
  async start(username: string, refresh: () => Promise<void>): Promise<Conversation> {
    const d = this.deps();
    const me = d.me.username;
    if (username === me) throw new UmbraError('bad_request', 'you cannot start a conversation with yourself');
    const existing = this.directWith(username);
    if (existing) return existing;
    const peer = await d.directory.lookup(username, true);
    const id = toB64(randomBytes(16));
    const mine = { username: me, identityKey: d.me.keys.signing.publicKey, x25519Key: d.me.keys.agreement.publicKey };
    const members = [mine, peer].sort((a, b) => (a.username < b.username ? -1 : 1));
    const genesis: GenesisStatement = {
      v: 1,
      kind: 'genesis',
      conv: id,
      convKind: 'direct',
      createdBy: me,
      createdAt: d.now(),
      members: members.map((m) => ({ username: m.username, identityKey: toB64(m.identityKey) })),
    };
    const signed = signGenesis(genesis, d.me.keys.signing.secretKey);
    const key = randomKey();
    const keys = wrapConversationKeyForAll(
      key,
      members.map((m) => ({ recipient: m.username, x25519: m.x25519Key })),
      { conv: id, epoch: 0, wrappedBy: me },
      d.me.keys.signing.secretKey,
    ).map((w) => ({ conv: w.conv, epoch: w.epoch, recipient: w.recipient, wrappedBy: w.wrappedBy, wrapped: toB64(w.wrapped), sig: toB64(w.sig) }));
    wipe(key);
    // Registered before the request so a `conv` push for this id waits for this same object.
    const creating = (async () => {
      const summary = await d.http.post(
        '/api/conversations',
        { id, kind: 'direct', members: members.map((m) => m.username), genesis: { statement: signed.statement, sig: toB64(signed.sig) }, keys },
        ConversationSummary,
      );
      return this.openNew(summary);
    })().finally(() => this.opening.delete(id));
    this.opening.set(id, creating);
    try {
      return await creating;
    } catch (err) {
      // Someone started it first (the other person, or us on another device): use that one.
      if (err instanceof UmbraError && err.code === 'conflict') {
        await refresh();
        const found = this.directWith(username);
        if (found) return found;
      }
      throw err;
    }
  }
}
