// Sealing and opening message envelopes: AEAD under the conversation key, then an Ed25519
// signature over (associated data || ciphertext) by the sender (docs/PROTOCOL.md §Envelopes).
import { UmbraError } from '../errors.ts';
import { CTX, PROTOCOL_VERSION, SUPPORTED_SUITES, type EnvelopeType } from '../protocol.ts';
import { dangerousTestOnlySealWithNonce, openAead, sealAead } from './aead.ts';
import type { BatchVerifier } from './batch-verify.ts';
import { assertBytes, concatBytes, encodeFields, equalBytes, toB64 } from './bytes.ts';
import { signWithContext, verifyWithContext } from './sign.ts';
import { assertTestOnly } from './test-only.ts';

/** Every field here is bound into the associated data and so into the signature. */
export interface EnvelopeHeader {
  v: number;
  suite: number;
  type: EnvelopeType;
  conv: string;
  epoch: number;
  sender: string;
  /** Hash of the roster the sender saw (rosterHash()); 32 bytes. */
  rosterHash: Uint8Array;
  clientMsgId: string;
  /** Per-sender, per-conversation counter, starting at 1. */
  counter: number;
  /** Unix milliseconds after which the message must be gone, or null. */
  expiresAt: number | null;
  /** Burn after reading: ms from the first opening to deletion, or null (docs/PROTOCOL.md §Disappearing messages). */
  burnAfterMs: number | null;
}

export interface SealedEnvelope extends EnvelopeHeader {
  /** nonce || ciphertext || tag */
  ct: Uint8Array;
  sig: Uint8Array;
}

/**
 * A new message's `clientMsgId`: the sender's counter as 8 big-endian bytes, then 8 random bytes,
 * as 22 base64url characters. With the counter first, one sender's ids sit side by side in the
 * relay's (conv, sender, clientMsgId) index, so sweeping old messages rewrites a few index pages
 * instead of one page per message; the random half keeps ids unique when two devices spend the
 * same counter. The relay sees the counter in clear already (§Envelope), so it learns nothing new.
 */
export function newClientMsgId(counter: number, random: Uint8Array): string {
  if (!Number.isSafeInteger(counter) || counter < 1) throw new RangeError(`expected a counter from 1, got ${counter}`);
  assertBytes(random, 8, 'client message id randomness');
  const id = new Uint8Array(16);
  const view = new DataView(id.buffer);
  view.setUint32(0, Math.floor(counter / 2 ** 32));
  view.setUint32(4, counter >>> 0);
  id.set(random, 8);
  return toB64(id);
}

/** The associated-data layout, versioned by its context string. */
export function messageAd(h: EnvelopeHeader): Uint8Array {
  assertBytes(h.rosterHash, 32, 'roster hash');
  return encodeFields([
    CTX.messageAd,
    h.v,
    h.suite,
    h.type,
    h.conv,
    h.epoch,
    h.sender,
    h.rosterHash,
    h.clientMsgId,
    h.counter,
    h.expiresAt,
    h.burnAfterMs,
  ]);
}

/** Seals `plaintext` under the epoch key and signs it with the sender's identity key. */
export function sealEnvelope(
  header: EnvelopeHeader,
  plaintext: Uint8Array,
  epochKey: Uint8Array,
  senderSigningSecret: Uint8Array,
): SealedEnvelope {
  const ad = messageAd(header);
  return signSealed(header, ad, sealAead(epochKey, plaintext, ad), senderSigningSecret);
}

/** Deterministic seal for golden vectors only; throws outside the test runner. */
export function dangerousTestOnlySealEnvelope(
  header: EnvelopeHeader,
  plaintext: Uint8Array,
  epochKey: Uint8Array,
  senderSigningSecret: Uint8Array,
  nonce: Uint8Array,
): SealedEnvelope {
  assertTestOnly('dangerousTestOnlySealEnvelope');
  const ad = messageAd(header);
  return signSealed(header, ad, dangerousTestOnlySealWithNonce(epochKey, nonce, plaintext, ad), senderSigningSecret);
}

