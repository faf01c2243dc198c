// A file that is in the data folder exactly while a relay has it open. Finding it at start-up means
// the last relay did not stop cleanly (a crash, a kill, a power cut), so envelopes it pushed ahead
// of their fsync may be gone from the database while clients hold them (docs/PROTOCOL.md §Delivery).
import fs from 'node:fs';
import path from 'node:path';

export const RUN_MARKER_FILE = 'relay.running';

export interface RunMarker {
  /** The marker was there already: the previous relay on this folder did not stop cleanly. */
  uncleanBefore: boolean;
  /** Removes the marker; call after the database is closed. */
  leave(): void;
}

/** Writes the marker and syncs it and its folder, so a power cut cannot lose it. */
export function enterRunning(dataDir: string, now: number): RunMarker {
  const file = path.join(dataDir, RUN_MARKER_FILE);
  const uncleanBefore = fs.existsSync(file);
  const fd = fs.openSync(file, 'w', 0o600);
  try {
    fs.writeSync(fd, JSON.stringify({ pid: process.pid, startedAt: now }) + '\n');
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  syncDir(dataDir);
  return {
    uncleanBefore,
    leave: () => {
      fs.rmSync(file, { force: true });
      syncDir(dataDir);
    },
  };
}

function syncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
