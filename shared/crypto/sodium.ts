// Loads libsodium (sumo build: Argon2id, raw X25519) once, for browser and Node alike.
import sodiumModule from 'libsodium-wrappers-sumo';

export type Sodium = typeof sodiumModule;

let ready = false;

/** Resolves when libsodium is usable; call once before any crypto function. */
export async function initCrypto(): Promise<void> {
  if (ready) return;
  await sodiumModule.ready;
  ready = true;
}

/** The initialised libsodium instance; throws if initCrypto() has not resolved. */
export function sodium(): Sodium {
  if (!ready) throw new Error('crypto used before initCrypto() resolved');
  return sodiumModule;
}
