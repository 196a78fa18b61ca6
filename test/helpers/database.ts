import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { cp, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { PGlite } from '@electric-sql/pglite';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pg from 'pg';
import { pino } from 'pino';
import { classifyingErrors, type Database } from '../../src/kernel/db/database.js';
import { openEmbedded } from '../../src/kernel/db/embedded.js';
import { loadMigrations, migrate } from '../../src/kernel/db/migrate.js';
import { openPostgres } from '../../src/kernel/db/postgres.js';

export const silentLog = pino({ level: 'silent' });

/** A logger at `info` whose JSON lines are kept, parsed, for a test to look at. */
export function recordingLog(): { log: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { log: pino({ level: 'info' }, destination), lines };
}

/**
 * Set (by .ci/run) to run against a real PostgreSQL server; unset, each test worker (a process that runs file after
 * file, see vitest.config.ts) gets one in-memory PGlite, and every test database is a schema in it (see
 * `embeddedSchema`).
 */
export const TEST_DATABASE_URL = process.env['TEST_DATABASE_URL'];

export interface TestDatabase {
  db: Database;
  /** Settings that point the service at this database. */
  env: Record<string, string>;
  /** Another connection pool to the same database, as a second instance would open (PostgreSQL only). */
  openAnother?: () => Database;
  drop(): Promise<void>;
}

/** A URL whose connections live in `schema`: every test file gets its own, so files run in parallel unseen by each other. */
export function urlWithSchema(baseUrl: string, schema: string): string {
  const url = new URL(baseUrl);
  url.searchParams.set('options', `-c search_path=${schema}`);
  return url.toString();
}

export async function withAdminClient<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client(TEST_DATABASE_URL);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** The worker's one embedded database: starting PGlite costs seconds, a schema costs milliseconds. */
let sharedEmbedded: Promise<Database> | undefined;

// Its package.json is not among its exports: read from where npm installs it.
const PGLITE_VERSION = (
  JSON.parse(readFileSync(new URL('../../node_modules/@electric-sql/pglite/package.json', import.meta.url), 'utf8')) as { version: string }
).version;

/** Where the empty cluster is kept for every run (one per PGlite version): `.tar` as PGlite dumps it, `.d` on disk. */
const EMPTY_CLUSTER = join(tmpdir(), `user-auth-test-cluster-${PGLITE_VERSION}`);

/**
 * An empty cluster as PGlite dumps it: loading it skips initdb, the larger part of PGlite's start. Made once and
 * kept in the temporary folder, written to a new name and then renamed, so that a process starting at the same
 * moment as the one writing it never reads half a dump.
 */
async function emptyClusterDump(): Promise<Blob> {
  const path = `${EMPTY_CLUSTER}.tar`;
  try {
    return new Blob([await readFile(path)]);
  } catch {
    const pglite = await PGlite.create('memory://');
    const dump = await pglite.dumpDataDir('none');
    await pglite.close();
    const partial = `${path}.${process.pid}`;
    await writeFile(partial, Buffer.from(await dump.arrayBuffer()));
    await rename(partial, path);
    return dump;
  }
}

/** The same empty cluster as a closed data folder, which PGlite opens as an existing database. */
async function emptyClusterFolder(): Promise<string> {
  return clusterFolder(`${EMPTY_CLUSTER}.d`, async (partial) => (await openEmbedded(partial, await emptyClusterDump())).close());
}

/**
 * The cluster folder at `path`, made by `make` in a folder of a new name and then renamed, so that a process
 * starting at the same moment as the one making it never opens half a cluster.
 */
async function clusterFolder(path: string, make: (partial: string) => Promise<void>): Promise<string> {
  if (existsSync(join(path, 'PG_VERSION'))) return path;
  const partial = await mkdtemp(`${path}.`);
  await make(partial);
  try {
    await rename(partial, path);
  } catch (error) {
    // Another process made it first: theirs is the same.
    if (!existsSync(join(path, 'PG_VERSION'))) throw error;
    await rm(partial, { recursive: true, force: true });
  }
  return path;
}

/**
 * Where the migrated cluster is kept: one per PGlite version and per content of the migrations, so that a changed
 * or added migration never finds the folder an earlier one left.
 */
const MIGRATED_CLUSTER = join(
  tmpdir(),
  `user-auth-test-migrated-${PGLITE_VERSION}-${createHash('sha256')
    .update(JSON.stringify(loadMigrations()))
    .digest('hex')
    .slice(0, 16)}.d`,
);

/**
 * The empty cluster with every migration applied, as a closed data folder: for a process under test whose first
 * start is not what the test is about.
 */
async function migratedClusterFolder(): Promise<string> {
  return clusterFolder(MIGRATED_CLUSTER, async (partial) => {
    await cp(await emptyClusterFolder(), partial, { recursive: true });
    const db = await openEmbedded(partial);
    try {
      await migrate(db);
    } finally {
      await db.close();
    }
  });
}

/** Vitest's global setup: the empty cluster in both forms, and the migrated one, made once before any test file needs them. */
export async function prepareClusters(): Promise<void> {
  await emptyClusterFolder();
  await migratedClusterFolder();
}

/** Whose search_path the shared connection has now, and the queue every schema's statements wait in. */
let activeSchema: string | undefined;
let queue: Promise<unknown> = Promise.resolve();

/**
 * A Database that is one schema of the worker's shared PGlite. PGlite has a single connection, so each call first
 * points its search_path at this schema, and calls queue one after the other (as they would on PGlite anyway),
 * which keeps another schema's statement from slipping in between. The app sees the same `Database` contract
 * and the same SQL as on a PGlite of its own.
 */
function embeddedSchema(shared: Database, schema: string): Database {
  let closed = false;
  const run = <T>(call: () => Promise<T>): Promise<T> => {
    const turn = queue.then(async () => {
      // The message a closed PGlite gives, classified the same way.
      if (closed) return classifyingErrors(() => Promise.reject(new Error('PGlite is closed')));
      if (activeSchema !== schema) {
        await shared.exec(`SET search_path TO ${schema}`);
        activeSchema = schema;
      }
      return call();
    });
    queue = turn.catch(() => undefined);
    return turn;
  };
  return {
    kind: 'embedded',
    query: (text, params) => run(() => shared.query(text, params)),
    exec: (sql) => run(() => shared.exec(sql)),
    transaction: (fn) => run(() => shared.transaction(fn)),
    close: async () => {
      closed = true;
    },
  };
}

export async function createTestDatabase(setup?: string): Promise<TestDatabase> {
  const schema = `test_${randomBytes(6).toString('hex')}`;
  if (TEST_DATABASE_URL === undefined) {
    sharedEmbedded ??= emptyClusterDump().then((dump) => openEmbedded('memory://', dump));
    const shared = await sharedEmbedded;
    await shared.exec(`CREATE SCHEMA ${schema}`);
    const db = embeddedSchema(shared, schema);
    if (setup) await db.exec(setup);
    return {
      db,
      env: { DATA_DIR: 'memory://' },
      drop: async () => {
        await db.close();
        await shared.exec(`DROP SCHEMA ${schema} CASCADE`);
        if (activeSchema === schema) activeSchema = undefined;
      },
    };
  }
  await withAdminClient(async (client) => {
    await client.query(`CREATE SCHEMA ${schema}`);
    if (setup) await client.query(`SET search_path = ${schema}; ${setup}`);
  });
  const url = urlWithSchema(TEST_DATABASE_URL, schema);
  const settings = { url, poolSize: 10, connectTimeoutMs: 5000, queryTimeoutMs: 10_000 };
  const db = openPostgres(settings, silentLog);
  const others: Database[] = [];
  return {
    db,
    env: { DATABASE_URL: url },
    openAnother: () => {
      const other = openPostgres(settings, silentLog);
      others.push(other);
      return other;
    },
    drop: async () => {
      await Promise.all([db, ...others].map((d) => d.close()));
      await withAdminClient((client) => client.query(`DROP SCHEMA ${schema} CASCADE`));
    },
  };
}

/**
 * A new, empty embedded-database folder for a process under test (the CLI, the server) to open: a copy of the
 * empty cluster, which skips initdb, seconds of work. Nothing is migrated: the folder is what a first start would see.
 */
export async function freshDataDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  await cp(await emptyClusterFolder(), dir, { recursive: true });
  return dir;
}

/**
 * A new embedded-database folder with every migration applied: a copy of the migrated cluster, for a process under
 * test (the CLI, the server) whose first migration is only setup. What a first start does to an empty database is
 * tested on `freshDataDir`.
 */
export async function migratedDataDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  await cp(await migratedClusterFolder(), dir, { recursive: true });
  return dir;
}
