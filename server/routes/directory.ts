// The public-key directory. Clients verify and pin what it serves; the relay is not trusted for it.
import { Hono } from 'hono';
import { UmbraError, Username, toB64 } from '../../shared/index.ts';
import { parseWith, type AppEnv, type Services } from '../context.ts';

export function directoryRoutes(s: Services): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.get('/:username', (c) => {
    const username = parseWith(Username, c.req.param('username'));
    const user = s.store.userByName(username);
    if (!user) throw new UmbraError('not_found', `no user called ${username}`);
    return c.json({
      username: user.username,
      identityKey: toB64(user.identity_key),
      x25519Key: toB64(user.x25519_key),
      x25519Sig: toB64(user.x25519_sig),
    });
  });
  return app;
}
