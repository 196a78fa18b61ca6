// tsc compiles only .ts; the SQL migrations must travel with the build.
import { cpSync } from 'node:fs';

cpSync('src/db/migrations', 'dist/db/migrations', { recursive: true });
