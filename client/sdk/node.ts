// The Node platform for bots, tests and benchmarks: `ws` sockets (with cookie and Origin headers)
// and an in-memory store.
import WebSocket from 'ws';
import { MemoryStore, type Platform, type SocketLike } from './platform.ts';

export function nodePlatform(): Platform {
  return {
    fetch: globalThis.fetch.bind(globalThis),
    openSocket: (url, headers) => new WebSocket(url, { headers, perMessageDeflate: false }) as unknown as SocketLike,
    store: new MemoryStore(),
    manageCookies: true,
  };
}
