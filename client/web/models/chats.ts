// The chat side of the UI: the conversation list, the open conversation, drafts and sending,
// safety numbers, and the identity-change alerts that pause sending to a contact.
import { computed, signal, type ReadonlySignal, type Signal } from '@preact/signals-core';
import { UmbraError, formatSafetyNumber, type ChatMessage, type Conversation, type IdentityAlert, type SendOptions, type UmbraClient } from '../../sdk/index.ts';
import { USERNAME_PATTERN, safetyNumber } from '../../../shared/index.ts';
import { USERNAME_RULE, describeError } from './words.ts';

export interface SafetyNumberView {
  username: string;
  /** 60 digits in twelve groups of five. */
  groups: string[];
  qr: string;
}

export class ChatsModel {
  private readonly selectedIdSignal = signal<string | null>(null);
  private readonly startErrorSignal = signal<string | null>(null);
  private readonly startingSignal = signal(false);
  private readonly safetyForSignal = signal<string | null>(null);
  private readonly dismissedSignal = signal<ReadonlySet<string>>(new Set());
  private readonly sendErrorsSignal = signal<Readonly<Record<string, string>>>({});
  private readonly acceptErrorSignal = signal<string | null>(null);
  private readonly acceptingSignal = signal(false);
  private readonly drafts = new Map<string, Signal<string>>();

  /** Conversations, the most recently active first (new, empty ones on top). */
  readonly conversations: ReadonlySignal<Conversation[]>;
  readonly selected: ReadonlySignal<Conversation | null>;
  /** The identity alert to show as a modal: the first one not put off with "Not now". */
  readonly activeAlert: ReadonlySignal<IdentityAlert | null>;
  readonly safety: ReadonlySignal<SafetyNumberView | { username: string; error: string } | null>;

  constructor(readonly client: UmbraClient) {
    this.conversations = computed(() => sortByActivity(client.conversations.value));
    this.selected = computed(() => client.conversations.value.find((c) => c.id === this.selectedIdSignal.value) ?? null);
    this.activeAlert = computed(() => client.identityAlerts.value.find((a) => !this.dismissedSignal.value.has(a.username)) ?? null);
    this.safety = computed(() => {
      const username = this.safetyForSignal.value;
      if (!username) return null;
      try {
        const { digits, qr } = client.safetyNumber(username);
        return { username, groups: formatSafetyNumber(digits).split(' '), qr };
      } catch (err) {
        return { username, error: describeError(err, { username }) };
      }
    });
    client.me.subscribe(() => this.reset());
  }

  get selectedId(): ReadonlySignal<string | null> {
    return this.selectedIdSignal;
  }
  get startError(): ReadonlySignal<string | null> {
    return this.startErrorSignal;
  }
  get starting(): ReadonlySignal<boolean> {
    return this.startingSignal;
  }
  get alerts(): ReadonlySignal<IdentityAlert[]> {
    return this.client.identityAlerts;
  }
  get accepting(): ReadonlySignal<boolean> {
    return this.acceptingSignal;
  }
  get acceptError(): ReadonlySignal<string | null> {
    return this.acceptErrorSignal;
  }

  select(id: string | null): void {
    this.selectedIdSignal.value = id;
  }

  /** Opens (or creates) the direct conversation with `rawUsername`. Resolves true when it is open. */
  async startChat(rawUsername: string): Promise<boolean> {
    const username = rawUsername.trim().toLowerCase();
    this.startErrorSignal.value = null;
    if (!USERNAME_PATTERN.test(username)) {
      this.startErrorSignal.value = USERNAME_RULE;
      return false;
    }
    if (username === this.client.me.peek()) {
      this.startErrorSignal.value = 'That is you. Enter the username of the person you want to write to.';
      return false;
    }
    this.startingSignal.value = true;
    try {
      const conv = await this.client.startConversation(username);
      this.selectedIdSignal.value = conv.id;
      return true;
    } catch (err) {
      this.startErrorSignal.value = describeError(err, { username });
      return false;
    } finally {
      this.startingSignal.value = false;
    }
  }

  /** The unsent text for a conversation; kept while switching between conversations. */
  draft(convId: string): ReadonlySignal<string> {
    let d = this.drafts.get(convId);
    if (!d) {
      d = signal('');
      this.drafts.set(convId, d);
    }
    return d;
  }

