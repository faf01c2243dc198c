// Properties over random keys, plaintexts and headers: round trips hold, and any bit flip,
// truncation, wrong key or changed header field is rejected; the field encoding is injective
// and base64url decoding accepts only canonical text.
import sodium from 'libsodium-wrappers-sumo';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  CTX,
  PROTOCOL_VERSION,
  SUITE_XCHACHA20_ED25519,
  UmbraError,
  b64Length,
  concatBytes,
  encodeFields,
  equalBytes,
  fromB64,
  initCrypto,
  isCanonicalB64,
  messageAd,
  newClientMsgId,
  openAead,
  openEnvelope,
  sealAead,
  sealEnvelope,
  signWithContext,
  toB64,
  unwrapConversationKey,
  verifyWithContext,
  wrapConversationKey,
  wrapConversationKeyForAll,
  type EnvelopeHeader,
  type Field,
  type SealedEnvelope,
  type WrapContext,
  type WrapSetContext,
  type WrappedKey,
} from '../../shared/index.ts';

const RUNS = { numRuns: 200 } as const;
const SLOW_RUNS = { numRuns: 100 } as const;

beforeAll(async () => {
  await initCrypto();
  await sodium.ready;
});

// ---- utilities ---------------------------------------------------------------------------

function rejects(fn: () => unknown): boolean {
  try {
    fn();
  } catch (e) {
    return e instanceof UmbraError && e.code === 'verification_failed';
  }
  return false;
}

function flipBit(bytes: Uint8Array, position: number, bit: number): Uint8Array {
  const copy = bytes.slice();
  const i = position % copy.length;
  copy[i] = copy[i]! ^ (1 << bit);
  return copy;
}

const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });
const key32 = bytes(32);
const position = fc.nat();
const bit = fc.integer({ min: 0, max: 7 });
const text = fc.string({ unit: 'grapheme', maxLength: 12 });

function signingPair(seed: Uint8Array): { publicKey: Uint8Array; secretKey: Uint8Array } {
  const kp = sodium.crypto_sign_seed_keypair(seed);
  return { publicKey: kp.publicKey, secretKey: kp.privateKey };
}

// ---- AEAD --------------------------------------------------------------------------------

describe('sealAead / openAead', () => {
  const input = fc.record({
    key: key32,
    plaintext: fc.uint8Array({ maxLength: 200 }),
    ad: fc.uint8Array({ maxLength: 64 }),
  });

  it('round trip: opens to the plaintext; layout is 24-byte nonce || ciphertext || 16-byte tag', () => {
    fc.assert(
      fc.property(input, ({ key, plaintext, ad }) => {
        const sealed = sealAead(key, plaintext, ad);
        expect(sealed.length).toBe(24 + plaintext.length + 16);
        expect(equalBytes(openAead(key, sealed, ad), plaintext)).toBe(true);
      }),
      RUNS,
    );
  });

  it('any single bit flip of nonce, ciphertext or tag is rejected', () => {
    fc.assert(
      fc.property(input, position, bit, ({ key, plaintext, ad }, p, b) => {
        const sealed = sealAead(key, plaintext, ad);
        expect(rejects(() => openAead(key, flipBit(sealed, p, b), ad))).toBe(true);
      }),
      RUNS,
    );
  });

  it('truncation from either end, or an extra byte, is rejected', () => {
    fc.assert(
      fc.property(input, position, ({ key, plaintext, ad }, p) => {
        const sealed = sealAead(key, plaintext, ad);
        const cut = 1 + (p % sealed.length);
        expect(rejects(() => openAead(key, sealed.subarray(0, sealed.length - cut), ad))).toBe(true);
        expect(rejects(() => openAead(key, sealed.subarray(cut), ad))).toBe(true);
        expect(rejects(() => openAead(key, concatBytes(sealed, Uint8Array.of(p & 0xff)), ad))).toBe(true);
      }),
      RUNS,
    );
  });

  it('any bit flip, truncation or extension of the AD is rejected', () => {
    fc.assert(
      fc.property(input, position, bit, ({ key, plaintext, ad }, p, b) => {
        const sealed = sealAead(key, plaintext, ad);
        if (ad.length > 0) {
          expect(rejects(() => openAead(key, sealed, flipBit(ad, p, b)))).toBe(true);
          expect(rejects(() => openAead(key, sealed, ad.subarray(0, p % ad.length)))).toBe(true);
        }
        expect(rejects(() => openAead(key, sealed, concatBytes(ad, Uint8Array.of(b))))).toBe(true);
      }),
      RUNS,
    );
  });

  it('a different key is rejected', () => {
    fc.assert(
      fc.property(input, key32, ({ key, plaintext, ad }, other) => {
        fc.pre(!equalBytes(key, other));
        expect(rejects(() => openAead(other, sealAead(key, plaintext, ad), ad))).toBe(true);
      }),
      RUNS,
    );
  });
});

