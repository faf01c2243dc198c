// UmbraClient: the whole protocol client with no DOM. Accounts and vault, directory and pins,
// direct conversations and rooms, and the live connection. The UI only renders its signals.
import { signal, type ReadonlySignal } from '@preact/signals-core';
import {
  AccountResponse,
  ConversationListResponse,
  ConversationSummary,
  KDF_DEFAULT,
  OkResponse,
  PublicKeysWire,
  SaltResponse,
  UmbraError,
  checkKdfParams,
  createBatchVerifier,
  deriveAccountKeys,
  deriveMasterKey,
  equalBytes,
  fromB64,
  generateIdentity,
  identityFromSecrets,
  initCrypto,
  missingCase,
  openVault,
  publicKeysOf,
  randomSalt,
  sealVault,
  toB64,
  wipe,
  type BatchVerifier,
  type IdentityKeys,
  type PlainEvent,
  type ServerFrame,
} from '../../shared/index.ts';
import { ACCOUNT_KEY, savePins, type StoredAccount } from './account.ts';
import type { Conversation } from './conversation.ts';
import { ConversationList } from './conversations.ts';
import { Directory, type IdentityAlert } from './directory.ts';
import { HttpApi } from './http.ts';
import { checkPasswordPolicy } from './password-policy.ts';
import type { Platform } from './platform.ts';
import type { Room } from './room.ts';
import { RoomList, type RoomOptions } from './rooms.ts';
import { SecurityStats } from './stats.ts';
import { MessageCache } from './message-cache.ts';
import type { ChatMessage, SendOptions, TimelineDeps } from './timeline.ts';
import { Transport, type ConnectionStatus } from './transport.ts';

export interface ClientOptions {
  /** The relay's base URL, e.g. `http://127.0.0.1:8080`. */
  baseUrl: string;
  platform: Platform;
  requestTimeoutMs?: number;
  pingIntervalMs?: number;
  now?: () => number;
  /**
   * false: every signature is checked with libsodium, even where the platform has Ed25519 (the
   * verdicts are the same either way; docs/PROTOCOL.md §Signatures).
   */
  nativeSignatures?: boolean;
}

/** Progress of the slow steps (key derivation), for the UI. */
export type Progress = 'checking-password' | 'deriving-keys' | 'generating-keys' | 'contacting-relay' | 'opening-vault';

/** May return a promise (e.g. resolved after the next paint); the SDK waits for it before going on. */
export type ProgressCallback = (p: Progress) => void | Promise<void>;

/** Tells the UI, then yields a macrotask so it can render before the next (possibly blocking) step. */
async function report(onProgress: ProgressCallback | undefined, p: Progress): Promise<void> {
  if (!onProgress) return;
  await onProgress(p);
  await new Promise((r) => setTimeout(r, 0));
}

/** How long sign-up, log-in and resume wait for the live connection before returning anyway. */
const ONLINE_WAIT_MS = 15_000;

export class UmbraClient {
  readonly http: HttpApi;
  readonly stats = new SecurityStats();
  private account: StoredAccount | null = null;
  private identity: IdentityKeys | null = null;
  private transport: Transport | null = null;
  private directoryInstance: Directory | null = null;
  private verifier: BatchVerifier | null = null;
  private readonly conversationList = new ConversationList(() => this.timelineDeps());
  private readonly roomList = new RoomList(() => this.timelineDeps());
  private readonly meSignal = signal<string | null>(null);
  private readonly statusSignal = signal<ConnectionStatus>('offline');
  private readonly alertsSignal = signal<IdentityAlert[]>([]);
  private readonly now: () => number;
  private unsubscribers: (() => void)[] = [];

  private readonly messageCache: MessageCache;

  constructor(private readonly o: ClientOptions) {
    this.http = new HttpApi(o.baseUrl, o.platform);
    this.now = o.now ?? Date.now;
    this.messageCache = new MessageCache(o.platform.store, this.now);
  }

