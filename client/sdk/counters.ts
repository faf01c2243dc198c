// Each sender's message counters as a member's client has read them: a skipped counter is a gap
// (a message missing, withheld or expired), a counter below the highest seen is a reordering
// (docs/PROTOCOL.md §Receiving).
import type { Signal } from '@preact/signals-core';
import type { StoredEnvelope } from '../../shared/index.ts';

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

/** A sender's counters as loaded so far: newer pages move `max`, older pages move `min`. */
interface SenderState {
  max: number;
  min: number;
  /** Where the message with counter `min` sits; a gap found before it is reported there. */
  minSeq: number;
}

export class SenderCounters {
  private readonly senders = new Map<string, SenderState>();

  /** `shown`: the notices already shown, which a late message can settle. */
  constructor(private readonly shown: Signal<Notice[]>) {}

  /**
   * Tracks the counter of an authentic message read forwards (live, catch-up, newest page) or
   * backwards (older pages); adds new gap notices to `fresh` and returns the message's flags.
   * `fromStart`: the loaded history reaches back to the conversation's first message.
   */
  track(item: StoredEnvelope, mode: 'forward' | 'older', fromStart: boolean, fresh: Notice[]): 'reordered'[] {
    const w = item.env;
    const state = this.senders.get(w.sender);
    const flags: 'reordered'[] = [];
    // A repeated counter under another client message id is not a replay (the relay cannot sign):
    // two devices of one sender can pick the same counter.
    if (mode === 'forward') {
      if (state) {
        if (w.counter > state.max + 1) fresh.push(gap(w.sender, state.max + 1, w.counter - 1, item.seq));
        else if (w.counter < state.max) {
          flags.push('reordered');
          this.fillGap(w.sender, w.counter, fresh);
        }
      } else if (fromStart && w.counter > 1) {
        fresh.push(gap(w.sender, 1, w.counter - 1, item.seq));
      }
    } else if (state && w.counter < state.min - 1) {
      fresh.push(gap(w.sender, w.counter + 1, state.min - 1, state.minSeq));
    }
    const s = state ?? { max: w.counter, min: w.counter, minSeq: item.seq };
    if (mode === 'forward') s.max = Math.max(s.max, w.counter);
    else if (w.counter < s.min) {
      s.min = w.counter;
      s.minSeq = item.seq;
    }
    this.senders.set(w.sender, s);
    return flags;
  }

  /** The first page is in: a sender whose first message is not counter 1 lost the ones before it. */
  reachedStart(fresh: Notice[]): void {
    for (const [sender, s] of this.senders) {
      if (s.min > 1) fresh.push(gap(sender, 1, s.min - 1, s.minSeq));
    }
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
    const shown = this.shown.value.find(covers);
    if (!shown) return;
    this.shown.value = this.shown.value.map((n) => (n === shown ? { ...n, missing: n.missing - 1 } : n)).filter((n) => n.missing > 0);
  }
}

function gap(sender: string, fromCounter: number, toCounter: number, atSeq: number): Notice {
  return { kind: 'gap', sender, missing: toCounter - fromCounter + 1, atSeq, fromCounter, toCounter };
}
