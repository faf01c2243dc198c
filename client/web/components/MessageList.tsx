// The messages of one conversation or room, oldest first, with gap notices where messages are
// missing. Keeps the newest in view as messages arrive, unless the reader has scrolled up to read.
import { useEffect, useLayoutEffect, useRef } from 'preact/hooks';
import { describeTimer } from '../../../shared/index.ts';
import type { ChatMessage, Conversation, Notice, Room } from '../../sdk/index.ts';
import { eventText } from './event-text.ts';
import { formatTime } from './time.ts';

type Item = { kind: 'message'; order: number; message: ChatMessage } | { kind: 'notice'; order: number; notice: Notice };

/** How close to the bottom (px) still counts as "reading the newest". */
const STICKY_PX = 48;

export interface MessageListProps {
  conv: Conversation | Room;
  /** The log's accessible name, e.g. "Messages with bob". */
  label: string;
  /** What an empty list says. */
  empty: string;
  onLoadOlder: () => void;
}

export function MessageList({ conv, label, empty, onLoadOlder: loadOlder }: MessageListProps) {
  const messages = conv.messages.value;
  const notices = conv.notices.value;
  const hasOlder = conv.hasOlder.value;
  const box = useRef<HTMLDivElement>(null);
  const atBottom = useRef(true);
  const restoreFromBottom = useRef<number | null>(null);

  const newest = messages[messages.length - 1];
  const newestKey = newest ? `${newest.sender}/${newest.clientMsgId}` : '';
  const oldest = messages[0];
  const oldestKey = oldest ? `${oldest.sender}/${oldest.clientMsgId}` : '';

  useLayoutEffect(() => {
    const el = box.current;
    if (!el) return;
    if (restoreFromBottom.current !== null) {
      // Older messages were added above: keep what was on screen where it was.
      el.scrollTop = el.scrollHeight - restoreFromBottom.current;
      restoreFromBottom.current = null;
    }
  }, [oldestKey]);

  useLayoutEffect(() => {
    const el = box.current;
    if (el && (atBottom.current || newest?.mine)) {
      el.scrollTop = el.scrollHeight;
      atBottom.current = true;
    }
  }, [newestKey]);

  // Burn after reading: messages count as read once they are on screen in a visible page.
  useEffect(() => {
    const read = () => {
      if (document.visibilityState === 'visible') void conv.markRead().catch(() => {});
    };
    read();
    document.addEventListener('visibilitychange', read);
    return () => document.removeEventListener('visibilitychange', read);
  }, [conv, newestKey, messages.length]);

  const onScroll = () => {
    const el = box.current;
    if (el) atBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < STICKY_PX;
  };
  const onLoadOlder = () => {
    const el = box.current;
    if (el) restoreFromBottom.current = el.scrollHeight - el.scrollTop;
    loadOlder();
  };

  const items: Item[] = [
    ...messages.map((m): Item => ({ kind: 'message', order: m.seq ?? Number.MAX_SAFE_INTEGER, message: m })),
    ...notices.map((n): Item => ({ kind: 'notice', order: n.atSeq - 0.5, notice: n })),
  ].sort((a, b) => a.order - b.order);

  return (
    <div class="messages" ref={box} onScroll={onScroll} role="log" aria-label={label} tabIndex={0}>
      {hasOlder && (
        <button type="button" class="load-older" onClick={onLoadOlder}>
          Load older messages
        </button>
      )}
      {items.length === 0 ? (
        <p class="hint empty-messages">{empty}</p>
      ) : (
        <ol class="message-list">
          {items.map((item) =>
            item.kind === 'message' ? (
              <MessageItem key={`m/${item.message.sender}/${item.message.clientMsgId}`} m={item.message} />
            ) : (
              <li key={`n/${item.notice.sender}/${item.notice.atSeq}`} class="notice" role="note">
                {item.notice.missing === 1
                  ? `1 message from ${item.notice.sender} is missing.`
                  : `${item.notice.missing} messages from ${item.notice.sender} are missing.`}
              </li>
            ),
          )}
        </ol>
      )}
    </div>
  );
}

function MessageItem({ m }: { m: ChatMessage }) {
  const reordered = m.flags.includes('reordered');
  return (
    <li class={`message ${m.mine ? 'mine' : 'theirs'} status-${m.status}${reordered ? ' flagged' : ''}`}>
      <p class="message-meta">
        <span class="message-sender">{m.mine ? 'You' : m.sender}</span>{' '}
        <time dateTime={new Date(m.at).toISOString()}>{formatTime(m.at)}</time>
      </p>
      <p class="message-body">{eventText(m.event)}</p>
      {m.status === 'sending' && <p class="message-state">sending…</p>}
      {m.status === 'failed' && <p class="message-state failed">failed: not sent</p>}
      {reordered && (
        <p class="message-state flag" title="It reached you after a later message from the same sender.">
          ⚠ arrived out of order
        </p>
      )}
      {m.expiresAt !== null && (
        <p class="message-state">
          {m.burnAfterMs !== null && `burns ${describeTimer(m.burnAfterMs)} after reading; `}disappears{' '}
          <time dateTime={new Date(m.expiresAt).toISOString()}>{formatTime(m.expiresAt)}</time>
        </p>
      )}
      {m.flags.includes('expiry_extended') && (
        <p class="message-state flag" title="The relay said it would keep this message longer than its sender set. It still disappears on time here.">
          ⚠ the relay tried to keep it longer
        </p>
      )}
    </li>
  );
}
