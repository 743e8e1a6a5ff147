import { defineConfig } from 'vitest/config';

// Tests run against the TypeScript sources. Worker threads are real Node workers, which do not go
// through vitest's transform: the test processes load tsx so that a worker can start from a .ts
// module (workers inherit the parent's execArgv).
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/compile-once.ts'],
    pool: 'forks',
    execArgv: ['--import', 'tsx'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    fileParallelism: true,
    maxWorkers: 2,
  },
});
