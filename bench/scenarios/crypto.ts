// D-crypto: what one message, one log-in and one 1,000-member room change cost on this machine,
// timed through the project's own functions (shared/, client/sdk), plus the platform's native
// Ed25519 (WebCrypto, node:crypto) next to libsodium's, to decide where message signatures go.
import { createPublicKey, verify as nodeVerify, type KeyObject } from 'node:crypto';
import {
  CTX,
  KDF_DEFAULT,
  LIMITS,
  PROTOCOL_VERSION,
  PostStatementRequest,
  SUITE_XCHACHA20_ED25519,
  SUPPORTED_SUITES,
  UmbraError,
  VerifiedEnvelopes,
  concatBytes,
  createBatchVerifier,
  decodeEvent,
  deriveAccountKeys,
  deriveMasterKey,
  encodeEvent,
  envelopeTypeOf,
  equalBytes,
  generateIdentity,
  initCrypto,
  messageAd,
  nextLink,
  openAead,
  openEnvelope,
  randomBytes,
  randomKey,
  randomSalt,
  replayRoomChain,
  rosterHash,
  sealAead,
  sealEnvelope,
  signStatement,
  signWithContext,
  signedBytes,
  statementHash,
  toB64,
  verifyEnvelopeSignature,
  verifyWithContext,
  wipe,
  wrapConversationKeyForAll,
  type Chain,
  type ChainMember,
  type EnvelopeHeader,
  type IdentityKeys,
  type PlainEvent,
  type RoomMeta,
  type RoomStatement,
  type SealedEnvelope,
  type SignedStatement,
} from '../../shared/index.ts';
import { sealRekey } from '../../client/sdk/room-changes.ts';
import type { ScenarioOptions, ScenarioResult } from '../lib/scenario.ts';
import { median, round3 } from '../lib/stats.ts';

/** Members of the large room: the owner and 999 others, so a removal leaves 999 to rekey for. */
const ROOM_SIZE = LIMITS.maxMembers;
/** Promise.all batch size for the asynchronous (WebCrypto) timings. */
const BATCH = 100;
/** Envelopes in a fetched page: a catch-up batch (timeline.ts catchUp asks for 100). */
const PAGE = 100;