// ---- signatures --------------------------------------------------------------------------

describe('signWithContext / verifyWithContext', () => {
  const contextArb = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 24 }).filter((c) => !c.includes('\0'));
  const input = fc.record({ seed: key32, context: contextArb, message: fc.uint8Array({ maxLength: 128 }) });

  it('verifies what it signed; any bit flip or truncation of the signature is rejected', () => {
    fc.assert(
      fc.property(input, position, bit, ({ seed, context, message }, p, b) => {
        const { publicKey, secretKey } = signingPair(seed);
        const sig = signWithContext(secretKey, context, message);
        expect(verifyWithContext(publicKey, context, message, sig)).toBe(true);
        expect(verifyWithContext(publicKey, context, message, flipBit(sig, p, b))).toBe(false);
        expect(verifyWithContext(publicKey, context, message, sig.subarray(0, p % 64))).toBe(false);
        expect(verifyWithContext(publicKey, context, message, concatBytes(sig, Uint8Array.of(0)))).toBe(false);
      }),
      RUNS,
    );
  });

  it('any change to the message, the context or the key is rejected', () => {
    fc.assert(
      fc.property(input, contextArb, key32, position, bit, ({ seed, context, message }, otherContext, otherSeed, p, b) => {
        const { publicKey, secretKey } = signingPair(seed);
        const sig = signWithContext(secretKey, context, message);
        if (message.length > 0) {
          expect(verifyWithContext(publicKey, context, flipBit(message, p, b), sig)).toBe(false);
          expect(verifyWithContext(publicKey, context, message.subarray(0, p % message.length), sig)).toBe(false);
        }
        expect(verifyWithContext(publicKey, context, concatBytes(message, Uint8Array.of(b)), sig)).toBe(false);
        if (otherContext !== context) expect(verifyWithContext(publicKey, otherContext, message, sig)).toBe(false);
        expect(verifyWithContext(publicKey, `${context}x`, message, sig)).toBe(false);
        if (!equalBytes(seed, otherSeed)) expect(verifyWithContext(signingPair(otherSeed).publicKey, context, message, sig)).toBe(false);
        expect(verifyWithContext(flipBit(publicKey, p, b), context, message, sig)).toBe(false);
      }),
      RUNS,
    );
  });
});

// ---- envelopes ---------------------------------------------------------------------------

const headerArb: fc.Arbitrary<EnvelopeHeader> = fc.record({
  v: fc.constant(PROTOCOL_VERSION),
  suite: fc.constant(SUITE_XCHACHA20_ED25519),
  type: fc.constantFrom('content' as const, 'control' as const),
  conv: text,
  epoch: fc.nat({ max: 2 ** 31 }),
  sender: text,
  rosterHash: bytes(32),
  clientMsgId: text,
  counter: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
  expiresAt: fc.option(fc.maxSafeNat(), { nil: null }),
  burnAfterMs: fc.option(fc.integer({ min: 1000, max: 365 * 86_400_000 }), { nil: null }),
});

