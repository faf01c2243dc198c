// The served-bundle check over real HTTP: a relay serving this checkout's build passes; one byte
// changed, a file dropped or a file added is reported; two builds are byte-identical; and a real
// Chromium refuses a script whose bytes no longer match the page's integrity attribute.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MANIFEST_FILE, MANIFEST_PATH, integrityMatches, pageReferences, parseManifest, readBuiltFiles, referencedPath, sha256Of } from '../../server/build/integrity.ts';
import { buildWebClient, checkBundle, checkoutRoot } from '../../server/audit/bundle.ts';
import { launchBrowser, openUser } from '../helpers/browser.ts';
import { startTestRelay, type TestRelay } from '../helpers/relay.ts';

const BUILD_MS = 120_000;

let work: string;
let built: string;
const relays: TestRelay[] = [];

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'umbra-bundle-test-'));
  built = path.join(work, 'built');
  await buildWebClient(built, { quiet: true });
}, BUILD_MS);

afterAll(async () => {
  for (const relay of relays) await relay.stop();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

async function serve(webDir: string): Promise<TestRelay> {
  const relay = await startTestRelay({ webDir });
  relays.push(relay);
  return relay;
}

/** A copy of the build to tamper with. */
function copyOfBuild(name: string): string {
  const dir = path.join(work, name);
  fs.cpSync(built, dir, { recursive: true });
  return dir;
}

/** The URL path of the module script the page loads first. */
function entryScript(dir: string): string {
  const html = fs.readFileSync(path.join(dir, 'index.html'), 'utf8');
  const script = pageReferences(html).find((r) => r.element === 'script');
  if (!script) throw new Error('the built page loads no script');
  return referencedPath(script.url)!;
}

describe('the build pins what it serves', () => {
  it('lists every file with its SHA-256, and the page carries integrity for each script and stylesheet', () => {
    const manifest = parseManifest(fs.readFileSync(path.join(built, MANIFEST_FILE), 'utf8'));
    const files = readBuiltFiles(built);
    expect(Object.keys(manifest.files)).toEqual([...files.keys()]);
    expect(Object.keys(manifest.files)).toContain('/index.html');
    for (const [urlPath, bytes] of files) expect(manifest.files[urlPath], urlPath).toBe(sha256Of(bytes));

    const refs = pageReferences(files.get('/index.html')!.toString('utf8'));
    expect(refs.map((r) => r.element).sort()).toEqual(['link', 'script']);
    for (const ref of refs) {
      const bytes = files.get(referencedPath(ref.url)!);
      expect(bytes, ref.url).toBeDefined();
      expect(ref.integrity, ref.url).toMatch(/^sha384-/);
      expect(integrityMatches(ref.integrity!, bytes!), ref.url).toBe(true);
      expect(ref.crossorigin, ref.url).not.toBeNull();
    }
  });

  it('gives the same bytes when built again elsewhere, with no path of the checkout or the output in them', { timeout: BUILD_MS }, async () => {
    const again = path.join(work, 'again');
    await buildWebClient(again, { quiet: true });
    expect(fs.readFileSync(path.join(again, MANIFEST_FILE), 'utf8')).toBe(fs.readFileSync(path.join(built, MANIFEST_FILE), 'utf8'));
    const first = readBuiltFiles(built);
    const second = readBuiltFiles(again);
    expect([...second.keys()]).toEqual([...first.keys()]);
    for (const [urlPath, bytes] of first) {
      expect(second.get(urlPath)!.equals(bytes), urlPath).toBe(true);
      for (const leak of [checkoutRoot(), work]) expect(bytes.includes(leak), `${urlPath} mentions ${leak}`).toBe(false);
    }
  });
});

describe('checkBundle against a running relay', () => {
  it('passes a relay serving this build, and the relay serves the manifest uncached', async () => {
    const relay = await serve(built);
    const res = await fetch(new URL(MANIFEST_PATH, relay.url));
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-cache');
    expect(Buffer.from(await res.arrayBuffer()).equals(fs.readFileSync(path.join(built, MANIFEST_FILE)))).toBe(true);

    const report = await checkBundle(relay.url, { json: true, distDir: built });
    expect(report.findings).toEqual([]);
    expect(report.ok).toBe(true);
    const manifest = parseManifest(fs.readFileSync(path.join(built, MANIFEST_FILE), 'utf8'));
    expect(report.files.map((f) => f.path)).toEqual(['/', ...Object.keys(manifest.files)]);
    for (const file of report.files) {
      expect(file.match, file.path).toBe(true);
      expect(file.served).toBe(file.expected);
    }
  });

  it('builds the checkout itself when given no build', { timeout: BUILD_MS }, async () => {
    const relay = await serve(built);
    const report = await checkBundle(relay.url, { json: true });
    expect(report.findings).toEqual([]);
    expect(report.ok).toBe(true);
  });

  it('reports a script with one byte changed, with both hashes, though the relay still claims the original', async () => {
    const tampered = copyOfBuild('one-byte');
    const target = entryScript(tampered);
    const file = path.join(tampered, target);
    const bytes = fs.readFileSync(file);
    const original = sha256Of(bytes);
    const at = Math.floor(bytes.length / 2);
    bytes[at] = bytes[at] === 0x20 ? 0x0a : 0x20;
    fs.writeFileSync(file, bytes);
    const changed = sha256Of(bytes);
    const relay = await serve(tampered);

    const report = await checkBundle(relay.url, { json: true, distDir: built });
    expect(report.ok).toBe(false);
    expect(report.findings).toEqual([{ severity: 'error', check: 'bundle-different', file: target, message: expect.stringContaining(changed) }]);
    expect(report.findings[0]!.message).toContain(original);
    expect(report.files.filter((f) => !f.match)).toEqual([{ path: target, expected: original, served: changed, match: false }]);
  });

  it('reports a file the relay does not serve and one its manifest adds', async () => {
    const changed = copyOfBuild('missing-and-extra');
    const stylesheet = pageReferences(fs.readFileSync(path.join(changed, 'index.html'), 'utf8')).find((r) => r.element === 'link')!;
    const dropped = referencedPath(stylesheet.url)!;
    fs.rmSync(path.join(changed, dropped));
    fs.writeFileSync(path.join(changed, 'assets', 'extra.js'), 'console.log("not from this checkout");\n');
    const manifestFile = path.join(changed, MANIFEST_FILE);
    const manifest = parseManifest(fs.readFileSync(manifestFile, 'utf8'));
    manifest.files['/assets/extra.js'] = sha256Of(fs.readFileSync(path.join(changed, 'assets', 'extra.js')));
    fs.writeFileSync(manifestFile, JSON.stringify(manifest));
    const relay = await serve(changed);

    const report = await checkBundle(relay.url, { json: true, distDir: built });
    expect(report.ok).toBe(false);
    expect(report.findings.map((f) => [f.check, f.file])).toEqual([
      ['bundle-extra', '/assets/extra.js'],
      ['bundle-missing', dropped],
    ]);
    expect(report.files.find((f) => f.path === dropped)).toMatchObject({ served: null, match: false });
  });

  it('reports a served page whose script has lost its integrity attribute', async () => {
    const changed = copyOfBuild('no-integrity');
    const page = path.join(changed, 'index.html');
    const html = fs.readFileSync(page, 'utf8');
    const script = pageReferences(html).find((r) => r.element === 'script')!;
    const tag = html.slice(script.start, script.end);
    fs.writeFileSync(page, html.replace(tag, tag.replace(/ integrity="[^"]*"/, '')));
    const relay = await serve(changed);

    const report = await checkBundle(relay.url, { json: true, distDir: built });
    expect(report.ok).toBe(false);
    expect(report.findings.map((f) => [f.check, f.file])).toEqual([
      ['bundle-different', '/'],
      ['bundle-different', '/index.html'],
      ['bundle-sri', '/'],
    ]);
    expect(report.findings[2]!.message).toContain('without an integrity attribute');
  });
});

describe('Subresource Integrity in the browser', () => {
  it('Chromium refuses the changed script, so the page does not start', { timeout: 60_000 }, async () => {
    const tampered = copyOfBuild('browser');
    const target = entryScript(tampered);
    const file = path.join(tampered, target);
    fs.writeFileSync(file, Buffer.concat([fs.readFileSync(file), Buffer.from('\n')]));
    const relay = await serve(tampered);
    const browser = await launchBrowser();
    try {
      const user = await openUser(browser);
      await user.page.goto(relay.url);
      await expect.poll(() => user.problems.join('\n'), { timeout: 10_000 }).toMatch(/integrity/i);
      expect(await user.page.locator('#app').innerHTML()).toBe('');
    } finally {
      await browser.close();
    }
  });
});
