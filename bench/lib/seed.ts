// Prepares an Umbra data folder before the relay starts, through the relay's own storage code:
// users with real keys and sessions, and rooms whose membership chains are really signed. Seeded
// once into a template folder; every run gets a fresh copy of it.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDb, DB_FILE } from '../../server/db.ts';
import { RoomStore } from '../../server/rooms/store.ts';
import { headOf } from '../../server/rooms/chain.ts';
import { SECRET_FILE } from '../../server/secrets.ts';
import { newSessionToken, SESSION_COOKIE } from '../../server/sessions.ts';
import { RelayStore } from '../../server/store.ts';
import {
  generateIdentity,
  initCrypto,
  publicKeysOf,
  randomKey,
  replayRoomChain,
  rosterHash,
  sealRoomMeta,
  signStatement,
  statementHash,
  toB64,
  wrapConversationKey,
  type IdentityKeys,
  type RoomOp,
  type SignedStatement,
} from '../../shared/index.ts';

export interface SeedShape {
  users: number;
  rooms: number;
  /** Members per room; room r holds users r*perRoom .. r*perRoom+perRoom-1 (rooms must fit in users). */
  perRoom: number;
}

/** What the load generator needs to act as the seeded users. Binary values are base64url. */
export interface SeedManifest {
  shape: SeedShape;
  users: { name: string; cookie: string; signingSecret: string; identityKey: string }[];
  rooms: { id: string; members: number[]; epoch: number; epochKey: string; rosterHash: string }[];
}

export interface SeededTemplate {
  dir: string;
  manifest: SeedManifest;
}

const templates = new Map<string, SeededTemplate>();

