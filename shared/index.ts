// shared/: pure TypeScript for browser and Node alike — protocol, schemas, errors, crypto.
export * from './errors.ts';
export * from './protocol.ts';
export * from './schemas.ts';
export * from './events.ts';
export * from './expiry.ts';
export * from './membership-chain.ts';
export * from './crypto/index.ts';
