import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgres } from '../../../src/kernel/db/postgres.js';
import { startTestApp, tryRegister, type TestApp } from '../../helpers/app.js';
import { silentLog } from '../../helpers/database.js';
import { freePort } from '../../helpers/process.js';

const run = promisify(execFile);

/** PostgreSQL's server programs (Debian keeps them out of PATH), newest version first. */
function postgresBin(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const version = readdirSync(root).sort((a, b) => Number(b) - Number(a))[0];
  const bin = version && join(root, version, 'bin');
  return bin && existsSync(join(bin, 'initdb')) ? bin : undefined;
}
const BIN = postgresBin();
const IS_ROOT = userInfo().uid === 0;

/**
 * A PostgreSQL cluster of this test's own, in a temporary folder, on a free port: stopping it disturbs no one.
 * initdb refuses to run as root, so as root the cluster belongs to the `postgres` user.
 */
class PrivateCluster {
  readonly dir = mkdtempSync(join(tmpdir(), 'auth-pg-'));
  constructor(readonly port: number) {}

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  private async as(program: string, args: string[]): Promise<void> {
    const command = join(BIN!, program);
    await (IS_ROOT ? run('runuser', ['-u', 'postgres', '--', command, ...args]) : run(command, args));
  }

  async init(): Promise<void> {
    if (IS_ROOT) chownSync(this.dir, Number((await run('id', ['-u', 'postgres'])).stdout), Number((await run('id', ['-g', 'postgres'])).stdout));
    await this.as('initdb', ['-D', this.dir, '-U', 'postgres', '-A', 'trust', '--no-sync']);
  }

  async start(): Promise<void> {
    await this.as('pg_ctl', ['-D', this.dir, '-w', '-l', join(this.dir, 'log'), '-o', `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1`, 'start']);
  }

  /** As abruptly as a crash: no checkpoint, the next start replays the WAL. */
  async crash(): Promise<void> {
    await this.as('pg_ctl', ['-D', this.dir, '-w', '-m', 'immediate', 'stop']);
  }

  async destroy(): Promise<void> {
    await this.as('pg_ctl', ['-D', this.dir, '-w', '-m', 'immediate', 'stop']).catch(() => {});
    rmSync(this.dir, { recursive: true, force: true });
  }
}

const CONNECT_TIMEOUT_MS = 1000;
const QUERY_TIMEOUT_MS = 2000;

describe.skipIf(BIN === undefined || (IS_ROOT && !existsSync('/usr/sbin/runuser')))(
  'PostgreSQL crashing under load and coming back (a private cluster; needs PostgreSQL server programs)',
  () => {
    let cluster: PrivateCluster;
    let t: TestApp;

    beforeAll(async () => {
      cluster = new PrivateCluster(await freePort());
      await cluster.init();
      await cluster.start();
      const settings = { url: cluster.url, poolSize: 10, connectTimeoutMs: CONNECT_TIMEOUT_MS, queryTimeoutMs: QUERY_TIMEOUT_MS };
      const db = openPostgres(settings, silentLog);
      const env = {
        DATABASE_URL: cluster.url,
        DATABASE_CONNECT_TIMEOUT_MS: String(CONNECT_TIMEOUT_MS),
        DATABASE_QUERY_TIMEOUT_MS: String(QUERY_TIMEOUT_MS),
        HASH_QUEUE_LIMIT: '1000',
      };
      t = await startTestApp(env, { testDatabase: { db, env, drop: () => db.close() }, db });
    });
    afterAll(async () => {
      await t?.close();
      await t?.db.close();
      await cluster?.destroy();
    });

    it('answers 503 database_unavailable without hanging while it is down, recovers by itself, and loses no acknowledged registration', async () => {
      const acknowledged: string[] = [];
      const outcomes: { status: number; error?: string; ms: number }[] = [];
      let serial = 0;
      let phase: 'up' | 'down' | 'back' = 'up';
      let stop = false;

      // Steady load: four clients registering one account after another.
      const client = async () => {
        while (!stop) {
          const username = `steady_${process.pid}_${serial++}`;
          const started = Date.now();
          const response = await tryRegister(t.app, { username });
          const body = response.json() as Record<string, string>;
          outcomes.push({ status: response.statusCode, error: body['error'], ms: Date.now() - started });
          if (response.statusCode === 201) acknowledged.push(username);
          if (response.statusCode === 503) await new Promise((resolve) => setTimeout(resolve, 50));
        }
      };
      const load = Promise.all(Array.from({ length: 4 }, client));
      const waitUntil = async (done: () => boolean, what: string) => {
        const deadline = Date.now() + 60_000;
        while (!done()) {
          if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      };

      try {
        await waitUntil(() => acknowledged.length >= 10, 'registrations while PostgreSQL is up');
        await cluster.crash();
        phase = 'down';
        const downFrom = outcomes.length;
        await waitUntil(() => outcomes.slice(downFrom).filter((o) => o.status === 503).length >= 8, '503s while PostgreSQL is down');
        const whileDown = outcomes.slice(downFrom);

        await cluster.start();
        phase = 'back';
        const backFrom = acknowledged.length;
        await waitUntil(() => acknowledged.length >= backFrom + 10, 'registrations after PostgreSQL is back');
        stop = true;
        await load;

        // Down: refused as unavailable, each within the configured timeouts (no request hangs).
        for (const outcome of whileDown.filter((o) => o.status !== 201)) {
          expect(outcome).toMatchObject({ status: 503, error: 'database_unavailable' });
          expect(outcome.ms).toBeLessThan(CONNECT_TIMEOUT_MS + QUERY_TIMEOUT_MS + 1000);
        }
        // Never anything but a success or "unavailable" (no 500, no crash).
        expect(new Set(outcomes.map((o) => o.status))).toEqual(new Set([201, 503]));
      } finally {
        stop = true;
        await load.catch(() => {});
      }
      expect(phase).toBe('back');

      // Every registration that was answered 201 is in the database after the crash.
      const rows = await t.db.query<{ username: string }>('SELECT username FROM users');
      const stored = new Set(rows.map((row) => row.username));
      expect(acknowledged.filter((name) => !stored.has(name))).toEqual([]);
      expect((await t.app.inject('/readyz')).statusCode).toBe(200);
    });
  },
);
