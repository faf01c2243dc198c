// HTTP calls to the relay: typed errors, validated responses, and (in Node) the session cookie.
import type { z } from 'zod';
import { ErrorBodySchema, UmbraError } from '../../shared/index.ts';
import type { Platform } from './platform.ts';

const COOKIE_NAME = 'umbra_session';

export class HttpApi {
  private cookie: string | undefined;

  constructor(
    readonly baseUrl: string,
    private readonly platform: Platform,
    private readonly timeoutMs = 20_000,
  ) {}

  get origin(): string {
    return new URL(this.baseUrl).origin;
  }

  /** Cookie header value for the WebSocket upgrade (Node only). */
  cookieHeader(): string | undefined {
    return this.cookie ? `${COOKIE_NAME}=${this.cookie}` : undefined;
  }

  forgetSession(): void {
    this.cookie = undefined;
  }

  get<S extends z.ZodType>(path: string, schema: S): Promise<z.infer<S>> {
    return this.call('GET', path, undefined, schema);
  }

  post<S extends z.ZodType>(path: string, body: unknown, schema: S): Promise<z.infer<S>> {
    return this.call('POST', path, body, schema);
  }

  put<S extends z.ZodType>(path: string, body: unknown, schema: S): Promise<z.infer<S>> {
    return this.call('PUT', path, body, schema);
  }

  private async call<S extends z.ZodType>(method: string, path: string, body: unknown, schema: S): Promise<z.infer<S>> {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.platform.manageCookies) {
      headers.origin = this.origin;
      if (this.cookie) headers.cookie = `${COOKIE_NAME}=${this.cookie}`;
    }
    let res: Response;
    try {
      res = await this.platform.fetch(new URL(path, this.baseUrl), {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: 'same-origin',
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      if ((err as Error).name === 'TimeoutError') throw new UmbraError('timeout', 'the relay did not answer in time');
      throw new UmbraError('disconnected', 'cannot reach the relay');
    }
    if (this.platform.manageCookies) this.captureCookie(res);
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      throw new UmbraError('internal', `the relay answered ${res.status} with something that is not JSON`);
    }
    if (!res.ok) {
      const parsed = ErrorBodySchema.safeParse(json);
      const retry = Number(res.headers.get('retry-after') ?? '') || undefined;
      if (parsed.success) throw new UmbraError(parsed.data.error.code, parsed.data.error.message, retry);
      throw new UmbraError('internal', `the relay answered ${res.status}`);
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) throw new UmbraError('verification_failed', `the relay's answer to ${method} ${path} is malformed`);
    return parsed.data;
  }

  private captureCookie(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair?.indexOf('=') ?? -1;
      if (!pair || eq < 0 || pair.slice(0, eq).trim() !== COOKIE_NAME) continue;
      const value = pair.slice(eq + 1).trim();
      this.cookie = value && !/max-age=0/i.test(line) ? value : undefined;
    }
  }
}
