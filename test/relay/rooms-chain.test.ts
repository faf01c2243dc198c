// The relay checks each new chain link against the head it keeps (server/rooms/chain.ts) instead of
// replaying the whole chain. Property: on every link, honest or not, it decides exactly as the shared
// replayRoomChain does, and reaches the same members, roles, keys, epoch and hash.
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  UmbraError,
  generateIdentity,
  initCrypto,
  parseStatement,
  randomBytes,
  replayRoomChain,
  signStatement,
  statementHash,
  toB64,
  type ChainState,
  type IdentityKeys,
  type RoomOp,
  type SignedStatement,
} from '../../shared/index.ts';
import { advanceHead, headFromLinks, type RoomHead } from '../../server/rooms/chain.ts';

const NAMES = ['usr0', 'usr1', 'usr2', 'usr3', 'usr4', 'usr5'];
let ids: Map<string, IdentityKeys>;
let stranger: IdentityKeys;

beforeAll(async () => {
  await initCrypto();
  ids = new Map(NAMES.map((n) => [n, generateIdentity()]));
  stranger = generateIdentity();
});

/** One step of a generated history: which change, by whom, to whom, and what is wrong with it. */
const Step = fc.record({
  op: fc.constantFrom('create', 'add', 'add', 'add', 'remove', 'remove', 'remove', 'leave', 'rotate', 'role', 'role'),
  actorKind: fc.constantFrom('admin', 'admin', 'admin', 'member', 'anyone'),
  actor: fc.nat(),
  target: fc.nat(),
  role: fc.constantFrom('admin', 'member'),
  epochDelta: fc.constantFrom(1, 1, 1, 0, 2),
  /** 0: honest; otherwise one flaw. */
  flaw: fc.constantFrom(...Array<'none'>(14).fill('none'), 'stranger-signs', 'seq-back', 'seq-ahead', 'bad-prev', 'other-room', 'stranger-key'),
});
type Step = typeof Step extends fc.Arbitrary<infer T> ? T : never;

function pick<T>(list: readonly T[], n: number): T {
  return list[n % list.length]!;
}

function ref(name: string, key: IdentityKeys = ids.get(name)!): { username: string; identityKey: string } {
  return { username: name, identityKey: toB64(key.signing.publicKey) };
}

function build(conv: string, accepted: SignedStatement[], head: ChainState | null, s: Step): SignedStatement {
  const members = head ? [...head.members.keys()].sort() : [];
  const outsiders = NAMES.filter((n) => !members.includes(n));
  const admins = members.filter((n) => head!.members.get(n)!.role !== 'member');
  const leavers = members.filter((n) => head!.members.get(n)!.role !== 'owner');
  const actor =
    s.op === 'leave' && s.actorKind !== 'anyone' && leavers.length
      ? pick(leavers, s.actor)
      : s.actorKind === 'admin' && admins.length
        ? pick(admins, s.actor)
        : s.actorKind === 'member' && members.length
          ? pick(members, s.actor)
          : pick(NAMES, s.actor);
  const epoch = (head?.epoch ?? 0) + s.epochDelta;
  /** Mostly a member the change could apply to; sometimes anyone, the owner included. */
  const target = () => {
    const others = members.filter((n) => head!.members.get(n)!.role !== 'owner' && n !== actor);
    return others.length && s.target % 4 !== 0 ? pick(others, s.target) : pick(members.length ? members : NAMES, s.target);
  };
  let body: RoomOp;
  switch (s.op) {
    case 'create':
      body = { op: 'create', owner: ref(actor, s.flaw === 'stranger-key' ? stranger : undefined) };
      break;
    case 'add': {
      const who = outsiders.length && s.target % 4 !== 0 ? pick(outsiders, s.target) : pick(NAMES, s.target);
      body = { op: 'add', member: ref(who, s.flaw === 'stranger-key' ? stranger : undefined), role: s.role as 'admin' | 'member', via: 'invite' };
      break;
    }
    case 'remove':
      body = { op: 'remove', member: target(), epoch };
      break;
    case 'leave':
      body = { op: 'leave' };
      break;
    case 'rotate':
      body = { op: 'rotate', epoch };
      break;
    case 'role': {
      const who = target();
      const held = head?.members.get(who)?.role;
      // Mostly a real change of role; sometimes the role already held.
      const role = s.target % 4 !== 0 && held ? (held === 'admin' ? 'member' : 'admin') : (s.role as 'admin' | 'member');
      body = { op: 'role', member: who, role };
      break;
    }
    default:
      throw new Error(`no such op ${s.op}`);
  }
  const seq = accepted.length + (s.flaw === 'seq-back' ? -1 : s.flaw === 'seq-ahead' ? 1 : 0);
  const last = accepted[accepted.length - 1];
  const prev = s.flaw === 'bad-prev' ? toB64(randomBytes(32)) : last ? toB64(statementHash(last.statement)) : null;
  const signer = s.flaw === 'stranger-signs' ? stranger : ids.get(actor)!;
  const room = s.flaw === 'other-room' ? toB64(randomBytes(16)) : conv;
  return signStatement({ v: 1, kind: 'room-statement', conv: room, seq: Math.max(0, seq), prev, actor, at: 1, body }, signer.signing.secretKey);
}

