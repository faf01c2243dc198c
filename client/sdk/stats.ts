// What the receive checks dropped, and why: every rejected envelope is counted here
// (docs/PROTOCOL.md §Receiving).
import { signal, type ReadonlySignal } from '@preact/signals-core';

/** Why an envelope was dropped; every drop is counted in SecurityStats. */
export type RejectReason =
  | 'wrong_conversation'
  | 'unknown_sender'
  | 'unknown_epoch'
  /** Rooms: sent under an epoch its sender no longer belonged to, after the client learnt they had gone. */
  | 'stale_epoch'
  | 'unsupported'
  | 'bad_signature_or_ciphertext'
  | 'roster_mismatch'
  | 'type_mismatch'
  | 'replay'
  /** Not a rejection: the relay said it would keep a message past its signed expiry; it is hidden at the signed time. */
  | 'expiry_extended';

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
