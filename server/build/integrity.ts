// What lets anyone check the served web client against this checkout: the build manifest (a
// SHA-256 of every file the relay serves) and Subresource Integrity on the page's own references.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/** The manifest's file name in the built web folder, and so its path on the relay. */
export const MANIFEST_FILE = 'build-manifest.json';
export const MANIFEST_PATH = `/${MANIFEST_FILE}`;

/** Every file of a build (except the manifest itself), by the path the relay serves it at. */
export interface BuildManifest {
  /** The package version the build was made from; a label, not a check. */
  version: string;
  /** URL path (`/index.html`, `/assets/x.js`) → `sha256-<base64>` of the file's bytes. */
  files: Record<string, string>;
}

/** `sha256-<base64>`: how the manifest names a file's bytes. */
export function sha256Of(bytes: Uint8Array): string {
  return `sha256-${crypto.createHash('sha256').update(bytes).digest('base64')}`;
}

/** `sha384-<base64>`: the integrity value the page carries for a script or stylesheet. */
export function sriOf(bytes: Uint8Array): string {
  return `sha384-${crypto.createHash('sha384').update(bytes).digest('base64')}`;
}

/** Every file under `dir`, keyed by URL path and sorted, leaving out the manifest itself. */
export function readBuiltFiles(dir: string): Map<string, Buffer> {
  const found: string[] = [];
  const walk = (rel: string): void => {
    for (const entry of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const child = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) walk(child);
      else if (entry.isFile() && child !== MANIFEST_FILE) found.push(child);
    }
  };
  walk('');
  // Code-unit order, not locale order: the same on every machine.
  found.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return new Map(found.map((rel) => [`/${rel}`, fs.readFileSync(path.join(dir, rel))]));
}

export function manifestOf(files: Map<string, Uint8Array>, version: string): BuildManifest {
  const hashes: Record<string, string> = {};
  for (const [urlPath, bytes] of files) hashes[urlPath] = sha256Of(bytes);
  return { version, files: hashes };
}

