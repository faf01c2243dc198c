// Public surface of Umbra's crypto: pure functions over bytes and keys passed in.
export { initCrypto } from './sodium.ts';
export * from './bytes.ts';
export { sealAead, openAead, randomKey, randomBytes, wipe, dangerousTestOnlySealWithNonce } from './aead.ts';
export * from './sign.ts';
export { createBatchVerifier, isCanonicalScalar, type BatchVerifier, type SignatureCheck } from './batch-verify.ts';
export * from './kdf.ts';
export * from './identity.ts';
export * from './wrap.ts';
export * from './envelope.ts';
export * from './roster.ts';
export * from './safety.ts';
export * from './vault.ts';
export * from './membership.ts';
export * from './room.ts';
