// The relay's HTTP side: security headers, limits, the API and the built web client.
import { serveStatic } from '@hono/node-server/serve-static';
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { secureHeaders } from 'hono/secure-headers';
import fs from 'node:fs';
import path from 'node:path';
import { LIMITS, UmbraError } from '../shared/index.ts';
import type { AppEnv, Services } from './context.ts';
import { httpStatus } from './errors.ts';
import { originAllowed } from './origin.ts';
import { accountRoutes } from './routes/account.ts';
import { authRoutes } from './routes/auth.ts';
import { conversationRoutes } from './routes/conversations.ts';
import { directoryRoutes } from './routes/directory.ts';
import { roomRoutes } from './routes/rooms.ts';
import { requireSession } from './routes/session.ts';

/** The Content-Security-Policy: no inline script; 'wasm-unsafe-eval' because libsodium is WebAssembly. */
export const CSP = {
  defaultSrc: ["'self'"],
  scriptSrc: ["'self'", "'wasm-unsafe-eval'"],
  styleSrc: ["'self'"],
  imgSrc: ["'self'", 'data:', 'blob:'],
  connectSrc: ["'self'"],
  fontSrc: ["'self'"],
  objectSrc: ["'none'"],
  baseUri: ["'none'"],
  frameAncestors: ["'none'"],
  formAction: ["'self'"],
};

/** The one route whose body may reach LIMITS.maxRoomChangeBodyBytes instead of LIMITS.maxBodyBytes. */
const ROOM_CHANGE_PATH = /^\/api\/rooms\/[^/]+\/statements$/;

function limitBody(maxSize: number) {
  return bodyLimit({
    maxSize,
    onError: (c) => c.json({ error: { code: 'payload_too_large', message: `bodies are limited to ${maxSize} bytes` } }, 413),
  });
}

export function createApp(s: Services): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  app.onError((err, c) => {
    if (err instanceof UmbraError) {
      if (err.retryAfter) c.header('Retry-After', String(err.retryAfter));
      return c.json(err.toBody(), httpStatus(err.code));
    }
    s.log.error({ event: 'unhandled', err: { name: (err as Error).name, message: (err as Error).message } }, 'request failed');
    return c.json({ error: { code: 'internal', message: 'the relay hit an internal error' } }, 500);
  });
  app.notFound((c) => c.json({ error: { code: 'not_found', message: 'no such endpoint' } }, 404));

  app.use('*', async (c, next) => {
    const started = performance.now();
    // Node keeps at most maxHeaders + 1; seeing that many means the request had too many.
    if (c.env.incoming.rawHeaders.length / 2 > s.config.limits.maxHeaders) {
      return c.json({ error: { code: 'bad_request', message: 'too many headers' } }, 431);
    }
    await next();
    s.log.info(
      { event: 'http', method: c.req.method, route: c.req.routePath, status: c.res.status, ms: Math.round(performance.now() - started) },
      'request',
    );
  });

  app.use(
    '*',
    secureHeaders({
      contentSecurityPolicy: CSP,
      crossOriginEmbedderPolicy: 'require-corp',
      crossOriginOpenerPolicy: 'same-origin',
      crossOriginResourcePolicy: 'same-origin',
      referrerPolicy: 'no-referrer',
      strictTransportSecurity: s.config.secureCookies ? 'max-age=31536000; includeSubDomains' : false,
      xFrameOptions: 'DENY',
      permissionsPolicy: { camera: [], microphone: [], geolocation: [] },
    }),
  );

  const api = new Hono<AppEnv>();
  const bodyLimited = limitBody(LIMITS.maxBodyBytes);
  const roomChangeLimited = limitBody(LIMITS.maxRoomChangeBodyBytes);
  api.use('*', (c, next) => (c.req.method === 'POST' && ROOM_CHANGE_PATH.test(c.req.path) ? roomChangeLimited : bodyLimited)(c, next));
  api.use('*', async (c, next) => {
    c.header('Cache-Control', 'no-store');
    if (c.req.method !== 'GET' && c.req.method !== 'HEAD') {
      if (!originAllowed(c.req.header('origin'), c.req.header('host'), s.config.allowedOrigins)) {
        throw new UmbraError('bad_origin', 'requests must come from the Umbra page itself');
      }
    }
    await next();
  });
  // A request that may write reads its whole body first, then takes its turn at the write lock, so
  // it never sleeps in SQLite's busy handler on the event loop while the checkpoint thread sweeps,
  // and a slow upload never holds the lock (server/write-turns.ts).
  api.use('*', async (c, next) => {
    if (c.req.method === 'GET' || c.req.method === 'HEAD') return next();
    if (c.req.raw.body) await c.req.text();
    await s.writeTurns.run(next);
  });
  api.route('/auth', authRoutes(s));
  const session = requireSession(s);
  api.use('/me', session);
  api.use('/vault', session);
  api.use('/users/*', session);
  api.use('/conversations', session);
  api.use('/conversations/*', session);
  api.use('/rooms', session);
  api.use('/rooms/*', session);
  api.route('/', accountRoutes(s));
  api.route('/users', directoryRoutes(s));
  api.route('/conversations', conversationRoutes(s));
  api.route('/rooms', roomRoutes(s));
  // Unknown API paths are a JSON 404 here, before the web client's catch-all can answer them.
  api.all('*', () => {
    throw new UmbraError('not_found', 'no such endpoint');
  });
  app.route('/api', api);

  const webDir = s.config.webDir;
  if (webDir && fs.existsSync(path.join(webDir, 'index.html'))) {
    const root = path.relative(process.cwd(), webDir) || '.';
    app.use('/assets/*', serveStatic({ root, onFound: (_p, c) => c.header('Cache-Control', 'public, max-age=31536000, immutable') }));
    // The build's file hashes, for checking the served page against a build of the source (docs/THREAT-MODEL.md).
    app.use('/build-manifest.json', serveStatic({ root, onFound: (_p, c) => c.header('Cache-Control', 'no-cache') }));
    app.use('*', serveStatic({ root }));
    const index = fs.readFileSync(path.join(webDir, 'index.html'));
    app.get('*', (c) => {
      c.header('Cache-Control', 'no-cache');
      return c.body(index, 200, { 'Content-Type': 'text/html; charset=utf-8' });
    });
  }
  return app;
}
