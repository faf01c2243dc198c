// Traffic scenarios: the real relay and the two baselines under the same generator, runs
// interleaved (raw, sqlite, umbra; raw, sqlite, umbra; ...), medians reported with ratios.
import type { SweeperStats } from '../../server/sweeper.ts';
import { LoadPool, type LoadResult, type LoadSpec } from '../load/generator.ts';
import { RelayProc } from '../lib/relay-client.ts';
import { SYSTEMS, type ExpiredSeed, type RelayStats, type StartOptions, type SystemName } from '../lib/relay-ipc.ts';
import { StallProbe, type ProbeReading } from '../lib/stall-probe.ts';
import { seedTemplate, type SeedShape, type SeededTemplate } from '../lib/seed.ts';
import { median } from '../lib/stats.ts';

export const TRAFFIC_SCENARIOS = ['A-rate', 'A-mid', 'A-sat', 'B-sat', 'C-idle'] as const;
export type TrafficScenarioName = (typeof TRAFFIC_SCENARIOS)[number];

/** Per connection, kept under the relay's default frame rate (50/s, server/config.ts) so a closed-loop Umbra sender is not disconnected for flooding. */
export const UMBRA_SAT_CAP_PER_CONN = 45;

interface Scenario {
  name: TrafficScenarioName;
  description: string;
  shape: SeedShape;
  /** Connections, as users 0..conns-1. */
  conns: number;
  /** null: idle (connect, hello, measure memory). */
  load: LoadSpec | null;
  /** The figures this scenario reports, first is the headline. */
  figures: FigureName[];
}

type FigureName =
  | 'delivered_per_s'
  | 'sent_per_s'
  | 'p50_ms'
  | 'p99_ms'
  | 'max_ms'
  | 'errors'
  | 'relay_cpu_ms_per_s'
  | 'relay_rss_mib'
  | 'wal_max_mib'
  | 'eld_p99_ms'
  | 'eld_max_ms'
  /** The longest event-loop delay of an idle process beside the relay (bench/lib/stall-probe.ts). */
  | 'machine_eld_max_ms'
  | 'rss_per_conn_kib'
  | 'connect_s';

const LOWER_IS_BETTER = new Set<FigureName>(['p50_ms', 'p99_ms', 'max_ms', 'errors', 'relay_cpu_ms_per_s', 'relay_rss_mib', 'wal_max_mib', 'eld_p99_ms', 'eld_max_ms', 'machine_eld_max_ms', 'rss_per_conn_kib', 'connect_s']);

const LOAD_FIGURES: FigureName[] = ['relay_cpu_ms_per_s', 'relay_rss_mib', 'wal_max_mib', 'eld_p99_ms', 'eld_max_ms', 'machine_eld_max_ms', 'errors'];

export function scenarios(quick: boolean): Scenario[] {
  const timing = quick ? { warmupMs: 500, timedMs: 1000 } : { warmupMs: 2000, timedMs: 10_000 };
  const a: SeedShape = quick ? { users: 40, rooms: 4, perRoom: 10 } : { users: 1000, rooms: 100, perRoom: 10 };
  const b: SeedShape = quick ? { users: 40, rooms: 2, perRoom: 20 } : { users: 1000, rooms: 10, perRoom: 100 };
  const c: SeedShape = quick ? { users: 1000, rooms: 100, perRoom: 10 } : { users: 5000, rooms: 500, perRoom: 10 };
  const scale = a.users / 1000;
  return [
    {
      name: 'A-rate',
      description: `${a.users} connections, ${a.rooms} rooms of ${a.perRoom}, ${200 * scale} msg/s sent`,
      shape: a,
      conns: a.users,
      load: { mode: 'rate', ratePerSec: 200 * scale, ...timing },
      figures: ['p50_ms', 'p99_ms', 'max_ms', 'delivered_per_s', ...LOAD_FIGURES],
    },
    {
      name: 'A-mid',
      description: `${a.users} connections, ${a.rooms} rooms of ${a.perRoom}, ${2000 * scale} msg/s sent`,
      shape: a,
      conns: a.users,
      load: { mode: 'rate', ratePerSec: 2000 * scale, ...timing },
      figures: ['p50_ms', 'p99_ms', 'max_ms', 'delivered_per_s', ...LOAD_FIGURES],
    },
    {
      name: 'A-sat',
      description: `${a.users} connections, ${a.rooms} rooms of ${a.perRoom}, closed loop, 2 in flight per connection`,
      shape: a,
      conns: a.users,
      load: { mode: 'sat', inflight: 2, ...timing },
      figures: ['delivered_per_s', 'sent_per_s', 'p50_ms', 'p99_ms', ...LOAD_FIGURES],
    },
    {
      name: 'B-sat',
      description: `${b.users} connections, ${b.rooms} rooms of ${b.perRoom}, closed loop, 2 in flight per connection`,
      shape: b,
      conns: b.users,
      load: { mode: 'sat', inflight: 2, ...timing },
      figures: ['delivered_per_s', 'p99_ms', 'sent_per_s', 'p50_ms', ...LOAD_FIGURES],
    },
    {
      name: 'C-idle',
      description: `${c.users} idle authenticated connections (Umbra: after hello; baselines: joined to a room)`,
      shape: c,
      conns: c.users,
      load: null,
      figures: ['rss_per_conn_kib', 'connect_s', 'errors'],
    },
  ];
}

