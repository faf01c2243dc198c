// Guards the deterministic entries that exist only so golden vectors can be frozen.

/** Throws unless running under the test runner; fixed nonces and ephemeral keys never ship to use. */
export function assertTestOnly(what: string): void {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  if (env?.VITEST !== 'true' && env?.UMBRA_TEST_VECTORS !== '1') {
    throw new Error(`${what} is test-only and refuses to run outside tests`);
  }
}
