// An Umbra bot for Node: signs up (or logs in), starts a private conversation with one person,
// greets them, and echoes back every text they send. Documented in docs/SDK.md.
import crypto from 'node:crypto';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { UmbraClient, UmbraError, type ChatMessage } from '../../client/sdk/index.ts';
import { nodePlatform } from '../../client/sdk/node.ts';

export interface EchoBotOptions {
  /** The relay's base URL, as `npm start` prints it. */
  baseUrl: string;
  /** The bot's username; it signs up, or logs in if the name is already its own. */
  username: string;
  password: string;
  /** Who to talk to; must already have an account. */
  peer: string;
  greeting?: string;
  /** Stop after echoing this many messages; 0 runs until `signal` aborts. */
  count?: number;
  /** Aborting stops the bot cleanly (the command line wires SIGINT to it). */
  signal?: AbortSignal;
  log?: (line: string) => void;
}

export interface EchoBotResult {
  conversationId: string;
  echoed: number;
}

/** Runs the bot until it has echoed `count` messages or `signal` aborts; then logs out. */
export async function main(o: EchoBotOptions): Promise<EchoBotResult> {
  const log = o.log ?? ((line: string) => console.log(line));
  const count = o.count ?? 0;
  const client = new UmbraClient({ baseUrl: o.baseUrl, platform: nodePlatform() });

  try {
    await client.signUp(o.username, o.password);
    log(`signed up as ${o.username}`);
  } catch (err) {
    if (!(err instanceof UmbraError && err.code === 'username_taken')) throw err;
    await client.logIn(o.username, o.password);
    log(`logged in as ${o.username}`);
  }

  let echoed = 0;
  try {
    const conv = await client.startConversation(o.peer);
    log(`conversation ${conv.id} with ${o.peer}`);
    if (conv.problem.value) throw new UmbraError('verification_failed', conv.problem.value);

    // Messages already in the history are not echoed again; only what arrives from now on.
    const handled = new Set(conv.messages.value.map((m) => `${m.sender}/${m.clientMsgId}`));
    let queue: Promise<unknown> = Promise.resolve();
    let finish!: () => void;
    const finished = new Promise<void>((resolve) => (finish = resolve));
    if (o.signal?.aborted) finish();
    o.signal?.addEventListener('abort', () => finish(), { once: true });

    const onMessages = (messages: ChatMessage[]): void => {
      for (const m of messages) {
        const id = `${m.sender}/${m.clientMsgId}`;
        if (m.mine || handled.has(id) || m.event.kind !== 'text') continue;
        handled.add(id);
        const body = m.event.body;
        log(`${m.sender}: ${body}`);
        // One echo at a time, in the order the messages arrived.
        queue = queue
          .then(() => client.sendText(conv.id, `echo: ${body}`))
          .then(() => {
            echoed++;
            if (count > 0 && echoed >= count) finish();
          })
          .catch((err: unknown) => log(`could not echo: ${(err as Error).message}`));
      }
    };

    const unsubscribe = conv.messages.subscribe(onMessages);
    try {
      await client.sendText(conv.id, o.greeting ?? `Hello ${o.peer}, I am an echo bot.`);
      await finished;
      await queue;
    } finally {
      unsubscribe();
    }
    return { conversationId: conv.id, echoed };
  } finally {
    await client.logOut().catch(() => client.disconnect());
  }
}

// Command line, once compiled (docs/SDK.md): node dist/examples/docs/examples/echo-bot.js <peer>
const runDirectly = process.argv[1] !== undefined && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href;
if (runDirectly) {
  const env = process.env;
  const peer = process.argv[2] ?? env.UMBRA_PEER;
  if (!peer) {
    console.error('usage: echo-bot <peer-username>   (or set UMBRA_PEER)');
    process.exit(2);
  }
  const stop = new AbortController();
  process.once('SIGINT', () => stop.abort());
  main({
    baseUrl: env.UMBRA_URL ?? 'http://127.0.0.1:8080',
    username: env.UMBRA_BOT_USERNAME ?? `echobot-${crypto.randomBytes(4).toString('hex')}`,
    password: env.UMBRA_BOT_PASSWORD ?? crypto.randomBytes(18).toString('base64url'),
    peer,
    count: Number(env.UMBRA_COUNT ?? '0'),
    signal: stop.signal,
  }).then(
    (r) => {
      console.log(`echoed ${r.echoed} message(s); bye`);
      process.exit(0);
    },
    (err: unknown) => {
      console.error(err instanceof UmbraError ? `${err.code}: ${err.message}` : err);
      process.exit(1);
    },
  );
}
