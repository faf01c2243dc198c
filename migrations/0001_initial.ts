// 0001: accounts, sessions, conversations, wrapped keys and envelopes.
// Frozen: later changes go in new files. Imports nothing from the application.
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('users')
    .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
    .addColumn('username', 'text', (c) => c.notNull().unique())
    .addColumn('salt', 'blob', (c) => c.notNull())
    .addColumn('kdf_ops', 'integer', (c) => c.notNull())
    .addColumn('kdf_mem_kib', 'integer', (c) => c.notNull())
    .addColumn('auth_hash', 'blob', (c) => c.notNull())
    .addColumn('identity_key', 'blob', (c) => c.notNull())
    .addColumn('x25519_key', 'blob', (c) => c.notNull())
    .addColumn('x25519_sig', 'blob', (c) => c.notNull())
    .addColumn('vault', 'blob', (c) => c.notNull())
    .addColumn('vault_version', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'integer', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('sessions')
    .addColumn('token_hash', 'blob', (c) => c.primaryKey())
    .addColumn('user_id', 'integer', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('created_at', 'integer', (c) => c.notNull())
    .addColumn('expires_at', 'integer', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('sessions_user').on('sessions').column('user_id').execute();

  await db.schema
    .createTable('conversations')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('direct_key', 'text', (c) => c.unique())
    .addColumn('created_by', 'integer', (c) => c.notNull().references('users.id'))
    .addColumn('created_at', 'integer', (c) => c.notNull())
    .addColumn('last_seq', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('genesis', 'blob', (c) => c.notNull())
    .addColumn('genesis_sig', 'blob', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('members')
    .addColumn('conv_id', 'text', (c) => c.notNull().references('conversations.id').onDelete('cascade'))
    .addColumn('user_id', 'integer', (c) => c.notNull().references('users.id'))
    .addColumn('joined_at', 'integer', (c) => c.notNull())
    .addPrimaryKeyConstraint('members_pk', ['conv_id', 'user_id'])
    .modifyEnd(sql`without rowid`)
    .execute();
  await db.schema.createIndex('members_user').on('members').columns(['user_id', 'conv_id']).execute();

  await db.schema
    .createTable('wrapped_keys')
    .addColumn('conv_id', 'text', (c) => c.notNull().references('conversations.id').onDelete('cascade'))
    .addColumn('epoch', 'integer', (c) => c.notNull())
    .addColumn('recipient_id', 'integer', (c) => c.notNull().references('users.id'))
    .addColumn('wrapped_by_id', 'integer', (c) => c.notNull().references('users.id'))
    .addColumn('wrapped', 'blob', (c) => c.notNull())
    .addColumn('sig', 'blob', (c) => c.notNull())
    .addPrimaryKeyConstraint('wrapped_keys_pk', ['conv_id', 'recipient_id', 'epoch'])
    .modifyEnd(sql`without rowid`)
    .execute();

  await db.schema
    .createTable('envelopes')
    .addColumn('conv_id', 'text', (c) => c.notNull().references('conversations.id').onDelete('cascade'))
    .addColumn('seq', 'integer', (c) => c.notNull())
    .addColumn('sender_id', 'integer', (c) => c.notNull().references('users.id'))
    .addColumn('client_msg_id', 'text', (c) => c.notNull())
    .addColumn('v', 'integer', (c) => c.notNull())
    .addColumn('suite', 'integer', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('epoch', 'integer', (c) => c.notNull())
    .addColumn('counter', 'integer', (c) => c.notNull())
    .addColumn('roster_hash', 'blob', (c) => c.notNull())
    .addColumn('expires_at', 'integer')
    .addColumn('received_at', 'integer', (c) => c.notNull())
    .addColumn('ct', 'blob', (c) => c.notNull())
    .addColumn('sig', 'blob', (c) => c.notNull())
    .addPrimaryKeyConstraint('envelopes_pk', ['conv_id', 'seq'])
    .modifyEnd(sql`without rowid`)
    .execute();
  await db.schema
    .createIndex('envelopes_idempotency')
    .on('envelopes')
    .columns(['conv_id', 'sender_id', 'client_msg_id'])
    .unique()
    .execute();
  await db.schema.createIndex('envelopes_expiry').on('envelopes').column('expires_at').where(sql.ref('expires_at'), 'is not', null).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of ['envelopes', 'wrapped_keys', 'members', 'conversations', 'sessions', 'users']) {
    await db.schema.dropTable(t).execute();
  }
}
