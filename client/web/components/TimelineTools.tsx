// The bar under a conversation's header: its disappearing-message timer (and the button to change
// it) and the "what the server sees" view.
import { useState } from 'preact/hooks';
import type { Conversation, Room } from '../../sdk/index.ts';
import { DisappearingDialog } from './DisappearingDialog.tsx';
import { ServerViewDialog } from './ServerViewDialog.tsx';
import { timerWords } from './timer-options.ts';

export function TimelineTools({ timeline }: { timeline: Conversation | Room }) {
  const [open, setOpen] = useState<'timer' | 'server' | null>(null);
  const timer = timeline.timer.value;
  return (
    <div class="timeline-tools">
      <button type="button" class="link" aria-haspopup="dialog" onClick={() => setOpen('timer')}>
        Disappearing messages: {timerWords(timer)}
      </button>
      <button type="button" class="link" aria-haspopup="dialog" onClick={() => setOpen('server')}>
        What the server sees
      </button>
      {open === 'timer' && <DisappearingDialog timeline={timeline} onClose={() => setOpen(null)} />}
      {open === 'server' && <ServerViewDialog timeline={timeline} onClose={() => setOpen(null)} />}
    </div>
  );
}
