// A relay in a process of its own, for tests that must kill it (SIGKILL) or watch its files from
// outside. Started by startChildRelay (test/helpers/child-relay.ts) through vite's module runner.
// Speaks one JSON object per line on stdout: {t:'ready', url} once listening, then answers each
// line of stdin: "stats" → {t:'stats', ...}, "close" → {t:'closed', ms} after relay.close().
import { Writable } from 'node:stream';
import readline from 'node:readline';
import { defaultConfig, type ConfigOverrides } from '../../server/config.ts';
import { startRelay } from '../../server/relay.ts';

const overrides = JSON.parse(process.env.UMBRA_CHILD_RELAY ?? '{}') as ConfigOverrides;
if (!overrides.dataDir) throw new Error('UMBRA_CHILD_RELAY must name a dataDir');
// Logs go to stderr, so stdout carries only the lines above.
const logStream = new Writable({
  write(chunk, _enc, cb) {
    process.stderr.write(chunk, () => cb());
  },
});
const relay = await startRelay(defaultConfig({ ...overrides, port: 0, logStream }));
const say = (line: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(line)}\n`);
say({ t: 'ready', url: relay.url, pid: process.pid });

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const command = line.trim();
  if (command === 'stats') {
    say({ t: 'stats', commits: relay.hub.commits.stats, checkpoint: relay.checkpointer.stats, hub: relay.hub.stats });
  } else if (command === 'close') {
    const started = performance.now();
    void relay.close().then(() => {
      say({ t: 'closed', ms: performance.now() - started });
      process.stdin.destroy();
    });
  }
});
