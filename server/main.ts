// `npm start`: the relay serving the built web client, on SQLite in DATA_DIR (default ./data).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { configFromEnv } from './config.ts';
import { startRelay } from './relay.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
// Compiled to dist/node/server/main.js; the web build lives in dist/web.
const webDir = process.env.WEB_DIR ? path.resolve(process.env.WEB_DIR) : path.resolve(here, '../../web');

const relay = await startRelay(configFromEnv(process.env, webDir));
process.stderr.write(`Umbra is running at ${relay.url}  (data: ${path.resolve(process.env.DATA_DIR ?? 'data')})\n`);

const stop = async () => {
  await relay.close();
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