export async function runCrypto(opts: ScenarioOptions): Promise<ScenarioResult> {
  const { quick, log } = opts;
  await initCrypto();
  const reps = quick ? 1 : 5;
  /** Calls per timed loop of a microsecond operation. */
  const n = quick ? 300 : 2000;
  const figures: ScenarioResult['figures'] = { repetitions: reps, calls_per_loop: n, node: process.version };

  // ---- one message, as timeline.ts sends and receives it --------------------------------
  const alice = generateIdentity();
  const bob = generateIdentity();
  const conv = toB64(randomBytes(16));
  const epochKey = randomKey();
  const event: PlainEvent = { kind: 'text', body: 'Running ten minutes late, save me a seat? The train is stuck outside the station.' };
  const plaintext = encodeEvent(event);
  const header: EnvelopeHeader = {
    v: PROTOCOL_VERSION,
    suite: SUITE_XCHACHA20_ED25519,
    type: envelopeTypeOf(event),
    conv,
    epoch: 0,
    sender: 'alice',
    rosterHash: rosterHash(conv, [
      { username: 'alice', identityKey: alice.signing.publicKey },
      { username: 'bob', identityKey: bob.signing.publicKey },
    ]),
    clientMsgId: toB64(randomBytes(16)),
    counter: 42,
    expiresAt: null,
    burnAfterMs: null,
  };
  const env = sealEnvelope(header, plaintext, epochKey, alice.signing.secretKey);
  const senderKey = alice.signing.publicKey;
  if (decodeEvent(openEnvelope(env, epochKey, senderKey)).kind !== 'text') throw new Error('envelope round trip failed');
  figures.message_plaintext_bytes = plaintext.length;
  figures.message_ciphertext_bytes = env.ct.length;

  const ad = messageAd(header);
  const body256 = randomBytes(256);
  const sealed256 = sealAead(epochKey, body256, ad);
  const signed = concatBytes(ad, env.ct);
  const native = await nativeEd25519(env, epochKey, alice);
  log(`Ed25519: libsodium, WebCrypto and node:crypto agree on the message signature and reject a tampered one`);

  // A fetched page as timeline.ts reads it: PAGE different envelopes, their signatures checked at
  // once (VerifiedEnvelopes, on the platform's Ed25519), then each opened in order.
  const verifier = await createBatchVerifier();
  if (verifier.kind !== 'native') throw new Error('this Node has no WebCrypto Ed25519 for the page path');
  const page = Array.from({ length: PAGE }, (_, i) =>
    sealEnvelope({ ...header, clientMsgId: toB64(randomBytes(16)), counter: 100 + i }, plaintext, epochKey, alice.signing.secretKey),
  );
  const readPage = async (): Promise<void> => {
    const verified = new VerifiedEnvelopes(verifier);
    // Each read gets fresh objects, as each fetch parses new ones.
    const fetched = page.map((e) => ({ ...e }));
    await verified.check(fetched.map((e) => ({ env: e, senderIdentityKey: senderKey })));
    for (const e of fetched) openEnvelope(e, epochKey, senderKey, verified);
  };
  {
    const forged = page.map((e) => ({ ...e }));
    forged[7] = { ...forged[7]!, sig: Uint8Array.from(forged[7]!.sig, (b, i) => (i === 9 ? b ^ 1 : b)) };
    const verified = new VerifiedEnvelopes(verifier);
    await verified.check(forged.map((e) => ({ env: e, senderIdentityKey: senderKey })));
    const opened = forged.map((e) => {
      try {
        return equalBytes(openEnvelope(e, epochKey, senderKey, verified), plaintext);
      } catch {
        return false;
      }
    });
    if (opened.filter(Boolean).length !== PAGE - 1 || opened[7] !== false) throw new Error('the page path opened a forged envelope or refused a good one');
  }
  const pageLoops = Math.max(1, Math.round(n / PAGE));
  /** µs per envelope, and the process's CPU µs per envelope (the platform's threads included). */
  const pageLoop = async (): Promise<number> => {
    const t0 = performance.now();
    for (let i = 0; i < pageLoops; i++) await readPage();
    return ((performance.now() - t0) * 1000) / (pageLoops * PAGE);
  };
  const pageCpu = async (): Promise<number> => {
    const c0 = process.cpuUsage();
    for (let i = 0; i < pageLoops; i++) await readPage();
    const c = process.cpuUsage(c0);
    return (c.user + c.system) / (pageLoops * PAGE);
  };

  const t = await measure(
    {
      encrypt_sign_us: loopSync(() => sealEnvelope(header, plaintext, epochKey, alice.signing.secretKey), n),
      verify_decrypt_us: pageLoop,
      verify_decrypt_page_cpu_us: pageCpu,
      verify_decrypt_single_us: loopSync(() => openEnvelope(env, epochKey, senderKey), n),
      send_with_event_encoding_us: loopSync(() => sealEnvelope(header, encodeEvent(event), epochKey, alice.signing.secretKey), n),
      receive_with_event_decoding_us: loopSync(() => decodeEvent(openEnvelope(env, epochKey, senderKey)), n),
      message_ad_us: loopSync(() => messageAd(header), n),
      aead_seal_256_us: loopSync(() => sealAead(epochKey, body256, ad), n),
      aead_open_256_us: loopSync(() => openAead(epochKey, sealed256, ad), n),
      random_nonce_us: loopSync(() => randomBytes(24), n),
      random_key_us: loopSync(() => randomKey(), n),
      ed25519_sign_libsodium_us: loopSync(() => signWithContext(alice.signing.secretKey, CTX.messageSig, signed), n),
      ed25519_verify_libsodium_us: loopSync(() => verifyWithContext(senderKey, CTX.messageSig, signed, env.sig), n),
      ...native.loops(n),
    },
    reps,
  );
  Object.assign(figures, t);
  figures.ed25519_verify_speedup_webcrypto_cached = round3(t.ed25519_verify_libsodium_us / t.ed25519_verify_webcrypto_cached_us);
  figures.ed25519_verify_speedup_node = round3(t.ed25519_verify_libsodium_us / t.ed25519_verify_node_us);
  log(
    `message: encrypt+sign ${t.encrypt_sign_us} µs, ` +
      `verify+decrypt ${t.verify_decrypt_us} µs in a fetched page of ${PAGE} (as shipped: signatures checked at once on the platform's Ed25519; ` +
      `${t.verify_decrypt_page_cpu_us} µs of CPU on all threads), ${t.verify_decrypt_single_us} µs for one envelope alone (libsodium, as a live push is read; ` +
      `associated data built once, ${t.message_ad_us} µs)`,
  );
  log(
    `pieces: AEAD seal 256 B ${t.aead_seal_256_us} µs (of which the 24-byte nonce ${t.random_nonce_us} µs), open ${t.aead_open_256_us} µs; ` +
      `Ed25519 sign ${t.ed25519_sign_libsodium_us} µs, verify ${t.ed25519_verify_libsodium_us} µs (libsodium WASM)`,
  );
  log(
    `Ed25519 verify: WebCrypto cached key ${t.ed25519_verify_webcrypto_cached_us} µs ` +
      `(batch of ${BATCH}: ${t.ed25519_verify_webcrypto_cached_batch_us} µs each), ` +
      `with importKey per call ${t.ed25519_verify_webcrypto_import_us} µs (batch ${t.ed25519_verify_webcrypto_import_batch_us}), ` +
      `node:crypto ${t.ed25519_verify_node_us} µs; WebCrypto sign ${t.ed25519_sign_webcrypto_us} µs`,
  );
  log(
    `verify+decrypt with WebCrypto: ${t.verify_decrypt_webcrypto_us} µs sequential, ` +
      `${t.verify_decrypt_webcrypto_batch_us} µs each in batches of ${BATCH}, ` +
      `${t.verify_decrypt_webcrypto_import_us} µs importing the key each time; with node:crypto ${t.verify_decrypt_node_us} µs`,
  );

  // ---- log-in: Argon2id, then the two account keys (client.ts logIn) ----------------------
  const salt = randomSalt();
  const argon = await timeMs(() => {
    const master = deriveMasterKey('correct horse battery staple', salt, { ...KDF_DEFAULT });
    const keys = deriveAccountKeys(master, 'alice');
    wipe(master);
    wipe(keys.authKey);
    wipe(keys.vaultKey);
  }, reps);
  figures.argon2id_login_ms = argon;
  figures.argon2id_params = `ops ${KDF_DEFAULT.ops}, ${KDF_DEFAULT.memKiB} KiB`;
  log(`log-in: Argon2id (${figures.argon2id_params}) + account keys ${argon} ms`);

  // ---- a 1,000-member room ----------------------------------------------------------------
  const room = buildRoom(ROOM_SIZE);
  figures.room_chain_replay_1000_ms = await timeMs(() => replayRoomChain(room.conv, room.links), quick ? 1 : 3);
  const chain = replayRoomChain(room.conv, room.links);
  if (chain.head.members.size !== ROOM_SIZE) throw new Error(`room has ${chain.head.members.size} members, expected ${ROOM_SIZE}`);
  log(`room: replaying a ${room.links.length}-link membership chain ${figures.room_chain_replay_1000_ms} ms`);

  // One set, as sealRekey wraps it: one ephemeral key and one signature, then X25519 + BLAKE2b + AEAD per member.
  const wrapSet = { conv: room.conv, epoch: 0, wrappedBy: room.owner.username };
  const recipients = [room.owner, ...room.members].map((m) => ({ recipient: m.username, x25519: m.keys.agreement.publicKey }));
  const wrap = await timeMs(() => {
    const key = randomKey();
    const keys = wrapConversationKeyForAll(key, recipients, wrapSet, room.owner.keys.signing.secretKey);
    if (keys.length !== recipients.length) throw new Error(`wrapped ${keys.length} keys, expected ${recipients.length}`);
    wipe(key);
  }, reps);
  figures.wrap_1000_ms = wrap;
  log(`room: wrap one key for ${recipients.length} members (one set) ${wrap} ms`);

  const removed = room.members[room.members.length - 1]!.username;
  let lastBody = '';
  const rotation = await timeMs(() => {
    lastBody = rotateAfterRemoval(chain, room, removed);
  }, reps);
  const post = PostStatementRequest.parse(JSON.parse(lastBody));
  if (post.keys.length !== ROOM_SIZE - 1) throw new Error(`rotation wrapped ${post.keys.length} keys, expected ${ROOM_SIZE - 1}`);
  figures.rotation_1000_ms = rotation;
  figures.rotation_1000_body_bytes = lastBody.length;
  figures.rotation_1000_body_limit_bytes = LIMITS.maxRoomChangeBodyBytes;
  log(`room: rotation after removing 1 of ${ROOM_SIZE} ${rotation} ms, request body ${lastBody.length} bytes`);

  wipe(epochKey);
  return {
    figures,
    summary: {
      encrypt_sign_us: t.encrypt_sign_us,
      verify_decrypt_us: t.verify_decrypt_us,
      verify_decrypt_single_us: t.verify_decrypt_single_us,
      verify_decrypt_webcrypto_us: t.verify_decrypt_webcrypto_us,
      argon2id_login_ms: argon,
      wrap_1000_ms: wrap,
      rotation_1000_ms: rotation,
    },
  };
}

