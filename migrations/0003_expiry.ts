// 0003: disappearing messages — the signed expiry kept apart from the time the sweeper deletes at,
// and the burn-after-reading timer with the time the envelope was first opened.
// Frozen: later changes go in new files. Imports nothing from the application.
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  // `expires_at` stays the time the sweeper deletes at (it may be brought forward when a
  // burn-after-reading message is opened); `env_expires_at` is the value the sender signed.
  await db.schema.alterTable('envelopes').addColumn('env_expires_at', 'integer').execute();
  await db.schema.alterTable('envelopes').addColumn('burn_after_ms', 'integer').execute();
  await db.schema.alterTable('envelopes').addColumn('opened_at', 'integer').execute();
  await sql`update envelopes set env_expires_at = expires_at`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const c of ['opened_at', 'burn_after_ms', 'env_expires_at']) {
    await db.schema.alterTable('envelopes').dropColumn(c).execute();
  }
}
