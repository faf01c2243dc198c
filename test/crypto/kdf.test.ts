// Password to keys: Argon2id parameter limits, NFKC normalisation, and the split of the master
// key into an authentication key and a vault key that differ per username.
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  KDF_DEFAULT,
  KDF_MAX,
  KDF_MIN,
  UmbraError,
  checkKdfParams,
  deriveAccountKeys,
  deriveMasterKey,
  equalBytes,
  initCrypto,
  normalisePassword,
  passwordBytes,
  type KdfParams,
} from '../../shared/index.ts';

const SALT = Uint8Array.from({ length: 16 }, (_, i) => i);

function weakKdfCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof UmbraError ? e.code : `not an UmbraError: ${String(e)}`;
  }
  return undefined;
}

beforeAll(async () => {
  await initCrypto();
});

describe('checkKdfParams', () => {
  const p = (ops: number, memKiB: number): KdfParams => ({ alg: 'argon2id13', ops, memKiB });

  it('accepts the default and both ends of the allowed range', () => {
    expect(() => checkKdfParams({ ...KDF_DEFAULT })).not.toThrow();
    expect(() => checkKdfParams(p(KDF_MIN.ops, KDF_MIN.memKiB))).not.toThrow();
    expect(() => checkKdfParams(p(KDF_MAX.ops, KDF_MAX.memKiB))).not.toThrow();
    expect(KDF_MIN).toEqual({ ops: 2, memKiB: 19 * 1024 });
  });

  it('refuses fewer than 2 passes or less than 19 MiB with weak_kdf_params', () => {
    for (const params of [p(1, 19 * 1024), p(0, 64 * 1024), p(2, 19 * 1024 - 1), p(10, 8 * 1024), p(1, 1)]) {
      expect(weakKdfCode(() => checkKdfParams(params)), JSON.stringify(params)).toBe('weak_kdf_params');
    }
  });

  it('refuses more than the maximum a relay may demand', () => {
    for (const params of [p(KDF_MAX.ops + 1, KDF_MIN.memKiB), p(KDF_MIN.ops, KDF_MAX.memKiB + 1), p(1_000_000, 4 * 1024 * 1024)]) {
      expect(weakKdfCode(() => checkKdfParams(params)), JSON.stringify(params)).toBe('weak_kdf_params');
    }
  });

  it('refuses any other algorithm', () => {
    const params = { alg: 'argon2i13', ops: 3, memKiB: 64 * 1024 } as unknown as KdfParams;
    expect(weakKdfCode(() => checkKdfParams(params))).toBe('weak_kdf_params');
  });

  it('deriveMasterKey checks the parameters before hashing', () => {
    expect(weakKdfCode(() => deriveMasterKey('password', SALT, p(1, 19 * 1024)))).toBe('weak_kdf_params');
    expect(weakKdfCode(() => deriveMasterKey('password', SALT, p(2, 1024)))).toBe('weak_kdf_params');
    expect(() => deriveMasterKey('password', SALT.subarray(0, 15), { ...KDF_DEFAULT })).toThrow('expected 16-byte Argon2id salt, got 15');
  });
});

describe('deriveAccountKeys', () => {
  const master = new Uint8Array(32).fill(7);

  it('auth key and vault key differ, and both differ from the master key', () => {
    const { authKey, vaultKey } = deriveAccountKeys(master, 'alice');
    expect(authKey.length).toBe(32);
    expect(vaultKey.length).toBe(32);
    expect(equalBytes(authKey, vaultKey)).toBe(false);
    expect(equalBytes(authKey, master)).toBe(false);
    expect(equalBytes(vaultKey, master)).toBe(false);
  });

  it('different usernames derive different auth and vault keys from the same master key', () => {
    const name = fc.stringMatching(/^[a-z0-9][a-z0-9_.-]{2,31}$/);
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), name, name, (m, a, b) => {
        fc.pre(a !== b);
        const ka = deriveAccountKeys(m, a);
        const kb = deriveAccountKeys(m, b);
        expect(equalBytes(ka.authKey, kb.authKey)).toBe(false);
        expect(equalBytes(ka.vaultKey, kb.vaultKey)).toBe(false);
        // No key of one user equals any key of the other, nor its own sibling.
        expect(equalBytes(ka.authKey, kb.vaultKey)).toBe(false);
        expect(equalBytes(ka.vaultKey, kb.authKey)).toBe(false);
        expect(equalBytes(ka.authKey, ka.vaultKey)).toBe(false);
      }),
      { numRuns: 200 },
    );
  });

  it('is deterministic and refuses a master key that is not 32 bytes', () => {
    expect(deriveAccountKeys(master, 'bob')).toEqual(deriveAccountKeys(master, 'bob'));
    expect(() => deriveAccountKeys(master.subarray(1), 'bob')).toThrow('expected 32-byte master key, got 31');
  });
});

describe('password normalisation (NFKC)', () => {
  it('normalises compatibility and canonical variants to one spelling', () => {
    expect(normalisePassword('\uFB01')).toBe('fi'); // "ﬁ" ligature
    expect(normalisePassword('cre\u0300me')).toBe('cr\u00E8me'); // e + combining grave → è
    expect(normalisePassword('\uFF21\uFF22')).toBe('AB'); // full-width letters
    expect(passwordBytes('\uFB01')).toBe(2);
  });

  it('the "ﬁ" ligature and "fi" derive the same master key; a different password does not', () => {
    const params = { ...KDF_DEFAULT };
    const ligature = deriveMasterKey('\uFB01ne tuning 42', SALT, params);
    const plain = deriveMasterKey('fine tuning 42', SALT, params);
    expect(equalBytes(ligature, plain)).toBe(true);
    expect(equalBytes(deriveMasterKey('fine tuning 43', SALT, params), plain)).toBe(false);
    const otherSalt = SALT.slice();
    otherSalt[0] = 0xff;
    expect(equalBytes(deriveMasterKey('fine tuning 42', otherSalt, params), plain)).toBe(false);
  });
});
