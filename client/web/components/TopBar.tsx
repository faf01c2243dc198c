// The bar on top of every screen: name, connection status, dark mode, and log out.
import type { ConnectionStatus } from '../../sdk/index.ts';
import type { SessionModel, ThemeModel } from '../models/index.ts';

const STATUS_WORDS: Record<ConnectionStatus, string> = {
  online: 'Connected',
  connecting: 'Connecting…',
  offline: 'Offline',
  'session-ended': 'Logged out',
};

export function TopBar({ session, theme }: { session: SessionModel; theme: ThemeModel }) {
  const me = session.client.me.value;
  const signedIn = session.phase.value === 'signed-in' && me !== null;
  const status = session.client.status.value;
  return (
    <header class="topbar">
      <h1 class="brand">Umbra</h1>
      {signedIn && (
        <p class={`connection connection-${status}`} role="status">
          <span class="connection-dot" aria-hidden="true" />
          <span class="connection-words">{STATUS_WORDS[status]}</span>
        </p>
      )}
      <div class="topbar-actions">
        {signedIn && (
          <span class="me" title="You are logged in as this user">
            {me}
          </span>
        )}
        <button type="button" class="icon-button" aria-pressed={theme.dark.value} onClick={() => theme.toggle()}>
          <span aria-hidden="true">{theme.dark.value ? '☾' : '☀'}</span>
          <span class="button-words">Dark mode</span>
        </button>
        {signedIn && (
          <button type="button" onClick={() => void session.logOut()}>
            Log out
          </button>
        )}
      </div>
      {signedIn && status === 'session-ended' && (
        <div class="banner" role="alert">
          Your session has ended (you may have logged out on another device).{' '}
          <button type="button" onClick={() => void session.logOut()}>
            Log in again
          </button>
        </div>
      )}
    </header>
  );
}
