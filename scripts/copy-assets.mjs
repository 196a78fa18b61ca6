// tsc compiles only .ts: the SQL migrations and the hashing worker (plain CommonJS, loaded by path) travel as they are.
// Only what differs is written, and nothing current is ever absent: a build that finds dist/ up to date (every test
// run starts with one, and so does `npm start`) must not pull a migration from under a process reading dist/.
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

function sync(from, to) {
  let same = false;
  try {
    same = readFileSync(from).equals(readFileSync(to));
  } catch {
    // Not there yet.
  }
  if (!same) copyFileSync(from, to);
}

mkdirSync('dist/kernel/db/migrations', { recursive: true });
const migrations = readdirSync('src/kernel/db/migrations');
for (const name of migrations) sync(join('src/kernel/db/migrations', name), join('dist/kernel/db/migrations', name));
// A migration renamed or removed in src must not linger in dist and be applied.
for (const name of readdirSync('dist/kernel/db/migrations')) {
  if (!migrations.includes(name)) rmSync(join('dist/kernel/db/migrations', name), { recursive: true, force: true });
}
mkdirSync('dist/features/passwords', { recursive: true });
sync('src/features/passwords/hash-worker.cjs', 'dist/features/passwords/hash-worker.cjs');