  /** The signed-in username, or null. */
  get me(): ReadonlySignal<string | null> {
    return this.meSignal;
  }
  /** Direct conversations. Rooms are in `rooms`. */
  get conversations(): ReadonlySignal<Conversation[]> {
    return this.conversationList.list;
  }
  /** Rooms this user is in, was in, or has asked to join (see Room.state). */
  get rooms(): ReadonlySignal<Room[]> {
    return this.roomList.rooms;
  }
  get status(): ReadonlySignal<ConnectionStatus> {
    return this.statusSignal;
  }
  /** Contacts whose key changed; sending to them is blocked until accepted. */
  get identityAlerts(): ReadonlySignal<IdentityAlert[]> {
    return this.alertsSignal;
  }
  get directory(): Directory {
    if (!this.directoryInstance) throw new UmbraError('unauthorized', 'log in first');
    return this.directoryInstance;
  }
  /** Which Ed25519 checks fetched pages' signatures: the platform's, or libsodium's (null before log-in). */
  get signatureVerifier(): BatchVerifier['kind'] | null {
    return this.verifier?.kind ?? null;
  }
  get identityKey(): Uint8Array {
    if (!this.identity) throw new UmbraError('unauthorized', 'log in first');
    return this.identity.signing.publicKey;
  }

  // ---- accounts --------------------------------------------------------------------------

  /** Creates an account: keys are born here; the relay gets public keys, an auth key and a sealed vault. */
  async signUp(username: string, password: string, onProgress?: ProgressCallback): Promise<void> {
    await initCrypto();
    await report(onProgress, 'checking-password');
    await checkPasswordPolicy(password, username);
    await report(onProgress, 'deriving-keys');
    const salt = randomSalt();
    const kdf = { ...KDF_DEFAULT };
    const master = deriveMasterKey(password, salt, kdf);
    const { authKey, vaultKey } = deriveAccountKeys(master, username);
    wipe(master);
    await report(onProgress, 'generating-keys');
    const identity = generateIdentity();
    const pub = publicKeysOf(identity, username);
    const vault = sealVault(vaultKey, username, {
      signingSecret: identity.signing.secretKey,
      agreementSecret: identity.agreement.secretKey,
      pins: {},
    });
    await report(onProgress, 'contacting-relay');
    const res = await this.http.post(
      '/api/auth/signup',
      {
        username,
        salt: toB64(salt),
        kdf,
        authKey: toB64(authKey),
        keys: { username, identityKey: toB64(pub.identityKey), x25519Key: toB64(pub.x25519Key), x25519Sig: toB64(pub.x25519Sig) },
        vault: toB64(vault),
      },
      AccountResponse,
    );
    wipe(authKey);
    await this.begin({ username, signingSecret: identity.signing.secretKey, agreementSecret: identity.agreement.secretKey, vaultKey, vaultVersion: res.vaultVersion, pins: {} });
  }

  /** Logs in on any device: the vault from the relay is opened with the password-derived vault key. */
  async logIn(username: string, password: string, onProgress?: ProgressCallback): Promise<void> {
    await initCrypto();
    await report(onProgress, 'contacting-relay');
    const { salt, kdf } = await this.http.post('/api/auth/salt', { username }, SaltResponse);
    checkKdfParams(kdf);
    await report(onProgress, 'deriving-keys');
    const master = deriveMasterKey(password, fromB64(salt), kdf);
    const { authKey, vaultKey } = deriveAccountKeys(master, username);
    wipe(master);
    await report(onProgress, 'contacting-relay');
    const res = await this.http.post('/api/auth/login', { username, authKey: toB64(authKey) }, AccountResponse);
    wipe(authKey);
    await report(onProgress, 'opening-vault');
    const contents = openVault(vaultKey, username, fromB64(res.vault));
    await this.begin({
      username,
      signingSecret: contents.signingSecret,
      agreementSecret: contents.agreementSecret,
      vaultKey,
      vaultVersion: res.vaultVersion,
      pins: contents.pins,
    });
  }

  /** After a page reload: resumes if the session cookie and the stored keys are both still there. */
  async resume(): Promise<boolean> {
    await initCrypto();
    const stored = await this.o.platform.store.get<StoredAccount>(ACCOUNT_KEY);
    if (!stored) return false;
    try {
      const me = await this.http.get('/api/me', AccountResponse);
      if (me.username !== stored.username) throw new UmbraError('unauthorized', 'another account is signed in');
      await this.begin(stored);
      return true;
    } catch (err) {
      if (err instanceof UmbraError && err.code === 'unauthorized') {
        await this.o.platform.store.delete(ACCOUNT_KEY);
        return false;
      }
      throw err;
    }
  }

  async logOut(): Promise<void> {
    try {
      await this.http.post('/api/auth/logout', {}, OkResponse);
    } finally {
      await this.forget();
    }
  }