/** The header fields a receiver relies on, each of which the envelope must bind. */
const HEADER_FIELDS = ['type', 'conv', 'epoch', 'sender', 'rosterHash', 'clientMsgId', 'counter', 'expiresAt'] as const;

function sameField(a: EnvelopeHeader, b: EnvelopeHeader, f: (typeof HEADER_FIELDS)[number]): boolean {
  const x = a[f];
  const y = b[f];
  return x instanceof Uint8Array && y instanceof Uint8Array ? equalBytes(x, y) : x === y;
}

describe('sealEnvelope / openEnvelope', () => {
  const input = fc.record({
    header: headerArb,
    plaintext: fc.uint8Array({ maxLength: 200 }),
    epochKey: key32,
    senderSeed: key32,
  });
  const seal = (i: { header: EnvelopeHeader; plaintext: Uint8Array; epochKey: Uint8Array; senderSeed: Uint8Array }) => {
    const sender = signingPair(i.senderSeed);
    return { env: sealEnvelope(i.header, i.plaintext, i.epochKey, sender.secretKey), sender };
  };

  it('round trip: opens to the plaintext with the epoch key and the sender key', () => {
    fc.assert(
      fc.property(input, (i) => {
        const { env, sender } = seal(i);
        expect(equalBytes(openEnvelope(env, i.epochKey, sender.publicKey), i.plaintext)).toBe(true);
      }),
      SLOW_RUNS,
    );
  });

  it('any bit flip or truncation of nonce, ciphertext, tag or signature is rejected, even when re-signed', () => {
    fc.assert(
      fc.property(input, position, bit, (i, p, b) => {
        const { env, sender } = seal(i);
        const open = (e: SealedEnvelope) => openEnvelope(e, i.epochKey, sender.publicKey);
        const badCt = flipBit(env.ct, p, b);
        expect(rejects(() => open({ ...env, ct: badCt }))).toBe(true);
        const resigned = signWithContext(sender.secretKey, CTX.messageSig, concatBytes(messageAd(env), badCt));
        expect(rejects(() => open({ ...env, ct: badCt, sig: resigned }))).toBe(true);
        expect(rejects(() => open({ ...env, ct: env.ct.subarray(0, p % env.ct.length) }))).toBe(true);
        expect(rejects(() => open({ ...env, sig: flipBit(env.sig, p, b) }))).toBe(true);
        expect(rejects(() => open({ ...env, sig: env.sig.subarray(0, p % 64) }))).toBe(true);
      }),
      SLOW_RUNS,
    );
  });

  it('a wrong epoch key or a wrong sender key is rejected', () => {
    fc.assert(
      fc.property(input, key32, key32, (i, otherKey, otherSeed) => {
        const { env, sender } = seal(i);
        fc.pre(!equalBytes(otherKey, i.epochKey) && !equalBytes(otherSeed, i.senderSeed));
        expect(rejects(() => openEnvelope(env, otherKey, sender.publicKey))).toBe(true);
        expect(rejects(() => openEnvelope(env, i.epochKey, signingPair(otherSeed).publicKey))).toBe(true);
      }),
      SLOW_RUNS,
    );
  });

  it('a different conv, epoch, sender, counter, expiresAt, clientMsgId, type or roster hash is rejected', () => {
    fc.assert(
      fc.property(input, headerArb, (i, other) => {
        const { env, sender } = seal(i);
        let changed = 0;
        for (const f of HEADER_FIELDS) {
          if (sameField(env, other, f)) continue;
          changed++;
          const forged: SealedEnvelope = { ...env, [f]: other[f] };
          expect(rejects(() => openEnvelope(forged, i.epochKey, sender.publicKey)), f).toBe(true);
          // The sender's own signature over the changed header still leaves the AEAD bound to the real one.
          const resigned = signWithContext(sender.secretKey, CTX.messageSig, concatBytes(messageAd(forged), env.ct));
          expect(rejects(() => openEnvelope({ ...forged, sig: resigned }, i.epochKey, sender.publicKey)), `re-signed ${f}`).toBe(true);
        }
        // Random headers share the type half the time; at least the 32-byte roster hash differs.
        expect(changed).toBeGreaterThan(0);
        expect(rejects(() => openEnvelope({ ...env, v: env.v + 1 }, i.epochKey, sender.publicKey))).toBe(true);
        expect(rejects(() => openEnvelope({ ...env, suite: env.suite + 1 }, i.epochKey, sender.publicKey))).toBe(true);
      }),
      SLOW_RUNS,
    );
  });
});

