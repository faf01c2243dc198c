// The relay's settings: defaults, and how the environment overrides them.
import path from 'node:path';
import type { Writable } from 'node:stream';
import { LIMITS } from '../shared/index.ts';

export interface RelayConfig {
  /** Folder for the SQLite file (and the relay secret, unless secretFile points elsewhere). */
  dataDir: string;
  /** The relay secret's file; null means `<dataDir>/relay-secret`. */
  secretFile: string | null;
  port: number;
  host: string;
  /** Folder of the built web client; null serves no page (API only). */
  webDir: string | null;
  /** Origins allowed besides the relay's own (same host). */
  allowedOrigins: string[];
  /** Set the Secure flag on the session cookie (on behind HTTPS). */
  secureCookies: boolean;
  /**
   * Reverse proxies whose X-Forwarded-For is believed (their exact IP addresses): requests from them
   * count against the client's address, not the proxy's (server/client-address.ts). Empty: the TCP peer.
   */
  trustedProxies: string[];
  sessionTtlMs: number;
  /** Where structured logs go (stdout by default). */
  logStream: Writable | undefined;
  logLevel: string;
  limits: {
    maxHeaders: number;
    maxHeaderBytes: number;
    headersTimeoutMs: number;
    requestTimeoutMs: number;
    maxFrameBytes: number;
    maxFragments: number;
    /** Frames per second a connection may send, and its burst. */
    frameRate: number;
    frameBurst: number;
    maxConnectionsPerAddress: number;
    /** A receiver whose unsent buffer passes this many bytes is dropped. */
    maxBufferedBytes: number;
    /** Most envelopes stored in one group-commit transaction. */
    maxCommitBatch: number;
    /** Group commits run on a writer thread's own connection (server/ws/writer.ts); false runs them on the event loop. */
    writerThread: boolean;
    /**
     * Most new envelopes pushed (and readable) before the fsync that makes them durable; past it,
     * pushes wait for the fsync. After an unclean stop every conversation's next seq skips this
     * many, so no seq a client may have seen is given again (docs/PROTOCOL.md §Delivery). 0 makes
     * every push wait for the fsync.
     */
    maxUnsyncedPushes: number;
    pingIntervalMs: number;
  };
  throttle: {
    /** Failed log-ins per (account, address) within the window; per account from anywhere: ten times this. */
    accountFailures: number;
    /** Failed log-ins per address, whatever the account. */
    addressFailures: number;
    windowMs: number;
    /** Sign-ups per address within the window. */
    signupsPerAddress: number;
    /** Requests to join one room by one user within the window (each one notifies the room's admins). */
    joinRequestsPerRoom: number;
  };
  /** Disappearing messages: how often the sweeper runs (0: never on its own) and rows per batch. */
  sweep: { intervalMs: number; batch: number; maxBatchMs: number };
  /**
   * Checkpoints run in a thread every `checkpointIntervalMs` (at once while behind); past
   * `restartWalBytes` the thread starts the WAL over; past `maxWalBytes` the relay does it itself.
   */
  wal: { checkpointIntervalMs: number; restartWalBytes: number; maxWalBytes: number };
  /** Clock, replaceable in tests. */
  now: () => number;
}

/** Settings to change; nested groups may be given in part. */
export type ConfigOverrides = Omit<Partial<RelayConfig>, 'limits' | 'throttle' | 'sweep' | 'wal'> & {
  limits?: Partial<RelayConfig['limits']>;
  throttle?: Partial<RelayConfig['throttle']>;
  sweep?: Partial<RelayConfig['sweep']>;
  wal?: Partial<RelayConfig['wal']>;
};

export function defaultConfig(overrides: ConfigOverrides = {}): RelayConfig {
  const base: RelayConfig = {
    dataDir: path.resolve('data'),
    secretFile: null,
    port: 8080,
    host: '127.0.0.1',
    webDir: null,
    allowedOrigins: [],
    secureCookies: false,
    trustedProxies: [],
    sessionTtlMs: 30 * 24 * 3600 * 1000,
    logStream: undefined,
    logLevel: 'info',
    limits: {
      maxHeaders: 64,
      maxHeaderBytes: 16 * 1024,
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 30_000,
      maxFrameBytes: LIMITS.maxFrameBytes,
      maxFragments: 32,
      frameRate: 50,
      frameBurst: 200,
      maxConnectionsPerAddress: 50,
      maxBufferedBytes: 4 * 1024 * 1024,
      maxCommitBatch: 1000,
      writerThread: true,
      maxUnsyncedPushes: 4096,
      pingIntervalMs: 30_000,
    },
    throttle: {
      accountFailures: 10,
      addressFailures: 50,
      windowMs: 15 * 60 * 1000,
      signupsPerAddress: 20,
      joinRequestsPerRoom: 5,
    },
    sweep: { intervalMs: 5_000, batch: 2_000, maxBatchMs: 5 },
    wal: { checkpointIntervalMs: 100, restartWalBytes: 8 * 1024 * 1024, maxWalBytes: 64 * 1024 * 1024 },
    now: Date.now,
  };
  return {
    ...base,
    ...overrides,
    limits: { ...base.limits, ...overrides.limits },
    throttle: { ...base.throttle, ...overrides.throttle },
    sweep: { ...base.sweep, ...overrides.sweep },
    wal: { ...base.wal, ...overrides.wal },
  };
}

/** Reads DATA_DIR, RELAY_SECRET_FILE, PORT, HOST, ALLOWED_ORIGINS, SECURE_COOKIES, TRUSTED_PROXIES, LOG_LEVEL. */
export function configFromEnv(env: NodeJS.ProcessEnv, webDir: string | null): RelayConfig {
  const port = env.PORT ? Number(env.PORT) : 8080;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`PORT must be 0..65535, got ${env.PORT}`);
  return defaultConfig({
    dataDir: path.resolve(env.DATA_DIR ?? 'data'),
    secretFile: env.RELAY_SECRET_FILE ? path.resolve(env.RELAY_SECRET_FILE) : null,
    port,
    host: env.HOST ?? '127.0.0.1',
    webDir,
    allowedOrigins: (env.ALLOWED_ORIGINS ?? '').split(',').map((s) => s.trim()).filter(Boolean),
    secureCookies: env.SECURE_COOKIES === '1',
    trustedProxies: (env.TRUSTED_PROXIES ?? '').split(',').map((s) => s.trim()).filter(Boolean),
    logLevel: env.LOG_LEVEL ?? 'info',
  });
}