/** Members as name:role:key, epoch, rotation flag, seq and hash: everything the next link is checked against. */
function view(h: RoomHead | ChainState) {
  return {
    seq: h.seq,
    hash: toB64(h.hash),
    epoch: h.epoch,
    needsRotation: h.needsRotation,
    members: [...h.members.values()].map((m) => `${m.username}:${m.role}:${toB64(m.identityKey)}`).sort(),
  };
}

type Attempt<T> = { ok: true; value: T } | { ok: false; error: unknown };

function attempt<T>(f: () => T): Attempt<T> {
  try {
    return { ok: true, value: f() };
  } catch (error) {
    return { ok: false, error };
  }
}

describe('the relay’s one-link check', () => {
  it('accepts and refuses exactly the links replayRoomChain does, and reaches the same state', () => {
    const acceptedOps: Record<string, number> = { create: 0, add: 0, remove: 0, leave: 0, rotate: 0, role: 0 };
    let refusals = 0;
    fc.assert(
      fc.property(fc.array(Step, { minLength: 4, maxLength: 16 }), (steps) => {
        const conv = toB64(randomBytes(16));
        const accepted: SignedStatement[] = [];
        let shared: ChainState | null = null;
        let relay: RoomHead | null = null;
        for (const s of steps) {
          // Most histories start with an honest create; the rest probe a bad first link.
          const link: SignedStatement =
            accepted.length === 0 && s.op !== 'create' && s.actor % 3 !== 0 ? build(conv, accepted, null, { ...s, op: 'create', flaw: 'none' }) : build(conv, accepted, shared, s);
          const byReplay: Attempt<ChainState> = attempt(() => replayRoomChain(conv, [...accepted, link]).head);
          const byRelay: Attempt<RoomHead> = attempt(() => advanceHead(conv, relay, link, parseStatement(link.statement)!));
          expect(byRelay.ok, `${link.statement} → replay ${byReplay.ok ? 'accepts' : (byReplay as { error: Error }).error.message}`).toBe(byReplay.ok);
          if (byReplay.ok && byRelay.ok) {
            expect(view(byRelay.value)).toEqual(view(byReplay.value));
            accepted.push(link);
            shared = byReplay.value;
            relay = byRelay.value;
            const op = byReplay.value.statement.body.op;
            acceptedOps[op] = (acceptedOps[op] ?? 0) + 1;
          } else {
            expect((byRelay as { error: unknown }).error).toBeInstanceOf(UmbraError);
            refusals++;
          }
        }
        if (accepted.length) expect(view(headFromLinks(conv, accepted))).toEqual(view(relay!));
      }),
      { numRuns: 600 },
    );
    // The generator must exercise every kind of change, accepted and refused, or the property says little.
    for (const op of Object.keys(acceptedOps)) expect(acceptedOps[op], op).toBeGreaterThan(40);
    expect(refusals).toBeGreaterThan(1000);
  });

  it('classes refusals: not following the head is a conflict, a missing right is forbidden, the rest bad requests', () => {
    const conv = toB64(randomBytes(16));
    const [n0, n1, n2] = NAMES as [string, string, string];
    const u0 = ids.get(n0)!;
    const u1 = ids.get(n1)!;
    const sign = (seq: number, prev: string | null, actor: string, body: RoomOp, key = ids.get(actor)!) =>
      signStatement({ v: 1, kind: 'room-statement', conv, seq, prev, actor, at: 1, body }, key.signing.secretKey);
    const genesis = sign(0, null, n0, { op: 'create', owner: ref(n0) });
    const head0 = headFromLinks(conv, [genesis]);
    const prev = toB64(head0.hash);
    const addU1 = sign(1, prev, n0, { op: 'add', member: ref(n1), role: 'member', via: 'invite' });
    const head1 = advanceHead(conv, head0, addU1, parseStatement(addU1.statement)!);
    const codeOf = (head: RoomHead, link: SignedStatement) => {
      const r = attempt(() => advanceHead(conv, head, link, parseStatement(link.statement)!));
      return r.ok ? 'accepted' : (r.error as UmbraError).code;
    };
    expect(codeOf(head0, sign(2, prev, n0, { op: 'rotate', epoch: 1 }))).toBe('conflict');
    expect(codeOf(head0, sign(1, toB64(randomBytes(32)), n0, { op: 'rotate', epoch: 1 }))).toBe('conflict');
    expect(codeOf(head1, sign(2, toB64(head1.hash), n1, { op: 'rotate', epoch: 1 }))).toBe('forbidden');
    expect(codeOf(head1, sign(2, toB64(head1.hash), n2, { op: 'leave' }))).toBe('forbidden');
    expect(codeOf(head1, sign(2, toB64(head1.hash), n0, { op: 'rotate', epoch: 2 }))).toBe('bad_request');
    expect(codeOf(head1, sign(2, toB64(head1.hash), n0, { op: 'rotate', epoch: 1 }, u1))).toBe('bad_request');
    expect(codeOf(head1, sign(2, toB64(head1.hash), n0, { op: 'rotate', epoch: 1 }, u0))).toBe('accepted');
    // The head it was given is unchanged, whatever the outcome.
    expect(view(head1).members).toEqual([`${n0}:owner:${ref(n0).identityKey}`, `${n1}:member:${ref(n1).identityKey}`]);
    expect(head1.epoch).toBe(0);
  });
});