// ---- key wrapping ------------------------------------------------------------------------

/** What a wrapped set's one signature covers: conv, epoch, wrappedBy and the ephemeral key that opens `wrapped`. */
const sigMessage = (c: WrapSetContext, wrapped: Uint8Array) => encodeFields([c.conv, c.epoch, c.wrappedBy, wrapped.subarray(0, 32)]);

describe('wrapConversationKey / unwrapConversationKey', () => {
  const contextArb: fc.Arbitrary<WrapContext> = fc.record({ conv: text, epoch: fc.nat({ max: 2 ** 31 }), recipient: text, wrappedBy: text });
  const input = fc.record({ convKey: key32, recipientSecret: key32, wrapperSeed: key32, context: contextArb });
  const wrap = (i: { convKey: Uint8Array; recipientSecret: Uint8Array; wrapperSeed: Uint8Array; context: WrapContext }) => {
    const wrapper = signingPair(i.wrapperSeed);
    const w = wrapConversationKey(i.convKey, sodium.crypto_scalarmult_base(i.recipientSecret), i.context, wrapper.secretKey);
    return { w, wrapper };
  };

  it('round trip: the recipient unwraps the conversation key', () => {
    fc.assert(
      fc.property(input, (i) => {
        const { w, wrapper } = wrap(i);
        expect(equalBytes(unwrapConversationKey(w, i.recipientSecret, wrapper.publicKey), i.convKey)).toBe(true);
      }),
      SLOW_RUNS,
    );
  });

  it('any bit flip or truncation of the wrapped key or signature is rejected, even when re-signed', () => {
    fc.assert(
      fc.property(input, position, bit, (i, p, b) => {
        const { w, wrapper } = wrap(i);
        const unwrap = (k: WrappedKey) => unwrapConversationKey(k, i.recipientSecret, wrapper.publicKey);
        const bad = flipBit(w.wrapped, p, b);
        expect(rejects(() => unwrap({ ...w, wrapped: bad }))).toBe(true);
        expect(rejects(() => unwrap({ ...w, wrapped: bad, sig: signWithContext(wrapper.secretKey, CTX.wrapSetSig, sigMessage(w, bad)) }))).toBe(true);
        const short = w.wrapped.subarray(0, p % w.wrapped.length);
        expect(rejects(() => unwrap({ ...w, wrapped: short }))).toBe(true);
        expect(rejects(() => unwrap({ ...w, wrapped: short, sig: signWithContext(wrapper.secretKey, CTX.wrapSetSig, sigMessage(w, short)) }))).toBe(true);
        expect(rejects(() => unwrap({ ...w, sig: flipBit(w.sig, p, b) }))).toBe(true);
        expect(rejects(() => unwrap({ ...w, sig: w.sig.subarray(0, p % 64) }))).toBe(true);
      }),
      SLOW_RUNS,
    );
  });

  it('a changed context, a wrong recipient secret or a wrong wrapper key is rejected', () => {
    fc.assert(
      fc.property(input, contextArb, key32, key32, (i, other, otherSecret, otherSeed) => {
        const { w, wrapper } = wrap(i);
        for (const f of ['conv', 'epoch', 'recipient', 'wrappedBy'] as const) {
          if (other[f] === w[f]) continue;
          const forged: WrappedKey = { ...w, [f]: other[f] };
          expect(rejects(() => unwrapConversationKey(forged, i.recipientSecret, wrapper.publicKey)), f).toBe(true);
          const resigned = signWithContext(wrapper.secretKey, CTX.wrapSetSig, sigMessage(forged, w.wrapped));
          expect(rejects(() => unwrapConversationKey({ ...forged, sig: resigned }, i.recipientSecret, wrapper.publicKey)), `re-signed ${f}`).toBe(true);
        }
        if (!equalBytes(otherSecret, i.recipientSecret)) {
          expect(rejects(() => unwrapConversationKey(w, otherSecret, wrapper.publicKey))).toBe(true);
        }
        if (!equalBytes(otherSeed, i.wrapperSeed)) {
          expect(rejects(() => unwrapConversationKey(w, i.recipientSecret, signingPair(otherSeed).publicKey))).toBe(true);
        }
      }),
      SLOW_RUNS,
    );
  });
});