/** The manifest's bytes: stable key order and layout, so equal builds give equal files. */
export function serializeManifest(manifest: BuildManifest): string {
  const files = Object.fromEntries(Object.entries(manifest.files).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return `${JSON.stringify({ version: manifest.version, files }, null, 2)}\n`;
}

/** Parses a manifest; throws with a plain message when it is not one. */
export function parseManifest(text: string): BuildManifest {
  const value: unknown = JSON.parse(text);
  if (typeof value !== 'object' || value === null) throw new Error('the manifest is not a JSON object');
  const { version, files } = value as { version?: unknown; files?: unknown };
  if (typeof version !== 'string') throw new Error('the manifest has no version string');
  if (typeof files !== 'object' || files === null || Array.isArray(files)) throw new Error('the manifest has no files object');
  const out: Record<string, string> = {};
  for (const [urlPath, hash] of Object.entries(files)) {
    if (typeof hash !== 'string' || !urlPath.startsWith('/')) throw new Error(`the manifest entry ${JSON.stringify(urlPath)} is malformed`);
    out[urlPath] = hash;
  }
  return { version, files: out };
}

/** A script or stylesheet the page loads, as written in its HTML. */
export interface PageReference {
  element: 'script' | 'link';
  /** The link's rel, lower case; null for a script. */
  rel: string | null;
  url: string;
  integrity: string | null;
  crossorigin: string | null;
  /** The tag's offsets in the HTML. */
  start: number;
  end: number;
}

/** Link types that fetch code or style, where the HTML spec honours an integrity attribute. */
const CODE_LINKS = new Set(['stylesheet', 'modulepreload', 'preload']);
const TAG_OR_COMMENT = /<!--[\s\S]*?-->|<(script|link)\b((?:[^>"']|"[^"]*"|'[^']*')*)>/gi;
const ATTRIBUTE = /([^\s"'<>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g;

function attributesOf(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of text.matchAll(ATTRIBUTE)) {
    const name = m[1]!.toLowerCase();
    if (!out.has(name)) out.set(name, m[2] ?? m[3] ?? m[4] ?? '');
  }
  return out;
}

/**
 * The `<script src>` and `<link rel=stylesheet|modulepreload|preload>` tags of a page, in order.
 * Inline scripts and other links (icons, manifests) are not references to code files.
 */
export function pageReferences(html: string): PageReference[] {
  const refs: PageReference[] = [];
  for (const m of html.matchAll(TAG_OR_COMMENT)) {
    if (!m[1]) continue;
    const element = m[1].toLowerCase() as 'script' | 'link';
    const attrs = attributesOf(m[2]!);
    const rel = element === 'link' ? (attrs.get('rel') ?? '').toLowerCase() : null;
    const url = element === 'script' ? attrs.get('src') : attrs.get('href');
    if (url === undefined) continue;
    if (rel !== null && !rel.split(/\s+/).some((r) => CODE_LINKS.has(r))) continue;
    const start = m.index;
    refs.push({
      element,
      rel,
      url,
      integrity: attrs.get('integrity') ?? null,
      crossorigin: attrs.get('crossorigin') ?? null,
      start,
      end: start + m[0].length,
    });
  }
  return refs;
}

const PAGE_ORIGIN = 'https://page.invalid';

/** The URL path a reference on the page at `pagePath` points to, or null when it is on another origin. */
export function referencedPath(url: string, pagePath = '/index.html'): string | null {
  const resolved = new URL(url, PAGE_ORIGIN + pagePath);
  return resolved.origin === PAGE_ORIGIN ? resolved.pathname : null;
}

const SRI_ALGORITHMS = ['sha256', 'sha384', 'sha512'] as const;

/**
 * Whether `bytes` satisfy an integrity attribute the way a browser decides it: among the valid
 * tokens, those of the strongest algorithm count, and any one of them matching is enough. An
 * attribute with no valid token does not match (a browser would load anything).
 */
export function integrityMatches(integrity: string, bytes: Uint8Array): boolean {
  const tokens = integrity
    .trim()
    .split(/\s+/)
    .map((t) => /^(sha256|sha384|sha512)-([A-Za-z0-9+/]+={0,2})(?:\?.*)?$/.exec(t))
    .filter((m): m is RegExpExecArray => m !== null);
  if (tokens.length === 0) return false;
  const strongest = Math.max(...tokens.map((m) => SRI_ALGORITHMS.indexOf(m[1] as (typeof SRI_ALGORITHMS)[number])));
  const algorithm = SRI_ALGORITHMS[strongest]!;
  const digest = crypto.createHash(algorithm).update(bytes).digest('base64');
  return tokens.some((m) => m[1] === algorithm && m[2] === digest);
}

/**
 * Adds `integrity` (and `crossorigin` where missing) to every script and stylesheet reference of
 * the page at `pagePath`. `fileAt` returns a built file's bytes by URL path. Throws if the page
 * loads code from another origin or a file the build does not contain: such a page cannot be
 * checked against the build.
 */
export function addIntegrity(html: string, pagePath: string, fileAt: (urlPath: string) => Uint8Array | undefined): string {
  let out = html;
  for (const ref of pageReferences(html).reverse()) {
    const urlPath = referencedPath(ref.url, pagePath);
    if (urlPath === null) throw new Error(`${pagePath} loads ${ref.url} from another origin`);
    const bytes = fileAt(urlPath);
    if (!bytes) throw new Error(`${pagePath} loads ${ref.url}, which the build does not contain`);
    if (ref.integrity !== null) {
      if (!integrityMatches(ref.integrity, bytes)) throw new Error(`${pagePath} carries a stale integrity for ${ref.url}`);
      continue;
    }
    const added = ` integrity="${sriOf(bytes)}"${ref.crossorigin === null ? ' crossorigin' : ''}`;
    // Before the closing `>` (or `/>`), after the attributes the tag already has.
    const at = out[ref.end - 2] === '/' ? ref.end - 2 : ref.end - 1;
    out = out.slice(0, at).trimEnd() + added + out.slice(at);
  }
  return out;
}