  private async forget(): Promise<void> {
    for (const u of this.unsubscribers.splice(0)) u();
    this.transport?.stop();
    this.transport = null;
    if (this.identity) {
      wipe(this.identity.signing.secretKey);
      wipe(this.identity.agreement.secretKey);
    }
    this.identity = null;
    this.account = null;
    this.directoryInstance = null;
    this.conversationList.clear();
    this.roomList.clear();
    this.meSignal.value = null;
    this.statusSignal.value = 'offline';
    this.alertsSignal.value = [];
    this.http.forgetSession();
    await this.o.platform.store.clear();
  }

  private async begin(account: StoredAccount): Promise<void> {
    const identity = identityFromSecrets(account.signingSecret, account.agreementSecret);
    this.account = account;
    this.identity = identity;
    await this.o.platform.store.set(ACCOUNT_KEY, account);
    // Messages that expired while this device was away leave its store before anything is shown.
    await this.messageCache.purgeExpired().catch(() => 0);
    const directory = new Directory(this.http, { pins: () => this.account?.pins ?? {}, savePins: (p) => savePins(this.account!, p, this.o.platform.store, this.http) });
    this.directoryInstance = directory;
    this.verifier ??= await createBatchVerifier({ native: this.o.nativeSignatures !== false });
    this.unsubscribers.push(directory.alerts.subscribe((a) => (this.alertsSignal.value = a)));
    // The relay must publish our own keys unchanged; otherwise others would encrypt to someone else.
    const self = await this.http.get(`/api/users/${account.username}`, PublicKeysWire);
    if (!equalBytes(fromB64(self.identityKey), identity.signing.publicKey) || !equalBytes(fromB64(self.x25519Key), identity.agreement.publicKey)) {
      throw new UmbraError('identity_changed', 'the relay publishes keys for you that are not yours');
    }
    this.meSignal.value = account.username;
    const base = new URL(this.o.baseUrl);
    const wsUrl = `${base.protocol === 'https:' ? 'wss:' : 'ws:'}//${base.host}/ws`;
    const transport = new Transport({
      url: wsUrl,
      open: (url) => {
        const headers: Record<string, string> = {};
        if (this.o.platform.manageCookies) {
          headers.origin = this.http.origin;
          const cookie = this.http.cookieHeader();
          if (cookie) headers.cookie = cookie;
        }
        return this.o.platform.openSocket(url, headers);
      },
      onConnected: () => this.onConnected(),
      sessionAlive: () => this.sessionAlive(),
      onPush: (f) => this.onPush(f),
      requestTimeoutMs: this.o.requestTimeoutMs,
      pingIntervalMs: this.o.pingIntervalMs,
    });
    this.transport = transport;
    this.unsubscribers.push(transport.status.subscribe((s) => (this.statusSignal.value = s)));
    transport.start();
    // Signed in either way; if the relay is slow to accept the socket, the status says `connecting`.
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([transport.whenOnline(), new Promise((r) => (timer = setTimeout(r, ONLINE_WAIT_MS)))]).finally(() => clearTimeout(timer));
  }

  private async sessionAlive(): Promise<boolean> {
    try {
      await this.http.get('/api/me', AccountResponse);
      return true;
    } catch (err) {
      if (err instanceof UmbraError && err.code === 'unauthorized') return false;
      throw err;
    }
  }

  private async onConnected(): Promise<void> {
    const hello = await this.transport!.request({ t: 'hello' }, 'hello');
    for (const { conv, lastSeq } of hello.convs) {
      if (this.roomList.get(conv)) continue; // rooms resume below
      const known = this.conversationList.get(conv);
      if (!known) await this.loadConversation(conv);
      else if (lastSeq > known.relaySeq) void known.catchUp().catch(() => {});
    }
    void this.roomList.afterConnect(new Map(hello.convs.map((c) => [c.conv, c.lastSeq]))).catch(() => {});
  }

  private onPush(frame: ServerFrame): void {
    switch (frame.t) {
      case 'env': {
        const target = this.conversationList.get(frame.conv) ?? this.roomList.get(frame.conv);
        if (target) target.onPush(frame.item);
        else void this.loadConversation(frame.conv).catch(() => {});
        return;
      }
      case 'conv':
        void this.loadConversation(frame.conv).catch(() => {});
        return;
      case 'roster':
      case 'join-request':
      case 'join-declined':
        this.roomList.onPush(frame);
        return;
      case 'hello':
      case 'ack':
      case 'batch':
      case 'pong':
      case 'error':
        return; // replies are matched by id in the transport
      default:
        missingCase(frame);
    }
  }

