// Ed25519 verification of many signatures at once (docs/PROTOCOL.md §Signatures, "Verifying many
// at once"). Where the platform has Ed25519 in WebCrypto (Chromium 137+, Firefox 129+, Safari 17+,
// Node 20), the checks run there, concurrently, off the calling thread; elsewhere libsodium checks
// them one by one. Either way the verdicts are libsodium's crypto_sign_verify_detached's, exactly:
//
// - The native path is only taken for public keys libsodium calls valid points (canonical, on the
//   curve, in the prime-order subgroup, not of small order); any other key is checked by libsodium.
// - libsodium rejects a non-canonical S (S >= L) and an R of small order before any arithmetic; so
//   does this module, before asking the platform.
// - Past those checks both sides compute [S]B - [k]A and compare its canonical encoding with R's
//   bytes. For a key in the prime-order subgroup that point is in the subgroup too, so the only
//   small-order R it can ever equal is the neutral element, which the check above already refused.
import { PUBLIC_KEY_BYTES, SIGNATURE_BYTES } from '../protocol.ts';
import { signWithContext, signedBytes, verifyWithContext } from './sign.ts';
import { utf8 } from './bytes.ts';
import { sodium } from './sodium.ts';

/** One signature to check: `signature` by `publicKey` over (context, message), as verifyWithContext. */
export interface SignatureCheck {
  publicKey: Uint8Array;
  context: string;
  message: Uint8Array;
  signature: Uint8Array;
}

export interface BatchVerifier {
  /** Which implementation answers: the platform's WebCrypto, or libsodium's WASM. */
  readonly kind: 'native' | 'libsodium';
  /** One verdict per check, in order; true only where verifyWithContext would say true. */
  verifyMany(checks: readonly SignatureCheck[]): Promise<boolean[]>;
}

/** The group order L = 2^252 + 27742317777372353535851937790883648493 (RFC 8032 §5.1), little-endian. */
const ORDER_LE = littleEndian32((1n << 252n) + 27742317777372353535851937790883648493n);

/** The neutral element's canonical encoding: y = 1, x = 0 (RFC 8032 §5.1.2). */
const NEUTRAL = littleEndian32(1n);

/** How many checks are handed to the platform at once (each is one task on its worker threads). */
const NATIVE_WAVE = 256;

/** Imported keys kept; beyond that the cache starts over (senders in view are far fewer). */
const KEY_CACHE_LIMIT = 1024;

function littleEndian32(n: bigint): Uint8Array {
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) {
    out[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  return out;
}

/** S < L, compared from the most significant byte down (libsodium's sc25519_is_canonical). */
export function isCanonicalScalar(s: Uint8Array): boolean {
  for (let i = 31; i >= 0; i--) {
    if (s[i]! < ORDER_LE[i]!) return true;
    if (s[i]! > ORDER_LE[i]!) return false;
  }
  return false;
}

function isNeutral(r: Uint8Array): boolean {
  for (let i = 0; i < 32; i++) if (r[i] !== NEUTRAL[i]) return false;
  return true;
}

/** WebCrypto takes ArrayBuffer-backed views; a copy where the input is a view of something else. */
function own(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes.buffer instanceof ArrayBuffer ? (bytes as Uint8Array<ArrayBuffer>) : new Uint8Array(bytes);
}

const ED25519 = { name: 'Ed25519' } as const;

function libsodiumVerifier(): BatchVerifier {
  return {
    kind: 'libsodium',
    verifyMany: async (checks) => checks.map((c) => verifyWithContext(c.publicKey, c.context, c.message, c.signature)),
  };
}

class NativeVerifier implements BatchVerifier {
  readonly kind = 'native';
  /** Hex public key → its imported key, or null where libsodium must check (not a valid point). */
  private readonly keys = new Map<string, Promise<CryptoKey> | null>();

  constructor(private readonly subtle: SubtleCrypto) {}

  async verifyMany(checks: readonly SignatureCheck[]): Promise<boolean[]> {
    const out = new Array<boolean>(checks.length);
    for (let from = 0; from < checks.length; from += NATIVE_WAVE) {
      const wave = checks.slice(from, from + NATIVE_WAVE);
      const verdicts = await Promise.all(wave.map((c) => this.verifyOne(c)));
      verdicts.forEach((v, i) => (out[from + i] = v));
    }
    return out;
  }

  private async verifyOne(c: SignatureCheck): Promise<boolean> {
    if (c.publicKey.length !== PUBLIC_KEY_BYTES || c.signature.length !== SIGNATURE_BYTES) return false;
    if (c.context.includes('\0')) return false;
    const key = this.keyFor(c.publicKey);
    if (key === null) return verifyWithContext(c.publicKey, c.context, c.message, c.signature);
    if (!isCanonicalScalar(c.signature.subarray(32)) || isNeutral(c.signature.subarray(0, 32))) return false;
    try {
      return await this.subtle.verify(ED25519, await key, own(c.signature), own(signedBytes(c.context, c.message)));
    } catch {
      // The platform failed to answer (a key it would not import, an internal error): not a verdict.
      return verifyWithContext(c.publicKey, c.context, c.message, c.signature);
    }
  }

  private keyFor(publicKey: Uint8Array): Promise<CryptoKey> | null {
    const id = sodium().to_hex(publicKey);
    let key = this.keys.get(id);
    if (key !== undefined) return key;
    if (this.keys.size >= KEY_CACHE_LIMIT) this.keys.clear();
    key = sodium().crypto_core_ed25519_is_valid_point(publicKey)
      ? this.subtle.importKey('raw', own(publicKey.slice()), ED25519, false, ['verify'])
      : null;
    // A key the platform refuses to import is left to libsodium from then on.
    key?.catch(() => this.keys.set(id, null));
    this.keys.set(id, key);
    return key;
  }
}

/**
 * The platform's Ed25519 if it is there and agrees with libsodium on a signature libsodium made
 * (and on the same signature with one bit flipped); libsodium otherwise. Call once, after
 * initCrypto().
 */
export async function createBatchVerifier(options: { native?: boolean } = {}): Promise<BatchVerifier> {
  const subtle = globalThis.crypto?.subtle;
  if (options.native === false || !subtle) return libsodiumVerifier();
  try {
    const seed = new Uint8Array(32).fill(7);
    const pair = sodium().crypto_sign_seed_keypair(seed);
    const message = utf8('umbra native ed25519 self-test');
    const context = 'umbra/v1/self-test';
    const signature = signWithContext(pair.privateKey, context, message);
    const flipped = signature.slice();
    flipped[10]! ^= 1;
    const native = new NativeVerifier(subtle);
    const [good, bad] = await native.verifyMany([
      { publicKey: pair.publicKey, context, message, signature },
      { publicKey: pair.publicKey, context, message, signature: flipped },
    ]);
    return good === true && bad === false ? native : libsodiumVerifier();
  } catch {
    return libsodiumVerifier();
  }
}
