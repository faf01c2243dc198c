// The WebSocket side of the relay: authenticated upgrade, per-connection limits, and the frames
// of docs/PROTOCOL.md §Frames. Only ciphertext and routing fields pass through here.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import {
  CLOSE,
  ClientFrame,
  PROTOCOL_VERSION,
  SUPPORTED_SUITES,
  UmbraError,
  missingCase,
  type ErrorCode,
  type ServerFrame,
} from '../../shared/index.ts';
import { clientAddressOf } from '../client-address.ts';
import { decodeB64, type HubPort, type PushFrame, type Services } from '../context.ts';
import { httpStatus } from '../errors.ts';
import { originAllowed } from '../origin.ts';
import { hashSessionToken, sessionTokenFromCookieHeader } from '../sessions.ts';
import { CommitQueue } from './commit-queue.ts';
import { textFrame } from './text-frame.ts';
import { FRAGMENT_GUARD_START, guardChunk, type FragmentState } from './fragment-guard.ts';

const kConn = Symbol('umbra.conn');

/** One live connection: ws's own object (WebSocketServer `WebSocket` option), so no separate record, no per-connection closures. */
export class Conn extends WebSocket implements FragmentState {
  hub!: Hub;
  /** The TCP socket under `ws`, corked while a turn's frames are written (see sendRaw). */
  socket!: Duplex;
  userId = 0;
  username = '';
  /** SHA-256 of the session token, as a latin1 string (32 chars): no Buffer/ArrayBuffer per connection. */
  sessionKey = '';
  address = '';
  tokens = 0;
  refilledAt = 0;
  /** socket.bytesRead when the last ping went out; unchanged at the next round means no pong (nor anything else) arrived. */
  readAtPing = -1;
  ready = false;
  // The fragment guard's state (server/ws/fragment-guard.ts).
  fgHeader = FRAGMENT_GUARD_START.fgHeader;
  fgRemaining = FRAGMENT_GUARD_START.fgRemaining;
  fgFragments = FRAGMENT_GUARD_START.fgFragments;
}

function onConnMessage(this: WebSocket, data: RawData, isBinary: boolean): void {
  (this as Conn).hub.onMessage(this as Conn, data, isBinary);
}
function onConnError(this: WebSocket, err: Error): void {
  (this as Conn).hub.s.log.info({ event: 'ws_error', message: err.message }, 'socket error');
}
function onConnClose(this: WebSocket): void {
  (this as Conn).hub.detach(this as Conn);
}
function onSocketData(this: Duplex & { [kConn]?: Conn }, chunk: Buffer): void {
  const conn = this[kConn];
  if (conn && !guardChunk(conn, chunk, conn.hub.s.config.limits.maxFragments)) conn.close(CLOSE.tooBig, 'too many fragments');
}

export const WS_PATH = '/ws';

/** Connections one turn of a keepalive round looks at. */
const KEEPALIVE_SLICE = 250;

export class Hub implements HubPort {
  private readonly wss: WebSocketServer;
  /** One connection per user is the common case: stored bare, a Set only once a user has two. */
  private readonly byUser = new Map<number, Conn | Set<Conn>>();
  private readonly perAddress = new Map<string, number>();
  /** Connections whose sockets this turn corked, with the bytes written since; uncorked together once the turn's synchronous work is done. */
  private readonly corked = new Map<Conn, number>();
  private readonly pinger: NodeJS.Timeout;
  /** The keepalive round under way, a slice per turn (see keepalive). */
  private keepaliveRound: NodeJS.Immediate | null = null;
  /** Counters the operator can read (docs/PROTOCOL.md §Metrics). */
  readonly stats = { framesIn: 0, envelopesStored: 0, rejected: 0, slowReadersDropped: 0 };
  /** Envelopes waiting for the group commit of this event-loop turn. */
  readonly commits: CommitQueue;

