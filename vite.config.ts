// Builds the web client (client/web → dist/web) and configures the test runner.
import preact from '@preact/preset-vite';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  root: 'client/web',
  base: '/',
  plugins: [preact()],
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
