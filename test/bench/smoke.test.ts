// CI's smoke of the benchmark suite: builds, runs every scenario tiny once (`--quick`), and checks
// that the report is complete and error-free. No performance thresholds: figures are only printed.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** The summary keys the benchmark issue asks for. */
const REQUIRED_SUMMARY = [
  'a_sat_throughput_ratio_vs_ws',
  'a_mid_p99_ratio_vs_ws',
  'b_sat_throughput_ratio_vs_ws',
  'c_idle_rss_per_conn_ratio_vs_ws',
  'encrypt_sign_us',
  'verify_decrypt_us',
  'wrap_1000_ms',
  'e_sweep_max_stall_ms',
  'f_history_first_page_ms',
];

interface Exited {
  code: number | null;
  output: string;
}

const children = new Set<ReturnType<typeof spawn>>();

/** Runs a command in the project root, capturing stdout and stderr together. */
function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Exited & { stdout: string }> {
  return new Promise((resolve, reject) => {
    // Its own process group, so a timed-out run can be ended with the relay children it forked.
    const child = spawn(cmd, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    children.add(child);
    let output = '';
    let stdout = '';
    child.stdout.on('data', (b: Buffer) => ((stdout += b.toString()), (output += b.toString())));
    child.stderr.on('data', (b: Buffer) => (output += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      children.delete(child);
      resolve({ code, output, stdout });
    });
  });
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'umbra-bench-smoke-'));

afterAll(() => {
  for (const c of children) if (c.pid !== undefined) process.kill(-c.pid, 'SIGKILL');
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('benchmark smoke (--quick)', () => {
  it('runs every scenario and reports every required figure', { timeout: 180_000 }, async () => {
    const build = await run('npx', ['tsc', '-p', 'tsconfig.build.json']);
    expect(build.code, `tsc -p tsconfig.build.json failed:\n${build.output}`).toBe(0);

    const out = path.join(tmp, 'quick.json');
    // The bench's data folders go under the temp folder too, so nothing outlives the test.
    const bench = await run(process.execPath, ['dist/node/bench/run.js', '--quick', '--out', out], { ...process.env, BENCH_TMP: path.join(tmp, 'data') });
    expect(bench.code, `the benchmark failed:\n${bench.output}`).toBe(0);

    expect(fs.existsSync(out), `no ${out}`).toBe(true);
    const report = JSON.parse(fs.readFileSync(out, 'utf8')) as {
      quick: boolean;
      summary: Record<string, number | null>;
      scenarios: Record<string, { runs?: { system: string; figures: { errors?: number } }[] }>;
    };
    expect(report.quick).toBe(true);
    for (const key of REQUIRED_SUMMARY) {
      const v = report.summary[key];
      expect(typeof v === 'number' && Number.isFinite(v) && v > 0, `summary.${key} is ${String(v)}`).toBe(true);
    }

    const traffic = ['A-rate', 'A-mid', 'A-sat', 'B-sat', 'C-idle'];
    for (const name of traffic) {
      const runs = report.scenarios[name]?.runs;
      expect(runs?.length, `scenario ${name} has no runs`).toBeGreaterThan(0);
      for (const r of runs!) expect(r.figures.errors, `${name} ${r.system} errors`).toBe(0);
    }
    const sweep = report.scenarios.sweep as unknown as Record<string, unknown> | undefined;
    expect(sweep?.errors_sweep, 'E-sweep errors under the sweep').toBe(0);
    expect(sweep?.errors_alone, 'E-sweep errors alone').toBe(0);
    // The floor under the stall figures: the idle probe alone on the quiet machine.
    const atRest = sweep?.machine_at_rest_eld_max_ms;
    expect(typeof atRest === 'number' && Number.isFinite(atRest) && atRest > 0, `E-sweep machine_at_rest_eld_max_ms is ${String(atRest)}`).toBe(true);

    expect(bench.stdout).toMatch(/^\| scenario \| figure \|.*\|$/m);
  });
});
