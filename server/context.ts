// What every HTTP handler can reach: the store, config, logger, hub, and request helpers.
import type { HttpBindings } from '@hono/node-server';
import type { Context } from 'hono';
import type { Selectable } from 'kysely';
import type { z } from 'zod';
import { UmbraError, fromB64, type ServerFrame } from '../shared/index.ts';
import { clientAddressOf } from './client-address.ts';
import type { RelayConfig } from './config.ts';
import type { DB } from './db.ts';
import type { Logger } from './log.ts';
import type { RoomStore } from './rooms/store.ts';
import type { RelayStore } from './store.ts';
import type { Throttle } from './throttle.ts';
import type { WriteTurns } from './write-turns.ts';
import type { EnvelopeWriter } from './ws/writer.ts';

export type UserRow = Selectable<DB['users']>;

/** The frames the relay pushes on its own, without a request. */
export type PushFrame = Extract<ServerFrame, { t: 'conv' | 'roster' | 'join-request' | 'join-declined' }>;

/** What the HTTP side asks of the WebSocket side. */
export interface HubPort {
  /** Tells members' live connections that a conversation they belong to now exists. */
  conversationCreated(convId: string, memberIds: number[]): void;
  /** Sends `frame` to these users' live connections (those that have said hello). */
  push(userIds: readonly number[], frame: PushFrame): void;
  /** Closes every connection opened with this session. */
  endSession(sessionHash: Buffer): void;
}

export interface Services {
  store: RelayStore;
  rooms: RoomStore;
  config: RelayConfig;
  /** config.trustedProxies, checked and normalised (server/client-address.ts). */
  trustedProxies: ReadonlySet<string>;
  log: Logger;
  hub: HubPort;
  secret: Buffer;
  /** The writer thread that commits envelopes off the event loop (server/ws/writer.ts), or null to commit on it. */
  writer: EnvelopeWriter | null;
  /** Keeps the WAL under its bound; the delivery path calls it after each commit. */
  walGuard?: () => void;
  /** Turns at the write lock shared with the checkpoint thread, for every write on the event loop (server/write-turns.ts). */
  writeTurns: WriteTurns;
  throttles: {
    /** Failed log-ins for one account from one address. */
    loginAccount: Throttle;
    /** Failed log-ins for one account from anywhere: a wider bound against spread-out guessing. */
    loginAccountAnywhere: Throttle;
    loginAddress: Throttle;
    signupAddress: Throttle;
    /** Requests to join, per room and requester (`<room id>/<user id>`). */
    joinRequest: Throttle;
  };
}

export type AppEnv = {
  Bindings: HttpBindings;
  Variables: { user: UserRow; sessionHash: Buffer };
};

export type Ctx = Context<AppEnv>;

/** Parses a JSON body against its schema; a malformed or invalid body is `bad_request`. */
export async function readBody<S extends z.ZodType>(c: Ctx, schema: S): Promise<z.infer<S>> {
  const type = c.req.header('content-type') ?? '';
  if (!/^application\/json(;|$)/i.test(type)) throw new UmbraError('unsupported_media_type', 'send the body as application/json');
  let raw: unknown;
  try {
    // The text the write-turn middleware read (server/app.ts), cached by Hono: parsing it here
    // waits on nothing, so a handler holding the write lock never waits for I/O.
    raw = JSON.parse(await c.req.text());
  } catch (err) {
    if (err instanceof UmbraError) throw err;
    throw new UmbraError('bad_request', 'body is not valid JSON');
  }
  return parseWith(schema, raw);
}

export function parseWith<S extends z.ZodType>(schema: S, raw: unknown): z.infer<S> {
  const result = schema.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue?.path.length ? issue.path.join('.') : 'body';
    throw new UmbraError('bad_request', `${where}: ${issue?.message ?? 'invalid'}`);
  }
  return result.data;
}

/**
 * Decodes a base64url field the schema admitted. The shared schemas already refuse non-canonical
 * text (RFC 4648 §3.5); this second check keeps a schema slip a `bad_request`, never a 500.
 */
export function decodeB64(text: string, field: string): Uint8Array {
  try {
    return fromB64(text);
  } catch {
    throw new UmbraError('bad_request', `${field}: must be canonical unpadded base64url`);
  }
}

/** Where a request comes from: the TCP peer, or the client a trusted proxy names (server/client-address.ts). */
export function clientAddress(c: Ctx, s: Services): string {
  return clientAddressOf(c.env.incoming.socket.remoteAddress, c.env.incoming.headers['x-forwarded-for'], s.trustedProxies);
}
