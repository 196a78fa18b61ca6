import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'packages/*/test/**/*.test.ts'],
    // dist/ is built once for the run: the CLI and the service are tested in their own processes as operators run them.
    globalSetup: ['test/helpers/global-setup.ts'],
    // A real database, processes started per test in some files, and a few tests at real argon2 cost: generous
    // limits for a busy machine, but no test asserts a duration.
    testTimeout: 300_000,
    hookTimeout: 300_000,
    pool: 'forks',
    // One worker per core: vitest's default leaves a core idle, which on a two-core machine runs the files one by one.
    maxWorkers: availableParallelism(),
    // A worker runs file after file in one process: the project and its dependencies are loaded, and the embedded
    // database started (test/helpers/database.ts), once per worker instead of once per file. Every test still gets
    // its own app and its own database schema; nothing in src keeps state between apps but constant tables.
    isolate: false,
  },
});
