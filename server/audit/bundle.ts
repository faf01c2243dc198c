// The served-bundle check: builds this checkout's web client, downloads every file of it from a
// running relay and compares the bytes, so anyone can see whether the page served is this code.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  MANIFEST_PATH,
  integrityMatches,
  manifestOf,
  pageReferences,
  parseManifest,
  readBuiltFiles,
  referencedPath,
  sha256Of,
  type BuildManifest,
} from '../build/integrity.ts';
import type { Finding } from './findings.ts';

/** One file of the local build, and what the relay served at its path. */
export interface BundleFile {
  /** URL path; `/` is the page as served at the root. */
  path: string;
  /** `sha256-…` of the local build's bytes. */
  expected: string;
  /** `sha256-…` of the bytes downloaded, or null when the relay did not serve the file. */
  served: string | null;
  match: boolean;
}

export interface BundleReport {
  /** True when no finding is an error: every file served is byte-identical to the local build. */
  ok: boolean;
  url: string;
  /** The version the local build and the relay's manifest name (labels, not checked). */
  version: string;
  servedVersion: string | null;
  findings: Finding[];
  files: BundleFile[];
}

export interface BundleOptions {
  /** Keep the check silent (no build output), so stdout carries only the report. */
  json: boolean;
  /** An existing build of this checkout (e.g. dist/web) to compare with, instead of building afresh. */
  distDir?: string;
}

const FETCH_TIMEOUT_MS = 30_000;

