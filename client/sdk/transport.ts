// The WebSocket transport: request ids, timeouts, keepalive, reconnect with backoff, and
// pending requests settled (never left hanging) when the socket closes.
import { signal, type ReadonlySignal } from '@preact/signals-core';
import { CLOSE, ServerFrame, UmbraError, type ClientFrame } from '../../shared/index.ts';
import type { SocketLike } from './platform.ts';

export type ConnectionStatus = 'offline' | 'connecting' | 'online' | 'session-ended';

type Request = ClientFrame extends infer F ? (F extends { id: number } ? Omit<F, 'id'> : never) : never;
type Reply = Extract<ServerFrame, { id: number }> | Extract<ServerFrame, { t: 'error' }>;

interface Pending {
  resolve(frame: ServerFrame): void;
  reject(err: UmbraError): void;
  timer: ReturnType<typeof setTimeout>;
}

export interface TransportOptions {
  url: string;
  open(url: string): SocketLike;
  /** Runs after every (re)connect, before queued work resumes; typically sends `hello`. */
  onConnected(): Promise<void>;
  /**
   * Asked after a connection attempt failed before opening: false means the session is gone
   * (the relay refuses the upgrade with 401), so retrying is pointless.
   */
  sessionAlive?(): Promise<boolean>;
  /** Pushed frames (no request id): `env`, `conv`. */
  onPush(frame: ServerFrame): void;
  requestTimeoutMs?: number;
  pingIntervalMs?: number;
  maxBackoffMs?: number;
}

export class Transport {
  private socket: SocketLike | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly statusSignal = signal<ConnectionStatus>('offline');
  private running = false;
  private attempt = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private pingTimer: ReturnType<typeof setInterval> | undefined;
  private readonly waiters: { resolve(): void; reject(err: UmbraError): void }[] = [];
  private opened = false;
  /** Frames the relay sent that failed the schema: counted, never acted on. */
  malformedFrames = 0;

  constructor(private readonly o: TransportOptions) {}

  get status(): ReadonlySignal<ConnectionStatus> {
    return this.statusSignal;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.connect();
  }

  stop(): void {
    this.running = false;
    clearTimeout(this.reconnectTimer);
    clearInterval(this.pingTimer);
    this.socket?.close(CLOSE.normal, 'bye');
    this.socket = null;
    this.failAll(new UmbraError('disconnected', 'the connection was closed'));
    this.statusSignal.value = 'offline';
    this.settleWaiters(new UmbraError('disconnected', 'the connection was closed'));
  }

  /** Resolves once online (after onConnected); rejects if the transport stops or the session ends first. */
  whenOnline(): Promise<void> {
    if (this.statusSignal.value === 'online') return Promise.resolve();
    if (this.statusSignal.value === 'session-ended') return Promise.reject(sessionEnded());
    if (!this.running) return Promise.reject(new UmbraError('disconnected', 'not connected to the relay'));
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  private settleWaiters(err?: UmbraError): void {
    for (const w of this.waiters.splice(0)) {
      if (err) w.reject(err);
      else w.resolve();
    }
  }

  private endSession(): void {
    this.running = false;
    clearTimeout(this.reconnectTimer);
    this.statusSignal.value = 'session-ended';
    this.settleWaiters(sessionEnded());
  }

  /** Sends a request and resolves with its reply; rejects on an error frame, timeout or disconnect. */
  request<T extends Reply['t']>(frame: Request, expect: T): Promise<Extract<ServerFrame, { t: T }>> {
    const socket = this.socket;
    if (!socket || socket.readyState !== 1) return Promise.reject(new UmbraError('disconnected', 'not connected to the relay'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new UmbraError('timeout', `the relay did not answer ${frame.t} in time`));
      }, this.o.requestTimeoutMs ?? 10_000);
      this.pending.set(id, {
        resolve: (reply) => {
          if (reply.t !== expect) reject(new UmbraError('internal', `expected ${expect}, got ${reply.t}`));
          else resolve(reply as Extract<ServerFrame, { t: T }>);
        },
        reject,
        timer,
      });
      socket.send(JSON.stringify({ ...frame, id }));
    });
  }

  private connect(): void {
    this.statusSignal.value = 'connecting';
    let socket: SocketLike;
    try {
      socket = this.o.open(this.o.url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    this.opened = false;
    socket.onopen = () => {
      this.opened = true;
      this.attempt = 0;
      this.pingTimer = setInterval(() => this.ping(), this.o.pingIntervalMs ?? 20_000);
      this.o
        .onConnected()
        .then(() => {
          if (this.socket !== socket) return;
          this.statusSignal.value = 'online';
          this.settleWaiters();
        })
        .catch(() => socket.close(CLOSE.normal, 'handshake failed'));
    };
    socket.onmessage = (ev) => this.onMessage(ev.data);
    socket.onerror = () => {};
    socket.onclose = (ev) => {
      if (this.socket !== socket) return;
      this.socket = null;
      clearInterval(this.pingTimer);
      this.failAll(new UmbraError('disconnected', 'the connection to the relay was lost'));
      if (ev.code === CLOSE.sessionEnded || ev.code === CLOSE.unauthorized) return this.endSession();
      if (!this.running) {
        this.statusSignal.value = 'offline';
        return;
      }
      if (!this.opened && this.o.sessionAlive) {
        // Browsers hide the upgrade's 401; ask over HTTP before trying again.
        const check = this.o.sessionAlive;
        this.statusSignal.value = 'connecting';
        void check()
          .then((alive) => (alive ? this.scheduleReconnect() : this.endSession()))
          .catch(() => this.scheduleReconnect());
        return;
      }
      this.scheduleReconnect();
    };
  }

  private scheduleReconnect(): void {
    this.statusSignal.value = 'connecting';
    const base = Math.min(this.o.maxBackoffMs ?? 10_000, 250 * 2 ** this.attempt++);
    this.reconnectTimer = setTimeout(() => this.running && this.connect(), base / 2 + Math.random() * (base / 2));
  }

  private ping(): void {
    this.request({ t: 'ping' }, 'pong').catch((err: UmbraError) => {
      // A ping that times out means the link is dead even if the socket has not noticed.
      if (err.code === 'timeout') this.socket?.close(CLOSE.goingAway, 'keepalive timed out');
    });
  }

  private onMessage(data: unknown): void {
    let frame: ServerFrame;
    try {
      const parsed = ServerFrame.safeParse(JSON.parse(String(data)));
      if (!parsed.success) throw new Error('schema');
      frame = parsed.data;
    } catch {
      this.malformedFrames++;
      return;
    }
    const id = 'id' in frame ? frame.id : null;
    if (id !== null) {
      const p = this.pending.get(id);
      if (!p) return;
      this.pending.delete(id);
      clearTimeout(p.timer);
      if (frame.t === 'error') p.reject(new UmbraError(frame.error.code, frame.error.message));
      else p.resolve(frame);
      return;
    }
    this.o.onPush(frame);
  }

  private failAll(err: UmbraError): void {
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(err);
      this.pending.delete(id);
    }
  }
}

function sessionEnded(): UmbraError {
  return new UmbraError('unauthorized', 'your session has ended; log in again');
}
