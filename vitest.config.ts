import {defineConfig} from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Two cores: files run in parallel across two workers; heavy e2e files keep their own state in temp dirs.
    pool: 'forks',
    maxWorkers: 2,
  },
});
