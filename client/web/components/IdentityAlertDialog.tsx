// The blocking warning when a contact's security key changed: accept only after checking.
import type { IdentityAlert } from '../../sdk/index.ts';
import type { ChatsModel } from '../models/index.ts';
import { useModal } from './modal.ts';
import { SafetyDigits } from './SafetyDigits.tsx';

export function IdentityAlertDialog({ chats, alert }: { chats: ChatsModel; alert: IdentityAlert }) {
  const ref = useModal();
  const who = alert.username;
  const busy = chats.accepting.value;
  const error = chats.acceptError.value;
  const groups = chats.newSafetyNumber(alert);
  return (
    <dialog
      ref={ref}
      class="dialog alert-dialog"
      role="alertdialog"
      aria-modal="true"
      aria-labelledby="identity-alert-title"
      aria-describedby="identity-alert-risk"
      onCancel={(e) => {
        // Escape means "Not now": the warning is put off, sending stays paused.
        e.preventDefault();
        chats.putOffAlert(who);
      }}
    >
      <h2 id="identity-alert-title">{who}'s security key has changed</h2>
      <div id="identity-alert-risk">
        <p>
          The server now gives out a different key for {who}. That happens when {who} sets up their account again, but it is also
          exactly what someone would do to read your messages by pretending to be {who}.
        </p>
        <p>Sending to {who} is paused until you decide.</p>
      </div>
      <p>
        Ask {who} through another channel you trust (in person, or a phone call) whether they changed their key, and compare this new
        safety number with the one on their screen:
      </p>
      <SafetyDigits groups={groups} label={`New safety number with ${who}`} />
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <div class="dialog-actions">
        <button type="button" class="primary" disabled={busy} onClick={() => void chats.acceptNewKey(who)}>
          I verified the new key
        </button>
        <button type="button" disabled={busy} onClick={() => chats.putOffAlert(who)}>
          Not now
        </button>
      </div>
    </dialog>
  );
}
