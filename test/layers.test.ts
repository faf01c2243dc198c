// The folder says the layer: a static check over shared/, server/ and client/ that fails on an
// import that crosses a layer boundary, naming the file and line.
import { builtinModules } from 'node:module';
import { readFileSync, readdirSync } from 'node:fs';
import { posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SOURCE_DIRS = ['shared', 'server', 'client'];
const SOURCE_FILE = /\.(?:ts|tsx|mts|cts|js|jsx|mjs|cjs)$/;

/** Packages shared/ must never reach: Node, the DOM framework, the relay's stack, client storage. */
const SHARED_FORBIDDEN_PACKAGES = new Set(['ws', 'hono', 'better-sqlite3', 'kysely', 'preact', 'idb-keyval', 'pino']);
const SHARED_FORBIDDEN_SCOPES = ['@hono/', '@preact/'];
/** The one piece of Preact the DOM-free SDK may use. */
const SDK_ALLOWED_PREACT = new Set(['@preact/signals-core']);
const NODE_BUILTINS = new Set(builtinModules);

interface ImportRef {
  specifier: string;
  line: number;
}

interface Violation {
  file: string;
  line: number;
  message: string;
}

// ---- reading the source ------------------------------------------------------------------

/**
 * Blanks comments (so a comment that mentions `from 'ws'` is not an import) and, in `bare`, the
 * contents of strings, templates and regular expressions too (so "window" in a string is not a
 * use of the global). Newlines are kept, so offsets map to the same lines.
 */
function stripSource(src: string): { code: string; bare: string } {
  const code: string[] = [];
  const bare: string[] = [];
  const blank = (c: string): string => (c === '\n' ? '\n' : ' ');
  const emit = (c: string, keepInCode: boolean, keepInBare: boolean): void => {
    code.push(keepInCode ? c : blank(c));
    bare.push(keepInBare ? c : blank(c));
  };
  /** Brace depth at which each open `${` returns to its template. */
  const templates: number[] = [];
  let depth = 0;
  let lastSignificant = '';
  let i = 0;
  const regexMayStart = (): boolean =>
    lastSignificant === '' ||
    /[(,=:[!&|?{};+\-*%<>~^]/.test(lastSignificant) ||
    /\b(?:return|typeof|case|do|else|in|of|void|yield|await)$/.test(src.slice(Math.max(0, i - 12), i).trimEnd());

  const readQuoted = (quote: string): void => {
    emit(src[i]!, true, true);
    i++;
    while (i < src.length && src[i] !== quote && src[i] !== '\n') {
      if (src[i] === '\\' && i + 1 < src.length) {
        emit(src[i]!, true, false);
        i++;
      }
      emit(src[i]!, true, false);
      i++;
    }
    if (i < src.length) {
      emit(src[i]!, true, true);
      i++;
    }
  };

  /** Reads template text up to its closing backtick or the next `${`. */
  const readTemplateText = (): void => {
    while (i < src.length) {
      const c = src[i]!;
      if (c === '\\' && i + 1 < src.length) {
        emit(c, true, false);
        emit(src[i + 1]!, true, false);
        i += 2;
      } else if (c === '`') {
        emit(c, true, true);
        i++;
        return;
      } else if (c === '$' && src[i + 1] === '{') {
        emit('$', true, true);
        emit('{', true, true);
        i += 2;
        templates.push(depth);
        depth++;
        return;
      } else {
        emit(c, true, false);
        i++;
      }
    }
  };

  while (i < src.length) {
    const c = src[i]!;
    const next = src[i + 1];
    if (c === '/' && next === '/') {
      while (i < src.length && src[i] !== '\n') emit(src[i++]!, false, false);
    } else if (c === '/' && next === '*') {
      const end = src.indexOf('*/', i + 2);
      const stop = end < 0 ? src.length : end + 2;
      while (i < stop) emit(src[i++]!, false, false);
    } else if (c === "'" || c === '"') {
      readQuoted(c);
      lastSignificant = 'x';
    } else if (c === '`') {
      emit(c, true, true);
      i++;
      readTemplateText();
      lastSignificant = 'x';
    } else if (c === '/' && regexMayStart()) {
      emit(c, true, true);
      i++;
      let inClass = false;
      while (i < src.length && src[i] !== '\n' && (inClass || src[i] !== '/')) {
        if (src[i] === '\\' && i + 1 < src.length) emit(src[i++]!, true, false);
        else if (src[i] === '[') inClass = true;
        else if (src[i] === ']') inClass = false;
        emit(src[i++]!, true, false);
      }
      if (i < src.length && src[i] === '/') emit(src[i++]!, true, true);
      lastSignificant = 'x';
    } else {
      if (c === '{') depth++;
      if (c === '}') {
        depth--;
        if (templates.length > 0 && templates[templates.length - 1] === depth) {
          templates.pop();
          emit(c, true, true);
          i++;
          readTemplateText();
          lastSignificant = 'x';
          continue;
        }
      }
      emit(c, true, true);
      i++;
      if (!/\s/.test(c)) lastSignificant = c;
    }
  }
  return { code: code.join(''), bare: bare.join('') };
}

function lineAt(text: string, offset: number): number {
  let line = 1;
  for (let k = 0; k < offset; k++) if (text.charCodeAt(k) === 10) line++;
  return line;
}

/** Every module a file pulls in: import/export … from, side-effect imports, import(), require(). */
function findImports(src: string): { imports: ImportRef[]; unchecked: number[] } {
  const { code, bare } = stripSource(src);
  // A keyword counts only where it is code, not inside a string or template text.
  const isCode = (offset: number, keyword: string): boolean => bare.startsWith(keyword, offset);
  const imports: ImportRef[] = [];
  const patterns = [
    /\b(?:import|export)\s+(?:type\s+)?[^'";]*?\bfrom\s*(['"])([^'"\n]+)\1/g,
    /\bimport\s*(['"])([^'"\n]+)\1/g,
    /\bimport\s*\(\s*(['"`])([^'"`\n]+)\1\s*[,)]/g,
    /\brequire\s*\(\s*(['"`])([^'"`\n]+)\1\s*\)/g,
  ];
  for (const re of patterns) {
    for (const m of code.matchAll(re)) {
      if (!isCode(m.index, m[0].slice(0, 6))) continue;
      imports.push({ specifier: m[2]!, line: lineAt(code, m.index + m[0].length - 1) });
    }
  }
  // import(expr) with a computed specifier cannot be checked, so it is itself a violation.
  const unchecked: number[] = [];
  for (const m of code.matchAll(/\bimport\s*\(\s*(?!['"`][^'"`\n]+['"`]\s*[,)])/g)) {
    if (isCode(m.index, 'import')) unchecked.push(lineAt(code, m.index));
  }
  imports.sort((a, b) => a.line - b.line);
  return { imports, unchecked };
}

// ---- the rules ---------------------------------------------------------------------------

type Layer = 'shared' | 'server' | 'client/sdk' | 'client/web' | 'client' | 'other';

function layerOf(path: string): Layer {
  if (path.startsWith('shared/')) return 'shared';
  if (path.startsWith('server/')) return 'server';
  if (path.startsWith('client/sdk/')) return 'client/sdk';
  if (path.startsWith('client/web/')) return 'client/web';
  if (path.startsWith('client/')) return 'client';
  return 'other';
}

function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

function isNodeBuiltin(specifier: string): boolean {
  return specifier.startsWith('node:') || NODE_BUILTINS.has(specifier) || NODE_BUILTINS.has(packageName(specifier));
}

/** Why `file` may not import `specifier`, or null when it may. */
function importProblem(file: string, specifier: string): string | null {
  const from = layerOf(file);
  const relative = specifier.startsWith('.') || specifier.startsWith('/');
  const target = relative ? posix.normalize(posix.join(posix.dirname(file), specifier)) : null;
  const to = target === null ? null : layerOf(target);
  const pkg = relative ? null : packageName(specifier);

  if (from === 'shared') {
    if (target !== null && to !== 'shared') return `shared/ imports ${target} outside shared/`;
    if (pkg !== null && isNodeBuiltin(specifier)) return `shared/ imports the Node built-in ${specifier}`;
    if (pkg !== null && (SHARED_FORBIDDEN_PACKAGES.has(pkg) || SHARED_FORBIDDEN_SCOPES.some((s) => pkg.startsWith(s)))) {
      return `shared/ imports ${specifier}, which is not allowed in code shared by browser and Node`;
    }
  }
  if ((from === 'client' || from === 'client/sdk' || from === 'client/web') && to === 'server') return `client/ imports ${target} from server/`;
  if (from === 'server' && (to === 'client' || to === 'client/sdk' || to === 'client/web')) return `server/ imports ${target} from client/`;
  if (from === 'client/sdk') {
    if (to === 'client/web') return `client/sdk/ imports ${target} from the UI (client/web/)`;
    if (pkg !== null && (pkg === 'preact' || (pkg.startsWith('@preact/') && !SDK_ALLOWED_PREACT.has(pkg)))) {
      return `client/sdk/ imports ${specifier}; the SDK stays DOM-free (only @preact/signals-core is allowed)`;
    }
  }
  return null;
}

/** Uses of DOM globals in code that must run without a DOM. */
function domProblems(file: string, src: string): Violation[] {
  const layer = layerOf(file);
  if (layer !== 'client/sdk' && layer !== 'shared') return [];
  const { bare } = stripSource(src);
  const out: Violation[] = [];
  for (const m of bare.matchAll(/(?<![.\w$])(document|window)(?![\w$])/g)) {
    out.push({ file, line: lineAt(bare, m.index), message: `${layer}/ uses the DOM global \`${m[1]}\`` });
  }
  return out;
}

/** Every layer violation in one file, given its path from the repository root. */
function checkFile(file: string, src: string): Violation[] {
  const { imports, unchecked } = findImports(src);
  const out: Violation[] = [];
  for (const ref of imports) {
    const problem = importProblem(file, ref.specifier);
    if (problem !== null) out.push({ file, line: ref.line, message: problem });
  }
  for (const line of unchecked) out.push({ file, line, message: 'import() with a computed specifier cannot be checked' });
  out.push(...domProblems(file, src));
  return out.sort((a, b) => a.line - b.line);
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(posix.join(ROOT, dir), { withFileTypes: true })) {
    const path = posix.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'node_modules') out.push(...sourceFiles(path));
    } else if (SOURCE_FILE.test(entry.name)) {
      out.push(path);
    }
  }
  return out;
}

const format = (v: Violation): string => `${v.file}:${v.line}: ${v.message}`;

// ---- the check itself --------------------------------------------------------------------

describe('layer boundaries in the source tree', () => {
  const files = SOURCE_DIRS.flatMap(sourceFiles);

  it('finds the source files of every layer', () => {
    for (const layer of ['shared/', 'server/', 'client/sdk/', 'client/web/']) {
      expect(files.some((f) => f.startsWith(layer)), layer).toBe(true);
    }
    // The scan reads real imports: shared/index.ts re-exports its modules.
    const shared = findImports(readFileSync(posix.join(ROOT, 'shared/index.ts'), 'utf8')).imports.map((r) => r.specifier);
    expect(shared).toContain('./crypto/index.ts');
  });

  it('no file imports across a layer boundary or uses the DOM where it must not', () => {
    const violations = files.flatMap((f) => checkFile(f, readFileSync(posix.join(ROOT, f), 'utf8')));
    expect(violations.map(format)).toEqual([]);
  });
});

describe('the layer checker', () => {
  const messages = (file: string, src: string): string[] => checkFile(file, src).map(format);

  it('flags forbidden packages and Node built-ins in shared/, with file and line', () => {
    const src = [
      "import { z } from 'zod';", // 1: allowed
      "import { readFileSync } from 'node:fs';", // 2
      "import WebSocket from 'ws';", // 3
      'import {', // 4
      '  Hono,', // 5
      "} from 'hono';", // 6: reported where the specifier is
      "import type { Kysely } from 'kysely';", // 7
      "export { h } from 'preact';", // 8
      "import { signal } from '@preact/signals-core';", // 9
      "import 'pino';", // 10
      "const db = await import('better-sqlite3');", // 11
      "import { get } from 'idb-keyval';", // 12
      "import { serve } from '@hono/node-server';", // 13
      "import path from 'path';", // 14
      "const fs = require('fs/promises');", // 15
    ].join('\n');
    const lines = checkFile('shared/bad.ts', src).map((v) => v.line);
    expect(lines).toEqual([2, 3, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
    expect(messages('shared/bad.ts', src)[0]).toBe('shared/bad.ts:2: shared/ imports the Node built-in node:fs');
  });

  it('flags shared/ reaching into server/, client/ or anywhere outside shared/', () => {
    expect(messages('shared/crypto/x.ts', "import { app } from '../../server/app.ts';")).toEqual([
      'shared/crypto/x.ts:1: shared/ imports server/app.ts outside shared/',
    ]);
    expect(checkFile('shared/x.ts', "export * from '../client/sdk/index.ts';")).toHaveLength(1);
    expect(checkFile('shared/x.ts', "import { t } from '../test/vectors/format.ts';")).toHaveLength(1);
    expect(checkFile('shared/crypto/x.ts', "import { CTX } from '../protocol.ts';\nimport { b } from './bytes.ts';")).toEqual([]);
  });

  it('flags client/ importing server/ and server/ importing client/', () => {
    expect(messages('client/web/app.tsx', "import { store } from '../../server/store.ts';")).toEqual([
      'client/web/app.tsx:1: client/ imports server/store.ts from server/',
    ]);
    expect(checkFile('client/sdk/x.ts', "const s = import('../../server/relay.ts');")).toHaveLength(1);
    expect(messages('server/routes/x.ts', "\n\nimport { UmbraClient } from '../../client/sdk/index.ts';")).toEqual([
      'server/routes/x.ts:3: server/ imports client/sdk/index.ts from client/',
    ]);
    expect(checkFile('server/app.ts', "import { CTX } from '../shared/index.ts';")).toEqual([]);
    expect(checkFile('client/web/main.tsx', "import { UmbraClient } from '../sdk/index.ts';\nimport { render } from 'preact';")).toEqual([]);
  });

  it('keeps client/sdk/ free of the UI, of Preact and of the DOM', () => {
    expect(checkFile('client/sdk/x.ts', "import { App } from '../web/main.tsx';")).toHaveLength(1);
    expect(checkFile('client/sdk/x.ts', "import { useState } from 'preact/hooks';")).toHaveLength(1);
    expect(checkFile('client/sdk/x.ts', "import { signal } from '@preact/signals';")).toHaveLength(1);
    expect(checkFile('client/sdk/x.ts', "import { signal } from '@preact/signals-core';")).toEqual([]);
    expect(messages('client/sdk/x.ts', 'const a = 1;\nconst el = document.body;')).toEqual(['client/sdk/x.ts:2: client/sdk/ uses the DOM global `document`']);
    expect(checkFile('client/sdk/x.ts', 'window.addEventListener("online", f);')).toHaveLength(1);
    expect(checkFile('client/web/x.tsx', 'window.addEventListener("online", f);')).toEqual([]);
  });

  it('is not fooled by comments, strings, regular expressions or templates', () => {
    const src = [
      "// shared/ imports nothing from 'ws' or from 'node:fs'",
      "/* import x from 'hono'; */",
      "const note = \"no document here, import('ws') neither\";",
      "const re = /['\"]window/;",
      "const t = `window ${a + `b${c}`} from 'ws'`;",
      "const obj = { a: 1 }; const y = x.window;",
      "import { ok } from './ok.ts';",
    ].join('\n');
    expect(checkFile('shared/comments.ts', src)).toEqual([]);
    // …but the interpolated expression in a template is code.
    expect(checkFile('shared/t.ts', 'const t = `${window.location}`;')).toHaveLength(1);
    expect(checkFile('shared/t.ts', 'const t = `a ${b + `${document.title}`} c`;')).toHaveLength(1);
    expect(checkFile('shared/t.ts', 'const t = `${x}`; import { y } from "ws";')).toHaveLength(1);
    expect(checkFile('shared/t.ts', "const m = await import(`node:crypto`);")).toHaveLength(1);
  });

  it('refuses import() with a computed specifier', () => {
    expect(messages('shared/x.ts', "const name = 'ws';\nconst m = await import(name);")).toEqual([
      'shared/x.ts:2: import() with a computed specifier cannot be checked',
    ]);
  });
});
