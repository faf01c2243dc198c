// F-history: a relay holding a long conversation. Seeds a SQLite file with one direct
// conversation of many envelopes, starts the real relay on loopback, and times what a client
// waits for: the newest page over HTTP, and a resume after 10,000 missed messages over the WebSocket.
import { randomBytes as nodeRandomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import WebSocket from 'ws';
import { defaultConfig } from '../../server/config.ts';
import { DB_FILE, openDb } from '../../server/db.ts';
import { startRelay, type RunningRelay } from '../../server/relay.ts';
import { defaultSecretFile, loadRelaySecret } from '../../server/secrets.ts';
import { SESSION_COOKIE, newSessionToken } from '../../server/sessions.ts';
import { RelayStore } from '../../server/store.ts';
import {
  HistoryResponse,
  KDF_DEFAULT,
  LIMITS,
  PROTOCOL_VERSION,
  SUITE_XCHACHA20_ED25519,
  ServerFrame,
  VerifiedEnvelopes,
  createBatchVerifier,
  decodeEvent,
  encodeEvent,
  generateIdentity,
  initCrypto,
  openEnvelope,
  publicKeysOf,
  randomBytes,
  randomKey,
  randomSalt,
  rosterHash,
  sealEnvelope,
  signGenesis,
  toB64,
  unwrapConversationKey,
  wrapConversationKey,
  type GenesisStatement,
  type IdentityKeys,
  type SealedEnvelope,
  type StoredEnvelope,
} from '../../shared/index.ts';
import { fromWire } from '../../client/sdk/timeline.ts';
import { benchTmp } from '../lib/seed.ts';
import type { ScenarioOptions, ScenarioResult } from '../lib/scenario.ts';
import { median, round3 } from '../lib/stats.ts';

/** Missed messages a resuming client fetches. */
const MISSED = 10_000;
/** Rows per seeding transaction. */
const SEED_TX_ROWS = 50_000;

interface Member {
  id: number;
  username: string;
  keys: IdentityKeys;
}

export async function runHistory(opts: ScenarioOptions): Promise<ScenarioResult> {
  const { quick, log } = opts;
  await initCrypto();
  const rows = quick ? 20_000 : 1_000_000;
  const reps = quick ? 1 : 5;
  const warmRequests = quick ? 10 : 30;
  const figures: ScenarioResult['figures'] = { envelopes: rows, repetitions: reps };
  const dataDir = fs.mkdtempSync(path.join(benchTmp(), 'history-'));
  let relay: RunningRelay | null = null;
  try {
    const seeded = await seed(dataDir, rows, log);
    Object.assign(figures, seeded.figures);

    await warmUpFetch();
    const t0 = performance.now();
    relay = await startRelay(defaultConfig({ dataDir, port: 0, webDir: null, logLevel: 'warn' }));
    figures.relay_start_ms = round3(performance.now() - t0);
    const origin = new URL(relay.url).origin;
    const headers = { cookie: `${SESSION_COOKIE}=${seeded.token}`, origin };
    const pageUrl = `${relay.url}/api/conversations/${seeded.conv}/envelopes?limit=100`;

    // ---- the newest page: cold (first request after start), then warm -------------------
    const cold = await firstPage(pageUrl, headers, seeded.lastSeq);
    figures.first_page_cold_ms = round3(cold.schemaMs);
    figures.first_page_cold_json_ms = round3(cold.jsonMs);
    figures.first_page_bytes = cold.bytes;
    const warm: { jsonMs: number; schemaMs: number }[] = [];
    for (let i = 0; i < warmRequests; i++) warm.push(await firstPage(pageUrl, headers, seeded.lastSeq));
    const firstPageMs = round3(median(warm.map((w) => w.schemaMs)));
    figures.first_page_warm_ms = firstPageMs;
    figures.first_page_warm_json_ms = round3(median(warm.map((w) => w.jsonMs)));
    figures.first_page_warm_requests = warmRequests;
    log(
      `first page of 100: cold ${figures.first_page_cold_ms} ms, warm ${firstPageMs} ms (median of ${warmRequests}; ` +
        `${figures.first_page_warm_json_ms} ms without the SDK's schema check), ${cold.bytes} bytes`,
    );

    // ---- resume after MISSED messages over the WebSocket --------------------------------
    const wsUrl = relay.url.replace(/^http/, 'ws') + '/ws';
    const after = seeded.lastSeq - MISSED;
    const convKey = unwrapConversationKey(seeded.readerKey, seeded.reader.keys.agreement.secretKey, seeded.writer.keys.signing.publicKey);
    const senderKeys = new Map([seeded.writer, seeded.reader].map((m) => [m.username, m.keys.signing.publicKey]));
    // As the timeline reads a fetched page: every signature checked at once (the platform's
    // Ed25519, VerifiedEnvelopes), then each envelope opened and decoded in order.
    const verifier = await createBatchVerifier();
    const openPage = async (items: StoredEnvelope[]) => {
      const verified = new VerifiedEnvelopes(verifier);
      const envs = items.map((item) => fromWire(item.env));
      await verified.check(envs.map((env) => ({ env, senderIdentityKey: senderKeys.get(env.sender)! })));
      for (const env of envs) decodeEvent(openEnvelope(env, convKey, senderKeys.get(env.sender)!, verified));
    };
    // Each envelope on its own with libsodium, as before pages were checked at once.
    const openOneByOne = async (items: StoredEnvelope[]) => {
      for (const item of items) {
        const env = fromWire(item.env);
        decodeEvent(openEnvelope(env, convKey, senderKeys.get(env.sender)!));
      }
    };
    const variants = {
      sdk: { limit: LIMITS.maxPage, schema: true, open: null },
      json_only: { limit: LIMITS.maxPage, schema: false, open: null },
      limit100: { limit: 100, schema: true, open: null },
      e2e: { limit: LIMITS.maxPage, schema: true, open: openPage },
      e2e_one_by_one: { limit: LIMITS.maxPage, schema: true, open: openOneByOne },
    } satisfies Record<string, ResumeOptions>;
    const runs = new Map<keyof typeof variants, ResumeTiming[]>();
    for (let r = -1; r < reps; r++) {
      // Round -1 warms the paths up and is not counted; verify+decrypt needs no warming over 10,000 envelopes.
      for (const [name, v] of Object.entries(variants) as [keyof typeof variants, ResumeOptions][]) {
        if (r < 0 && v.open) continue;
        const timing = await resume(wsUrl, headers, seeded.conv, after, seeded.lastSeq, v);
        if (r >= 0) runs.set(name, [...(runs.get(name) ?? []), timing]);
      }
    }
    const med = (name: keyof typeof variants, pick: (t: ResumeTiming) => number) => round3(median(runs.get(name)!.map(pick)));
    const resumeMs = med('sdk', (t) => t.syncMs);
    figures.resume_10000_ms = resumeMs;
    figures.resume_10000_with_connect_ms = med('sdk', (t) => t.connectMs + t.syncMs);
    figures.resume_connect_hello_ms = med('sdk', (t) => t.connectMs);
    figures.resume_10000_frames = runs.get('sdk')![0]!.frames;
    figures.resume_10000_bytes = runs.get('sdk')![0]!.bytes;
    figures.resume_10000_json_only_ms = med('json_only', (t) => t.syncMs);
    figures.resume_10000_limit100_ms = med('limit100', (t) => t.syncMs);
    const e2eMs = med('e2e', (t) => t.syncMs);
    figures.resume_10000_e2e_ms = e2eMs;
    figures.resume_10000_e2e_per_envelope_us = round3((e2eMs * 1000) / MISSED);
    figures.resume_10000_e2e_one_by_one_ms = med('e2e_one_by_one', (t) => t.syncMs);
    log(
      `resume after ${MISSED}: ${resumeMs} ms in ${figures.resume_10000_frames} pages of ${LIMITS.maxPage} ` +
        `(${figures.resume_10000_with_connect_ms} ms with connect and hello; ${figures.resume_10000_json_only_ms} ms without the schema check; ` +
        `${figures.resume_10000_limit100_ms} ms in pages of 100 as catchUp asks), ` +
        `${figures.resume_10000_e2e_ms} ms with verify+decrypt of every envelope, each page's signatures checked at once ` +
        `(${figures.resume_10000_e2e_one_by_one_ms} ms one by one with libsodium)`,
    );
    return { figures, summary: { f_history_first_page_ms: firstPageMs, f_resume_10000_ms: resumeMs } };
  } finally {
    // The relay's shutdown waits on an unref'd checkpoint thread and timer; hold the event loop
    // open meanwhile, or a process with nothing else pending exits before close() resolves.
    const hold = setInterval(() => {}, 1000);
    try {
      await relay?.close();
    } finally {
      clearInterval(hold);
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  }
}

// ---- seeding ----------------------------------------------------------------------------

interface Seeded {
  conv: string;
  lastSeq: number;
  token: string;
  writer: Member;
  reader: Member;
  /** The conversation key as wrapped for the reader. */
  readerKey: ReturnType<typeof wrapConversationKey>;
  figures: ScenarioResult['figures'];
}

/**
 * Two accounts, the reader's session, their direct conversation (signed genesis, a real key
 * wrapped for both), then `rows` envelopes from both in turn. The last MISSED are real sealed
 * messages; the rest carry random ciphertext and signatures of the same sizes, which the relay
 * cannot tell apart.
 */
async function seed(dataDir: string, rows: number, log: (line: string) => void): Promise<Seeded> {
  const db = await openDb(dataDir);
  try {
    loadRelaySecret(defaultSecretFile(dataDir), false);
    const store = new RelayStore(db, Date.now);
    const member = (username: string): Member => {
      const keys = generateIdentity();
      const pub = publicKeysOf(keys, username);
      const id = store.createUser({
        username,
        salt: randomSalt(),
        kdfOps: KDF_DEFAULT.ops,
        kdfMemKiB: KDF_DEFAULT.memKiB,
        authHash: randomBytes(32),
        identityKey: pub.identityKey,
        x25519Key: pub.x25519Key,
        x25519Sig: pub.x25519Sig,
        vault: randomBytes(330),
      });
      return { id, username, keys };
    };
    const writer = member('alice');
    const reader = member('bob');
    const token = newSessionToken();
    store.createSession(token.hash, reader.id, 24 * 3600 * 1000);

    // As client/sdk/conversations.ts starts a direct conversation.
    const conv = toB64(randomBytes(16));
    const members = [writer, reader];
    const genesis: GenesisStatement = {
      v: 1,
      kind: 'genesis',
      conv,
      convKind: 'direct',
      createdBy: writer.username,
      createdAt: Date.now(),
      members: members.map((m) => ({ username: m.username, identityKey: toB64(m.keys.signing.publicKey) })),
    };
    const signed = signGenesis(genesis, writer.keys.signing.secretKey);
    const key = randomKey();
    const wrapped = members.map((m) =>
      wrapConversationKey(key, m.keys.agreement.publicKey, { conv, epoch: 0, recipient: m.username, wrappedBy: writer.username }, writer.keys.signing.secretKey),
    );
    store.createConversation({
      id: conv,
      kind: 'direct',
      directKey: members.map((m) => m.username).sort().join('\n'),
      createdBy: writer.id,
      memberIds: members.map((m) => m.id),
      genesis: signed.statement,
      genesisSig: signed.sig,
      keys: wrapped.map((w, i) => ({ epoch: 0, recipientId: members[i]!.id, wrappedById: writer.id, wrapped: w.wrapped, sig: w.sig })),
    });
    const roster = rosterHash(conv, members.map((m) => ({ username: m.username, identityKey: m.keys.signing.publicKey })));

    // Senders alternate: odd sequence numbers are the writer's, even the reader's.
    const senderOf = (seq: number) => members[(seq - 1) % 2]!;
    const counterOf = (seq: number) => Math.ceil(seq / 2);
    const realFrom = Math.max(1, rows - MISSED + 1);
    const tSeal = performance.now();
    const real = new Map<number, SealedEnvelope>();
    for (let seq = realFrom; seq <= rows; seq++) {
      const sender = senderOf(seq);
      const event = { kind: 'text' as const, body: messageText(seq) };
      const header = {
        v: PROTOCOL_VERSION,
        suite: SUITE_XCHACHA20_ED25519,
        type: 'content' as const,
        conv,
        epoch: 0,
        sender: sender.username,
        rosterHash: roster,
        clientMsgId: toB64(nodeRandomBytes(16)),
        counter: counterOf(seq),
        expiresAt: null,
        burnAfterMs: null,
      };
      real.set(seq, sealEnvelope(header, encodeEvent(event), key, sender.keys.signing.secretKey));
    }
    const sealMs = performance.now() - tSeal;
    const realCt = [...real.values()].map((e) => e.ct.length);
    log(`seed: sealed ${real.size} real envelopes in ${round3(sealMs)} ms (ciphertext ${Math.min(...realCt)}–${Math.max(...realCt)} bytes)`);

    const insert = db.sqlite.prepare(
      `insert into envelopes (conv_id, seq, sender_id, client_msg_id, v, suite, type, epoch, counter, roster_hash,
         expires_at, env_expires_at, burn_after_ms, opened_at, received_at, ct, sig)
       values (?, ?, ?, ?, ?, ?, 'content', 0, ?, ?, null, null, null, null, ?, ?, ?)`,
    );
    const rosterBuf = Buffer.from(roster);
    const firstReceived = Date.now() - rows * 1000;
    const insertRange = db.sqlite.transaction((from: number, to: number) => {
      // Random filler: ciphertexts of 120–280 bytes (200 on average, a short text), 64-byte signatures.
      // (node:crypto: libsodium.js draws random bytes four at a time, far too slowly for megabytes.)
      const pool = nodeRandomBytes((to - from + 1) * (16 + 64 + 280));
      for (let seq = from, at = 0; seq <= to; seq++) {
        const sender = senderOf(seq);
        const env = real.get(seq);
        let clientMsgId: string;
        let ct: Uint8Array;
        let sig: Uint8Array;
        if (env) {
          ({ clientMsgId, ct, sig } = env);
        } else {
          clientMsgId = toB64(pool.subarray(at, at + 16));
          sig = pool.subarray(at + 16, at + 80);
          ct = pool.subarray(at + 80, at + 80 + 120 + ((seq * 37) % 161));
          at += 16 + 64 + 280;
        }
        insert.run(conv, seq, sender.id, clientMsgId, PROTOCOL_VERSION, SUITE_XCHACHA20_ED25519, counterOf(seq), rosterBuf, firstReceived + seq * 1000, ct, sig);
      }
    });
    const tInsert = performance.now();
    for (let from = 1; from <= rows; from += SEED_TX_ROWS) {
      insertRange.immediate(from, Math.min(rows, from + SEED_TX_ROWS - 1));
    }
    db.sqlite.prepare('update conversations set last_seq = ? where id = ?').run(rows, conv);
    const insertMs = performance.now() - tInsert;
    const rowsPerS = Math.round(rows / (insertMs / 1000));
    log(`seed: inserted ${rows} envelopes in ${round3(insertMs)} ms (${rowsPerS} rows/s, ${SEED_TX_ROWS} per transaction)`);
    await db.close();
    const bytes = fileBytes(path.join(dataDir, DB_FILE)) + fileBytes(path.join(dataDir, `${DB_FILE}-wal`));
    log(`seed: database ${(bytes / 2 ** 20).toFixed(1)} MiB (${Math.round(bytes / rows)} bytes per envelope)`);
    return {
      conv,
      lastSeq: rows,
      token: token.token,
      writer,
      reader,
      readerKey: wrapped[1]!,
      figures: {
        seed_rows_per_s: rowsPerS,
        seed_insert_ms: round3(insertMs),
        seed_seal_real_ms: round3(sealMs),
        seed_real_envelopes: real.size,
        db_bytes: bytes,
        db_bytes_per_envelope: Math.round(bytes / rows),
      },
    };
  } catch (err) {
    await db.close();
    throw err;
  }
}

/** A short text of 60 to 160 characters, different for each message. */
function messageText(seq: number): string {
  const words = ['see', 'you', 'at', 'the', 'station', 'in', 'ten', 'minutes', 'bring', 'an', 'umbrella', 'it', 'is', 'raining', 'again', 'tonight'];
  let text = `#${seq}`;
  for (let i = 0; text.length < 60 + ((seq * 53) % 101); i++) text += ' ' + words[(seq + i * 7) % words.length];
  return text;
}

function fileBytes(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

// ---- over the wire ------------------------------------------------------------------------

/**
 * Node's fetch sets itself up on its first call; one request to a throwaway server first keeps
 * that out of the relay's cold figure.
 */
async function warmUpFetch(): Promise<void> {
  const server = http.createServer((_req, res) => res.end('{}'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  try {
    const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`, { headers: { connection: 'close' } });
    await res.text();
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** One GET of the newest page: ms until JSON.parse returned, and until the SDK's schema check passed. */
async function firstPage(url: string, headers: Record<string, string>, lastSeq: number): Promise<{ jsonMs: number; schemaMs: number; bytes: number }> {
  const t0 = performance.now();
  const res = await fetch(url, { headers });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`GET envelopes answered ${res.status}: ${text.slice(0, 200)}`);
  const json: unknown = JSON.parse(text);
  const jsonMs = performance.now() - t0;
  const page = HistoryResponse.parse(json);
  const schemaMs = performance.now() - t0;
  if (page.envelopes.length !== 100 || page.envelopes[0]!.seq !== lastSeq || !page.more) throw new Error('first page is not the newest 100 envelopes');
  return { jsonMs, schemaMs, bytes: Buffer.byteLength(text) };
}

interface ResumeOptions {
  limit: number;
  /** Validate each frame with ServerFrame, as the SDK's transport does. */
  schema: boolean;
  /** Verify and decrypt each batch, as the timeline does. */
  open: ((items: StoredEnvelope[]) => Promise<void>) | null;
}

interface ResumeTiming {
  /** Socket open and hello answered. */
  connectMs: number;
  /** First sync sent to the last batch handled. */
  syncMs: number;
  frames: number;
  bytes: number;
}

/** Connects, says hello, then pages through everything after `after` with `sync` until `more` is false. */
async function resume(url: string, headers: Record<string, string>, conv: string, after: number, lastSeq: number, o: ResumeOptions): Promise<ResumeTiming> {
  const t0 = performance.now();
  const ws = new WebSocket(url, { headers, perMessageDeflate: false });
  try {
    const replies: ((data: string) => void)[] = [];
    const failed = new Promise<never>((_, reject) => {
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused with ${res.statusCode}`)));
      ws.once('close', (code) => reject(new Error(`socket closed (${code})`)));
    });
    failed.catch(() => {});
    ws.on('message', (data) => replies.shift()?.(String(data)));
    let nextId = 1;
    const request = (frame: Record<string, unknown>) => {
      const reply = new Promise<string>((resolve) => replies.push(resolve));
      ws.send(JSON.stringify({ ...frame, id: nextId++ }));
      return Promise.race([reply, failed]);
    };
    await Promise.race([new Promise((resolve) => ws.once('open', resolve)), failed]);
    const hello = JSON.parse(await request({ t: 'hello' })) as { t: string };
    if (hello.t !== 'hello') throw new Error(`hello answered ${JSON.stringify(hello).slice(0, 200)}`);
    const t1 = performance.now();

    let cursor = after;
    let frames = 0;
    let bytes = 0;
    let received = 0;
    for (;;) {
      const text = await request({ t: 'sync', conv, after: cursor, limit: o.limit });
      frames++;
      bytes += Buffer.byteLength(text);
      const raw = JSON.parse(text) as { t: string; envelopes: StoredEnvelope[]; more: boolean };
      let batch = raw;
      if (o.schema) {
        const parsed = ServerFrame.safeParse(raw);
        if (!parsed.success || parsed.data.t !== 'batch') throw new Error(`sync answered ${text.slice(0, 200)}`);
        batch = parsed.data;
      } else if (raw.t !== 'batch') {
        throw new Error(`sync answered ${text.slice(0, 200)}`);
      }
      await o.open?.(batch.envelopes);
      for (const item of batch.envelopes) {
        if (item.seq !== cursor + 1) throw new Error(`expected seq ${cursor + 1}, got ${item.seq}`);
        cursor = item.seq;
      }
      received += batch.envelopes.length;
      if (!batch.more || batch.envelopes.length === 0) break;
    }
    const t2 = performance.now();
    if (received !== lastSeq - after || cursor !== lastSeq) throw new Error(`resume received ${received} envelopes up to ${cursor}`);
    return { connectMs: t1 - t0, syncMs: t2 - t1, frames, bytes };
  } finally {
    ws.removeAllListeners('close');
    ws.on('error', () => {});
    ws.terminate();
  }
}

// ---- statistics ---------------------------------------------------------------------------


