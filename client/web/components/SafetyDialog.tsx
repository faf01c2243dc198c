// The safety number with a contact: 60 digits in groups of five and the same as a QR code.
import type { ChatsModel, SafetyNumberView } from '../models/index.ts';
import { useModal } from './modal.ts';
import { SafetyDigits } from './SafetyDigits.tsx';
import { QrCode } from './QrCode.tsx';

export function SafetyDialog({ chats, view }: { chats: ChatsModel; view: SafetyNumberView | { username: string; error: string } }) {
  const ref = useModal();
  const who = view.username;
  return (
    <dialog ref={ref} class="dialog" aria-labelledby="safety-title" aria-describedby="safety-explained" onClose={() => chats.closeSafetyNumber()}>
      <h2 id="safety-title">Safety number with {who}</h2>
      {'error' in view ? (
        <p id="safety-explained" class="error" role="alert">
          {view.error}
        </p>
      ) : (
        <>
          <p id="safety-explained">
            Compare these 60 digits with {who}, in person or on a call, or scan each other's code. If they match on both screens, your
            messages reach {who} and nobody else.
          </p>
          <SafetyDigits groups={view.groups} label={`Safety number with ${who}`} />
          <QrCode text={view.qr} label={`QR code of your safety number with ${who}`} />
        </>
      )}
      <div class="dialog-actions">
        <button type="button" class="primary" onClick={() => ref.current?.close()}>
          Close
        </button>
      </div>
    </dialog>
  );
}
