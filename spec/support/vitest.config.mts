// Vitest, for spec/examples/testing-examples.spec.ts: runs only the file named in VITEST_FILE, and resolves
// the package to lib/ as tsconfig.json's paths do for tsx (a user's project resolves it to the
// installed package instead).
import path from 'node:path';
import { defineConfig } from 'vitest/config';

const root = path.resolve(import.meta.dirname, '..', '..');
const file = process.env.VITEST_FILE;
if (file === undefined || file === '') throw new Error('VITEST_FILE: the one file to run');

export default defineConfig({
  root,
  resolve: {
    alias: [
      { find: /^socket\.io-session-auth$/, replacement: path.join(root, 'lib', 'index.ts') },
      {
        find: /^socket\.io-session-auth\/testing$/,
        replacement: path.join(root, 'lib', 'testing', 'index.ts'),
      },
    ],
  },
  test: { include: [file], testTimeout: 30_000, hookTimeout: 30_000 },
});
