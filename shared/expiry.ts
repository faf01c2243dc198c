// Disappearing messages: the timer settings a conversation can have and how a message's expiry
// follows from them (docs/PROTOCOL.md §Disappearing messages). Pure: callers pass the clock.

/** The timers the UI offers besides "off" and a custom value. */
export const TIMER_PRESETS_MS = [30_000, 5 * 60_000, 3_600_000, 86_400_000, 7 * 86_400_000] as const;
/** Bounds for a custom timer. */
export const MIN_TIMER_MS = 1_000;
export const MAX_TIMER_MS = 365 * 86_400_000;
/** A burn-after-reading message nobody opens is still deleted this long after it was sent. */
export const BURN_UNOPENED_MS = 30 * 86_400_000;

/** `sent`: the timer runs from sending; `read`: from the moment a recipient first displays it. */
export type TimerMode = 'sent' | 'read';

export interface TimerSetting {
  /** null: messages do not disappear. */
  ttlMs: number | null;
  mode: TimerMode;
}

export const TIMER_OFF: TimerSetting = { ttlMs: null, mode: 'sent' };

/** The two signed header fields a message sent at `now` under `setting` carries. */
export function expiryFields(setting: TimerSetting, now: number): { expiresAt: number | null; burnAfterMs: number | null } {
  if (setting.ttlMs === null) return { expiresAt: null, burnAfterMs: null };
  if (setting.mode === 'read') return { expiresAt: now + Math.max(BURN_UNOPENED_MS, setting.ttlMs), burnAfterMs: setting.ttlMs };
  return { expiresAt: now + setting.ttlMs, burnAfterMs: null };
}

/**
 * When a message must be gone: its signed expiry, brought forward to `openedAt + burnAfterMs`
 * once it has been opened. null: never.
 */
export function effectiveExpiry(expiresAt: number | null, burnAfterMs: number | null, openedAt: number | null): number | null {
  const burnAt = burnAfterMs !== null && openedAt !== null ? openedAt + burnAfterMs : null;
  if (expiresAt === null) return burnAt;
  if (burnAt === null) return expiresAt;
  return Math.min(expiresAt, burnAt);
}

/** Words for a timer, as settings and system lines show it ("5 minutes", "1 day"). */
export function describeTimer(ms: number): string {
  const units: [number, string][] = [
    [7 * 86_400_000, 'week'],
    [86_400_000, 'day'],
    [3_600_000, 'hour'],
    [60_000, 'minute'],
    [1_000, 'second'],
  ];
  for (const [size, name] of units) {
    if (ms >= size && ms % size === 0) {
      const n = ms / size;
      return `${n} ${name}${n === 1 ? '' : 's'}`;
    }
  }
  return `${(ms / 1000).toFixed(1)} seconds`;
}
