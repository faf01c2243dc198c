// The signed-in account: who am I, and the encrypted vault.
import { Hono } from 'hono';
import { VaultUpdateRequest } from '../../shared/index.ts';
import { decodeB64, readBody, type AppEnv, type Services } from '../context.ts';
import { sealVaultAtRest } from '../vault-at-rest.ts';
import { accountOf } from './auth.ts';

export function accountRoutes(s: Services): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.get('/me', (c) => c.json(accountOf(s, c.get('user'))));
  app.put('/vault', async (c) => {
    const body = await readBody(c, VaultUpdateRequest);
    const vaultVersion = s.store.updateVault(c.get('user').id, sealVaultAtRest(s.secret, c.get('user').username, decodeB64(body.vault, 'vault')), body.expectedVersion);
    return c.json({ vaultVersion });
  });
  return app;
}