// ---- native Ed25519 -------------------------------------------------------------------------

/** The DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410 §4); the 32-byte key follows. */
const ED25519_SPKI_PREFIX = Uint8Array.from([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00]);
/** The DER prefix of an Ed25519 PKCS #8 private key (RFC 8410 §7); the 32-byte seed follows. */
const ED25519_PKCS8_PREFIX = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]);

/**
 * WebCrypto and node:crypto over the exact bytes libsodium signs for a message
 * (context || 0x00 || associated data || ciphertext, shared/crypto/sign.ts). Checks first that all
 * three agree on the real signature and on a tampered envelope, and that the native signer
 * reproduces libsodium's signature; then hands out the loops to time.
 */
async function nativeEd25519(env: SealedEnvelope, epochKey: Uint8Array, sender: IdentityKeys) {
  const subtle = globalThis.crypto.subtle;
  const alg = { name: 'Ed25519' };
  const pk = sender.signing.publicKey;
  const signedEnvelope = (e: SealedEnvelope) => signedBytes(CTX.messageSig, concatBytes(messageAd(e), e.ct));
  const message = signedEnvelope(env);
  const importPk = () => subtle.importKey('raw', buf(pk), alg, false, ['verify']);
  const cryptoKey = await importPk();
  const keyObject: KeyObject = createPublicKey({ key: Buffer.from(concatBytes(ED25519_SPKI_PREFIX, pk)), format: 'der', type: 'spki' });

  const tamperedCt = Uint8Array.from(env.ct);
  tamperedCt[tamperedCt.length - 1] = tamperedCt[tamperedCt.length - 1]! ^ 1;
  const tampered = { ...env, ct: tamperedCt };
  const badMessage = signedEnvelope(tampered);
  const verdicts = {
    libsodium: [verifyEnvelopeSignature(env, pk), verifyEnvelopeSignature(tampered, pk)],
    webcrypto: [await subtle.verify(alg, cryptoKey, buf(env.sig), buf(message)), await subtle.verify(alg, cryptoKey, buf(env.sig), buf(badMessage))],
    node: [nodeVerify(null, message, keyObject, env.sig), nodeVerify(null, badMessage, keyObject, env.sig)],
  };
  for (const [who, [good, bad]] of Object.entries(verdicts)) {
    if (good !== true || bad !== false) throw new Error(`${who} Ed25519 disagrees with libsodium: valid → ${good}, tampered → ${bad}`);
  }
  // Ed25519 is deterministic (RFC 8032 §5.1.6): the native signer must produce libsodium's exact signature.
  const seed = sender.signing.secretKey.subarray(0, 32);
  const signingKey = await subtle.importKey('pkcs8', buf(concatBytes(ED25519_PKCS8_PREFIX, seed)), alg, false, ['sign']);
  if (!equalBytes(new Uint8Array(await subtle.sign(alg, signingKey, buf(message))), env.sig)) {
    throw new Error('WebCrypto Ed25519 signature differs from libsodium’s');
  }

  // openEnvelope with a native verifier: the same checks in the same order.
  const openNative = async (e: SealedEnvelope, key: CryptoKey | null): Promise<Uint8Array> => {
    if (e.v !== PROTOCOL_VERSION || !SUPPORTED_SUITES.includes(e.suite)) throw new UmbraError('verification_failed', 'unsupported');
    const eAd = messageAd(e);
    const signedMsg = signedBytes(CTX.messageSig, concatBytes(eAd, e.ct));
    const verifyKey = key ?? (await importPk());
    if (!(await subtle.verify(alg, verifyKey, buf(e.sig), buf(signedMsg)))) throw new UmbraError('verification_failed', 'bad signature');
    return openAead(epochKey, e.ct, eAd);
  };
  const openNode = (e: SealedEnvelope): Uint8Array => {
    if (e.v !== PROTOCOL_VERSION || !SUPPORTED_SUITES.includes(e.suite)) throw new UmbraError('verification_failed', 'unsupported');
    const eAd = messageAd(e);
    const signedMsg = signedBytes(CTX.messageSig, concatBytes(eAd, e.ct));
    if (!nodeVerify(null, signedMsg, keyObject, e.sig)) throw new UmbraError('verification_failed', 'bad signature');
    return openAead(epochKey, e.ct, eAd);
  };
  const reference = openEnvelope(env, epochKey, pk);
  if (!equalBytes(await openNative(env, cryptoKey), reference) || !equalBytes(openNode(env), reference)) throw new Error('native open disagrees');
  for (const open of [() => openNative(tampered, cryptoKey), async () => openNode(tampered)]) {
    const verdict = await open().then(
      () => 'accepted',
      (err: unknown) => (err instanceof UmbraError ? 'rejected' : String(err)),
    );
    if (verdict !== 'rejected') throw new Error(`native open of a tampered envelope: ${verdict}`);
  }

  const verifyCached = () => subtle.verify(alg, cryptoKey, buf(env.sig), buf(message));
  const verifyImport = async () => subtle.verify(alg, await importPk(), buf(env.sig), buf(message));
  return {
    loops: (n: number) => ({
      ed25519_verify_webcrypto_cached_us: loopAsync(verifyCached, n),
      ed25519_verify_webcrypto_cached_batch_us: loopBatch(verifyCached, n),
      ed25519_verify_webcrypto_import_us: loopAsync(verifyImport, n),
      ed25519_verify_webcrypto_import_batch_us: loopBatch(verifyImport, n),
      ed25519_import_webcrypto_us: loopAsync(importPk, n),
      ed25519_verify_node_us: loopSync(() => nodeVerify(null, message, keyObject, env.sig), n),
      ed25519_sign_webcrypto_us: loopAsync(() => subtle.sign(alg, signingKey, buf(message)), n),
      verify_decrypt_webcrypto_us: loopAsync(() => openNative(env, cryptoKey), n),
      verify_decrypt_webcrypto_batch_us: loopBatch(() => openNative(env, cryptoKey), n),
      verify_decrypt_webcrypto_import_us: loopAsync(() => openNative(env, null), n),
      verify_decrypt_node_us: loopSync(() => openNode(env), n),
    }),
  };
}

