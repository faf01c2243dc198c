// 0002: rooms — the name's lookup hash and the newest sealed settings on conversations, a role per
// member, the signed membership chain, and join requests.
// Frozen: later changes go in new files. Imports nothing from the application.
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  // SQLite cannot add a UNIQUE column; a unique index does the same, and admits any number of NULLs
  // (direct conversations have no name).
  await db.schema.alterTable('conversations').addColumn('name_hash', 'blob').execute();
  await db.schema.createIndex('conversations_name_hash').on('conversations').column('name_hash').unique().execute();
  await db.schema.alterTable('conversations').addColumn('meta_epoch', 'integer').execute();
  await db.schema.alterTable('conversations').addColumn('meta_author_id', 'integer', (c) => c.references('users.id')).execute();
  await db.schema.alterTable('conversations').addColumn('meta_sealed', 'blob').execute();
  await db.schema.alterTable('conversations').addColumn('meta_sig', 'blob').execute();

  await db.schema.alterTable('members').addColumn('role', 'text', (c) => c.notNull().defaultTo('member')).execute();

  await db.schema
    .createTable('statements')
    .addColumn('conv_id', 'text', (c) => c.notNull().references('conversations.id').onDelete('cascade'))
    .addColumn('seq', 'integer', (c) => c.notNull())
    .addColumn('body', 'blob', (c) => c.notNull())
    .addColumn('sig', 'blob', (c) => c.notNull())
    .addPrimaryKeyConstraint('statements_pk', ['conv_id', 'seq'])
    .modifyEnd(sql`without rowid`)
    .execute();

  await db.schema
    .createTable('join_requests')
    .addColumn('conv_id', 'text', (c) => c.notNull().references('conversations.id').onDelete('cascade'))
    .addColumn('user_id', 'integer', (c) => c.notNull().references('users.id'))
    .addColumn('request', 'blob', (c) => c.notNull())
    .addColumn('sig', 'blob', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('created_at', 'integer', (c) => c.notNull())
    .addPrimaryKeyConstraint('join_requests_pk', ['conv_id', 'user_id'])
    .modifyEnd(sql`without rowid`)
    .execute();
  await db.schema.createIndex('join_requests_user').on('join_requests').columns(['user_id', 'conv_id']).execute();
}

/** Refuses while rooms exist: the 0001 schema cannot hold them, and dropping them would lose data silently. */
export async function down(db: Kysely<any>): Promise<void> {
  const rooms = await sql<{ n: number }>`select count(*) as n from conversations where kind = 'room'`.execute(db);
  if ((rooms.rows[0]?.n ?? 0) > 0) throw new Error('0002_rooms: cannot migrate down while rooms exist');
  await db.schema.dropTable('join_requests').execute();
  await db.schema.dropTable('statements').execute();
  await db.schema.alterTable('members').dropColumn('role').execute();
  await db.schema.dropIndex('conversations_name_hash').execute();
  for (const column of ['meta_sig', 'meta_sealed', 'meta_author_id', 'meta_epoch', 'name_hash']) {
    await db.schema.alterTable('conversations').dropColumn(column).execute();
  }
}
