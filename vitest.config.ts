import { availableParallelism } from 'node:os';
import { relative } from 'node:path';
import { defineConfig, type TestProjectInlineConfiguration } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * Files that assert what the hashing threads get done in a given time at the service's own argon2 cost (a burst
 * the default queue absorbs whole, what an overload sheds): they run last, one at a time, with no other test file
 * taking CPU from the threads, which run at a lower priority than any other process.
 */
const ALONE = ['test/kernel/http/load-shedding.test.ts', 'test/features/passwords/hash-pool.test.ts'];

/**
 * The files that start the CLI, the service or a browser again and again, and the one that sends every route
 * hundreds of hostile requests: the longest by far. Vitest starts the files that took longest last time first; on
 * a fresh clone it has no times and goes by size, which would leave some of these to run at the end while the
 * other workers have nothing left to do. So these go first.
 */
const LONGEST = [
  'test/cli.test.ts',
  'test/docs.test.ts',
  'test/kernel/http/hostile-input.test.ts',
  'test/server.test.ts',
  'test/kernel/db/data-dir-lock.test.ts',
  'test/features/webhooks/webhook-restart.test.ts',
  'test/e2e/',
  'packages/verify/test/',
];

class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const longest = (file: TestSpecification) => LONGEST.some((path) => relative(file.project.config.root, file.moduleId).startsWith(path));
    return [...sorted.filter(longest), ...sorted.filter((file) => !longest(file))];
  }
}

const common: TestProjectInlineConfiguration['test'] = {
  // A real database, processes started per test in some files, and a few tests at real argon2 cost: generous
  // limits for a busy machine, but no test asserts a duration.
  testTimeout: 300_000,
  hookTimeout: 300_000,
  pool: 'forks',
  // A worker runs file after file in one process: the project and its dependencies are loaded, and the embedded
  // database started (test/helpers/database.ts), once per worker instead of once per file. Every test still gets
  // its own app and its own database schema; nothing in src keeps state between apps but constant tables.
  isolate: false,
};

export default defineConfig({
  test: {
    // dist/ is built once for the run: the CLI and the service are tested in their own processes as operators run them.
    globalSetup: ['test/helpers/global-setup.ts'],
    sequence: { sequencer: LongestFirst },
    projects: [
      {
        test: {
          ...common,
          name: 'tests',
          include: ['test/**/*.test.ts', 'packages/*/test/**/*.test.ts'],
          exclude: ALONE,
          // One worker per core: vitest's default leaves a core idle, which on a two-core machine runs the files one by one.
          maxWorkers: availableParallelism(),
        },
      },
      { test: { ...common, name: 'alone', include: ALONE, maxWorkers: 1, sequence: { groupOrder: 1 } } },
    ],
  },
});