/** WebCrypto wants ArrayBuffer-backed views. */
function buf(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes as Uint8Array<ArrayBuffer>;
}

// ---- the 1,000-member room ------------------------------------------------------------------

interface RoomMemberKeys {
  username: string;
  keys: IdentityKeys;
}

interface Room {
  conv: string;
  owner: RoomMemberKeys;
  /** Everyone but the owner, in the order they were added. */
  members: RoomMemberKeys[];
  links: SignedStatement[];
  meta: RoomMeta;
}

/** A room as its chain records it: a create link by the owner, then one signed add per member. */
function buildRoom(size: number): Room {
  const conv = toB64(randomBytes(16));
  const owner = { username: 'owner', keys: generateIdentity() };
  const members = Array.from({ length: size - 1 }, (_, i) => ({ username: `member${String(i + 1).padStart(4, '0')}`, keys: generateIdentity() }));
  const links: SignedStatement[] = [];
  let prev: string | null = null;
  const at = Date.now();
  const append = (body: RoomStatement['body']) => {
    const link = signStatement({ v: 1, kind: 'room-statement', conv, seq: links.length, prev, actor: owner.username, at, body }, owner.keys.signing.secretKey);
    links.push(link);
    prev = toB64(statementHash(link.statement));
  };
  append({ op: 'create', owner: { username: owner.username, identityKey: toB64(owner.keys.signing.publicKey) } });
  for (const m of members) append({ op: 'add', member: { username: m.username, identityKey: toB64(m.keys.signing.publicKey) }, role: 'member', via: 'invite' });
  return { conv, owner, members, links, meta: { name: 'book club', topic: 'This month: The Left Hand of Darkness. Spoilers after chapter 10 only.', policy: 'private' } };
}

