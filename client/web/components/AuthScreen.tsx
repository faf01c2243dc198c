// Sign up or log in: one form, a clear switch between the two, the password rules, and
// progress while the keys are derived.
import type { SessionModel } from '../models/index.ts';

export function AuthScreen({ session }: { session: SessionModel }) {
  const signingUp = session.mode.value === 'sign-up';
  const busy = session.busy.value;
  const error = session.error.value;
  const onSubmit = (e: SubmitEvent) => {
    e.preventDefault();
    const data = new FormData(e.currentTarget as HTMLFormElement);
    void session.submit(String(data.get('username') ?? ''), String(data.get('password') ?? ''));
  };
  return (
    <main class="auth">
      <div class="auth-card">
        <h2>{signingUp ? 'Create your account' : 'Log in to Umbra'}</h2>
        <p class="auth-lead">
          Messages are encrypted on your device. The server only relays ciphertext and never sees your password.
        </p>
        <form class="auth-form" onSubmit={onSubmit} aria-describedby={error ? 'auth-error' : undefined} noValidate>
          <label for="auth-username">Username</label>
          <input
            id="auth-username"
            name="username"
            autocomplete="username"
            autocapitalize="none"
            spellcheck={false}
            required
            maxLength={32}
            aria-describedby={signingUp ? 'username-rules' : undefined}
            disabled={busy}
          />
          {signingUp && (
            <p id="username-rules" class="hint">
              3 to 32 characters: lowercase letters, digits, “_”, “.” and “-”.
            </p>
          )}
          <label for="auth-password">Password</label>
          <input
            id="auth-password"
            name="password"
            type="password"
            autocomplete={signingUp ? 'new-password' : 'current-password'}
            required
            aria-describedby={signingUp ? 'password-rules' : undefined}
            disabled={busy}
          />
          {signingUp && (
            <div id="password-rules" class="hint">
              <p>At least 8 characters. Long passphrases are welcome: a few unrelated words are easy to remember and hard to guess.</p>
              <p>The most common passwords are refused.</p>
              <p>Your password unlocks your keys. Nobody, not even the server, can reset it or recover your messages without it.</p>
            </div>
          )}
          {error && (
            <p id="auth-error" class="error" role="alert">
              {error}
            </p>
          )}
          <button type="submit" class="primary" disabled={busy}>
            {signingUp ? 'Sign up' : 'Log in'}
          </button>
          <p class="progress" role="status" aria-live="polite">
            {busy && <span class="spinner" aria-hidden="true" />}
            {session.progress.value ?? ''}
          </p>
        </form>
        <p class="auth-switch">
          {signingUp ? 'Already have an account?' : 'New to Umbra?'}{' '}
          <button type="button" class="link" disabled={busy} onClick={() => session.setMode(signingUp ? 'log-in' : 'sign-up')}>
            {signingUp ? 'Log in instead' : 'Create an account'}
          </button>
        </p>
      </div>
    </main>
  );
}
