// The browser platform: native fetch and WebSocket (the browser attaches the HttpOnly session
// cookie and Origin), and IndexedDB for keys and pins.
import { clear, createStore, del, get, set, type UseStore } from 'idb-keyval';
import type { KeyValueStore, Platform, SocketLike } from '../sdk/index.ts';

export class IdbStore implements KeyValueStore {
  private readonly db: UseStore;
  constructor(name = 'umbra') {
    this.db = createStore(name, 'kv');
  }
  get<T>(key: string): Promise<T | undefined> {
    return get<T>(key, this.db);
  }
  set(key: string, value: unknown): Promise<void> {
    return set(key, value, this.db);
  }
  delete(key: string): Promise<void> {
    return del(key, this.db);
  }
  clear(): Promise<void> {
    return clear(this.db);
  }
}

export function browserPlatform(): Platform {
  return {
    fetch: window.fetch.bind(window),
    openSocket: (url) => new WebSocket(url) as unknown as SocketLike,
    store: new IdbStore(),
    manageCookies: false,
  };
}
