/**
 * `npm run bench`: the service's limits on this machine. Starts the production build in its own process,
 * drives it over HTTP with autocannon from this one, prints one table and writes it to bench/results/<date>.md.
 *
 * BENCH_DATABASE_URL: PostgreSQL to run against (default: the embedded database in a temporary folder).
 * BENCH_SECONDS: length of each measured phase (default 10).
 * BENCH_NODE_OPTIONS: the server's NODE_OPTIONS (default: the Dockerfile's heap cap, as the service is shipped).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { loadConfig } from '../src/config.js';
import { PasswordHasher } from '../src/auth/passwords.js';

const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 10);
const USERS = 200;
const PASSWORD = 'benchmark passphrase 42';
const ROOT = new URL('..', import.meta.url).pathname;
const SERVER_NODE_OPTIONS = process.env['BENCH_NODE_OPTIONS'] ?? '--max-old-space-size=128';

interface Row {
  scenario: string;
  figure: string;
  target?: string;
}
const rows: Row[] = [];
function report(scenario: string, figure: string, target?: string) {
  rows.push({ scenario, figure, ...(target ? { target } : {}) });
  console.log(`  ${scenario}: ${figure}${target ? `  (target ${target})` : ''}`);
}

/** The p-th percentile of latencies in ms, to 0.1 ms. */
function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! * 10) / 10;
}

/** 1. How many verifications per second this machine does with the service's parameters and concurrency, no HTTP. */
async function hashCeiling(): Promise<number> {
  const config = loadConfig({ ...process.env, NODE_ENV: 'test' });
  const hasher = await PasswordHasher.create(config.argon2, { threads: config.hashing.threads, queueLimit: Number.MAX_SAFE_INTEGER });
  const hash = await hasher.hash(PASSWORD);
  const concurrency = 4 * os.availableParallelism();
  let done = 0;
  const deadline = Date.now() + SECONDS * 1000;
  const start = Date.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < deadline) {
        await hasher.verify(hash, PASSWORD);
        done += 1;
      }
    }),
  );
  await hasher.close();
  return done / ((Date.now() - start) / 1000);
}

