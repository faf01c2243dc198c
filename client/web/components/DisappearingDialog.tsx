// Setting a conversation's disappearing-message timer: off, a preset or a custom time, counted
// from sending or from when it is read. Everyone in the conversation sees the change.
import { useState } from 'preact/hooks';
import { MAX_TIMER_MS, MIN_TIMER_MS, TIMER_PRESETS_MS, type TimerSetting } from '../../../shared/index.ts';
import type { Conversation, Room } from '../../sdk/index.ts';
import { describeError } from '../models/index.ts';
import { useModal } from './modal.ts';
import { PRESET_CHOICES, timerWords } from './timer-options.ts';

export function DisappearingDialog({ timeline, onClose }: { timeline: Conversation | Room; onClose: () => void }) {
  const ref = useModal();
  const current = timeline.timer.value;
  const initialChoice = current.ttlMs === null ? 'off' : (TIMER_PRESETS_MS as readonly number[]).includes(current.ttlMs) ? String(current.ttlMs) : 'custom';
  const [choice, setChoice] = useState(initialChoice);
  const [customSeconds, setCustomSeconds] = useState(current.ttlMs !== null ? String(current.ttlMs / 1000) : '10');
  const [afterReading, setAfterReading] = useState(current.mode === 'read');
  const [error, setError] = useState<string | null>(null);
  const [saving, setSaving] = useState(false);

  const chosen = (): TimerSetting | string => {
    if (choice === 'off') return { ttlMs: null, mode: 'sent' };
    const ms = choice === 'custom' ? Math.round(Number(customSeconds) * 1000) : Number(choice);
    if (!Number.isFinite(ms) || ms < MIN_TIMER_MS || ms > MAX_TIMER_MS) {
      return `Choose between ${MIN_TIMER_MS / 1000} second and ${MAX_TIMER_MS / 86_400_000} days.`;
    }
    return { ttlMs: ms, mode: afterReading ? 'read' : 'sent' };
  };

  const onSubmit = async (e: SubmitEvent) => {
    e.preventDefault();
    const setting = chosen();
    if (typeof setting === 'string') return setError(setting);
    setSaving(true);
    setError(null);
    try {
      await timeline.setTimer(setting);
      ref.current?.close();
    } catch (err) {
      setError(describeError(err));
    } finally {
      setSaving(false);
    }
  };

  return (
    <dialog ref={ref} class="dialog" aria-labelledby="timer-title" onClose={onClose}>
      <h2 id="timer-title">Disappearing messages</h2>
      <p>
        Now: <strong>{timerWords(current)}</strong>. New messages disappear from every device and from the relay when their time is up.
        Everyone here sees a change.
      </p>
      <form class="timer-form" onSubmit={(e) => void onSubmit(e)}>
        <label for="timer-choice">Timer</label>
        <select id="timer-choice" value={choice} onChange={(e) => setChoice(e.currentTarget.value)}>
          <option value="off">Off</option>
          {PRESET_CHOICES.map((p) => (
            <option key={p.value} value={p.value}>
              {p.label}
            </option>
          ))}
          <option value="custom">Custom…</option>
        </select>
        {choice === 'custom' && (
          <>
            <label for="timer-custom">Custom time in seconds</label>
            <input id="timer-custom" type="number" min={1} step="any" inputMode="decimal" value={customSeconds} onInput={(e) => setCustomSeconds(e.currentTarget.value)} />
          </>
        )}
        {choice !== 'off' && (
          <label class="checkbox">
            <input type="checkbox" checked={afterReading} onChange={(e) => setAfterReading(e.currentTarget.checked)} /> Start the timer when a message is
            read (burn after reading)
          </label>
        )}
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        <div class="dialog-actions">
          <button type="button" onClick={() => ref.current?.close()}>
            Cancel
          </button>
          <button type="submit" class="primary" disabled={saving}>
            {saving ? 'Saving…' : 'Set timer'}
          </button>
        </div>
      </form>
    </dialog>
  );
}