/**
 * What the owner's client does to remove `username`, following removePlan, renewKey and postChange
 * in client/sdk/room-changes.ts: the recipients checked against the chain's identity keys (the
 * directory's answers stand in, already fetched), sealRekey (a fresh epoch key wrapped for each
 * remaining member, the settings sealed under it), the signed removal link, and the request body.
 */
function rotateAfterRemoval(chain: Chain, room: Room, username: string): string {
  const head = chain.head;
  const me = room.owner;
  const remaining: ChainMember[] = [...head.members.values()].filter((m) => m.username !== username);
  const directory = new Map(room.members.map((m) => [m.username, { identityKey: m.keys.signing.publicKey, x25519Key: m.keys.agreement.publicKey }]));
  const recipients = remaining.map((m) => {
    if (m.username === me.username) return { username: m.username, x25519Key: me.keys.agreement.publicKey };
    const c = directory.get(m.username);
    if (!c || !equalBytes(c.identityKey, m.identityKey)) throw new Error(`${m.username}'s key does not match the chain`);
    return { username: m.username, x25519Key: c.x25519Key };
  });
  const epoch = head.epoch + 1;
  const sealed = sealRekey(room.conv, epoch, recipients, room.meta, { username: me.username, signingSecret: me.keys.signing.secretKey });
  const signed = signStatement(
    { v: 1, kind: 'room-statement', conv: room.conv, ...nextLink(chain), actor: me.username, at: Date.now(), body: { op: 'remove', member: username, epoch } },
    me.keys.signing.secretKey,
  );
  return JSON.stringify({ statement: { statement: signed.statement, sig: toB64(signed.sig) }, keys: sealed.keys, meta: sealed.meta });
}

