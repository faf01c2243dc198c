// Starts the relay: database, HTTP server with its limits, WebSocket hub. Used by main.ts and tests.
import { createAdaptorServer } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import path from 'node:path';
import { initCrypto } from '../shared/index.ts';
import { createApp } from './app.ts';
import type { RelayConfig } from './config.ts';
import type { Services } from './context.ts';
import { trustedProxySet } from './client-address.ts';
import { Checkpointer } from './checkpointer.ts';
import { DB_FILE, openDb, type OpenedDb } from './db.ts';
import { createLogger, type Logger } from './log.ts';
import { defaultSecretFile, loadRelaySecret } from './secrets.ts';
import { RoomStore } from './rooms/store.ts';
import { RelayStore, SWEEP_DELETE_SQL, SWEEP_READ_SQL } from './store.ts';
import { enterRunning } from './run-marker.ts';
import { Sweeper } from './sweeper.ts';
import { Throttle } from './throttle.ts';
import { WriteTurns } from './write-turns.ts';
import { Hub } from './ws/hub.ts';
import { EnvelopeWriter } from './ws/writer.ts';

export interface RunningRelay {
  url: string;
  port: number;
  db: OpenedDb;
  store: RelayStore;
  hub: Hub;
  sweeper: Sweeper;
  checkpointer: Checkpointer;
  /** The writer thread for group commits, or null (config.limits.writerThread false). */
  writer: EnvelopeWriter | null;
  /** Turns at the write lock for every write on the event loop, with their counters. */
  writeTurns: WriteTurns;
  log: Logger;
  server: Server;
  close(): Promise<void>;
}

/** The statuses Node itself answers malformed or slow requests with when no listener is attached. */
const CLIENT_ERROR_STATUS: Record<string, string> = {
  HPE_HEADER_OVERFLOW: '431 Request Header Fields Too Large',
  ERR_HTTP_REQUEST_TIMEOUT: '408 Request Timeout',
};

export async function startRelay(config: RelayConfig): Promise<RunningRelay> {
  // A mistyped proxy address stops the relay before it opens anything.
  const trustedProxies = trustedProxySet(config.trustedProxies);
  await initCrypto();
  const log = createLogger(config.logLevel, config.logStream);
  const db = await openDb(config.dataDir);
  const checkpointer = new Checkpointer(db.sqlite, path.join(config.dataDir, DB_FILE), { intervalMs: config.wal.checkpointIntervalMs, restartWalBytes: config.wal.restartWalBytes, maxWalBytes: config.wal.maxWalBytes }, log, { readSql: SWEEP_READ_SQL, deleteSql: SWEEP_DELETE_SQL });
  checkpointer.start();
  const store = new RelayStore(db, config.now);
  const running = enterRunning(config.dataDir, config.now());
  if (running.uncleanBefore && config.limits.maxUnsyncedPushes > 0) {
    // Envelopes pushed ahead of their fsync may have been lost with their seqs; never give those
    // seqs to other envelopes (docs/PROTOCOL.md §Delivery).
    const conversations = store.skipSeqs(config.limits.maxUnsyncedPushes);
    log.warn({ event: 'unclean_stop', conversations, skipped: config.limits.maxUnsyncedPushes }, 'the relay did not stop cleanly last time; every conversation skips seqs');
  }
  const writeTurns = new WriteTurns(checkpointer.writeLock);
  let closing = false;
  const writer = config.limits.writerThread
    ? new EnvelopeWriter(path.join(config.dataDir, DB_FILE), checkpointer.writeLock.buffer, config.wal.restartWalBytes, () => writeTurns.unlocked())
    : null;
  if (writer) {
    writer.onDied((err) => {
      // Stopping ends the thread too; only a death while running is news.
      if (!closing) log.error({ event: 'writer_died', message: err.message }, 'the writer thread failed; envelopes are committed on the relay connection');
    });
    writer.start();
  }
  const t = config.throttle;
  const services: Services = {
    store,
    rooms: new RoomStore(db, config.now),
    config,
    trustedProxies,
    log,
    secret: loadRelaySecret(config.secretFile ?? defaultSecretFile(config.dataDir), store.userCount() > 0),
    throttles: {
      loginAccount: new Throttle(t.accountFailures, t.windowMs, config.now),
      loginAccountAnywhere: new Throttle(t.accountFailures * 10, t.windowMs, config.now),
      loginAddress: new Throttle(t.addressFailures, t.windowMs, config.now),
      signupAddress: new Throttle(t.signupsPerAddress, t.windowMs, config.now),
      joinRequest: new Throttle(t.joinRequestsPerRoom, t.windowMs, config.now),
    },
    hub: undefined as unknown as Hub,
    writer,
    walGuard: () => checkpointer.guard(),
    writeTurns,
  };
  const hub = new Hub(services);
  services.hub = hub;
  checkpointer.onUnlocked(() => services.writeTurns.unlocked());

  const app = createApp(services);
  const { headersTimeoutMs, requestTimeoutMs } = config.limits;
  const server = createAdaptorServer({
    fetch: app.fetch,
    serverOptions: {
      maxHeaderSize: config.limits.maxHeaderBytes,
      // Node enforces the two timeouts only when it sweeps its connections (every 30 s by default);
      // sweeping at a quarter of the shorter one keeps a slow request within 1.25 times its limit.
      connectionsCheckingInterval: Math.max(50, Math.min(30_000, Math.floor(Math.min(headersTimeoutMs, requestTimeoutMs) / 4))),
    },
  }) as Server;
  server.maxHeadersCount = config.limits.maxHeaders + 1;
  server.headersTimeout = headersTimeoutMs;
  server.requestTimeout = requestTimeoutMs;
  server.keepAliveTimeout = 5_000;
  server.on('upgrade', (req, socket, head) => hub.handleUpgrade(req, socket, head));
  server.on('clientError', (err, socket) => {
    const code = (err as NodeJS.ErrnoException).code;
    const status = (code && CLIENT_ERROR_STATUS[code]) ?? '400 Bad Request';
    if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\n\r\n`);
    else socket.destroy();
    log.info({ event: 'client_error', code }, 'malformed or timed-out request');
  });

  const housekeeping = setInterval(() => {
    void services.writeTurns.run(async () => store.deleteExpiredSessions()).catch((err: Error) => {
      log.error({ event: 'housekeeping_failed', message: err.message }, 'could not delete expired sessions');
    });
    for (const th of Object.values(services.throttles)) th.prune();
  }, 60_000);
  housekeeping.unref();
  const sweeper = new Sweeper(store, checkpointer, log, config.sweep, config.now);
  sweeper.start();

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  log.info({ event: 'listening', port, synchronous: 'FULL', journal: 'wal' }, 'relay started');

  return {
    url,
    port,
    db,
    store,
    hub,
    sweeper,
    checkpointer,
    writer,
    writeTurns: services.writeTurns,
    log,
    server,
    close: async () => {
      clearInterval(housekeeping);
      await sweeper.stop();
      closing = true;
      await hub.close();
      await writer?.stop();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await checkpointer.stop();
      await db.close();
      running.leave();
    },
  };
}
