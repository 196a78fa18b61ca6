import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Real argon2id hashes and a real database: generous, but no test asserts a duration.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