  constructor(readonly s: Services) {
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: s.config.limits.maxFrameBytes,
      perMessageDeflate: false,
      clientTracking: false,
      WebSocket: Conn,
    });
    this.commits = new CommitQueue(
      {
        commit: (batch) => s.store.appendEnvelopes(batch, { deferSync: true }),
        offLoop: s.writer && {
          get alive() {
            return s.writer!.alive;
          },
          commit: (batch, done) => {
            s.store.capInFlight(batch);
            s.writer!.commit(batch, s.config.now(), done);
          },
          landed: (batch, outcomes) => {
            if (outcomes) s.store.holdUnreleased(batch, outcomes);
            s.store.uncapInFlight(batch, outcomes);
          },
        },
        sync: (done) => s.store.db.syncWal(done),
        release: (items) => s.store.release(items),
      },
      s.config.limits.maxCommitBatch,
      s.config.limits.maxUnsyncedPushes,
      (err, size) => s.log.error({ event: 'commit_failed', message: err.message, envelopes: size }, 'a group commit or its WAL sync failed; its senders were told to retry'),
      () => s.walGuard?.(),
      s.writeTurns,
    );
    this.pinger = setInterval(() => this.keepalive(), s.config.limits.pingIntervalMs);
    this.pinger.unref();
  }

  /** Handles an HTTP upgrade: Origin, then session, then limits. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://relay');
    if (url.pathname !== WS_PATH) return reject(socket, 'not_found', 'no WebSocket endpoint here');
    if (req.rawHeaders.length / 2 > this.s.config.limits.maxHeaders) return reject(socket, 'bad_request', 'too many headers', 431);
    if (!originAllowed(req.headers.origin, req.headers.host, this.s.config.allowedOrigins)) {
      this.s.log.info({ event: 'ws_rejected', reason: 'origin' }, 'upgrade refused');
      return reject(socket, 'bad_origin', 'WebSocket connections must come from the Umbra page itself');
    }
    const token = sessionTokenFromCookieHeader(req.headers.cookie);
    const sessionHash = token ? hashSessionToken(token) : undefined;
    const user = sessionHash ? this.s.store.sessionIdentity(sessionHash) : undefined;
    if (!user || !sessionHash) {
      this.s.log.info({ event: 'ws_rejected', reason: 'session' }, 'upgrade refused');
      return reject(socket, 'unauthorized', 'log in first');
    }
    const address = clientAddressOf(req.socket.remoteAddress, req.headers['x-forwarded-for'], this.s.trustedProxies);
    const userId = user.id;
    const username = user.username;
    // accept() holds only what a connection keeps; closures made here would keep this whole
    // scope (the request and its headers) alive as long as the socket.
    const sessionKey = sessionHash.toString('latin1');
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws as Conn, socket, userId, username, sessionKey, address));
  }

  private accept(conn: Conn, socket: Duplex, userId: number, username: string, sessionKey: string, address: string): void {
    conn.hub = this;
    (socket as Duplex & { [kConn]?: Conn })[kConn] = conn;
    socket.prependListener('data', onSocketData);
    const open = this.perAddress.get(address) ?? 0;
    if (open >= this.s.config.limits.maxConnectionsPerAddress) {
      conn.close(CLOSE.policy, 'too many connections from this address');
      return;
    }
    this.perAddress.set(address, open + 1);
    conn.socket = socket;
    conn.userId = userId;
    conn.username = username;
    conn.sessionKey = sessionKey;
    conn.address = address;
    conn.tokens = this.s.config.limits.frameBurst;
    conn.refilledAt = Date.now();
    const prev = this.byUser.get(userId);
    if (prev === undefined) this.byUser.set(userId, conn);
    else if (prev instanceof Set) prev.add(conn);
    else this.byUser.set(userId, new Set([prev, conn]));
    conn.on('message', onConnMessage);
    conn.on('error', onConnError);
    conn.on('close', onConnClose);
    this.s.log.info({ event: 'ws_open' }, 'connection opened');
  }

  /** Every live connection (for broadcast-free walks: keepalive, endSession, close). */
  private *conns(): IterableIterator<Conn> {
    for (const v of this.byUser.values()) {
      if (v instanceof Set) yield* v;
      else yield v;
    }
  }

  detach(conn: Conn): void {
    const v = this.byUser.get(conn.userId);
    if (v === conn) this.byUser.delete(conn.userId);
    else if (v instanceof Set) {
      v.delete(conn);
      if (v.size === 1) this.byUser.set(conn.userId, v.values().next().value!);
    }
    const n = (this.perAddress.get(conn.address) ?? 1) - 1;
    if (n <= 0) this.perAddress.delete(conn.address);
    else this.perAddress.set(conn.address, n);
  }

  onMessage(conn: Conn, data: RawData, isBinary: boolean): void {
    this.stats.framesIn++;
    if (!this.takeToken(conn)) {
      this.s.log.info({ event: 'ws_rate_limited' }, 'connection over its frame rate');
      conn.close(CLOSE.policy, 'too many frames; slow down');
      return;
    }
    if (isBinary) {
      this.stats.rejected++;
      conn.close(CLOSE.unsupportedData, 'binary frames are not part of the protocol');
      return;
    }
    let raw: unknown;
    try {
      raw = JSON.parse(data.toString());
    } catch {
      this.stats.rejected++;
      return this.sendError(conn, null, 'bad_request', 'frame is not valid JSON');
    }
    const parsed = ClientFrame.safeParse(raw);
    if (!parsed.success) {
      this.stats.rejected++;
      // Echo the id only if it is a valid request id, so the error frame itself stays valid.
      const rawId = (raw as { id?: unknown } | null)?.id;
      const id = typeof rawId === 'number' && Number.isInteger(rawId) && rawId >= 1 && rawId <= 2 ** 31 ? rawId : null;
      const issue = parsed.error.issues[0];
      return this.sendError(conn, id, 'bad_request', `${issue?.path.join('.') || 'frame'}: ${issue?.message ?? 'invalid'}`);
    }
    try {
      this.handle(conn, parsed.data);
    } catch (err) {
      this.stats.rejected++;
      if (err instanceof UmbraError) return this.sendError(conn, parsed.data.id, err.code, err.message);
      this.s.log.error({ event: 'ws_unhandled', message: (err as Error).message }, 'frame failed');
      this.sendError(conn, parsed.data.id, 'internal', 'the relay hit an internal error');
    }
  }

  private handle(conn: Conn, frame: ClientFrame): void {
    switch (frame.t) {
      case 'hello': {
        conn.ready = true;
        this.send(conn, { t: 'hello', id: frame.id, username: conn.username, convs: this.s.store.conversationIdsOf(conn.userId) });
        return;
      }
      case 'send': {
        const env = frame.env;
        this.requireMember(env.conv, conn.userId);
        if (env.sender !== conn.username) throw new UmbraError('forbidden', 'env.sender must be you');
        if (env.v !== PROTOCOL_VERSION) throw new UmbraError('bad_request', `env.v: unsupported version ${env.v}`);
        if (!SUPPORTED_SUITES.includes(env.suite)) throw new UmbraError('bad_request', `env.suite: unsupported suite ${env.suite}`);
        if (env.expiresAt !== null && env.expiresAt <= this.s.config.now()) {
          throw new UmbraError('bad_request', 'env.expiresAt: already in the past');
        }
        if (env.burnAfterMs !== null && env.expiresAt === null) {
          throw new UmbraError('bad_request', 'env.burnAfterMs: a burn-after-reading message needs an expiry for when nobody opens it');
        }
        const ct = decodeB64(env.ct, 'env.ct');
        const sig = decodeB64(env.sig, 'env.sig');
        const rosterHash = decodeB64(env.rosterHash, 'env.rosterHash');
        const id = frame.id;
        // Pushed once the transaction holding it committed, acknowledged once it is on disk too.
        this.commits.enqueue(
          { env, senderId: conn.userId, ct, sig, rosterHash, opens: frame.opens ?? [] },
          {
            stored: (result) => {
              this.stats.envelopesStored++;
              const push = JSON.stringify({ t: 'env', conv: env.conv, item: { seq: result.seq, receivedAt: result.receivedAt, expiresAt: env.expiresAt, env } } satisfies ServerFrame);
              this.broadcast(this.s.store.memberIds(env.conv), textFrame(push));
            },
            done: (result) => {
              if (result instanceof UmbraError) {
                this.stats.rejected++;
                return this.sendError(conn, id, result.code, result.message);
              }
              this.send(conn, { t: 'ack', id, conv: env.conv, seq: result.seq, clientMsgId: env.clientMsgId, receivedAt: result.receivedAt });
            },
          },
        );
        return;
      }
      case 'sync': {
        this.requireMember(frame.conv, conn.userId);
        const page = this.s.store.envelopesAfter(frame.conv, frame.after, frame.limit);
        this.send(conn, { t: 'batch', id: frame.id, conv: frame.conv, envelopes: page.items, more: page.more });
        return;
      }
      case 'ping':
        this.send(conn, { t: 'pong', id: frame.id });
        return;
      default:
        missingCase(frame);
    }
  }

  private requireMember(convId: string, userId: number): void {
    const state = this.s.store.membership(convId, userId);
    if (state === 'no_conversation') throw new UmbraError('not_found', 'no such conversation');
    if (state === 'not_member') throw new UmbraError('forbidden', 'you are not a member of this conversation');
  }

  conversationCreated(convId: string, memberIds: number[]): void {
    this.broadcast(memberIds, textFrame(JSON.stringify({ t: 'conv', conv: convId } satisfies ServerFrame)));
  }

  push(userIds: readonly number[], frame: PushFrame): void {
    this.broadcast(userIds, textFrame(JSON.stringify(frame satisfies ServerFrame)));
  }

  endSession(sessionHash: Buffer): void {
    const key = sessionHash.toString('latin1');
    for (const conn of this.conns()) if (conn.sessionKey === key) conn.close(CLOSE.sessionEnded, 'logged out');
  }

  /** Live connection count, for the operator and tests. */
  connectionCount(): number {
    let n = 0;
    for (const v of this.byUser.values()) n += v instanceof Set ? v.size : 1;
    return n;
  }

  /** Writes one framed message to every ready connection of these users. */
  private broadcast(userIds: readonly number[], frame: Buffer): void {
    for (const id of userIds) {
      const v = this.byUser.get(id);
      if (!v) continue;
      if (v instanceof Set) {
        for (const conn of v) if (conn.ready) this.sendRaw(conn, frame);
      } else if (v.ready) this.sendRaw(v, frame);
    }
  }

  private send(conn: Conn, frame: ServerFrame): void {
    this.sendRaw(conn, textFrame(JSON.stringify(frame)));
  }

  /**
   * Writes a framed message (text-frame.ts) straight to the connection's socket. `ws` itself only
   * ever writes synchronously here (no compression, no Blob data), so frames keep their order
   * with its pings and close frames, and `bufferedAmount` counts what is written this way.
   */
  private sendRaw(conn: Conn, frame: Buffer): void {
    if (conn.readyState !== WebSocket.OPEN) return;
    const max = this.s.config.limits.maxBufferedBytes;
    // What this turn corked is not the reader's fault; what is left from earlier turns is.
    const corkedNow = this.corked.get(conn) ?? 0;
    if (conn.bufferedAmount - corkedNow > max) {
      this.stats.slowReadersDropped++;
      this.s.log.warn({ event: 'ws_slow_reader' }, 'dropping a connection that does not read');
      conn.terminate();
      return;
    }
    // A group commit pushes many frames to the same socket in one turn: corking until the turn
    // ends writes them with one system call instead of one each. Past `max` bytes in one turn,
    // the socket is written at once so a turn never holds more than that per reader.
    if (corkedNow === 0) {
      if (this.corked.size === 0) process.nextTick(() => this.uncorkAll());
      conn.socket.cork();
    }
    conn.socket.write(frame);
    const total = corkedNow + frame.length;
    if (total > max) {
      this.corked.delete(conn);
      conn.socket.uncork();
    } else this.corked.set(conn, total);
  }

  private uncorkAll(): void {
    const conns = [...this.corked.keys()];
    this.corked.clear();
    for (const conn of conns) {
      try {
        conn.socket.uncork();
      } catch (err) {
        this.s.log.info({ event: 'ws_error', message: (err as Error).message }, 'socket error');
      }
    }
  }

  private sendError(conn: Conn, id: number | null, code: ErrorCode, message: string): void {
    this.send(conn, { t: 'error', id, error: { code, message } });
  }

  private takeToken(conn: Conn): boolean {
    const now = Date.now();
    const { frameRate, frameBurst } = this.s.config.limits;
    conn.tokens = Math.min(frameBurst, conn.tokens + ((now - conn.refilledAt) / 1000) * frameRate);
    conn.refilledAt = now;
    if (conn.tokens < 1) return false;
    conn.tokens -= 1;
    return true;
  }

  /** Every ping interval: drop links that stopped answering, and close those whose session ended. */
  private keepalive(): void {
    if (this.keepaliveRound) return; // the last round is still going (thousands of connections)
    const conns = [...this.conns()];
    let next = 0;
    // A few hundred connections per turn, so a round over many thousands never holds the event loop.
    const slice = (): void => {
      const end = Math.min(conns.length, next + KEEPALIVE_SLICE);
      for (; next < end; next++) {
        const conn = conns[next]!;
        if (conn.readyState !== WebSocket.OPEN) continue;
        const read = (conn.socket as Duplex & { bytesRead: number }).bytesRead;
        if (read === conn.readAtPing) {
          conn.terminate();
          continue;
        }
        if (!this.s.store.sessionAlive(Buffer.from(conn.sessionKey, 'latin1'))) {
          conn.close(CLOSE.unauthorized, 'your session has ended');
          continue;
        }
        conn.readAtPing = read;
        conn.ping();
      }
      this.keepaliveRound = next < conns.length ? setImmediate(slice) : null;
    };
    slice();
  }

  /** Stores what is queued (waiting for the writer thread's batch), then closes every connection. */
  async close(): Promise<void> {
    clearInterval(this.pinger);
    if (this.keepaliveRound) clearImmediate(this.keepaliveRound);
    this.keepaliveRound = null;
    await this.commits.drain();
    for (const conn of [...this.conns()]) conn.close(CLOSE.goingAway, 'relay shutting down');
    this.wss.close();
  }
}

function reject(socket: Duplex, code: ErrorCode, message: string, status: number = httpStatus(code)): void {
  const body = JSON.stringify({ error: { code, message } });
  socket.end(
    `HTTP/1.1 ${status} ${status === 401 ? 'Unauthorized' : status === 403 ? 'Forbidden' : status === 404 ? 'Not Found' : 'Bad Request'}\r\n` +
      'Content-Type: application/json\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      'Connection: close\r\n\r\n' +
      body,
  );
}
