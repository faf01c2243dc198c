// Starts a real relay on loopback with a fresh SQLite file, capturing its log output.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { defaultConfig, type RelayConfig } from '../../server/config.ts';
import { startRelay, type RunningRelay } from '../../server/relay.ts';
import { UmbraClient } from '../../client/sdk/index.ts';
import { nodePlatform } from '../../client/sdk/node.ts';

export interface TestRelay extends RunningRelay {
  dataDir: string;
  logs: string[];
  client(): UmbraClient;
  stop(): Promise<void>;
}

type Overrides = Omit<Partial<RelayConfig>, 'limits' | 'throttle'> & {
  limits?: Partial<RelayConfig['limits']>;
  throttle?: Partial<RelayConfig['throttle']>;
};

export async function startTestRelay(overrides: Overrides = {}): Promise<TestRelay> {
  const dataDir = overrides.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'umbra-test-'));
  const logs: string[] = [];
  const logStream = new Writable({
    write(chunk, _enc, cb) {
      logs.push(String(chunk));
      cb();
    },
  });
  const base = defaultConfig();
  const config = defaultConfig({
    ...overrides,
    dataDir,
    port: 0,
    logStream,
    limits: { ...base.limits, ...overrides.limits },
    throttle: { ...base.throttle, signupsPerAddress: 10_000, addressFailures: 10_000, ...overrides.throttle },
  } as Partial<RelayConfig>);
  const relay = await startRelay(config);
  return {
    ...relay,
    dataDir,
    logs,
    client: () => new UmbraClient({ baseUrl: relay.url, platform: nodePlatform() }),
    stop: async () => {
      await relay.close();
      if (!overrides.dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

let counter = 0;
/** A unique, valid username. */
export function uniqueName(prefix = 'user'): string {
  counter++;
  return `${prefix}${process.pid % 10000}x${counter}${Math.floor(Math.random() * 1e6)}`.slice(0, 32);
}

/** Waits until `check` returns true (polling), or fails after `ms`. */
export async function waitFor(check: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export const PASSWORD = 'correct horse battery staple';
