// Middleware that admits only requests carrying a live session cookie.
import { getCookie } from 'hono/cookie';
import { createMiddleware } from 'hono/factory';
import { UmbraError } from '../../shared/index.ts';
import type { AppEnv, Services } from '../context.ts';
import { SESSION_COOKIE, hashSessionToken } from '../sessions.ts';

export function requireSession(s: Services) {
  return createMiddleware<AppEnv>(async (c, next) => {
    const token = getCookie(c, SESSION_COOKIE);
    if (!token) throw new UmbraError('unauthorized', 'log in first');
    const hash = hashSessionToken(token);
    const user = s.store.sessionUser(hash);
    if (!user) throw new UmbraError('unauthorized', 'your session has ended; log in again');
    c.set('user', user);
    c.set('sessionHash', hash);
    await next();
  });
}
