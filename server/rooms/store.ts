// Rooms in the relay's tables: creation, lookup by name hash, chain changes with their keys and
// settings, and join requests. Every change is one SQLite transaction; nothing is half-written.
import type { Selectable } from 'kysely';
import { UmbraError, type PostStatementRequest, type Role, type SignedStatement } from '../../shared/index.ts';
import type { UserRow } from '../context.ts';
import type { DB, OpenedDb } from '../db.ts';
import { RoomHeads, type RoomHead } from './chain.ts';
import { checkChange, type NewMeta, type NewWrappedKey, type RoomChange } from './changes.ts';

type ConversationRow = Selectable<DB['conversations']>;

export interface NewRoom {
  id: string;
  nameHash: Uint8Array;
  ownerId: number;
  genesis: SignedStatement;
  /** The head after the genesis, as checked. */
  head: RoomHead;
  key: NewWrappedKey;
  meta: NewMeta;
}

export type JoinStatus = 'pending' | 'declined';

export class RoomStore {
  private readonly heads = new RoomHeads();

  constructor(
    private readonly db: OpenedDb,
    private readonly now: () => number,
  ) {}

  private get q() {
    return this.db.kysely;
  }

  /** Throws `conflict` when the id or the name hash is taken. */
  createRoom(r: NewRoom): void {
    this.db.sqlite.transaction(() => {
      if (this.db.first(this.q.selectFrom('conversations').select('id').where('id', '=', r.id))) {
        throw new UmbraError('conflict', 'a conversation with this id exists');
      }
      if (this.roomIdByNameHash(r.nameHash) !== undefined) throw new UmbraError('conflict', 'a room with this name exists');
      const now = this.now();
      this.db.run(
        this.q.insertInto('conversations').values({
          id: r.id,
          kind: 'room',
          direct_key: null,
          created_by: r.ownerId,
          created_at: now,
          last_seq: 0,
          genesis: Buffer.from(r.genesis.statement, 'utf8'),
          genesis_sig: Buffer.from(r.genesis.sig),
          name_hash: Buffer.from(r.nameHash),
          meta_epoch: r.meta.epoch,
          meta_author_id: r.ownerId,
          meta_sealed: Buffer.from(r.meta.sealed),
          meta_sig: Buffer.from(r.meta.sig),
        }),
      );
      this.insertLink(r.id, 0, r.genesis);
      this.db.run(this.q.insertInto('members').values({ conv_id: r.id, user_id: r.ownerId, joined_at: now, role: 'owner' }));
      this.putKeys(r.id, r.ownerId, [r.key]);
    }).immediate();
    this.heads.set(r.id, r.head);
  }

  roomIdByNameHash(nameHash: Uint8Array): string | undefined {
    return this.db.first(this.q.selectFrom('conversations').select('id').where('name_hash', '=', Buffer.from(nameHash)))?.id;
  }

  /** The room's row; `not_found` for an unknown id or a direct conversation. */
  room(id: string): ConversationRow {
    const row = this.db.first(this.q.selectFrom('conversations').selectAll().where('id', '=', id));
    if (!row || row.kind !== 'room') throw new UmbraError('not_found', 'no such room');
    return row;
  }

  /** The caller's role per the relay's replay of the chain, or undefined for a non-member. */
  roleOf(conv: string, userId: number): Role | undefined {
    const row = this.db.first(this.q.selectFrom('members').select('role').where('conv_id', '=', conv).where('user_id', '=', userId));
    return row?.role as Role | undefined;
  }

  adminIds(conv: string): number[] {
    return this.db
      .all(this.q.selectFrom('members').select('user_id').where('conv_id', '=', conv).where('role', 'in', ['owner', 'admin']))
      .map((r) => r.user_id);
  }