// ---- timing -----------------------------------------------------------------------------

/** One timed loop of an operation; resolves with µs per call. */
type Loop = () => number | Promise<number>;

/**
 * Runs every loop once untimed, then `reps` rounds of every loop in turn, and returns each loop's
 * median. Interleaving the rounds spreads the noise of a shared machine over all the operations
 * compared, instead of landing it on whichever ran while something else was busy.
 */
async function measure<K extends string>(loops: Record<K, Loop>, reps: number): Promise<Record<K, number>> {
  const names = Object.keys(loops) as K[];
  const runs = new Map<K, number[]>(names.map((k) => [k, []]));
  for (const k of names) await loops[k]();
  for (let r = 0; r < reps; r++) {
    for (const k of names) runs.get(k)!.push(await loops[k]());
  }
  return Object.fromEntries(names.map((k) => [k, round3(median(runs.get(k)!))])) as Record<K, number>;
}

/** `n` synchronous calls. */
function loopSync(op: () => unknown, n: number): Loop {
  return () => {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) op();
    return ((performance.now() - t0) * 1000) / n;
  };
}

/** `n` asynchronous calls, each awaited before the next starts. */
function loopAsync(op: () => Promise<unknown>, n: number): Loop {
  return async () => {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await op();
    return ((performance.now() - t0) * 1000) / n;
  };
}

/** About `n` asynchronous calls, BATCH at a time started together and awaited with Promise.all. */
function loopBatch(op: () => Promise<unknown>, n: number): Loop {
  const batches = Math.max(1, Math.round(n / BATCH));
  return async () => {
    const t0 = performance.now();
    for (let b = 0; b < batches; b++) await Promise.all(Array.from({ length: BATCH }, op));
    return ((performance.now() - t0) * 1000) / (batches * BATCH);
  };
}

/** ms of one call: the median of `reps` calls, after one untimed warm-up call. */
async function timeMs(op: () => unknown, reps: number): Promise<number> {
  await op();
  const runs: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    await op();
    runs.push(performance.now() - t0);
  }
  return round3(median(runs));
}


