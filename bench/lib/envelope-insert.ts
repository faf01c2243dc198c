// The insert the bench's seeders use to write envelopes straight into a relay's data folder:
// version 1, suite 1, type `content`, epoch 0, no burn timer, not opened. Parameters in order:
// conv, seq, sender id, client message id, counter, roster hash, expires_at, env_expires_at,
// received_at, ct, sig.
export const SEED_ENVELOPE_INSERT = `insert into envelopes (conv_id, seq, sender_id, client_msg_id, v, suite, type, epoch, counter, roster_hash,
  expires_at, env_expires_at, burn_after_ms, opened_at, received_at, ct, sig) values (?, ?, ?, ?, 1, 1, 'content', 0, ?, ?, ?, ?, null, null, ?, ?, ?)`;