describe('wrapConversationKeyForAll: one ephemeral key and one signature per set', () => {
  const setArb: fc.Arbitrary<WrapSetContext> = fc.record({ conv: text, epoch: fc.nat({ max: 2 ** 31 }), wrappedBy: text });
  const recipientsArb = fc.uniqueArray(fc.record({ recipient: text, secret: key32 }), { minLength: 1, maxLength: 5, selector: (r) => r.recipient });
  const input = fc.record({ convKey: key32, wrapperSeed: key32, base: setArb, recipients: recipientsArb });
  const wrapAll = (i: { convKey: Uint8Array; wrapperSeed: Uint8Array; base: WrapSetContext; recipients: { recipient: string; secret: Uint8Array }[] }) => {
    const wrapper = signingPair(i.wrapperSeed);
    const set = i.recipients.map((r) => ({ recipient: r.recipient, x25519: sodium.crypto_scalarmult_base(r.secret) }));
    return { rows: wrapConversationKeyForAll(i.convKey, set, i.base, wrapper.secretKey), wrapper };
  };

  it('every recipient unwraps the key; all rows share one ephemeral key and one signature, each has its own nonce', () => {
    fc.assert(
      fc.property(input, (i) => {
        const { rows, wrapper } = wrapAll(i);
        expect(rows.map((w) => w.recipient)).toEqual(i.recipients.map((r) => r.recipient));
        rows.forEach((w, n) => {
          expect({ conv: w.conv, epoch: w.epoch, wrappedBy: w.wrappedBy }).toEqual(i.base);
          expect(equalBytes(w.wrapped.subarray(0, 32), rows[0]!.wrapped.subarray(0, 32))).toBe(true);
          expect(equalBytes(w.sig, rows[0]!.sig)).toBe(true);
          expect(equalBytes(unwrapConversationKey(w, i.recipients[n]!.secret, wrapper.publicKey), i.convKey)).toBe(true);
        });
        expect(new Set(rows.map((w) => toB64(w.wrapped.subarray(32, 56)))).size).toBe(rows.length);
        expect(verifyWithContext(wrapper.publicKey, CTX.wrapSetSig, sigMessage(i.base, rows[0]!.wrapped), rows[0]!.sig)).toBe(true);
      }),
      SLOW_RUNS,
    );
  });

  it('a row moved to another recipient, conv, epoch or wrapper is rejected with verification_failed', () => {
    fc.assert(
      fc.property(input, setArb, (i, other) => {
        const { rows, wrapper } = wrapAll(i);
        rows.forEach((w, n) => {
          const mine = i.recipients[n]!.secret;
          i.recipients.forEach((o, m) => {
            if (m === n || equalBytes(o.secret, mine)) return;
            expect(rejects(() => unwrapConversationKey({ ...w, recipient: o.recipient }, o.secret, wrapper.publicKey)), 'relabelled for another recipient').toBe(true);
            expect(rejects(() => unwrapConversationKey(w, o.secret, wrapper.publicKey)), 'opened by another recipient').toBe(true);
            expect(rejects(() => unwrapConversationKey({ ...w, recipient: o.recipient }, mine, wrapper.publicKey)), 'relabelled, own secret').toBe(true);
          });
          for (const f of ['conv', 'epoch', 'wrappedBy'] as const) {
            if (other[f] === w[f]) continue;
            const moved: WrappedKey = { ...w, [f]: other[f] };
            expect(rejects(() => unwrapConversationKey(moved, mine, wrapper.publicKey)), f).toBe(true);
            // Re-signed for the new place by the same wrapper, the AEAD still refuses it.
            const resigned = signWithContext(wrapper.secretKey, CTX.wrapSetSig, sigMessage(moved, w.wrapped));
            expect(rejects(() => unwrapConversationKey({ ...moved, sig: resigned }, mine, wrapper.publicKey)), `re-signed ${f}`).toBe(true);
          }
        });
      }),
      SLOW_RUNS,
    );
  });

  it('a set of one is what wrapConversationKey returns: same layout, signature over the same message', () => {
    fc.assert(
      fc.property(key32, key32, key32, setArb, text, (convKey, secret, seed, base, recipient) => {
        const wrapper = signingPair(seed);
        const w = wrapConversationKey(convKey, sodium.crypto_scalarmult_base(secret), { ...base, recipient }, wrapper.secretKey);
        expect(w.wrapped.length).toBe(104);
        expect(verifyWithContext(wrapper.publicKey, CTX.wrapSetSig, sigMessage(base, w.wrapped), w.sig)).toBe(true);
        expect(equalBytes(unwrapConversationKey(w, secret, wrapper.publicKey), convKey)).toBe(true);
      }),
      SLOW_RUNS,
    );
  });

  it('an empty set wraps nothing', () => {
    expect(wrapConversationKeyForAll(new Uint8Array(32), [], { conv: 'c', epoch: 0, wrappedBy: 'a' }, signingPair(new Uint8Array(32)).secretKey)).toEqual([]);
  });
});

