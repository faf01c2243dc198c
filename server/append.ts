// The one implementation of storing an envelope (docs/PROTOCOL.md §Delivery), run inside the
// caller's transaction on whichever connection commits: the relay's own (RelayStore.appendEnvelopes)
// or the writer thread's (server/ws/writer.ts), whose source embeds `appendEnvelope` through
// Function.prototype.toString. It must therefore stay self-contained: no imports, no closures, no
// nested functions, plain JavaScript once the types are stripped.

/** SQL of the statements `appendEnvelope` runs; each connection prepares its own. */
export const APPEND_SQL = {
  existing: 'select seq, received_at, ct, sig from envelopes where conv_id = ? and sender_id = ? and client_msg_id = ?',
  /** Prepared with `.pluck()`: the conversation's new last seq, or undefined for an unknown conversation. */
  nextSeq: 'update conversations set last_seq = last_seq + 1 where id = ? returning last_seq',
  insert:
    'insert into envelopes (conv_id, seq, sender_id, client_msg_id, v, suite, type, epoch, counter, roster_hash, expires_at, env_expires_at, burn_after_ms, received_at, ct, sig) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
  /**
   * Burn after reading: the first time a member other than the sender opens one of these
   * envelopes (a JSON array of seqs), its deletion moves forward to now + its signed burn timer.
   * Envelopes without a burn timer, already opened, or sent by the opener are left alone.
   */
  opened:
    'update envelopes set opened_at = @now, expires_at = min(coalesce(expires_at, 9007199254740991), @now + burn_after_ms) ' +
    'where conv_id = @conv and seq in (select value from json_each(@seqs)) and sender_id != @opener and burn_after_ms is not null and opened_at is null',
} as const;

/** A prepared statement, as far as `appendEnvelope` uses one (better-sqlite3's Statement). */
interface Stmt {
  get(...params: unknown[]): unknown;
  run(...params: unknown[]): unknown;
}

/** The statements of APPEND_SQL, prepared on one connection (`nextSeq` plucked). */
export interface AppendStatements {
  existing: Stmt;
  nextSeq: Stmt;
  insert: Stmt;
  opened: Stmt;
}

/** One envelope to store: the routing fields the relay keeps, and the opaque bytes. */
export interface AppendRow {
  conv: string;
  senderId: number;
  clientMsgId: string;
  v: number;
  suite: number;
  type: string;
  epoch: number;
  counter: number;
  expiresAt: number | null;
  burnAfterMs: number | null;
  rosterHash: Uint8Array;
  ct: Uint8Array;
  sig: Uint8Array;
  /** Seqs the sender has opened (burn after reading). */
  opens: readonly number[];
}

/** Stored (or found stored already: `duplicate`), or refused before any write with an error code of the protocol's vocabulary. */
export type AppendOutcome =
  | { seq: number; receivedAt: number; duplicate: boolean }
  | { refused: 'duplicate_message' | 'not_found'; message: string };

/**
 * Stores one envelope with its conversation's next seq, inside the caller's transaction. Every
 * check that refuses it (a used client message id with other bytes, an unknown conversation)
 * comes before its first write, so a refusal leaves nothing to undo. A retry with the same client
 * message id and bytes returns the first result.
 */
export function appendEnvelope(st: AppendStatements, r: AppendRow, now: number): AppendOutcome {
  const existing = st.existing.get(r.conv, r.senderId, r.clientMsgId) as { seq: number; received_at: number; ct: Uint8Array; sig: Uint8Array } | undefined;
  if (existing) {
    if (Buffer.compare(existing.ct, r.ct) !== 0 || Buffer.compare(existing.sig, r.sig) !== 0) {
      return { refused: 'duplicate_message', message: 'this client message id was already used for another message' };
    }
    return { seq: existing.seq, receivedAt: existing.received_at, duplicate: true };
  }
  // The first write; for an unknown conversation it matches no row and so writes nothing.
  const seq = st.nextSeq.get(r.conv) as number | undefined;
  if (seq === undefined) return { refused: 'not_found', message: 'no such conversation' };
  // A retry of a stored envelope returned above: its opens were applied with it the first time.
  if (r.opens.length > 0) st.opened.run({ now, conv: r.conv, seqs: JSON.stringify(r.opens), opener: r.senderId });
  // better-sqlite3 binds a Uint8Array (its own window of the buffer) as a blob, without a copy here.
  st.insert.run(r.conv, seq, r.senderId, r.clientMsgId, r.v, r.suite, r.type, r.epoch, r.counter, r.rosterHash, r.expiresAt, r.expiresAt, r.burnAfterMs, now, r.ct, r.sig);
  return { seq, receivedAt: now, duplicate: false };
}
