// The account side of the UI: resume after reload, sign up, log in, log out, and what to show
// while the slow key derivation runs.
import { signal, type ReadonlySignal } from '@preact/signals-core';
import { checkPasswordPolicy, type Progress, type UmbraClient } from '../../sdk/index.ts';
import { USERNAME_PATTERN } from '../../../shared/index.ts';
import { USERNAME_RULE, describeError, progressLabel } from './words.ts';

export type Phase = 'starting' | 'signed-out' | 'signed-in';
export type AuthMode = 'log-in' | 'sign-up';

/** User Timing names around Argon2id, so a profiler (or a test) can read what it cost. */
export const KDF_MEASURE = 'umbra:argon2id';
const KDF_START = 'umbra:argon2id-start';
const KDF_END = 'umbra:argon2id-end';

export class SessionModel {
  private readonly phaseSignal = signal<Phase>('starting');
  private readonly modeSignal = signal<AuthMode>('log-in');
  private readonly busySignal = signal(false);
  private readonly progressSignal = signal<string | null>(null);
  private readonly errorSignal = signal<string | null>(null);

  constructor(readonly client: UmbraClient) {
    // The SDK forgets the account on log-out; follow it wherever that starts.
    client.me.subscribe((me) => {
      if (me === null && this.phaseSignal.peek() === 'signed-in') this.phaseSignal.value = 'signed-out';
    });
  }

  get phase(): ReadonlySignal<Phase> {
    return this.phaseSignal;
  }
  get mode(): ReadonlySignal<AuthMode> {
    return this.modeSignal;
  }
  get busy(): ReadonlySignal<boolean> {
    return this.busySignal;
  }
  /** A sentence for the current slow step, or null when idle. */
  get progress(): ReadonlySignal<string | null> {
    return this.progressSignal;
  }
  get error(): ReadonlySignal<string | null> {
    return this.errorSignal;
  }

  /** On page load: back into the chat if the session cookie and the stored keys survived. */
  async start(): Promise<void> {
    try {
      this.phaseSignal.value = (await this.client.resume()) ? 'signed-in' : 'signed-out';
    } catch (err) {
      this.errorSignal.value = describeError(err);
      this.phaseSignal.value = 'signed-out';
    }
  }

  setMode(mode: AuthMode): void {
    if (this.busySignal.peek()) return;
    this.modeSignal.value = mode;
    this.errorSignal.value = null;
  }

  /** Signs up or logs in, depending on the mode; failures end up in `error` as a sentence. */
  async submit(rawUsername: string, password: string): Promise<void> {
    if (this.busySignal.peek()) return;
    const username = rawUsername.trim().toLowerCase();
    this.errorSignal.value = null;
    if (!USERNAME_PATTERN.test(username)) {
      this.errorSignal.value = USERNAME_RULE;
      return;
    }
    const signingUp = this.modeSignal.peek() === 'sign-up';
    this.busySignal.value = true;
    try {
      if (signingUp) {
        this.progressSignal.value = progressLabel('checking-password');
        await checkPasswordPolicy(password, username);
      }
      this.progressSignal.value = progressLabel('deriving-keys');
      await nextPaint();
      const report = this.progressReporter();
      if (signingUp) await this.client.signUp(username, password, report);
      else await this.client.logIn(username, password, report);
      this.phaseSignal.value = 'signed-in';
    } catch (err) {
      this.errorSignal.value = describeError(err);
    } finally {
      this.busySignal.value = false;
      this.progressSignal.value = null;
    }
  }

  async logOut(): Promise<void> {
    try {
      await this.client.logOut();
    } catch {
      // The keys on this device are gone either way (the SDK forgets them in `finally`);
      // a relay that cannot be reached ends the session when it expires.
    }
    this.modeSignal.value = 'log-in';
    this.errorSignal.value = null;
    this.phaseSignal.value = 'signed-out';
  }

  /**
   * Argon2id runs on the page's thread and blocks painting, so a label set the moment it starts
   * would never be seen: "Deriving keys…" is painted before the SDK is called and stays up until
   * the derivation is over; later steps replace it.
   */
  private progressReporter(): (p: Progress) => void {
    let state: 'before' | 'deriving' | 'after' = 'before';
    return (p) => {
      if (p === 'deriving-keys') {
        state = 'deriving';
        performance.clearMarks(KDF_START);
        performance.mark(KDF_START);
        return;
      }
      if (state === 'deriving') {
        state = 'after';
        performance.clearMarks(KDF_END);
        performance.mark(KDF_END);
        performance.clearMeasures(KDF_MEASURE);
        performance.measure(KDF_MEASURE, KDF_START, KDF_END);
      }
      if (state === 'after') this.progressSignal.value = progressLabel(p);
    };
  }
}

/** Resolves after the browser has had a chance to paint (or soon, in a hidden tab). */
function nextPaint(): Promise<void> {
  return new Promise((resolve) => {
    const done = () => setTimeout(resolve, 0);
    const fallback = setTimeout(resolve, 100);
    requestAnimationFrame(() => {
      clearTimeout(fallback);
      done();
    });
  });
}