/** Seeds (once per shape and process) a template data folder. */
export async function seedTemplate(shape: SeedShape, log: (line: string) => void = () => {}): Promise<SeededTemplate> {
  const key = `${shape.users}u-${shape.rooms}x${shape.perRoom}`;
  const cached = templates.get(key);
  if (cached) return cached;
  if (shape.rooms * shape.perRoom > shape.users) throw new RangeError(`${shape.rooms} rooms of ${shape.perRoom} need more than ${shape.users} users`);
  const started = performance.now();
  await initCrypto();
  const dir = fs.mkdtempSync(path.join(benchTmp(), `seed-${key}-`));
  const db = await openDb(dir);
  const now = Date.now;
  const store = new RelayStore(db, now);
  const rooms = new RoomStore(db, now);

  const identities: IdentityKeys[] = [];
  const manifest: SeedManifest = { shape, users: [], rooms: [] };
  const userIds: number[] = [];
  // Unsynchronised for the seed only: the template is closed cleanly (and checkpointed) before use.
  db.sqlite.pragma('synchronous = OFF');
  db.sqlite.transaction(() => {
    for (let i = 0; i < shape.users; i++) {
      const name = `bench-${i}`;
      const keys = generateIdentity();
      const pub = publicKeysOf(keys, name);
      const id = store.createUser({
        username: name,
        salt: crypto.randomBytes(16),
        kdfOps: 3,
        kdfMemKiB: 65536,
        authHash: crypto.randomBytes(32),
        identityKey: pub.identityKey,
        x25519Key: pub.x25519Key,
        x25519Sig: pub.x25519Sig,
        vault: crypto.randomBytes(160),
      });
      const session = newSessionToken();
      store.createSession(session.hash, id, 365 * 24 * 3600 * 1000);
      identities.push(keys);
      userIds.push(id);
      manifest.users.push({
        name,
        cookie: `${SESSION_COOKIE}=${session.token}`,
        signingSecret: toB64(keys.signing.secretKey),
        identityKey: toB64(keys.signing.publicKey),
      });
    }
    for (let r = 0; r < shape.rooms; r++) {
      const members = Array.from({ length: shape.perRoom }, (_, k) => r * shape.perRoom + k);
      manifest.rooms.push(seedRoom(store, rooms, members, identities, manifest.users.map((u) => u.name), userIds));
    }
  })();
  db.sqlite.pragma('synchronous = FULL');
  await db.close();
  // The relay refuses to start on a database with accounts but no secret; the seed made none of
  // its own (nothing here needs it), so it writes one for the relay to find.
  fs.writeFileSync(path.join(dir, SECRET_FILE), crypto.randomBytes(32), { mode: 0o600 });
  const t: SeededTemplate = { dir, manifest };
  templates.set(key, t);
  log(`seeded ${shape.users} users and ${shape.rooms} rooms of ${shape.perRoom} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return t;
}

/** One room as an honest owner's client builds it: create, then one signed `add` per member with the epoch-0 key wrapped for them. */
function seedRoom(
  store: RelayStore,
  rooms: RoomStore,
  members: number[],
  identities: IdentityKeys[],
  names: string[],
  userIds: number[],
): SeedManifest['rooms'][number] {
  const id = toB64(crypto.randomBytes(16));
  const ownerIdx = members[0]!;
  const owner = identities[ownerIdx]!;
  const ownerName = names[ownerIdx]!;
  const epochKey = randomKey();
  let at = Date.now();
  let prev: string | null = null;
  const sign = (seq: number, body: RoomOp): SignedStatement => {
    const link = signStatement({ v: 1, kind: 'room-statement', conv: id, seq, prev, actor: ownerName, at: at++, body }, owner.signing.secretKey);
    prev = toB64(statementHash(link.statement));
    return link;
  };
  const wrapFor = (idx: number) => {
    const w = wrapConversationKey(epochKey, identities[idx]!.agreement.publicKey, { conv: id, epoch: 0, recipient: names[idx]!, wrappedBy: ownerName }, owner.signing.secretKey);
    return w;
  };
  const genesis = sign(0, { op: 'create', owner: { username: ownerName, identityKey: toB64(owner.signing.publicKey) } });
  const ownKey = wrapFor(ownerIdx);
  const meta = sealRoomMeta({ name: `bench room ${id.slice(0, 6)}`, topic: '', policy: 'private' }, id, 0, ownerName, epochKey, owner.signing.secretKey);
  rooms.createRoom({
    id,
    nameHash: crypto.randomBytes(32),
    ownerId: userIds[ownerIdx]!,
    genesis,
    head: headOf(replayRoomChain(id, [genesis])),
    key: { epoch: 0, recipientId: userIds[ownerIdx]!, wrapped: ownKey.wrapped, sig: ownKey.sig },
    meta: { epoch: 0, sealed: meta.sealed, sig: meta.sig },
  });
  const ownerRow = store.userById(userIds[ownerIdx]!)!;
  for (const idx of members.slice(1)) {
    const link = sign(rooms.links(id).length, { op: 'add', member: { username: names[idx]!, identityKey: toB64(identities[idx]!.signing.publicKey) }, role: 'member', via: 'invite' });
    const w = wrapFor(idx);
    rooms.appendChange(id, ownerRow, {
      statement: { statement: link.statement, sig: toB64(link.sig) },
      keys: [{ conv: id, epoch: 0, recipient: names[idx]!, wrappedBy: ownerName, wrapped: toB64(w.wrapped), sig: toB64(w.sig) }],
      meta: null,
    });
  }
  const roster = rosterHash(id, members.map((idx) => ({ username: names[idx]!, identityKey: identities[idx]!.signing.publicKey })));
  return { id, members, epoch: 0, epochKey: toB64(epochKey), rosterHash: toB64(roster) };
}

/** A fresh copy of the template's files in a new folder; the caller removes it when done. */
export function copyTemplate(t: SeededTemplate): string {
  const dir = fs.mkdtempSync(path.join(benchTmp(), 'run-umbra-'));
  fs.cpSync(path.join(t.dir, DB_FILE), path.join(dir, DB_FILE));
  const secret = path.join(t.dir, SECRET_FILE);
  if (fs.existsSync(secret)) fs.cpSync(secret, path.join(dir, SECRET_FILE));
  return dir;
}

/** The folder bench data lives under (on the same disk as a real deployment would use: not tmpfs unless BENCH_TMP says so). */
export function benchTmp(): string {
  const dir = process.env.BENCH_TMP ?? path.join(os.tmpdir(), 'umbra-bench');
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

/** Removes every seeded template (call once at the end of a bench run). */
export function dropTemplates(): void {
  for (const t of templates.values()) fs.rmSync(t.dir, { recursive: true, force: true });
  templates.clear();
}
