// The deterministic entries (fixed nonce, fixed ephemeral key) refuse to run outside the test
// runner or the vector generator, so they cannot end up sealing real messages.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  PROTOCOL_VERSION,
  SUITE_XCHACHA20_ED25519,
  dangerousTestOnlySealEnvelope,
  dangerousTestOnlySealRoomMeta,
  dangerousTestOnlySealWithNonce,
  dangerousTestOnlyWrap,
  generateIdentity,
  initCrypto,
  type EnvelopeHeader,
} from '../../shared/index.ts';

const saved = { VITEST: process.env.VITEST, UMBRA_TEST_VECTORS: process.env.UMBRA_TEST_VECTORS };

function restore(name: keyof typeof saved): void {
  const value = saved[name];
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
}

afterEach(() => {
  restore('VITEST');
  restore('UMBRA_TEST_VECTORS');
});

beforeAll(async () => {
  await initCrypto();
});

const key = new Uint8Array(32).fill(1);
const nonce = new Uint8Array(24).fill(2);
const header: EnvelopeHeader = {
  v: PROTOCOL_VERSION,
  suite: SUITE_XCHACHA20_ED25519,
  type: 'content',
  conv: 'conv',
  epoch: 0,
  sender: 'alice',
  rosterHash: new Uint8Array(32),
  clientMsgId: 'id',
  counter: 1,
  expiresAt: null,
  burnAfterMs: null,
};

function entries(): [string, () => unknown][] {
  const alice = generateIdentity();
  const bob = generateIdentity();
  const set = { conv: 'conv', epoch: 0, wrappedBy: 'alice' };
  return [
    ['dangerousTestOnlySealWithNonce', () => dangerousTestOnlySealWithNonce(key, nonce, new Uint8Array(3), new Uint8Array(0))],
    ['dangerousTestOnlyWrap', () => dangerousTestOnlyWrap(key, [{ recipient: 'bob', x25519: bob.agreement.publicKey }], set, alice.signing.secretKey, key, [nonce])],
    ['dangerousTestOnlySealEnvelope', () => dangerousTestOnlySealEnvelope(header, new Uint8Array(3), key, alice.signing.secretKey, nonce)],
    [
      'dangerousTestOnlySealRoomMeta',
      () => dangerousTestOnlySealRoomMeta({ name: 'room', topic: '', policy: 'open' }, 'conv', 0, 'alice', key, alice.signing.secretKey, nonce),
    ],
  ];
}

describe('dangerousTestOnly* entries', () => {
  it('run under the test runner', () => {
    expect(process.env.VITEST).toBe('true');
    for (const [, run] of entries()) expect(run()).toBeDefined();
  });

  it('throw when neither VITEST nor UMBRA_TEST_VECTORS is set', () => {
    const list = entries();
    delete process.env.VITEST;
    delete process.env.UMBRA_TEST_VECTORS;
    for (const [name, run] of list) {
      expect(run, name).toThrow(`${name} is test-only and refuses to run outside tests`);
    }
  });

  it('throw for any other value of the variables', () => {
    const list = entries();
    process.env.VITEST = 'false';
    process.env.UMBRA_TEST_VECTORS = 'yes';
    for (const [name, run] of list) expect(run, name).toThrow('test-only');
  });

  it('run for the vector generator (UMBRA_TEST_VECTORS=1) without the test runner', () => {
    const list = entries();
    delete process.env.VITEST;
    process.env.UMBRA_TEST_VECTORS = '1';
    for (const [, run] of list) expect(run()).toBeDefined();
  });
});
