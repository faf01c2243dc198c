// A Vite plugin that finishes the web build for auditing: Subresource Integrity on every script
// and stylesheet the HTML loads, then build-manifest.json with the SHA-256 of every output file.
import fs from 'node:fs';
import path from 'node:path';
import type { Plugin } from 'vite';
import { MANIFEST_FILE, addIntegrity, manifestOf, readBuiltFiles, serializeManifest } from './integrity.ts';

/**
 * Runs after every file is written (so it hashes exactly the bytes on disk, public files
 * included). Nothing it writes depends on the time or on where the checkout or output lives.
 * Dynamic `import()` chunks are not referenced by the HTML, so only the manifest covers them.
 */
export function buildIntegrity(options: { version: string }): Plugin {
  return {
    name: 'umbra:build-integrity',
    apply: 'build',
    writeBundle: {
      order: 'post',
      sequential: true,
      handler(output) {
        const dir = output.dir;
        if (!dir) this.error('the build has no output folder to hash');
        let files = readBuiltFiles(dir);
        for (const [urlPath, bytes] of files) {
          if (!urlPath.endsWith('.html')) continue;
          const html = addIntegrity(bytes.toString('utf8'), urlPath, (p) => files.get(p));
          fs.writeFileSync(path.join(dir, urlPath), html);
        }
        files = readBuiltFiles(dir);
        fs.writeFileSync(path.join(dir, MANIFEST_FILE), serializeManifest(manifestOf(files, options.version)));
      },
    },
  };
}
