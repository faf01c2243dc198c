// "What the server sees": the envelopes the relay holds for this conversation, field by field as
// it stores them (sequence, sender, type, sizes, times, expiry, the start of the ciphertext), beside
// what this device decrypted from each one.
import { useEffect, useState } from 'preact/hooks';
import { fromB64, type StoredEnvelope } from '../../../shared/index.ts';
import type { ChatMessage, Conversation, Room } from '../../sdk/index.ts';
import { eventText } from './event-text.ts';
import { useModal } from './modal.ts';
import { formatTime } from './time.ts';

const PREFIX_BYTES = 12;

export function ServerViewDialog({ timeline, onClose }: { timeline: Conversation | Room; onClose: () => void }) {
  const ref = useModal();
  const raw = useHeldByRelay(timeline.relayView.value);
  const decrypted = new Map<string, ChatMessage>(timeline.messages.value.map((m) => [`${m.sender}/${m.clientMsgId}`, m]));
  return (
    <dialog ref={ref} class="dialog server-view" aria-labelledby="server-view-title" aria-describedby="server-view-explained" onClose={onClose}>
      <h2 id="server-view-title">What the server sees</h2>
      <p id="server-view-explained">
        Each row is an envelope exactly as the relay stores it. The relay has the routing fields on the left and the ciphertext; only the
        members' devices can turn it into the message on the right.
      </p>
      <div class="table-scroll" tabIndex={0} role="region" aria-label="Envelopes on the relay">
        <table>
          <caption class="visually-hidden">Envelopes the relay holds and what they decrypt to here</caption>
          <thead>
            <tr>
              <th scope="col">Seq</th>
              <th scope="col">Sender</th>
              <th scope="col">Type</th>
              <th scope="col">Bytes</th>
              <th scope="col">Stored</th>
              <th scope="col">Deleted at</th>
              <th scope="col">Ciphertext starts</th>
              <th scope="col">Decrypted here</th>
            </tr>
          </thead>
          <tbody>
            {raw.length === 0 && (
              <tr>
                <td colSpan={8}>Nothing loaded yet.</td>
              </tr>
            )}
            {raw.map((item) => {
              const ct = fromB64(item.env.ct);
              const m = decrypted.get(`${item.env.sender}/${item.env.clientMsgId}`);
              return (
                <tr key={item.seq}>
                  <td>{item.seq}</td>
                  <td>{item.env.sender}</td>
                  <td>{item.env.type}</td>
                  <td>{ct.length}</td>
                  <td>{formatTime(item.receivedAt)}</td>
                  <td>{item.expiresAt === null ? 'never' : formatTime(item.expiresAt)}</td>
                  <td>
                    <code>{hex(ct.subarray(0, PREFIX_BYTES))}…</code>
                  </td>
                  <td>{m ? eventText(m.event) : <span class="hint">not shown (control event, or not readable here)</span>}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
      <div class="dialog-actions">
        <button type="button" class="primary" onClick={() => ref.current?.close()}>
          Close
        </button>
      </div>
    </dialog>
  );
}

/**
 * The envelopes the relay still holds: those past their deletion time are gone from it (an
 * "opened" receipt, for one, is never shown in the chat but is deleted with what it opened), and
 * leave the table at that moment.
 */
function useHeldByRelay(raw: readonly StoredEnvelope[]): StoredEnvelope[] {
  const [now, setNow] = useState(Date.now);
  const held = raw.filter((item) => item.expiresAt === null || item.expiresAt > now);
  const next = Math.min(...held.map((item) => item.expiresAt ?? Number.POSITIVE_INFINITY));
  useEffect(() => {
    if (next === Number.POSITIVE_INFINITY) return;
    // setTimeout holds at most 2^31-1 ms; a later deletion re-arms when that fires.
    const timer = setTimeout(() => setNow(Date.now()), Math.min(Math.max(0, next - Date.now()), 2 ** 31 - 1));
    return () => clearTimeout(timer);
  }, [next]);
  return held;
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