  /**
   * Checks a posted link with its keys and settings against the chain's head and writes it, its
   * member change, its keys and its settings in one transaction. Returns the change as written.
   */
  appendChange(conv: string, caller: UserRow, req: PostStatementRequest): RoomChange {
    const change = this.db.sqlite.transaction((): RoomChange => {
      this.room(conv);
      const top = this.db.first(
        this.q
          .selectFrom('statements')
          .select((eb) => eb.fn.max('seq').as('seq'))
          .where('conv_id', '=', conv),
      );
      if (top?.seq === undefined || top.seq === null) throw new Error('a room without a membership chain');
      const head = this.heads.at(conv, top.seq, () => this.links(conv));
      const change = checkChange(conv, head, caller, req, {
        userByName: (username) => this.db.first(this.q.selectFrom('users').selectAll().where('username', '=', username)),
        memberIds: () =>
          new Map(
            this.db
              .all(
                this.q
                  .selectFrom('members')
                  .innerJoin('users', 'users.id', 'members.user_id')
                  .select(['users.username', 'users.id'])
                  .where('members.conv_id', '=', conv),
              )
              .map((r) => [r.username, r.id]),
          ),
      });
      this.insertLink(conv, change.head.seq, change.link);
      if (change.added) {
        this.db.run(
          this.q.insertInto('members').values({ conv_id: conv, user_id: change.added.userId, joined_at: this.now(), role: change.added.role }),
        );
        this.db.run(this.q.deleteFrom('join_requests').where('conv_id', '=', conv).where('user_id', '=', change.added.userId));
      }
      if (change.removedId !== null) {
        this.db.run(this.q.deleteFrom('members').where('conv_id', '=', conv).where('user_id', '=', change.removedId));
      }
      if (change.roleChange) {
        this.db.run(
          this.q.updateTable('members').set({ role: change.roleChange.role }).where('conv_id', '=', conv).where('user_id', '=', change.roleChange.userId),
        );
      }
      this.putKeys(conv, caller.id, change.keys);
      if (change.meta) {
        this.db.run(
          this.q
            .updateTable('conversations')
            .set({
              meta_epoch: change.meta.epoch,
              meta_author_id: caller.id,
              meta_sealed: Buffer.from(change.meta.sealed),
              meta_sig: Buffer.from(change.meta.sig),
            })
            .where('id', '=', conv),
        );
      }
      return change;
    }).immediate();
    this.heads.set(conv, change.head);
    return change;
  }

  /** The stored chain, oldest first. */
  links(conv: string): SignedStatement[] {
    return this.db
      .all(this.q.selectFrom('statements').select(['body', 'sig']).where('conv_id', '=', conv).orderBy('seq'))
      .map((r) => ({ statement: r.body.toString('utf8'), sig: new Uint8Array(r.sig) }));
  }

  // ---- join requests -----------------------------------------------------------------------

  /** Stores or replaces the user's request as pending (a declined one may be asked again). */
  requestJoin(conv: string, userId: number, request: SignedStatement): void {
    const row = { request: Buffer.from(request.statement, 'utf8'), sig: Buffer.from(request.sig), status: 'pending' as JoinStatus, created_at: this.now() };
    this.db.run(
      this.q
        .insertInto('join_requests')
        .values({ conv_id: conv, user_id: userId, ...row })
        .onConflict((oc) => oc.columns(['conv_id', 'user_id']).doUpdateSet(row)),
    );
  }

  /** The pending requests, oldest first. */
  pendingRequests(conv: string): SignedStatement[] {
    return this.db
      .all(
        this.q
          .selectFrom('join_requests')
          .select(['request', 'sig'])
          .where('conv_id', '=', conv)
          .where('status', '=', 'pending')
          .orderBy('created_at'),
      )
      .map((r) => ({ statement: r.request.toString('utf8'), sig: new Uint8Array(r.sig) }));
  }

  /** Marks a pending request declined; false if there was none. */
  declineRequest(conv: string, userId: number): boolean {
    const r = this.db.run(
      this.q
        .updateTable('join_requests')
        .set({ status: 'declined' })
        .where('conv_id', '=', conv)
        .where('user_id', '=', userId)
        .where('status', '=', 'pending'),
    );
    return r.changes === 1;
  }

  /** The user's own requests, oldest first. */
  requestsOf(userId: number): { conv: string; status: JoinStatus; at: number }[] {
    return this.db
      .all(
        this.q
          .selectFrom('join_requests')
          .select(['conv_id', 'status', 'created_at'])
          .where('user_id', '=', userId)
          .orderBy('created_at'),
      )
      .map((r) => ({ conv: r.conv_id, status: r.status as JoinStatus, at: r.created_at }));
  }

  // ---- writes shared by creation and changes ----------------------------------------------

  private insertLink(conv: string, seq: number, link: SignedStatement): void {
    this.db.run(
      this.q.insertInto('statements').values({ conv_id: conv, seq, body: Buffer.from(link.statement, 'utf8'), sig: Buffer.from(link.sig) }),
    );
  }

  /**
   * Stores keys wrapped by `wrappedById`. A member who left and is added back within the same
   * epoch is given that epoch's key again, so an existing key for (room, recipient, epoch) is replaced.
   */
  private putKeys(conv: string, wrappedById: number, keys: readonly NewWrappedKey[]): void {
    for (const k of keys) {
      const row = { wrapped_by_id: wrappedById, wrapped: Buffer.from(k.wrapped), sig: Buffer.from(k.sig) };
      this.db.run(
        this.q
          .insertInto('wrapped_keys')
          .values({ conv_id: conv, epoch: k.epoch, recipient_id: k.recipientId, ...row })
          .onConflict((oc) => oc.columns(['conv_id', 'recipient_id', 'epoch']).doUpdateSet(row)),
      );
    }
  }
}
