// Builds the web client (client/web → dist/web) and configures the test runner.
import preact from '@preact/preset-vite';
import fs from 'node:fs';
import { defineConfig } from 'vitest/config';
import { buildIntegrity } from './server/build/integrity-plugin.ts';

const { version } = JSON.parse(fs.readFileSync(new URL('./package.json', import.meta.url), 'utf8')) as { version: string };

export default defineConfig({
  root: 'client/web',
  base: '/',
  // buildIntegrity adds SRI to the page and writes dist/web/build-manifest.json (docs/THREAT-MODEL.md).
  plugins: [preact(), buildIntegrity({ version })],
  build: {
    outDir: '../../dist/web',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    // libsodium's sumo build (Argon2id, raw X25519) is one ~1.3 MB module with its WebAssembly inlined.
    chunkSizeWarningLimit: 2048,
  },
  test: {
    root: '.',
    include: ['test/**/*.test.ts'],
    environment: 'node',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 2,
  },
});