// ---- canonical field encoding ------------------------------------------------------------

/**
 * Decodes the documented layout (tag, then u64 or u32-length-prefixed bytes; lists by count).
 * Being a left inverse of encodeFields proves the encoding injective.
 */
function decodeFields(encoded: Uint8Array): Field[] {
  const view = new DataView(encoded.buffer, encoded.byteOffset, encoded.byteLength);
  let at = 0;
  const take = (n: number): Uint8Array => {
    if (at + n > encoded.length) throw new RangeError('truncated');
    const out = encoded.slice(at, at + n);
    at += n;
    return out;
  };
  const one = (): Field => {
    const tag = take(1)[0]!;
    if (tag === 0) return null;
    if (tag === 1) {
      take(8);
      return Number(view.getBigUint64(at - 8));
    }
    take(4);
    const length = view.getUint32(at - 4);
    if (tag === 2) return take(length);
    if (tag === 3) return new TextDecoder('utf-8', { fatal: true }).decode(take(length));
    if (tag === 4) return Array.from({ length }, one);
    throw new RangeError(`unknown tag ${tag}`);
  };
  const out: Field[] = [];
  while (at < encoded.length) out.push(one());
  return out;
}

function sameFields(a: Field, b: Field): boolean {
  if (a instanceof Uint8Array || b instanceof Uint8Array) return a instanceof Uint8Array && b instanceof Uint8Array && equalBytes(a, b);
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b)) return false;
    const x = a as readonly Field[];
    const y = b as readonly Field[];
    return x.length === y.length && x.every((f, i) => sameFields(f, y[i]!));
  }
  return a === b;
}