  private loading = new Map<string, Promise<Conversation | Room>>();

  private loadConversation(id: string): Promise<Conversation | Room> {
    const existing = this.conversationList.get(id) ?? this.roomList.get(id);
    if (existing) return Promise.resolve(existing);
    let p = this.loading.get(id);
    if (!p) {
      p = (async () => {
        const summary = await this.http.get(`/api/conversations/${id}`, ConversationSummary);
        return summary.kind === 'room' ? this.roomList.open(summary) : this.conversationList.open(summary);
      })().finally(() => this.loading.delete(id));
      this.loading.set(id, p);
    }
    return p;
  }

  private timelineDeps(): TimelineDeps {
    if (!this.account || !this.identity || !this.transport || !this.verifier) throw new UmbraError('unauthorized', 'log in first');
    return {
      me: { username: this.account.username, keys: this.identity },
      directory: this.directory,
      http: this.http,
      transport: this.transport,
      stats: this.stats,
      verifier: this.verifier,
      cache: this.messageCache,
      now: this.now,
    };
  }

  // ---- conversations ---------------------------------------------------------------------

  conversation(id: string): Conversation | undefined {
    return this.conversationList.get(id);
  }

  /** The direct conversation with `username`, if one exists. */
  directWith(username: string): Conversation | undefined {
    return this.conversationList.directWith(username);
  }

  /**
   * Starts (or returns the existing) private conversation with `username`: a fresh key, wrapped
   * for both members' verified X25519 keys, and a genesis statement signed by us.
   */
  startConversation(username: string): Promise<Conversation> {
    return this.conversationList.start(username, () => this.refreshConversations());
  }

  /** Reloads the conversation list from the relay, opening any not yet known. */
  async refreshConversations(): Promise<void> {
    const list = await this.http.get('/api/conversations', ConversationListResponse);
    for (const s of list.conversations) {
      if (s.kind === 'room') await this.roomList.open(s);
      else await this.conversationList.open(s);
    }
  }

  /**
   * Sends a text message; resolves once the relay has stored it durably. It disappears under the
   * conversation's timer unless `options.timer` says otherwise.
   */
  sendText(convId: string, body: string, options: SendOptions = {}): Promise<ChatMessage> {
    return this.send(convId, { kind: 'text', body }, options);
  }

  send(convId: string, event: PlainEvent, options: SendOptions = {}): Promise<ChatMessage> {
    const conv = this.conversationList.get(convId) ?? this.roomList.get(convId);
    if (!conv) return Promise.reject(new UmbraError('not_found', 'no such conversation'));
    return conv.send(event, options);
  }

  // ---- rooms -----------------------------------------------------------------------------

  room(id: string): Room | undefined {
    return this.roomList.get(id);
  }

  /**
   * Creates a room owned by this user. The relay learns an Argon2id hash of the normalised name,
   * never the name, topic or policy. Throws `conflict` if the name is taken, `bad_request` if the
   * name is empty or over 64 characters or the topic over 512.
   */
  createRoom(name: string, options: RoomOptions): Promise<Room> {
    return this.roomList.create(name, options);
  }

  /**
   * Finds a room by its name and asks to join it. Resolves with the room in
   * `waiting-for-approval`; it becomes `member` when an admin's client admits the request (at once
   * in an open room) or `declined`. Throws `not_found` ("no room with that name").
   */
  joinRoom(name: string): Promise<Room> {
    return this.roomList.join(name);
  }

  /** The 60-digit safety number with a contact, and the text of its QR code. */
  safetyNumber(username: string): { digits: string; qr: string } {
    return this.directory.safetyNumberWith({ username: this.account!.username, identityKey: this.identity!.signing.publicKey }, username);
  }

  async acceptIdentityChange(username: string): Promise<void> {
    await this.directory.acceptNewKey(username);
  }

  /** Stops the connection without logging out (tests and bots). */
  disconnect(): void {
    this.transport?.stop();
  }

  /** Reconnects after disconnect(); resumes every conversation from its last sequence number. */
  async reconnect(): Promise<void> {
    if (!this.transport) throw new UmbraError('unauthorized', 'log in first');
    this.transport.start();
    await this.transport.whenOnline();
  }
}
