// tsc compiles only .ts: the SQL migrations and the hashing worker (plain CommonJS, loaded by path) travel as they are.
import { cpSync, rmSync } from 'node:fs';

// Replaced, not merged: a migration renamed or removed in src must not linger in dist and be applied.
rmSync('dist/kernel/db/migrations', { recursive: true, force: true });
cpSync('src/kernel/db/migrations', 'dist/kernel/db/migrations', { recursive: true });
cpSync('src/features/passwords/hash-worker.cjs', 'dist/features/passwords/hash-worker.cjs');
