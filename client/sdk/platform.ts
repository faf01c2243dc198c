// What the SDK needs from its host (browser or Node): fetch, sockets, storage.

/** The subset of the browser WebSocket API the SDK uses; `ws` in Node offers the same. */
export interface SocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

/** Key-value storage for keys and pins: IndexedDB in the browser, memory or a file in Node. */
export interface KeyValueStore {
  get<T>(key: string): Promise<T | undefined>;
  set(key: string, value: unknown): Promise<void>;
  delete(key: string): Promise<void>;
  clear(): Promise<void>;
}

export interface Platform {
  fetch: typeof fetch;
  /** Opens a WebSocket; `headers` is used only where the host lets the SDK set them (Node). */
  openSocket(url: string, headers: Record<string, string>): SocketLike;
  store: KeyValueStore;
  /**
   * True in Node: the SDK keeps the session cookie itself and sends Origin. In a browser the
   * cookie is HttpOnly and the browser attaches it and the Origin.
   */
  manageCookies: boolean;
}

export class MemoryStore implements KeyValueStore {
  private readonly map = new Map<string, unknown>();
  async get<T>(key: string): Promise<T | undefined> {
    return this.map.get(key) as T | undefined;
  }
  async set(key: string, value: unknown): Promise<void> {
    this.map.set(key, structuredClone(value));
  }
  async delete(key: string): Promise<void> {
    this.map.delete(key);
  }
  async clear(): Promise<void> {
    this.map.clear();
  }
}
