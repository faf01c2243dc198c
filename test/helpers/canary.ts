// The canary search behind the blindness tests: secrets in every encoding a leak could take, looked
// for in labelled haystacks (what a browser page or an SDK client exchanged with the relay, the
// relay's files while it runs and after it closed, and its log output).
import fs from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import type { Platform } from '../../client/sdk/index.ts';
import type { TestRelay } from './relay.ts';
import { SocketTap } from './tamper.ts';

/** Bytes to search, and where they came from (named in a reported leak). */
export interface Haystack {
  where: string;
  bytes: Buffer;
}

/**
 * A secret as bytes in the forms a leak could take: UTF-8, UTF-16, hex, URL-encoded, and base64
 * and base64url at each of the three alignments it could have inside a longer encoded blob.
 */
export function encodings(secret: string): { form: string; bytes: Buffer }[] {
  const utf8 = Buffer.from(secret, 'utf8');
  const forms = [
    { form: 'utf-8', bytes: utf8 },
    { form: 'utf-16le', bytes: Buffer.from(secret, 'utf16le') },
    { form: 'hex', bytes: Buffer.from(utf8.toString('hex')) },
    { form: 'url-encoded', bytes: Buffer.from(encodeURIComponent(secret)) },
  ];
  for (let shift = 0; shift < 3; shift++) {
    const b64 = Buffer.concat([Buffer.alloc(shift), utf8]).toString('base64').replace(/=+$/, '');
    // Keep only the characters fixed by the secret alone (not by the bytes around it).
    const core = b64.slice(shift ? 4 : 0, b64.length - 4);
    forms.push({ form: `base64+${shift}`, bytes: Buffer.from(core) });
    forms.push({ form: `base64url+${shift}`, bytes: Buffer.from(core.replace(/\+/g, '-').replace(/\//g, '_')) });
  }
  return forms;
}

/** Every "name (form) in where" at which one of the named secrets shows up in the haystacks. */
export function leaks(haystacks: Haystack[], secrets: Record<string, string>): string[] {
  const found: string[] = [];
  for (const [name, secret] of Object.entries(secrets)) {
    for (const { form, bytes } of encodings(secret)) {
      for (const h of haystacks) if (h.bytes.includes(bytes)) found.push(`${name} (${form}) in ${h.where}`);
    }
  }
  return found;
}

/**
 * A haystack holding `secret` inside a base64 blob, one byte off alignment: `leaks` must report it
 * as "(base64+1) in a planted leak", or the search could never have found anything.
 */
export function plantedLeak(secret: string): Haystack {
  return { where: 'a planted leak', bytes: Buffer.from(Buffer.from(`{"ke":"${secret}"}`).toString('base64')) };
}

/** Every file below `dir`, labelled "label: relative/path". */
export function filesIn(dir: string, label: string): Haystack[] {
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => {
      const full = path.join(e.parentPath, e.name);
      return { where: `${label}: ${path.relative(dir, full)}`, bytes: fs.readFileSync(full) };
    });
}

export interface RelayRemains {
  /** The data directory (database, WAL and all) as it was while the relay ran. */
  whileRunning: Haystack[];
  /** The same directory once the relay closed (checkpointed). */
  afterStop: Haystack[];
  /** Everything the relay logged. */
  logs: Haystack;
}

/** Reads the relay's data directory, closes the relay (its files stay until `stop()`), and reads it again. */
export async function relayRemains(relay: TestRelay): Promise<RelayRemains> {
  const whileRunning = filesIn(relay.dataDir, 'data dir while running');
  await relay.close();
  const afterStop = filesIn(relay.dataDir, 'data dir after stop');
  return { whileRunning, afterStop, logs: { where: 'relay logs', bytes: Buffer.from(relay.logs.join('')) } };
}

const asBuffer = (p: string | Buffer) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : p);

/**
 * Everything one party exchanged with the relay: the URL of every request, and each HTTP body and
 * WebSocket frame, both ways, as a haystack labelled "<who>'s <what> #<n>". Record a browser page
 * with `WireRecording.ofPage`, or an SDK client by giving it `platform()`.
 */
export class WireRecording {
  /** The URL of every request made, in order. */
  readonly urls: string[] = [];
  /** Every WebSocket frame sent to the relay (an SDK client's: once `done()` resolved). */
  readonly framesSent: Buffer[] = [];
  private readonly wire: Haystack[] = [];
  private readonly pending: Promise<unknown>[] = [];
  private tap: SocketTap | undefined;

  constructor(private readonly who: string) {}

  /** Records what `page` exchanges with the relay at `origin` from now on: start before the page loads. */
  static ofPage(who: string, page: Page, origin: string): WireRecording {
    const rec = new WireRecording(who);
    page.on('request', (req) => {
      rec.urls.push(req.url());
      const body = req.postDataBuffer();
      if (body) rec.add('HTTP request body', body);
    });
    page.on('response', (res) => {
      if (!res.url().startsWith(`${origin}/api/`)) return;
      rec.pending.push(
        res.body().then(
          (b) => rec.add('HTTP response body', b),
          () => undefined, // the page navigated away before the body was read
        ),
      );
    });
    page.on('websocket', (ws) => {
      ws.on('framesent', (f) => rec.sent(asBuffer(f.payload)));
      ws.on('framereceived', (f) => rec.add('WebSocket frame received', asBuffer(f.payload)));
    });
    return rec;
  }

  /** A Node platform for an SDK client, recording its HTTP through `fetch` and its frames through a `SocketTap`. */
  platform(): Platform {
    const tap = (this.tap = new SocketTap());
    tap.inbound = (frame) => {
      this.add('WebSocket frame received', JSON.stringify(frame));
      return undefined;
    };
    const base = tap.platform();
    return {
      ...base,
      fetch: async (input, init) => {
        this.urls.push(String(input));
        if (typeof init?.body === 'string') this.add('HTTP request body', init.body);
        const res = await base.fetch(input, init);
        this.pending.push(res.clone().arrayBuffer().then((b) => this.add('HTTP response body', Buffer.from(b))));
        return res;
      },
    };
  }

  /** How many haystacks recorded so far are labelled with `what` (e.g. "HTTP response body"). */
  count(what: string): number {
    return this.wire.filter((h) => h.where.includes(what)).length;
  }

  /** Waits for the bodies still being read; resolves with every haystack, the request URLs as one. */
  async done(): Promise<Haystack[]> {
    await Promise.all(this.pending);
    // An SDK client's frames: those its tap saw since the last call.
    for (const f of this.tap?.sent.slice(this.framesSent.length) ?? []) this.sent(Buffer.from(JSON.stringify(f), 'utf8'));
    return [...this.wire, { where: `${this.who}'s request URLs`, bytes: Buffer.from(this.urls.join('\n')) }];
  }

  private sent(bytes: Buffer): void {
    this.framesSent.push(bytes);
    this.add('WebSocket frame sent', bytes);
  }

  private add(what: string, bytes: string | Buffer): void {
    this.wire.push({ where: `${this.who}'s ${what} #${this.wire.length}`, bytes: asBuffer(bytes) });
  }
}
