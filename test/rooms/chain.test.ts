// The rules of a room's membership chain (shared/membership-chain.ts): who may sign which change,
// how links are tied together, how epochs advance, and what mayWrap / rosterMatches allow.
import { beforeAll, describe, expect, it } from 'vitest';
import {
  fromB64,
  initCrypto,
  mayAuthorMeta,
  mayWrap,
  randomBytes,
  replayRoomChain,
  rosterHash,
  rosterMatches,
  signStatement,
  statementHash,
  toB64,
  type SignedStatement,
} from '../../shared/index.ts';
import { ChainBuilder, actor, ref, type Actor } from '../helpers/rooms.ts';

let owner: Actor, ada: Actor, bob: Actor, cat: Actor, dan: Actor, eve: Actor;
const conv = () => toB64(randomBytes(16));

beforeAll(async () => {
  await initCrypto();
  owner = actor('owner');
  ada = actor('ada');
  bob = actor('bob');
  cat = actor('cat');
  dan = actor('dan');
  eve = actor('eve');
});

/** owner; ada admin; bob and cat members. */
function basic(): ChainBuilder {
  return new ChainBuilder(conv(), owner).add(owner, ada, 'admin').add(ada, bob).add(owner, cat, 'member', 'join');
}

/** How replayRoomChain reports link `n` out of place (wrong position or wrong `prev`). */
const FOLLOW = (n: number) => new RegExp(`^membership record #${n} does not follow the record before it`);

const names = (m: ReadonlyMap<string, { role: string }>) => [...m].map(([n, v]) => `${n}:${v.role}`).sort();

/** The message replayRoomChain throws, or null if the chain verifies. */
function failure(c: { conv: string; links: SignedStatement[] }): string | null {
  try {
    replayRoomChain(c.conv, c.links);
    return null;
  } catch (err) {
    expect(err).toMatchObject({ code: 'verification_failed' });
    return (err as Error).message;
  }
}

/** Re-signs `text` (a statement as JSON) with `by`, bypassing the schema only where the shape allows. */
function signedText(text: string, by: Actor): SignedStatement {
  const parsed = JSON.parse(text);
  return signStatement(parsed, by.keys.signing.secretKey);
}

