import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'packages/*/test/**/*.test.ts'],
    // dist/ is built once for the run: the CLI and the service are tested in their own processes as operators run them.
    globalSetup: ['test/helpers/build.ts'],
    // A real database, processes started per test in some files, and a few tests at real argon2 cost: generous
    // limits for a busy machine, but no test asserts a duration.
    testTimeout: 300_000,
    hookTimeout: 300_000,
    pool: 'forks',
  },
});