/** Fields from a tiny alphabet, so that distinct random lists are often near-collisions. */
const { fieldList: nearFields } = fc.letrec<{ field: Field; fieldList: Field[] }>((tie) => ({
  field: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.constantFrom(0, 1, 2, 0x61, 0x6162, Number.MAX_SAFE_INTEGER),
    fc.string({ unit: fc.constantFrom('a', 'b', '\0', 'é'), maxLength: 3 }),
    fc.uint8Array({ max: 2, maxLength: 3 }),
    fc.array(tie('field'), { maxLength: 3 }),
  ),
  fieldList: fc.array(tie('field'), { maxLength: 4 }),
}));

const { fieldList: wideFields } = fc.letrec<{ field: Field; fieldList: Field[] }>((tie) => ({
  field: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.maxSafeNat(),
    fc.string({ unit: 'grapheme', maxLength: 16 }),
    fc.uint8Array({ maxLength: 32 }),
    fc.array(tie('field'), { maxLength: 4 }),
  ),
  fieldList: fc.array(tie('field'), { maxLength: 5 }),
}));

describe('encodeFields', () => {
  it('decodes back to the same list (a left inverse exists, so it is injective)', () => {
    fc.assert(
      fc.property(wideFields, (fields) => {
        expect(sameFields(decodeFields(encodeFields(fields)), fields)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('different field lists give different bytes', () => {
    fc.assert(
      fc.property(nearFields, nearFields, (a, b) => {
        expect(equalBytes(encodeFields(a), encodeFields(b))).toBe(sameFields(a, b));
      }),
      { numRuns: 300 },
    );
  });

  it('refuses strings with lone surrogates instead of collapsing them to U+FFFD', () => {
    expect(() => encodeFields(['\uD800'])).toThrow(RangeError);
    expect(() => encodeFields([['ok', 'x\uDC00']])).toThrow(RangeError);
    expect(encodeFields(['\uFFFD']).length).toBe(5 + 3);
    fc.assert(
      // Halves that sometimes pair up (U+1F600) and sometimes stand alone.
      fc.property(fc.string({ unit: fc.constantFrom('a', '\uFFFD', '\uD83D', '\uDE00', '\uD800', '\uDFFF'), maxLength: 6 }), (s) => {
        const lone = /\p{Surrogate}/u.test(s);
        if (lone) expect(() => encodeFields([s])).toThrow(RangeError);
        else expect(decodeFields(encodeFields([s]))).toEqual([s]);
      }),
      RUNS,
    );
  });

  it('writes every string as its UTF-8, ASCII ones (written directly) and others alike', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom('a', '\0', '\x7f', '\x80', 'é', '\u07ff', '\u0800', '😀'), maxLength: 8 }), (s) => {
        const utf = new TextEncoder().encode(s);
        const encoded = encodeFields([s]);
        expect(encoded.length).toBe(5 + utf.length);
        expect(equalBytes(encoded.subarray(5), utf)).toBe(true);
      }),
      RUNS,
    );
  });

  it('refuses numbers that are negative, fractional or beyond 2^53 - 1', () => {
    for (const n of [-1, 1.5, Number.MAX_SAFE_INTEGER + 1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => encodeFields([n]), String(n)).toThrow(RangeError);
    }
  });
});

// ---- base64url ---------------------------------------------------------------------------

const B64_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

describe('toB64 / fromB64', () => {
  it('round trip, matching RFC 4648 §5 unpadded base64url as Node encodes it', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (b) => {
        const text = toB64(b);
        expect(text).toBe(Buffer.from(b).toString('base64url'));
        expect(text.length).toBe(b64Length(b.length));
        expect(equalBytes(fromB64(text), b)).toBe(true);
      }),
      RUNS,
    );
  });

  it('accepts exactly the canonical encodings: whatever it decodes re-encodes to the same text', () => {
    const chars = fc.constantFrom(...B64_ALPHABET.slice(0, 4), 'Q', 'g', 'w', '-', '_', '=', '+', '/', ' ', '.', 'é');
    fc.assert(
      fc.property(fc.string({ unit: chars, maxLength: 12 }), (s) => {
        const canonical = /^[A-Za-z0-9_-]*$/.test(s) && s.length % 4 !== 1 && Buffer.from(s, 'base64url').toString('base64url') === s;
        let decoded: Uint8Array | undefined;
        try {
          decoded = fromB64(s);
        } catch (e) {
          expect(e).toBeInstanceOf(RangeError);
        }
        expect(decoded !== undefined, JSON.stringify(s)).toBe(canonical);
        // The schemas' check without decoding gives the same answer.
        expect(isCanonicalB64(s), JSON.stringify(s)).toBe(canonical);
        if (decoded) expect(toB64(decoded)).toBe(s);
      }),
      { numRuns: 300 },
    );
  });

  it('rejects a final character with any unused bit set', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 40 }).filter((b) => b.length % 3 !== 0), fc.nat(), (b, pick) => {
        const text = toB64(b);
        const unusedBits = b.length % 3 === 1 ? 4 : 2;
        const last = B64_ALPHABET.indexOf(text[text.length - 1]!);
        const dirty = last | (1 + (pick % ((1 << unusedBits) - 1)));
        const forged = text.slice(0, -1) + B64_ALPHABET[dirty]!;
        expect(() => fromB64(forged)).toThrow(RangeError);
        expect(isCanonicalB64(forged)).toBe(false);
        expect(isCanonicalB64(text)).toBe(true);
      }),
      RUNS,
    );
    for (const bad of ['AA==', 'A', 'AB', 'AAA=', 'a+b/', 'YQ', 'YR']) {
      const accepted = bad === 'YQ';
      expect(isCanonicalB64(bad), bad).toBe(accepted);
      if (accepted) expect(fromB64(bad)).toEqual(Uint8Array.of(0x61));
      else expect(() => fromB64(bad), bad).toThrow(RangeError);
    }
  });
});

