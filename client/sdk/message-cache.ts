// The messages a device keeps between visits (IndexedDB in the browser), so a conversation opens
// with its recent history before the relay answers, and offline. Disappearing messages leave it
// at their expiry like they leave the view (docs/PROTOCOL.md §Disappearing messages).
import type { KeyValueStore } from './platform.ts';
import type { ChatMessage } from './timeline.ts';

const PREFIX = 'messages:';
const INDEX_KEY = 'messages-index';
/** Newest messages kept per conversation. */
export const CACHE_LIMIT = 200;

export class MessageCache {
  constructor(
    private readonly store: KeyValueStore,
    private readonly now: () => number,
  ) {}

  /** The conversation's kept messages that have not expired; expired ones are deleted on the way. */
  async load(conv: string): Promise<ChatMessage[]> {
    const kept = (await this.store.get<ChatMessage[]>(PREFIX + conv)) ?? [];
    const live = kept.filter((m) => !expired(m, this.now()));
    if (live.length !== kept.length) await this.save(conv, live);
    return live;
  }

  /** Keeps the newest sent messages of a conversation (only what has a relay sequence number). */
  async save(conv: string, messages: readonly ChatMessage[]): Promise<void> {
    const now = this.now();
    const keep = messages.filter((m) => m.seq !== null && m.status === 'sent' && !expired(m, now)).slice(-CACHE_LIMIT);
    const index = new Set((await this.store.get<string[]>(INDEX_KEY)) ?? []);
    if (keep.length) {
      await this.store.set(PREFIX + conv, keep);
      if (!index.has(conv)) await this.store.set(INDEX_KEY, [...index, conv]);
    } else {
      await this.store.delete(PREFIX + conv);
      if (index.delete(conv)) await this.store.set(INDEX_KEY, [...index]);
    }
  }

  /** Deletes every expired message in every conversation; returns how many (run at start, online or not). */
  async purgeExpired(): Promise<number> {
    let removed = 0;
    for (const conv of (await this.store.get<string[]>(INDEX_KEY)) ?? []) {
      const kept = (await this.store.get<ChatMessage[]>(PREFIX + conv)) ?? [];
      const live = kept.filter((m) => !expired(m, this.now()));
      removed += kept.length - live.length;
      if (live.length !== kept.length) await this.save(conv, live);
    }
    return removed;
  }
}

function expired(m: ChatMessage, now: number): boolean {
  return m.expiresAt !== null && m.expiresAt <= now;
}