describe('an honest chain', () => {
  it('replays to members, roles, epochs and roster hashes at every link', () => {
    const b = basic().rotate(ada).role(owner, bob, 'admin').remove(owner, cat).leave(bob);
    const chain = b.replay();
    expect(chain.states.map((s) => s.seq)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(chain.states.map((s) => s.epoch)).toEqual([0, 0, 0, 0, 1, 1, 2, 2]);
    expect(chain.states.map((s) => s.needsRotation)).toEqual([false, false, false, false, false, false, false, true]);
    expect(names(chain.states[3]!.members)).toEqual(['ada:admin', 'bob:member', 'cat:member', 'owner:owner']);
    expect(names(chain.head.members)).toEqual(['ada:admin', 'owner:owner']);
    // The roster hash is that of the members at that point; a role change keeps it.
    const expected = rosterHash(b.conv, [owner, ada, bob, cat].map((a) => ({ username: a.name, identityKey: a.keys.signing.publicKey })));
    expect(toB64(chain.states[3]!.rosterHash)).toBe(toB64(expected));
    expect(toB64(chain.states[5]!.rosterHash)).toBe(toB64(chain.states[4]!.rosterHash));
    expect(toB64(chain.states[6]!.rosterHash)).not.toBe(toB64(chain.states[5]!.rosterHash));
    expect(toB64(chain.head.hash)).toBe(toB64(statementHash(b.links.at(-1)!.statement)));
    expect(b.next()).toEqual({ seq: 8, prev: toB64(chain.head.hash) });
  });

  it('refuses an empty chain and a create anywhere but first, or by someone else', () => {
    expect(failure({ conv: conv(), links: [] })).toMatch(/no membership record/);
    const b = basic();
    b.sign(owner, { op: 'create', owner: ref(owner) });
    expect(failure(b)).toMatch(/#4 creates the room out of place/);
    const c = new ChainBuilder(conv(), owner);
    c.links.length = 0;
    c.raw(signStatement(c.statement(ada, { op: 'create', owner: ref(owner) }), ada.keys.signing.secretKey));
    expect(failure(c)).toMatch(/#0 creates the room out of place/);
    const d = new ChainBuilder(conv(), owner);
    d.links.length = 0;
    d.sign(owner, { op: 'rotate', epoch: 1 });
    expect(failure(d)).toMatch(/#0/);
  });
});

describe('signatures', () => {
  it('a link signed by another key than the actor’s, or altered after signing, fails at that link', () => {
    const b = basic();
    b.raw(signStatement(b.statement(ada, { op: 'add', member: ref(dan), role: 'member', via: 'invite' }), eve.keys.signing.secretKey));
    expect(failure(b)).toMatch(/#4 is not signed by ada/);

    const c = basic();
    const link = c.links[2]!;
    c.links[2] = { statement: link.statement.replace('"role":"member"', '"role":"admin"'), sig: link.sig };
    expect(failure(c)).toMatch(/#2 is not signed by ada/);

    const d = basic();
    const sig = new Uint8Array(d.links[1]!.sig);
    sig[0]! ^= 1;
    d.links[1] = { ...d.links[1]!, sig };
    expect(failure(d)).toMatch(/#1 is not signed by owner/);
  });

  it('the creator’s key comes from the create link itself; a swapped owner key does not verify', () => {
    const b = new ChainBuilder(conv(), owner);
    b.links.length = 0;
    b.raw(signStatement(b.statement(owner, { op: 'create', owner: ref({ name: 'owner', keys: eve.keys }) }), owner.keys.signing.secretKey));
    expect(failure(b)).toMatch(/#0 is not signed by owner/);
  });

  it('a statement whose text does not parse, or that carries unknown fields, is malformed', () => {
    const b = basic();
    b.raw({ statement: '{"v":1', sig: new Uint8Array(64) });
    expect(failure(b)).toMatch(/#4 is not a room statement/);
    const c = basic();
    const st = { ...c.statement(ada, { op: 'rotate', epoch: 1 }), extra: true };
    c.raw({ statement: JSON.stringify(st), sig: new Uint8Array(64) });
    expect(failure(c)).toMatch(/#4 is not a room statement/);
  });
});

describe('links out of their chain', () => {
  it('wrong prev, wrong seq and another room are each refused, even when properly signed', () => {
    const wrongPrev = basic();
    wrongPrev.raw(signStatement({ ...wrongPrev.statement(ada, { op: 'rotate', epoch: 1 }), prev: toB64(randomBytes(32)) }, ada.keys.signing.secretKey));
    expect(failure(wrongPrev)).toMatch(FOLLOW(4));

    const nullPrev = basic();
    nullPrev.raw(signStatement({ ...nullPrev.statement(ada, { op: 'rotate', epoch: 1 }), prev: null }, ada.keys.signing.secretKey));
    expect(failure(nullPrev)).toMatch(FOLLOW(4));

    const wrongSeq = basic();
    wrongSeq.raw(signStatement({ ...wrongSeq.statement(ada, { op: 'rotate', epoch: 1 }), seq: 5 }, ada.keys.signing.secretKey));
    expect(failure(wrongSeq)).toMatch(FOLLOW(4));

    const other = basic();
    other.raw(signStatement({ ...other.statement(ada, { op: 'rotate', epoch: 1 }), conv: conv() }, ada.keys.signing.secretKey));
    expect(failure(other)).toMatch(/#4 belongs to another room/);
  });

  it('a link from another room with the same members and positions is refused', () => {
    const a = basic();
    const b = new ChainBuilder(conv(), owner).add(owner, ada, 'admin').add(ada, bob).add(owner, cat, 'member', 'join').add(ada, dan);
    const spliced = { conv: a.conv, links: [...a.links, b.links[4]!] };
    expect(failure(spliced)).toMatch(/#4 belongs to another room/);
  });

  it('dropping, reordering or repeating a link breaks the chain', () => {
    const b = basic().rotate(ada);
    expect(failure({ conv: b.conv, links: [b.links[0]!, b.links[2]!, b.links[3]!] })).toMatch(FOLLOW(1));
    expect(failure({ conv: b.conv, links: [b.links[0]!, b.links[1]!, b.links[3]!, b.links[2]!] })).toMatch(FOLLOW(2));
    expect(failure({ conv: b.conv, links: [...b.links, b.links[4]!] })).toMatch(FOLLOW(5));
  });
});

describe('who may do what', () => {
  it('a plain member cannot add, remove, rotate or change roles', () => {
    for (const body of [
      { op: 'add', member: ref(dan), role: 'member', via: 'invite' },
      { op: 'remove', member: 'cat', epoch: 1 },
      { op: 'rotate', epoch: 1 },
      { op: 'role', member: 'cat', role: 'admin' },
    ] as const) {
      const b = basic();
      b.sign(bob, body);
      expect(failure(b), body.op).toMatch(/#4 is signed by bob, who is not an admin at that point/);
    }
  });

  it('someone outside the room cannot add anyone, nor leave', () => {
    const b = basic();
    b.sign(eve, { op: 'add', member: ref(eve), role: 'admin', via: 'join' });
    expect(failure(b)).toMatch(/#4 is signed by eve, who is not an admin/);
    const c = basic();
    c.sign(eve, { op: 'leave' });
    expect(failure(c)).toMatch(/#4 is a leave by eve, who is not a member/);
  });

  it('adding a member twice is refused', () => {
    const b = basic().add(ada, bob);
    expect(failure(b)).toMatch(/#4 adds bob, who is already a member/);
  });

  it('a statement signed by a demoted admin after the demotion is refused; before it, it stands', () => {
    const b = basic().add(ada, dan).role(owner, ada, 'member');
    expect(failure(b)).toBeNull();
    b.add(ada, eve);
    expect(failure(b)).toMatch(/#6 is signed by ada, who is not an admin at that point/);
    const c = basic().role(owner, ada, 'member').rotate(ada);
    expect(failure(c)).toMatch(/#5 is signed by ada, who is not an admin/);
  });

  it('only the owner demotes an admin; an admin promotes; the owner’s role never changes', () => {
    const b = basic().role(ada, bob, 'admin');
    expect(failure(b)).toBeNull();
    b.role(ada, bob, 'member');
    expect(failure(b)).toMatch(/#5 only the owner demotes an admin/);
    const c = basic();
    c.sign(ada, { op: 'role', member: 'owner', role: 'member' });
    expect(failure(c)).toMatch(/#4 cannot make owner member/);
    const d = basic();
    d.sign(ada, { op: 'role', member: 'bob', role: 'member' });
    expect(failure(d)).toMatch(/#4 cannot make bob member/);
  });

  it('nobody removes the owner; only the owner removes an admin', () => {
    const b = basic();
    b.sign(ada, { op: 'remove', member: 'owner', epoch: 1 });
    expect(failure(b)).toMatch(/#4 cannot remove owner/);
    const c = basic().add(owner, dan, 'admin');
    c.sign(ada, { op: 'remove', member: 'dan', epoch: 1 });
    expect(failure(c)).toMatch(/#5 only the owner removes an admin/);
    const d = basic().add(owner, dan, 'admin').remove(owner, dan);
    expect(failure(d)).toBeNull();
    const e = basic();
    e.sign(ada, { op: 'remove', member: 'eve', epoch: 1 });
    expect(failure(e)).toMatch(/#4 cannot remove eve/);
  });

  it('the owner cannot leave; a removed member cannot act any more', () => {
    const b = basic();
    b.sign(owner, { op: 'leave' });
    expect(failure(b)).toMatch(/#4 the owner cannot leave/);
    const c = basic().remove(ada, bob);
    c.sign(bob, { op: 'leave' });
    expect(failure(c)).toMatch(/#5 is a leave by bob, who is not a member/);
  });
});

describe('epochs', () => {
  it('remove and rotate must move to exactly the next epoch', () => {
    for (const epoch of [0, 2, 7]) {
      const b = basic();
      b.sign(ada, { op: 'rotate', epoch });
      expect(failure(b), `rotate to ${epoch}`).toMatch(new RegExp(`#4 moves to epoch ${epoch}, expected 1`));
      const c = basic().rotate(ada);
      c.sign(ada, { op: 'remove', member: 'bob', epoch: epoch === 2 ? 1 : epoch });
      expect(failure(c), `remove to ${epoch}`).toMatch(/#5 moves to epoch \d+, expected 2/);
    }
  });

  it('a leave keeps the epoch and asks for a rotation; a rotation or a removal settles it', () => {
    const b = basic().leave(cat);
    expect([b.replay().head.epoch, b.replay().head.needsRotation]).toEqual([0, true]);
    b.add(ada, dan); // adding does not settle it: the departed member still holds the key
    expect(b.replay().head.needsRotation).toBe(true);
    b.rotate(ada);
    expect([b.replay().head.epoch, b.replay().head.needsRotation]).toEqual([1, false]);
    const c = basic().leave(cat).remove(ada, bob);
    expect([c.replay().head.epoch, c.replay().head.needsRotation]).toEqual([1, false]);
  });
});

describe('mayWrap, mayAuthorMeta and rosterMatches', () => {
  it('mayWrap: an admin of that epoch, for a member of that epoch', () => {
    const chain = basic().rotate(ada).remove(owner, cat).role(owner, ada, 'member').add(owner, dan).replay();
    expect(mayWrap(chain, 0, 'ada', 'bob')).toBe(true);
    expect(mayWrap(chain, 0, 'owner', 'cat')).toBe(true);
    expect(mayWrap(chain, 0, 'bob', 'cat')).toBe(false); // a plain member
    expect(mayWrap(chain, 0, 'ada', 'dan')).toBe(false); // dan joined in epoch 2
    expect(mayWrap(chain, 2, 'owner', 'cat')).toBe(false); // cat was removed before epoch 2
    expect(mayWrap(chain, 2, 'owner', 'dan')).toBe(true);
    expect(mayWrap(chain, 2, 'ada', 'bob')).toBe(true); // ada was still admin when epoch 2 began
    expect(mayWrap(chain, 3, 'owner', 'bob')).toBe(false); // no such epoch
    expect(mayWrap(chain, 0, 'eve', 'bob')).toBe(false);
  });

  it('mayWrap: a demoted admin cannot wrap a later epoch', () => {
    const chain = basic().role(owner, ada, 'member').rotate(owner).replay();
    expect(mayWrap(chain, 0, 'ada', 'bob')).toBe(true);
    expect(mayWrap(chain, 1, 'ada', 'bob')).toBe(false);
    expect(mayAuthorMeta(chain, 0, 'ada')).toBe(true);
    expect(mayAuthorMeta(chain, 1, 'ada')).toBe(false);
    expect(mayAuthorMeta(chain, 1, 'owner')).toBe(true);
    expect(mayAuthorMeta(chain, 0, 'bob')).toBe(false);
  });

  it('rosterMatches: a roster of that epoch with the sender in it, in flight or current; not an invented one', () => {
    const b = basic();
    const before = b.replay().head;
    b.add(ada, dan).rotate(ada);
    const chain = b.replay();
    const atAdd = chain.states[4]!;
    expect(rosterMatches(chain, 0, 'bob', before.rosterHash)).toBe(true); // sent before bob's client saw dan
    expect(rosterMatches(chain, 0, 'bob', atAdd.rosterHash)).toBe(true);
    expect(rosterMatches(chain, 1, 'bob', atAdd.rosterHash)).toBe(true); // rotate keeps the members
    expect(rosterMatches(chain, 1, 'bob', before.rosterHash)).toBe(false); // epoch 1 never had that roster
    expect(rosterMatches(chain, 0, 'dan', before.rosterHash)).toBe(false); // dan was not in that roster
    expect(rosterMatches(chain, 2, 'bob', chain.head.rosterHash)).toBe(false);
    const invented = rosterHash(b.conv, [owner, ada, bob, cat, dan, eve].map((a) => ({ username: a.name, identityKey: a.keys.signing.publicKey })));
    expect(rosterMatches(chain, 1, 'bob', invented)).toBe(false);
    expect(rosterMatches(chain, 1, 'eve', invented)).toBe(false);
    // The same names under another key are another roster.
    const swapped = rosterHash(b.conv, [owner, ada, bob, cat].map((a) => ({ username: a.name, identityKey: a === cat ? eve.keys.signing.publicKey : a.keys.signing.publicKey })));
    expect(rosterMatches(chain, 0, 'bob', swapped)).toBe(false);
    expect(fromB64(toB64(chain.head.rosterHash))).toEqual(chain.head.rosterHash);
  });

  it('a leave followed by a rotation: the leaver matches the old epoch only', () => {
    const chain = basic().leave(cat).rotate(ada).replay();
    const withCat = chain.states[3]!.rosterHash;
    expect(rosterMatches(chain, 0, 'cat', withCat)).toBe(true);
    expect(rosterMatches(chain, 1, 'cat', withCat)).toBe(false);
    expect(rosterMatches(chain, 1, 'bob', chain.head.rosterHash)).toBe(true);
    expect(mayWrap(chain, 1, 'ada', 'cat')).toBe(false);
  });
});

// Used only to keep a re-signing helper exercised: a parsed-and-resigned link verifies again.
describe('test fixtures', () => {
  it('re-signing a link’s own text reproduces a verifying chain', () => {
    const b = basic();
    b.links[3] = signedText(b.links[3]!.statement, owner);
    expect(failure(b)).toBeNull();
  });
});