describe('newClientMsgId', () => {
  it('is the counter in 8 big-endian bytes, then the 8 random bytes, as 22 characters', () => {
    expect(newClientMsgId(3, Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8))).toBe(toB64(Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6, 7, 8)));
    fc.assert(
      fc.property(fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), fc.uint8Array({ minLength: 8, maxLength: 8 }), (counter, random) => {
        const id = fromB64(newClientMsgId(counter, random));
        expect(id.length).toBe(16);
        const view = new DataView(id.buffer, id.byteOffset);
        expect(view.getUint32(0) * 2 ** 32 + view.getUint32(4)).toBe(counter);
        expect(id.subarray(8)).toEqual(random);
      }),
      RUNS,
    );
  });

  it('gives the ids of one block of 1,024 counters one 9-character prefix, whatever the random half', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 40 }), fc.nat(1023), fc.nat(1023), fc.uint8Array({ minLength: 16, maxLength: 16 }), (block, a, b, random) => {
        const x = newClientMsgId(block * 1024 + a, random.subarray(0, 8));
        const y = newClientMsgId(block * 1024 + b, random.subarray(8));
        expect(x.slice(0, 9)).toBe(y.slice(0, 9));
      }),
      RUNS,
    );
  });

  it('refuses a counter below 1 or not an integer, and randomness of any length but 8', () => {
    for (const bad of [0, -1, 1.5, Number.MAX_SAFE_INTEGER + 1, NaN]) expect(() => newClientMsgId(bad, new Uint8Array(8)), String(bad)).toThrow(RangeError);
    for (const n of [0, 7, 9, 16]) expect(() => newClientMsgId(1, new Uint8Array(n))).toThrow('expected 8-byte client message id randomness, got ' + n);
  });
});
