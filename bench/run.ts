// `npm run bench`: the traffic scenarios (the relay against two baselines), then the crypto,
// history and sweep scenarios if their modules exist. Prints a Markdown table, writes JSON.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ScenarioOptions } from './lib/scenario.ts';
import { dropTemplates } from './lib/seed.ts';
import { fmt, runTraffic, type TrafficResults } from './scenarios/traffic.ts';

interface Flags {
  quick: boolean;
  only: string[] | undefined;
  runs: number | undefined;
  out: string;
}

function parseFlags(argv: string[]): Flags {
  const flags: Flags = { quick: false, only: undefined, runs: undefined, out: '' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--quick') flags.quick = true;
    else if (a === '--only') flags.only = value().split(',').map((s) => s.trim()).filter(Boolean);
    else if (a === '--runs') flags.runs = Number(value());
    else if (a === '--out') flags.out = value();
    else throw new Error(`unknown flag ${a} (known: --quick, --only A-sat,C-idle, --runs N, --out file)`);
  }
  if (flags.runs !== undefined && !(Number.isInteger(flags.runs) && flags.runs >= 1)) throw new Error('--runs must be a positive integer');
  flags.out ||= flags.quick ? 'bench/results/quick.json' : 'bench/results/latest.json';
  return flags;
}

interface ModuleResult {
  figures: Record<string, number | string | boolean>;
  summary: Record<string, number>;
}

type ModuleRunner = (o: ScenarioOptions) => Promise<ModuleResult>;

/** Loads a scenario module written separately; a missing module is skipped, not an error. */
async function optional(file: string, exportName: string): Promise<ModuleRunner | null> {
  const url = new URL(file, import.meta.url);
  if (!fs.existsSync(url)) return null;
  const mod = (await import(url.href)) as Record<string, unknown>;
  const fn = mod[exportName];
  return typeof fn === 'function' ? (fn as ModuleRunner) : null;
}

const SYSTEM_COLUMNS = ['raw-ws', 'ws-sqlite', 'umbra'] as const;

function trafficTable(t: TrafficResults): string[] {
  const lines = ['| scenario | figure | raw ws | ws+sqlite | umbra | umbra/raw | umbra/sqlite |', '|---|---|---:|---:|---:|---:|---:|'];
  for (const s of Object.values(t.scenarios)) {
    for (const r of s.rows) {
      const v = SYSTEM_COLUMNS.map((sys) => fmt(r.values[sys]));
      lines.push(`| ${s.name}${s.generatorBound ? ' (generator-bound!)' : ''} | ${r.figure} (${r.better} is better) | ${v.join(' | ')} | ${ratio(r.umbraVsRaw)} | ${ratio(r.umbraVsSqlite)} |`);
    }
  }
  return lines;
}

function ratio(x: number): string {
  return Number.isFinite(x) ? `${x >= 10 ? x.toFixed(1) : x.toFixed(3)}×` : '–';
}

/** A summary value with its unit, read from the key's suffix (`_ratio_vs_ws`, `_us`, `_ms`, `_bytes`). */
function summaryValue(key: string, x: number): string {
  if (!Number.isFinite(x)) return '–';
  if (/_ratio_vs_\w+$/.test(key)) return ratio(x);
  if (key.endsWith('_us')) return `${fmt(x)} µs`;
  if (key.endsWith('_ms')) return `${fmt(x)} ms`;
  if (key.endsWith('_bytes')) return `${fmt(x)} bytes`;
  return fmt(x);
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2));
  const log = (line: string) => process.stderr.write(line + '\n');
  const started = Date.now();
  const scenarios: Record<string, unknown> = {};
  let summary: Record<string, number> = {};
  const wantTraffic = !flags.only || flags.only.some((n) => /^[ABC]-/.test(n));
  let traffic: TrafficResults | null = null;
  try {
    if (wantTraffic) {
      traffic = await runTraffic({ quick: flags.quick, only: flags.only, runs: flags.runs, log });
      Object.assign(scenarios, traffic.scenarios);
      summary = { ...summary, ...traffic.summary };
    }
    const others: [string, string, string][] = [
      ['crypto', './scenarios/crypto.js', 'runCrypto'],
      ['history', './scenarios/history.js', 'runHistory'],
      ['sweep', './scenarios/sweep.js', 'runSweep'],
    ];
    const moduleTables: string[] = [];
    for (const [name, file, fn] of others) {
      if (flags.only && !flags.only.includes(name)) continue;
      const runner = await optional(file, fn);
      if (!runner) {
        log(`(${name}: no ${file}, skipped)`);
        continue;
      }
      log(`## ${name}`);
      const r = await runner({ quick: flags.quick, log, ...(flags.runs ? { runs: flags.runs } : {}) });
      scenarios[name] = r.figures;
      summary = { ...summary, ...r.summary };
      moduleTables.push(`| ${name} | figure | value |`, '|---|---|---:|', ...Object.entries(r.figures).map(([k, v]) => `| ${name} | ${k} | ${typeof v === 'number' ? fmt(v) : String(v)} |`), '');
    }

    const lines: string[] = [];
    if (traffic) lines.push(...trafficTable(traffic), '');
    lines.push(...moduleTables);
    if (Object.keys(summary).length) lines.push('| summary | value |', '|---|---:|', ...Object.entries(summary).map(([k, v]) => `| ${k} | ${summaryValue(k, v)} |`));
    if (traffic && Object.values(traffic.scenarios).some((s) => s.generatorBound)) {
      lines.push('', '**Warning:** a load-generator thread was over 90 % busy in at least one run; those figures may measure the generator, not the relay.');
    }
    process.stdout.write(lines.join('\n') + '\n');

    const cpus = os.cpus();
    const report = {
      machine: { node: process.version, cpus: cpus.length, cpuModel: cpus[0]?.model ?? 'unknown', totalMemGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10 },
      date: new Date(started).toISOString(),
      durationS: Math.round((Date.now() - started) / 1000),
      quick: flags.quick,
      runs: flags.runs ?? (flags.quick ? 1 : 3),
      scenarios,
      summary,
    };
    fs.mkdirSync(path.dirname(path.resolve(flags.out)), { recursive: true });
    fs.writeFileSync(flags.out, JSON.stringify(report, (_k, v: unknown) => (v instanceof Float64Array ? undefined : typeof v === 'number' && !Number.isFinite(v) ? null : v), 2) + '\n');
    log(`wrote ${flags.out} (${report.durationS} s)`);
  } finally {
    dropTemplates();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