async function startServer(env: Record<string, string>): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['dist/server.js'], {
    cwd: ROOT,
    env: { PATH: process.env['PATH'] ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  for (let i = 0; i < 300; i++) {
    const match = /listening on (http:\/\/[^\s"]+)/.exec(output);
    if (match) {
      // From here on the log lines (one per request, as in production) are read and dropped.
      child.stdout!.removeAllListeners('data').resume();
      child.stderr!.removeAllListeners('data').on('data', (chunk) => process.stderr.write(chunk));
      return { child, url: match[1]! };
    }
    if (child.exitCode !== null) throw new Error(`server exited:\n${output}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`server did not start:\n${output}`);
}

/** The commit measured, and whether the tree had changes on top of it. */
function revision(): string {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: ROOT, encoding: 'utf8' }).trim() !== '';
    return dirty ? `${commit} with changes` : commit;
  } catch {
    return 'unknown revision';
  }
}

async function rssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
}

interface Load {
  url: string;
  connections: number;
  seconds?: number;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: () => string;
}

/** Runs autocannon; returns requests per second by status class and latencies (ms) of each status. */
async function load(options: Load): Promise<{ perSecond: Record<string, number>; latencies: Record<number, number[]>; total: number }> {
  const latencies: Record<number, number[]> = {};
  let finish!: (result: autocannon.Result) => void;
  let fail!: (error: unknown) => void;
  const done = new Promise<autocannon.Result>((resolve, reject) => ([finish, fail] = [resolve, reject]));
  const instance = autocannon({
    url: options.url,
    connections: options.connections,
    duration: options.seconds ?? SECONDS,
    timeout: 30,
    requests: [
      {
        method: options.method ?? 'GET',
        headers: { 'content-type': 'application/json', ...options.headers },
        ...(options.body ? { setupRequest: (request: autocannon.Request) => ({ ...request, body: options.body!() }) } : {}),
      },
    ],
  }, (error, result) => (error ? fail(error) : finish(result)));
  instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
    (latencies[statusCode] ??= []).push(responseTime);
  });
  const result = await done;
  const seconds = result.duration;
  const perSecond: Record<string, number> = {};
  for (const [status, values] of Object.entries(latencies)) perSecond[status] = values.length / seconds;
  return { perSecond, latencies, total: result.requests.total };
}

async function main() {
  console.log(`machine: ${os.availableParallelism()} cores (${os.cpus()[0]?.model}), Node ${process.version}`);
  const config = loadConfig({ ...process.env, NODE_ENV: 'test' });
  const parameters = `argon2id m=${config.argon2.memoryKib} KiB, t=${config.argon2.timeCost}, p=${config.argon2.parallelism}`;
  console.log(`hash parameters: ${parameters}; server NODE_OPTIONS: ${SERVER_NODE_OPTIONS || '(none)'}; ${SECONDS} s per phase\n`);

  const ceiling = await hashCeiling();
  report('1. hash ceiling (verifications/s, no HTTP)', ceiling.toFixed(1));

  const dataDir = await mkdtemp(join(os.tmpdir(), 'auth-bench-'));
  const database: Record<string, string> = process.env['BENCH_DATABASE_URL'] ? { DATABASE_URL: process.env['BENCH_DATABASE_URL'] } : { DATA_DIR: dataDir, ALLOW_EMBEDDED_DATABASE: 'true' };
  const server = await startServer({
    ...database,
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'info',
    CORS_ORIGINS: 'http://localhost',
    NODE_OPTIONS: SERVER_NODE_OPTIONS,
    // One client address sends everything here: the limits would measure themselves.
    RATE_LIMIT_ENABLED: 'false',
    ...Object.fromEntries(Object.entries(process.env).filter(([key]) => /^(ARGON2_|HASH_|UV_THREADPOOL_SIZE)/.test(key)) as [string, string][]),
  });
  const run = `${Date.now().toString(36)}`;
  try {
    // 4. Registration throughput (and the users the next phases log in as).
    let registered = 0;
    const registration = await load({
      url: `${server.url}/api/auth/register`,
      method: 'POST',
      connections: 16,
      body: () => {
        registered += 1;
        return JSON.stringify({ username: `bench_${run}_${registered}`, password: PASSWORD, password_confirm: PASSWORD });
      },
    });
    const registrations = registration.perSecond['201'] ?? 0;
    report('4. registrations/s', `${registrations.toFixed(1)} = ${(registrations / ceiling).toFixed(2)} of the ceiling`, '≥ 0.9');
    const users = Math.min(USERS, Math.floor(registration.total));

    // 2. Login throughput at saturation.
    let next = 0;
    const loginBody = () => JSON.stringify({ username: `bench_${run}_${(next++ % users) + 1}`, password: PASSWORD });
    const login = await load({ url: `${server.url}/api/auth/login`, method: 'POST', connections: 16, body: loginBody });
    const logins = login.perSecond['200'] ?? 0;
    report('2. logins/s at saturation', `${logins.toFixed(1)} = ${(logins / ceiling).toFixed(2)} of the ceiling`, '≥ 0.9');

    // 3. Token endpoints alone, then while logins saturate the CPU.
    const token = (await (await fetch(`${server.url}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: loginBody() })).json()) as { access_token: string };
    const me = { url: `${server.url}/api/auth/me`, headers: { authorization: `Bearer ${token.access_token}` }, connections: 4 };
    const jwks = { url: `${server.url}/.well-known/jwks.json`, connections: 4 };
    const meAlone = await load({ ...me, seconds: Math.ceil(SECONDS / 2) });
    const jwksAlone = await load({ ...jwks, seconds: Math.ceil(SECONDS / 2) });
    report('3. GET /api/auth/me alone', `${(meAlone.perSecond['200'] ?? 0).toFixed(0)} req/s, p99 ${percentile(meAlone.latencies[200] ?? [], 99)} ms`);
    report('3. GET /.well-known/jwks.json alone', `${(jwksAlone.perSecond['200'] ?? 0).toFixed(0)} req/s, p99 ${percentile(jwksAlone.latencies[200] ?? [], 99)} ms`);
    const saturating = load({ url: `${server.url}/api/auth/login`, method: 'POST', connections: 16, body: loginBody });
    const [meBusy, jwksBusy] = await Promise.all([load({ ...me, connections: 2 }), load({ ...jwks, connections: 2 })]);
    const busyLogins = await saturating;
    const meLatency = meBusy.latencies[200] ?? [];
    const jwksLatency = jwksBusy.latencies[200] ?? [];
    report('3. /me under login saturation', `p50 ${percentile(meLatency, 50)} ms, p99 ${percentile(meLatency, 99)} ms`, 'p99 ≤ 20 ms');
    report('3. /jwks.json under login saturation', `p50 ${percentile(jwksLatency, 50)} ms, p99 ${percentile(jwksLatency, 99)} ms`, 'p99 ≤ 20 ms');
    report('3. logins/s meanwhile', `${(busyLogins.perSecond['200'] ?? 0).toFixed(1)}`);

    // 5. Memory and overload: 1,000 connections trying to log in at once.
    let peakRss = await rssMb(server.child.pid!);
    const sampler = setInterval(() => {
      rssMb(server.child.pid!).then((mb) => (peakRss = Math.max(peakRss, mb)), () => {});
    }, 200);
    const flood = await load({ url: `${server.url}/api/auth/login`, method: 'POST', connections: 1000, body: loginBody });
    clearInterval(sampler);
    const answered = flood.latencies[200] ?? [];
    const shed = flood.latencies[503] ?? [];
    report('5. peak RSS with 1,000 connections logging in', `${peakRss.toFixed(0)} MB`, '≤ 200 MB');
    report(
      '5. answered logins under the flood',
      `${(flood.perSecond['200'] ?? 0).toFixed(1)}/s, p99 ${percentile(answered, 99)} ms; shed with 503: ${shed.length} (p99 ${percentile(shed, 99)} ms); other: ${Object.entries(flood.latencies).filter(([s]) => s !== '200' && s !== '503').map(([s, v]) => `${s}×${v.length}`).join(', ') || 'none'}`,
    );
  } finally {
    server.child.kill('SIGTERM');
    await once(server.child, 'exit');
    await rm(dataDir, { recursive: true, force: true });
  }

  const date = new Date().toISOString().slice(0, 10);
  const lines = [
    `# Benchmark ${new Date().toISOString()}${process.env['BENCH_LABEL'] ? `: ${process.env['BENCH_LABEL']}` : ''} (${revision()})`,
    '',
    `${os.availableParallelism()} cores (${os.cpus()[0]?.model}), Node ${process.version}, ${parameters}, ${process.env['BENCH_DATABASE_URL'] ? 'PostgreSQL' : 'embedded database'}, server NODE_OPTIONS ${SERVER_NODE_OPTIONS || '(none)'}, ${SECONDS} s per phase.`,
    '',
    '| scenario | result | target |',
    '|---|---|---|',
    ...rows.map((r) => `| ${r.scenario} | ${r.figure} | ${r.target ?? ''} |`),
    '',
  ];
  await mkdir(join(ROOT, 'bench/results'), { recursive: true });
  const file = join(ROOT, `bench/results/${date}.md`);
  await writeFile(file, `${lines.join('\n')}\n`, { flag: 'a' });
  console.log(`\n${lines.slice(4).join('\n')}\nwritten to ${file}`);
}

await main();