/** Umbra envelopes each connection may need in one run (the closed loop is capped per connection). */
function presealFor(list: Scenario[]): number {
  let most = 0;
  for (const s of list) {
    if (!s.load) continue;
    const seconds = (s.load.warmupMs + s.load.timedMs) / 1000 + 0.5;
    // The closed loop's need is bounded by the relay's speed, not the cap: 200 per connection
    // (200,000 in A) covers 15,000 msg/s for 13 s; a sender that runs out is reported as exhausted.
    const perConn = s.load.mode === 'rate' ? (s.load.ratePerSec / s.conns) * seconds * 1.2 + 4 : Math.min(200, UMBRA_SAT_CAP_PER_CONN * seconds + 4);
    most = Math.max(most, Math.ceil(perConn));
  }
  return most;
}

export interface RunRecord {
  run: number;
  system: SystemName;
  load: LoadResult | null;
  relay: RelayStats | null;
  connect: { ok: number; failed: number; ms: number; errorKinds: Record<string, number> };
  /** C-idle: relay RSS before connecting and after (both after gc). */
  rssBeforeBytes?: number;
  rssAfterBytes?: number;
  figures: Partial<Record<FigureName, number>>;
}

export interface FigureRow {
  figure: FigureName;
  better: 'higher' | 'lower';
  /** Median over runs per system. */
  values: Record<SystemName, number>;
  umbraVsRaw: number;
  umbraVsSqlite: number;
}

export interface ScenarioResult {
  name: TrafficScenarioName;
  description: string;
  rows: FigureRow[];
  generatorBound: boolean;
  runs: RunRecord[];
}

export interface TrafficResults {
  scenarios: Partial<Record<TrafficScenarioName, ScenarioResult>>;
  summary: Record<string, number>;
}

export async function runTraffic(o: { quick: boolean; only?: string[]; runs?: number; log: (line: string) => void }): Promise<TrafficResults> {
  const all = scenarios(o.quick);
  const chosen = all.filter((s) => !o.only || o.only.includes(s.name));
  const runs = o.runs ?? (o.quick ? 1 : 3);
  const out: TrafficResults = { scenarios: {}, summary: {} };
  // One pool (and one set of pre-sealed envelopes) per seed shape, shared by its scenarios.
  const groups = new Map<string, Scenario[]>();
  for (const s of chosen) {
    const key = JSON.stringify(s.shape) + s.conns;
    groups.set(key, [...(groups.get(key) ?? []), s]);
  }
  for (const group of groups.values()) {
    const first = group[0]!;
    const template = await seedTemplate(first.shape, o.log);
    const users = Array.from({ length: first.conns }, (_, i) => i);
    const preseal = presealFor(group);
    const pool = await LoadPool.create({ manifest: template.manifest, users, preseal });
    if (preseal) o.log(`pre-sealed ${preseal} envelopes for each of ${users.length} connections in ${(pool.sealMs / 1000).toFixed(1)} s; baseline frames are ${pool.pushFrameBytes} bytes`);
    try {
      for (const s of group) out.scenarios[s.name] = await runScenario(s, runs, pool, template, o.log);
    } finally {
      await pool.close();
    }
  }
  out.summary = summarise(out.scenarios);
  return out;
}