/** The checkout's root: the nearest folder above this module holding vite.config.ts. */
export function checkoutRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (fs.existsSync(path.join(dir, 'vite.config.ts')) && fs.existsSync(path.join(dir, 'package.json'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('cannot find the checkout (no vite.config.ts above this module)');
    dir = parent;
  }
}

/**
 * Builds the checkout's web client into `outDir` with the project's own config, exactly as
 * `npm run build` does (a separate `vite build`, NODE_ENV=production whatever the caller's).
 */
export async function buildWebClient(outDir: string, o: { quiet?: boolean } = {}): Promise<void> {
  const root = checkoutRoot();
  const vite = path.join(root, 'node_modules', 'vite', 'bin', 'vite.js');
  if (!fs.existsSync(vite)) throw new Error(`vite is not installed in ${root}; run npm ci first`);
  const args = [vite, 'build', '--outDir', outDir, '--emptyOutDir', '--logLevel', o.quiet ? 'error' : 'warn'];
  const child = spawn(process.execPath, args, {
    cwd: root,
    env: { ...process.env, NODE_ENV: 'production' },
    stdio: ['ignore', o.quiet ? 'ignore' : process.stderr, 'pipe'],
  });
  let errors = '';
  child.stderr.on('data', (d: Buffer) => {
    errors += d.toString();
    if (!o.quiet) process.stderr.write(d);
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  if (code !== 0) throw new Error(`vite build failed (exit ${code}): ${errors.trim().slice(-2000)}`);
}

interface Download {
  status: number;
  contentType: string;
  bytes: Buffer;
}

async function download(base: URL, urlPath: string): Promise<Download | null> {
  try {
    const res = await fetch(new URL(`.${urlPath}`, base), {
      cache: 'no-store',
      headers: { 'cache-control': 'no-cache' },
      signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
    });
    return { status: res.status, contentType: res.headers.get('content-type') ?? '', bytes: Buffer.from(await res.arrayBuffer()) };
  } catch {
    return null;
  }
}

/**
 * Compares the web client served at `url` with a local build of this checkout (built into a
 * temporary folder, or `opts.distDir`). The relay's manifest is never trusted: every verdict
 * compares hashes of the local build with hashes of the bytes actually downloaded. Reports files
 * missing or different, files the relay's manifest adds, and any script or stylesheet of the
 * served page that is not in the build or lacks a matching integrity attribute.
 *
 * Limit: this proves what the relay served to this request, not to anyone else.
 */
export async function checkBundle(url: string, opts: BundleOptions): Promise<BundleReport> {
  const base = new URL(url);
  if (!base.pathname.endsWith('/')) base.pathname += '/';
  const version = (JSON.parse(fs.readFileSync(path.join(checkoutRoot(), 'package.json'), 'utf8')) as { version: string }).version;

  let local: Map<string, Buffer>;
  if (opts.distDir) {
    local = readBuiltFiles(opts.distDir);
  } else {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'umbra-bundle-'));
    try {
      await buildWebClient(tmp, { quiet: opts.json });
      local = readBuiltFiles(tmp);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }
  const expected = manifestOf(local, version);
  const localIndex = local.get('/index.html');
  if (!localIndex) throw new Error('the local build has no index.html');

  const findings: Finding[] = [];
  const error = (check: string, file: string | undefined, message: string): void => {
    findings.push({ severity: 'error', check, ...(file ? { file } : {}), message });
  };
  const warning = (check: string, file: string | undefined, message: string): void => {
    findings.push({ severity: 'warning', check, ...(file ? { file } : {}), message });
  };

  // The relay's manifest: only a list of what it claims to serve, compared with the local one.
  let served: BuildManifest | null = null;
  const manifestDownload = await download(base, MANIFEST_PATH);
  if (!manifestDownload || manifestDownload.status !== 200) {
    error('bundle-manifest', MANIFEST_PATH, `the relay did not serve ${MANIFEST_PATH} (${manifestDownload ? `status ${manifestDownload.status}` : 'no answer'})`);
  } else {
    try {
      served = parseManifest(manifestDownload.bytes.toString('utf8'));
    } catch (err) {
      error('bundle-manifest', MANIFEST_PATH, `the relay's ${MANIFEST_PATH} is not a build manifest: ${(err as Error).message}`);
    }
  }
  if (served) {
    if (served.version !== version) warning('bundle-manifest', MANIFEST_PATH, `the relay's manifest names version ${served.version}, this checkout ${version}`);
    for (const [urlPath, hash] of Object.entries(served.files)) {
      const mine = expected.files[urlPath];
      if (mine === undefined) error('bundle-extra', urlPath, `the relay's manifest lists ${urlPath}, which this checkout's build does not contain`);
      else if (mine !== hash) warning('bundle-manifest', urlPath, `the relay's manifest claims ${hash} for ${urlPath}; the local build has ${mine}`);
    }
    for (const urlPath of Object.keys(expected.files)) {
      if (!(urlPath in served.files)) warning('bundle-manifest', urlPath, `the relay's manifest does not list ${urlPath}`);
    }
  }

  // Every file of the local build, and the page at the root, downloaded and hashed.
  const files: BundleFile[] = [];
  const wanted: [string, string][] = [['/', expected.files['/index.html']!], ...Object.entries(expected.files)];
  const downloads = new Map<string, Download | null>();
  for (const [urlPath] of wanted) downloads.set(urlPath, await download(base, urlPath));
  const servedPage = downloads.get('/');
  for (const [urlPath, hash] of wanted) {
    const got = downloads.get(urlPath) ?? null;
    // A relay with a page fallback answers an unknown path with its page: that is a missing file too.
    const fallback =
      got !== null && !urlPath.endsWith('.html') && urlPath !== '/' && got.contentType.startsWith('text/html') && servedPage?.bytes.equals(got.bytes);
    if (!got || got.status !== 200 || fallback) {
      files.push({ path: urlPath, expected: hash, served: null, match: false });
      const why = !got ? 'no answer' : got.status !== 200 ? `status ${got.status}` : 'the page instead of the file';
      error('bundle-missing', urlPath, `the relay did not serve ${urlPath} (${why})`);
      continue;
    }
    const servedHash = sha256Of(got.bytes);
    files.push({ path: urlPath, expected: hash, served: servedHash, match: servedHash === hash });
    if (servedHash !== hash) error('bundle-different', urlPath, `${urlPath} differs from the local build: served ${servedHash}, built ${hash}`);
  }

  // The served page's own references: each in the build, each pinned by a matching integrity.
  if (servedPage && servedPage.status === 200) {
    for (const ref of pageReferences(servedPage.bytes.toString('utf8'))) {
      const what = `${ref.element === 'script' ? 'script' : `<link rel=${ref.rel}>`} ${ref.url}`;
      const urlPath = referencedPath(ref.url, '/');
      const bytes = urlPath === null ? undefined : local.get(urlPath);
      if (!bytes) error('bundle-sri', '/', `the served page loads ${what}, which the local build does not contain`);
      else if (ref.integrity === null) error('bundle-sri', '/', `the served page loads ${what} without an integrity attribute`);
      else if (!integrityMatches(ref.integrity, bytes)) error('bundle-sri', '/', `the served page's integrity for ${what} does not match the local build`);
    }
  }

  return { ok: !findings.some((f) => f.severity === 'error'), url: base.href, version, servedVersion: served?.version ?? null, findings, files };
}
