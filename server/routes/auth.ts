// Sign-up, salt, log-in, log-out. The relay sees an authentication key derived from the
// password, never the password; it stores only a keyed hash of that key (docs/PROTOCOL.md §Accounts).
import crypto from 'node:crypto';
import { Hono } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import {
  AccountResponse,
  KDF_DEFAULT,
  KDF_MAX,
  KDF_MIN,
  LoginRequest,
  SaltRequest,
  SignupRequest,
  UmbraError,
  toB64,
  verifyPublicKeys,
} from '../../shared/index.ts';
import { clientAddress, decodeB64, readBody, type AppEnv, type Ctx, type Services, type UserRow } from '../context.ts';
import { hmac } from '../secrets.ts';
import { openVaultAtRest, sealVaultAtRest } from '../vault-at-rest.ts';
import { SESSION_COOKIE, hashSessionToken, newSessionToken } from '../sessions.ts';

const AUTH_HASH_LABEL = 'umbra/relay/auth-hash';
const DECOY_SALT_LABEL = 'umbra/relay/decoy-salt';

export function authRoutes(s: Services): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  // Same status, shape and work for known and unknown usernames (docs/THREAT-MODEL.md §Enumeration).
  app.post('/salt', async (c) => {
    const { username } = await readBody(c, SaltRequest);
    const user = s.store.userByName(username);
    const decoy = hmac(s.secret, DECOY_SALT_LABEL, username).subarray(0, 16);
    const salt = user ? user.salt : decoy;
    const kdf = user ? { alg: 'argon2id13' as const, ops: user.kdf_ops, memKiB: user.kdf_mem_kib } : { ...KDF_DEFAULT };
    return c.json({ salt: toB64(salt), kdf });
  });

  app.post('/signup', async (c) => {
    const address = clientAddress(c, s);
    const wait = s.throttles.signupAddress.retryAfter(address);
    if (wait) throw new UmbraError('rate_limited', 'too many sign-ups from this address; try again later', wait);
    const body = await readBody(c, SignupRequest);
    if (body.keys.username !== body.username) throw new UmbraError('bad_request', 'keys.username must equal username');
    if (body.kdf.ops < KDF_MIN.ops || body.kdf.memKiB < KDF_MIN.memKiB) {
      throw new UmbraError('weak_kdf_params', 'Argon2id parameters are below the minimum');
    }
    if (body.kdf.ops > KDF_MAX.ops || body.kdf.memKiB > KDF_MAX.memKiB) {
      throw new UmbraError('weak_kdf_params', 'Argon2id parameters are above what clients accept');
    }
    const keys = {
      username: body.username,
      identityKey: decodeB64(body.keys.identityKey, 'keys.identityKey'),
      x25519Key: decodeB64(body.keys.x25519Key, 'keys.x25519Key'),
      x25519Sig: decodeB64(body.keys.x25519Sig, 'keys.x25519Sig'),
    };
    if (!verifyPublicKeys(keys)) throw new UmbraError('bad_request', 'keys.x25519Sig does not verify under keys.identityKey');
    const salt = decodeB64(body.salt, 'salt');
    const authKey = decodeB64(body.authKey, 'authKey');
    const vault = decodeB64(body.vault, 'vault');
    s.throttles.signupAddress.record(address);
    const userId = s.store.createUser({
      username: body.username,
      salt,
      kdfOps: body.kdf.ops,
      kdfMemKiB: body.kdf.memKiB,
      authHash: hmac(s.secret, AUTH_HASH_LABEL, authKey),
      identityKey: keys.identityKey,
      x25519Key: keys.x25519Key,
      x25519Sig: keys.x25519Sig,
      vault: sealVaultAtRest(s.secret, body.username, vault),
    });
    startSession(c, s, userId);
    s.log.info({ event: 'signup' }, 'account created');
    const user = s.store.userById(userId)!;
    return c.json(accountOf(s, user), 201);
  });

  app.post('/login', async (c) => {
    const address = clientAddress(c, s);
    const body = await readBody(c, LoginRequest);
    const authKey = decodeB64(body.authKey, 'authKey');
    // Per account and address, so a stranger elsewhere cannot lock the owner out with a few guesses;
    // per account anywhere (ten times wider) and per address bound guessing spread over either.
    const accountKey = `acct:${body.username}@${address}`;
    const anywhereKey = `acct:${body.username}`;
    const th = s.throttles;
    const wait = Math.max(th.loginAccount.retryAfter(accountKey), th.loginAccountAnywhere.retryAfter(anywhereKey), th.loginAddress.retryAfter(address));
    if (wait) throw new UmbraError('rate_limited', 'too many failed log-ins; try again later', wait);
    const user = s.store.userByName(body.username);
    const presented = hmac(s.secret, AUTH_HASH_LABEL, authKey);
    // Compare against a stand-in for unknown users so both paths do the same work.
    const stored = user?.auth_hash ?? hmac(s.secret, DECOY_SALT_LABEL, `no-user:${body.username}`);
    const ok = crypto.timingSafeEqual(presented, stored) && user !== undefined;
    if (!ok || !user) {
      th.loginAccount.record(accountKey);
      th.loginAccountAnywhere.record(anywhereKey);
      th.loginAddress.record(address);
      s.log.info({ event: 'login_failed' }, 'log-in refused');
      throw new UmbraError('invalid_credentials', 'wrong username or password');
    }
    th.loginAccount.clear(accountKey);
    const account = accountOf(s, user); // before the session: a vault that cannot be served starts none
    startSession(c, s, user.id);
    s.log.info({ event: 'login' }, 'logged in');
    return c.json(account);
  });

  app.post('/logout', (c) => {
    const token = getCookie(c, SESSION_COOKIE);
    if (token) {
      const hash = hashSessionToken(token);
      s.store.deleteSession(hash);
      s.hub.endSession(hash);
    }
    deleteCookie(c, SESSION_COOKIE, { path: '/', httpOnly: true, sameSite: 'Strict', secure: s.config.secureCookies });
    return c.json({ ok: true as const });
  });

  return app;
}

function startSession(c: Ctx, s: Services, userId: number): void {
  const { token, hash } = newSessionToken();
  s.store.createSession(hash, userId, s.config.sessionTtlMs);
  setCookie(c, SESSION_COOKIE, token, {
    path: '/',
    httpOnly: true,
    sameSite: 'Strict',
    secure: s.config.secureCookies,
    maxAge: Math.floor(s.config.sessionTtlMs / 1000),
  });
}

export function accountOf(s: Services, user: UserRow): AccountResponse {
  return { username: user.username, vault: toB64(openVaultAtRest(s.secret, user.username, user.vault)), vaultVersion: user.vault_version };
}