async function runScenario(s: Scenario, runs: number, pool: LoadPool, template: SeededTemplate, log: (line: string) => void): Promise<ScenarioResult> {
  log(`## ${s.name}: ${s.description}`);
  const records: RunRecord[] = [];
  for (let run = 1; run <= runs; run++) {
    for (const system of SYSTEMS) {
      const rec = await runOne(s, system, run, pool, template);
      records.push(rec);
      const f = rec.figures;
      log(
        `${s.name} run ${run} ${system.padEnd(9)} ` +
          Object.entries(f)
            .map(([k, v]) => `${k}=${fmt(v)}`)
            .join(' ') +
          (rec.load?.generatorBound ? ` GENERATOR-BOUND elu=${rec.load.elu.join('/')}` : rec.load ? ` elu=${rec.load.elu.join('/')}` : '') +
          (rec.load?.exhaustedSenders ? ` exhausted=${rec.load.exhaustedSenders}` : '') +
          (rec.load?.capWaits ? ` capWaits=${rec.load.capWaits}` : '') +
          (f.errors ? ` errorKinds=${JSON.stringify({ ...rec.connect.errorKinds, ...rec.load?.errorKinds })}` : ''),
      );
    }
  }
  const rows: FigureRow[] = s.figures.map((figure) => {
    const values = Object.fromEntries(SYSTEMS.map((sys) => [sys, median(records.filter((r) => r.system === sys).map((r) => r.figures[figure] ?? NaN))])) as Record<SystemName, number>;
    return { figure, better: LOWER_IS_BETTER.has(figure) ? 'lower' : 'higher', values, umbraVsRaw: values.umbra / values['raw-ws'], umbraVsSqlite: values.umbra / values['ws-sqlite'] };
  });
  return { name: s.name, description: s.description, rows, generatorBound: records.some((r) => r.load?.generatorBound), runs: records };
}

/** Relay stats after two collections 200 ms apart, once the relay's memory has stopped moving. */
async function settledStats(relay: RelayProc): Promise<RelayStats> {
  await relay.gc();
  await new Promise((r) => setTimeout(r, 200));
  await relay.gc();
  return relay.stats();
}

async function runOne(s: Scenario, system: SystemName, run: number, pool: LoadPool, template: SeededTemplate): Promise<RunRecord> {
  const relay = await RelayProc.start(system, template);
  try {
    // Both readings of the idle scenario come after the same settling, so memory the runtime
    // hands back to the system late (after a second collection) is not counted as a saving.
    const before = s.load ? await relay.gc().then(() => relay.stats()) : await settledStats(relay);
    const connect = await pool.connect(system, relay.port);
    const rec: RunRecord = { run, system, load: null, relay: null, connect, figures: {} };
    if (!s.load) {
      const after = await settledStats(relay);
      rec.relay = after;
      rec.rssBeforeBytes = before.rssBytes;
      rec.rssAfterBytes = after.rssBytes;
      rec.figures = { rss_per_conn_kib: (after.rssBytes - before.rssBytes) / 1024 / s.conns, connect_s: connect.ms / 1000, errors: connect.failed };
    } else {
      const { load, relay: stats, machine } = await measuredLoad(pool, relay, s.load);
      rec.load = load;
      rec.relay = stats;
      rec.figures = {
        delivered_per_s: load.deliveredPerSec,
        sent_per_s: load.sentPerSec,
        p50_ms: load.p50Ms,
        p99_ms: load.p99Ms,
        max_ms: load.maxMs,
        errors: load.errors + connect.failed,
        relay_cpu_ms_per_s: ((stats.cpuUserMs + stats.cpuSystemMs) / stats.wallMs) * 1000,
        relay_rss_mib: stats.rssBytes / 2 ** 20,
        wal_max_mib: stats.walMaxBytes / 2 ** 20,
        eld_p99_ms: stats.eld.p99Ms,
        eld_max_ms: stats.eld.maxMs,
        machine_eld_max_ms: machine.maxMs,
      };
    }
    await pool.disconnect();
    return rec;
  } finally {
    await relay.stop();
  }
}

/** Runs one timed phase; the relay's counters cover the timed window (reset when the warm-up ends). */
async function measuredLoad(pool: LoadPool, relay: RelayProc, spec: LoadSpec): Promise<{ load: LoadResult; relay: RelayStats; machine: ProbeReading }> {
  const probe = await StallProbe.start();
  try {
    const reset = new Promise<void>((resolve) => setTimeout(() => void Promise.all([relay.resetStats(), probe.reset()]).then(() => resolve(), () => resolve()), 100 + spec.warmupMs));
    const load = await pool.run(relay.system === 'umbra' && spec.mode === 'sat' ? { ...spec, maxRatePerConn: UMBRA_SAT_CAP_PER_CONN } : spec);
    await reset;
    const [stats, machine] = await Promise.all([relay.stats(), probe.read()]);
    return { load, relay: stats, machine };
  } finally {
    probe.stop();
  }
}