function signSealed(header: EnvelopeHeader, ad: Uint8Array, ct: Uint8Array, sk: Uint8Array): SealedEnvelope {
  const sig = signWithContext(sk, CTX.messageSig, concatBytes(ad, ct));
  return { ...header, ct, sig };
}

/**
 * True when the sender's identity key signed this envelope's associated data and ciphertext (or
 * `verified` already found so, for these bytes and this key).
 */
export function verifyEnvelopeSignature(env: SealedEnvelope, senderIdentityKey: Uint8Array, verified?: VerifiedEnvelopes): boolean {
  let signed: Uint8Array;
  try {
    signed = concatBytes(messageAd(env), env.ct);
  } catch {
    return false;
  }
  return verified?.holds(env, senderIdentityKey, signed) === true || verifyWithContext(senderIdentityKey, CTX.messageSig, signed, env.sig);
}

/**
 * Envelopes whose signatures were checked ahead of opening, many at once (docs/PROTOCOL.md
 * §Receiving): each with the sender key and the exact signed bytes that were checked, so opening
 * one later skips only that same check, for those same bytes.
 */
export class VerifiedEnvelopes {
  readonly #checked = new WeakMap<SealedEnvelope, { key: Uint8Array; signed: Uint8Array }>();

  constructor(private readonly verifier: BatchVerifier) {}

  /** Checks every envelope's signature against the key given with it, and keeps those that hold. */
  async check(items: readonly { env: SealedEnvelope; senderIdentityKey: Uint8Array }[]): Promise<void> {
    const todo: { env: SealedEnvelope; key: Uint8Array; signed: Uint8Array }[] = [];
    for (const { env, senderIdentityKey } of items) {
      try {
        todo.push({ env, key: senderIdentityKey.slice(), signed: concatBytes(messageAd(env), env.ct) });
      } catch {
        // A malformed header: left for openEnvelope to refuse.
      }
    }
    const verdicts = await this.verifier.verifyMany(
      todo.map((t) => ({ publicKey: t.key, context: CTX.messageSig, message: t.signed, signature: t.env.sig.slice() })),
    );
    todo.forEach((t, i) => {
      if (verdicts[i] === true) this.#checked.set(t.env, { key: t.key, signed: t.signed });
    });
  }

  /** True when check() found this envelope, with these signed bytes, signed by this key. */
  holds(env: SealedEnvelope, senderIdentityKey: Uint8Array, signed: Uint8Array): boolean {
    const c = this.#checked.get(env);
    return c !== undefined && equalBytes(c.key, senderIdentityKey) && equalBytes(c.signed, signed);
  }
}

/**
 * Checks version and suite, verifies the signature (unless `verified` already holds it for these
 * bytes and this key), then decrypts. Throws `verification_failed` with the reason; nothing is
 * decrypted unless the signature holds.
 */
export function openEnvelope(
  env: SealedEnvelope,
  epochKey: Uint8Array,
  senderIdentityKey: Uint8Array,
  verified?: VerifiedEnvelopes,
): Uint8Array {
  if (env.v !== PROTOCOL_VERSION) throw new UmbraError('verification_failed', `unsupported protocol version ${env.v}`);
  if (!SUPPORTED_SUITES.includes(env.suite)) throw new UmbraError('verification_failed', `unsupported cipher suite ${env.suite}`);
  let ad: Uint8Array;
  try {
    ad = messageAd(env);
  } catch {
    throw new UmbraError('verification_failed', `signature of ${env.sender} does not verify`);
  }
  // The associated data is built once, for the signature and the AEAD alike.
  const signed = concatBytes(ad, env.ct);
  const holds = verified?.holds(env, senderIdentityKey, signed) === true || verifyWithContext(senderIdentityKey, CTX.messageSig, signed, env.sig);
  if (!holds) throw new UmbraError('verification_failed', `signature of ${env.sender} does not verify`);
  return openAead(epochKey, env.ct, ad);
}
