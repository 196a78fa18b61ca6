// tsc compiles only .ts: the SQL migrations and the hashing worker (plain CommonJS, loaded by path) travel as they are.
import { cpSync } from 'node:fs';

cpSync('src/db/migrations', 'dist/db/migrations', { recursive: true });
cpSync('src/auth/hash-worker.cjs', 'dist/auth/hash-worker.cjs');