export interface RunLoadOptions {
  /** The system under test (default `umbra`). */
  system?: SystemName;
  /** A-mid at the quick size (40 connections, 400 msg/s) instead of the full one (1,000 connections, 2,000 msg/s). */
  quick: boolean;
  /** Length of the measured window; a warm-up of `warmupMs` (default 1 s) comes first. */
  durationMs: number;
  warmupMs?: number;
  /** Messages per second in total (default A-mid's). */
  ratePerSec?: number;
  /** Umbra: already-expired envelopes inserted before the relay starts, so the sweeper has work. */
  seedExpired?: ExpiredSeed;
  /** Umbra: the sweeper's interval, batch and batch time budget (default: the relay's). */
  sweep?: { intervalMs: number; batch: number; maxBatchMs?: number };
  /** Attribute the relay's event-loop gaps (RelayStats.gaps). */
  traceGaps?: boolean;
  /**
   * Runs once the connections are open and said hello, right before the load starts.
   * `relayReadyAt`: `performance.now()` when the relay answered that it was listening (its
   * sweeper's interval starts then), so a scenario can place the load relative to the first sweep.
   */
  beforeLoad?: (relay: RelayProc, relayReadyAt: number) => Promise<void>;
  /** Runs alongside the load (e.g. to poll `relay.sweeperStats()`); awaited before the relay stops. */
  duringLoad?: (relay: RelayProc) => Promise<void>;
  log?: (line: string) => void;
}

export interface RunLoadResult {
  load: LoadResult;
  /** Relay counters over the measured window (CPU, RSS, event-loop delay, WAL). */
  relay: RelayStats;
  /** What an idle process on the same machine saw of its own event loop over the window. */
  machine: ProbeReading;
  /** Umbra: the sweeper's counters when the load ended. */
  sweeper: SweeperStats | null;
}

/**
 * Starts `system` on a fresh copy of the A seed and drives A-mid's fixed-rate load (by default)
 * for `durationMs`. For scenarios that need something else happening in the relay under load.
 */
export async function runLoad(opts: RunLoadOptions): Promise<RunLoadResult> {
  const system = opts.system ?? 'umbra';
  const mid = scenarios(opts.quick).find((s) => s.name === 'A-mid')!;
  const template = await seedTemplate(mid.shape, opts.log);
  const rate = opts.ratePerSec ?? (mid.load as { ratePerSec: number }).ratePerSec;
  const warmupMs = opts.warmupMs ?? 1000;
  const preseal = Math.ceil((rate / mid.conns) * ((warmupMs + opts.durationMs) / 1000 + 0.5) * 1.2 + 4);
  const pool = await LoadPool.create({ manifest: template.manifest, users: Array.from({ length: mid.conns }, (_, i) => i), preseal });
  const startOpts: Pick<StartOptions, 'sweep' | 'seedExpired' | 'traceGaps'> = {};
  if (opts.sweep) startOpts.sweep = opts.sweep;
  if (opts.traceGaps) startOpts.traceGaps = true;
  if (opts.seedExpired) startOpts.seedExpired = opts.seedExpired;
  const relay = await RelayProc.start(system, template, startOpts);
  const relayReadyAt = performance.now();
  try {
    const connect = await pool.connect(system, relay.port);
    if (connect.failed) opts.log?.(`runLoad: ${connect.failed} connections failed: ${JSON.stringify(connect.errorKinds)}`);
    await opts.beforeLoad?.(relay, relayReadyAt);
    const during = opts.duringLoad?.(relay);
    const measured = await measuredLoad(pool, relay, { mode: 'rate', ratePerSec: rate, warmupMs, timedMs: opts.durationMs });
    await during;
    const sweeper = await relay.sweeperStats();
    await pool.disconnect();
    return { ...measured, sweeper };
  } finally {
    await relay.stop();
    await pool.close();
  }
}

function summarise(sc: TrafficResults['scenarios']): Record<string, number> {
  const out: Record<string, number> = {};
  const pick = (name: TrafficScenarioName, figure: FigureName, key: string) => {
    const row = sc[name]?.rows.find((r) => r.figure === figure);
    if (!row) return;
    out[`${key}_ratio_vs_ws`] = row.umbraVsRaw;
    out[`${key}_ratio_vs_sqlite`] = row.umbraVsSqlite;
  };
  pick('A-rate', 'p99_ms', 'a_rate_p99');
  pick('A-mid', 'p99_ms', 'a_mid_p99');
  pick('A-sat', 'delivered_per_s', 'a_sat_throughput');
  pick('B-sat', 'delivered_per_s', 'b_sat_throughput');
  pick('B-sat', 'p99_ms', 'b_sat_p99');
  pick('C-idle', 'rss_per_conn_kib', 'c_idle_rss_per_conn');
  return out;
}


export function fmt(x: number | undefined): string {
  if (x === undefined || !Number.isFinite(x)) return '–';
  if (Math.abs(x) >= 100) return Math.round(x).toLocaleString('en-US');
  if (Math.abs(x) >= 10) return x.toFixed(1);
  return x.toFixed(2);
}
