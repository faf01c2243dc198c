// The disappearing-message choices the UI offers, and their words.
import { TIMER_PRESETS_MS, describeTimer, type TimerSetting } from '../../../shared/index.ts';

export const PRESET_CHOICES = TIMER_PRESETS_MS.map((ms) => ({ value: String(ms), label: describeTimer(ms) }));

/** "Off", "5 minutes", "30 seconds after reading". */
export function timerWords(t: TimerSetting): string {
  if (t.ttlMs === null) return 'Off';
  return t.mode === 'read' ? `${describeTimer(t.ttlMs)} after reading` : describeTimer(t.ttlMs);
}