  setDraft(convId: string, text: string): void {
    (this.draft(convId) as Signal<string>).value = text;
  }

  sendError(convId: string): string | null {
    return this.sendErrorsSignal.value[convId] ?? null;
  }

  /** Why the composer of this conversation is off, or null when sending is allowed. */
  sendBlockedReason(conv: Conversation): string | null {
    if (conv.problem.value) return 'This conversation failed its security check, so sending is turned off.';
    if (this.client.identityAlerts.value.some((a) => a.username === conv.peer)) {
      return `${conv.peer}'s security key has changed. Sending is paused until you verify the new key.`;
    }
    return null;
  }

  /** Sends the draft. If sending fails, the text goes back into the draft so it is not lost. */
  async send(conv: Conversation, options: SendOptions = {}): Promise<void> {
    const draft = this.draft(conv.id) as Signal<string>;
    const text = draft.peek();
    if (!text.trim() || this.sendBlockedReason(conv)) return;
    draft.value = '';
    this.setSendError(conv.id, null);
    try {
      await this.client.sendText(conv.id, text, options);
    } catch (err) {
      if (!draft.peek()) draft.value = text;
      // A key change pauses the composer, which then says why; other failures are told here.
      if (!(err instanceof UmbraError && err.code === 'identity_changed')) {
        this.setSendError(conv.id, describeError(err, { username: conv.peer }));
      }
    }
  }

  async loadOlder(conv: Conversation): Promise<void> {
    try {
      await conv.loadOlder();
    } catch (err) {
      this.setSendError(conv.id, describeError(err));
    }
  }

  openSafetyNumber(username: string): void {
    this.safetyForSignal.value = username;
  }

  closeSafetyNumber(): void {
    this.safetyForSignal.value = null;
  }

  /** The safety number the contact's new key would give, to compare before accepting it. */
  newSafetyNumber(alert: IdentityAlert): string[] {
    const me = this.client.me.peek();
    if (!me) return [];
    const digits = safetyNumber({ username: me, identityKey: this.client.identityKey }, { username: alert.username, identityKey: alert.servedKey });
    return formatSafetyNumber(digits).split(' ');
  }

  /** "I verified the new key": pin it and let sending resume. */
  async acceptNewKey(username: string): Promise<void> {
    this.acceptingSignal.value = true;
    this.acceptErrorSignal.value = null;
    try {
      await this.client.acceptIdentityChange(username);
      this.setDismissed(username, false);
      const cleared = { ...this.sendErrorsSignal.peek() };
      for (const c of this.client.conversations.peek()) if (c.peer === username) delete cleared[c.id];
      this.sendErrorsSignal.value = cleared;
    } catch (err) {
      this.acceptErrorSignal.value = describeError(err, { username });
    } finally {
      this.acceptingSignal.value = false;
    }
  }

  /** "Not now": the alert stays (sending stays paused) but stops covering the screen. */
  putOffAlert(username: string): void {
    this.acceptErrorSignal.value = null;
    this.setDismissed(username, true);
  }

  /** Brings a put-off alert back. */
  reviewAlert(username: string): void {
    this.setDismissed(username, false);
  }

  private setDismissed(username: string, dismissed: boolean): void {
    const next = new Set(this.dismissedSignal.peek());
    if (dismissed) next.add(username);
    else next.delete(username);
    this.dismissedSignal.value = next;
  }

  private setSendError(convId: string, message: string | null): void {
    const next = { ...this.sendErrorsSignal.peek() };
    if (message) next[convId] = message;
    else delete next[convId];
    this.sendErrorsSignal.value = next;
  }

  private reset(): void {
    this.selectedIdSignal.value = null;
    this.startErrorSignal.value = null;
    this.safetyForSignal.value = null;
    this.dismissedSignal.value = new Set();
    this.sendErrorsSignal.value = {};
    this.acceptErrorSignal.value = null;
    this.drafts.clear();
  }
}

/** The newest message, for the list's preview line. */
export function lastMessage(conv: Conversation): ChatMessage | null {
  const list = conv.messages.value;
  return list[list.length - 1] ?? null;
}

function sortByActivity(list: Conversation[]): Conversation[] {
  const at = (c: Conversation) => lastMessage(c)?.at ?? Number.MAX_SAFE_INTEGER;
  return [...list].sort((a, b) => at(b) - at(a));
}
