/**
 * `npm run bench`: what the service costs on this machine, as ratios, because a shared machine's speed drifts
 * (other processes, other guests on the host) and raw rates measured minutes apart cannot be compared.
 * Each round runs, in short windows one right after the other:
 *   1. the hash ceiling: verifications per second of the service's own hasher (same parameters, threads and
 *      priority) in this process, no HTTP;
 *   2. logins per second against the service at saturation: login ÷ ceiling is the share of the machine's
 *      hashing capacity that reaches clients as logins;
 *   3. GET /api/auth/me on a minimal server (bench/baseline-server.ts: the same token check and session query);
 *   3. logins per second against a minimal login (bench/baseline-server.ts: the same hash on the same kind of
 *      pool, one user query, one session insert, one signed token): login ÷ minimal login is what the rest of
 *      the service's login costs, the hash apart;
 *   4. GET /api/auth/me on a minimal server (bench/baseline-server.ts: the same token check and session query);
 *   5. GET /api/auth/me on the service: /me ÷ baseline is what the service adds to the token path.
 * The two windows of a ratio are seconds apart, so a ratio drifts less than either rate. The CPU time each
 * process spent per request gives a second pair of ratios that does not depend on how much of the machine
 * a window got. The table gives every round, the median, min and max, and warns when a result's rounds
 * disagree by more than 20%. The CPU of every part of the machine (the server's event loop, its hashing threads,
 * PostgreSQL, Redis, the load generator) during the login windows is given per login. Then, once: /me and the JWKS while logins saturate the CPU, and 1,000
 * connections logging in at once. The server is the production build, in its own process; the load comes
 * from this one.
 *
 * Flags (or environment variables):
 *   --rounds N     BENCH_ROUNDS        rounds (default 5)
 *   --window 3s    BENCH_WINDOW        length of each window (default 3 s)
 *   --flood 10s    BENCH_FLOOD         length of the 1,000-connection flood (default 10 s)
 *   --cheap-hash   BENCH_CHEAP_HASH=1  argon2id at m=64 KiB, t=1 (service and ceiling), so that what a login
 *                                      costs besides its hash shows: logins/s per core, CPU per login
 *   --cpu-prof                         profile the server's main thread; print where the login windows went
 *   --label text   BENCH_LABEL         a title for the results file
 *   --server dir   BENCH_SERVER_ROOT   start the service from another checkout's build (its dist/server.js), to
 *                                      compare two versions with the same load, ceiling and baseline
 * BENCH_DATABASE_URL: PostgreSQL for the service and the baseline (default: the embedded database, each its own).
 * BENCH_NODE_OPTIONS: NODE_OPTIONS of both servers (default: the Dockerfile's heap cap, as the service is shipped).
 * The tables are printed and appended to bench/results/<date>.md.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import { closeSync, openSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual, parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { decodeJwt, type JWK } from 'jose';
import { ConfigError, loadConfig, type Config } from '../src/settings.js';
import { HASHING_NICENESS, PasswordHasher } from '../src/features/passwords/passwords.js';
import { mainThreadProfile, monotonicUs, summarize, type Window } from './cpu-profile.js';
import { cores, cpuByPart, cpuShares, cpuSpent, loadAverage, WAITING, type CpuByPart, machineCpu, processCpuSeconds, rssMb, sampleCpu, TICKS_PER_SECOND } from './machine.js';
import { format, percentile, Rounds } from './rounds.js';

const ROOT = new URL('..', import.meta.url).pathname;
const USERS = 200;
const PASSWORD = 'benchmark passphrase 42';
const SERVER_NODE_OPTIONS = process.env['BENCH_NODE_OPTIONS'] ?? '--max-old-space-size=128 --max-semi-space-size=4';
const DATABASE_URL = process.env['BENCH_DATABASE_URL'];
const DATABASE_NAME = DATABASE_URL ? decodeURIComponent(new URL(DATABASE_URL).pathname.slice(1)) : undefined;
// Enough to keep the hashing threads busy, far from the hashing queue's admission bound (which would measure shedding).
const LOGIN_CONNECTIONS = 16;
// Enough that both servers are held by their CPU, not by the round trips of too few clients on a loaded machine.
const ME_CONNECTIONS = 32;
// --cheap-hash: argon2 this cheap costs a few microseconds, so what a login costs besides its hash dominates.
const CHEAP_ARGON2 = { ARGON2_MEMORY_KIB: '64', ARGON2_TIME_COST: '1' };

const { values: flags } = parseArgs({
  options: {
    rounds: { type: 'string' },
    window: { type: 'string' },
    flood: { type: 'string' },
    'cheap-hash': { type: 'boolean' },
    'cpu-prof': { type: 'boolean' },
    label: { type: 'string' },
    server: { type: 'string' },
  },
});

/** "3s", "500ms", "3": seconds. */
function seconds(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  const match = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(value.trim());
  const parsed = match ? Number(match[1]) / (match[2] === 'ms' ? 1000 : 1) : NaN;
  if (!(parsed > 0)) throw new Error(`${name} must be a duration such as 3s or 500ms (got "${value}")`);
  return parsed;
}

const ROUNDS = Number(flags.rounds ?? process.env['BENCH_ROUNDS'] ?? 5);
if (!Number.isInteger(ROUNDS) || ROUNDS < 1) throw new Error(`--rounds must be a whole number ≥ 1 (got "${flags.rounds}")`);
const WINDOW = seconds('--window', flags.window ?? process.env['BENCH_WINDOW'], 3);
const FLOOD = seconds('--flood', flags.flood ?? process.env['BENCH_FLOOD'], 10);
const CHEAP = flags['cheap-hash'] === true || /^(1|true|yes)$/i.test(process.env['BENCH_CHEAP_HASH'] ?? '');
const PROFILE = flags['cpu-prof'] === true;
const LABEL = flags.label ?? process.env['BENCH_LABEL'];
// The checkout whose build is measured; the harness, ceiling and baseline always come from this one.
const SERVER_ROOT = flags.server ?? process.env['BENCH_SERVER_ROOT'] ?? ROOT;

/**
 * The server's environment, and the configuration the service reads from it, which the ceiling's hasher shares.
 * With --cheap-hash, production mode refuses argon2 weaker than OWASP's minimum: the server then runs in
 * development mode, which differs only in start-up checks and in defaults this environment sets anyway.
 */
function serverEnvironment(scratch: string): { env: Record<string, string>; config: Config; note?: string } {
  const passed = Object.fromEntries(Object.entries(process.env).filter(([key]) => /^(ARGON2_|HASH_|UV_THREADPOOL_SIZE)/.test(key))) as Record<string, string>;
  const env: Record<string, string> = {
    ...(DATABASE_URL ? { DATABASE_URL } : { DATA_DIR: join(scratch, 'service-data'), ALLOW_EMBEDDED_DATABASE: 'true' }),
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'info',
    CORS_ORIGINS: 'http://localhost',
    // As deployed behind a TLS-terminating proxy: only the issuer and the discovery document's links use it.
    PUBLIC_URL: 'https://auth.example.com',
    NODE_OPTIONS: SERVER_NODE_OPTIONS,
    // One client address sends everything here: the limits would measure themselves.
    RATE_LIMIT_ENABLED: 'false',
    // One token serves the whole run, however many rounds it has.
    ACCESS_TOKEN_TTL_SECONDS: '86400',
    ...passed,
    ...(CHEAP ? CHEAP_ARGON2 : {}),
  };
  try {
    return { env, config: loadConfig(env) };
  } catch (error) {
    if (!CHEAP || !(error instanceof ConfigError) || !error.problems.every((p) => p.startsWith('ARGON2_'))) throw error;
    const development = { ...env, NODE_ENV: 'development' };
    return {
      env: development,
      config: loadConfig(development),
      note: `production mode refuses argon2 this cheap ("${error.problems[0]}"), so the server runs with NODE_ENV=development`,
    };
  }
}

interface Started {
  child: ChildProcess;
  url: string;
}

/**
 * Starts a Node process and waits for its "listening on <url>" line. Its stdout (one log line per request, as in
 * production) goes to a file: a pipe read by this busy process would fill up, and a full pipe blocks the
 * logger, which would measure this process's lag instead of the server.
 */
async function startProcess(args: string[], env: Record<string, string>, logFile: string, cwd = ROOT): Promise<Started> {
  const log = openSync(logFile, 'w');
  const child = spawn(process.execPath, args, { cwd, env: { PATH: process.env['PATH'] ?? '', ...env }, stdio: ['ignore', log, 'pipe'] });
  closeSync(log);
  let errors = '';
  child.stderr!.on('data', (chunk) => (errors += chunk));
  const output = async () => `${await readFile(logFile, 'utf8').catch(() => '')}${errors}`;
  // The embedded database's first start (initdb in WebAssembly) takes long on a loaded machine.
  for (const deadline = Date.now() + 180_000; Date.now() < deadline; ) {
    const match = /listening on (http:\/\/[^\s"]+)/.exec(await output());
    if (match) {
      child.stderr!.removeAllListeners('data').on('data', (chunk) => process.stderr.write(chunk));
      return { child, url: match[1]! };
    }
    if (child.exitCode !== null) throw new Error(`${args.join(' ')} exited:\n${await output()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  child.kill('SIGKILL');
  throw new Error(`${args.join(' ')} did not start:\n${await output()}`);
}

async function stopProcess(started: Started | undefined): Promise<void> {
  if (!started || started.child.exitCode !== null || started.child.signalCode !== null) return;
  const exited = once(started.child, 'exit');
  started.child.kill('SIGTERM');
  await exited;
}

/** The commit measured, and whether the tree had changes on top of it. */
function revision(): string {
  try {
    const git = (...args: string[]) => execFileSync('git', args, { cwd: SERVER_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const commit = git('rev-parse', '--short', 'HEAD');
    const dirty = git('status', '--porcelain', '--untracked-files=no') !== '';
    return dirty ? `${commit} with changes` : commit;
  } catch {
    return 'unknown revision';
  }
}

interface Load {
  url: string;
  connections: number;
  /** Default: one window. */
  seconds?: number;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: () => string;
}

interface Loaded {
  perSecond: Record<string, number>;
  latencies: Record<number, number[]>;
  total: number;
}

/** Runs autocannon; returns requests per second by status and the latencies (ms) of each status. */
async function load(options: Load): Promise<Loaded> {
  const latencies: Record<number, number[]> = {};
  let finish!: (result: autocannon.Result) => void;
  let fail!: (error: unknown) => void;
  const done = new Promise<autocannon.Result>((resolve, reject) => ([finish, fail] = [resolve, reject]));
  const instance = autocannon(
    {
      url: options.url,
      connections: options.connections,
      duration: options.seconds ?? WINDOW,
      timeout: 30,
      requests: [
        {
          method: options.method ?? 'GET',
          headers: { 'content-type': 'application/json', ...options.headers },
          ...(options.body ? { setupRequest: (request: autocannon.Request) => ({ ...request, body: options.body!() }) } : {}),
        },
      ],
    },
    (error, result) => (error ? fail(error) : finish(result)),
  );
  instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
    (latencies[statusCode] ??= []).push(responseTime);
  });
  const result = await done;
  const perSecond: Record<string, number> = {};
  for (const [status, values] of Object.entries(latencies)) perSecond[status] = values.length / result.duration;
  return { perSecond, latencies, total: result.requests.total };
}

/** A load window, with the CPU seconds `pid` used meanwhile (every thread of it). */
async function measured(pid: number, options: Load): Promise<Loaded & { cpuSeconds: number | undefined }> {
  const before = await processCpuSeconds(pid);
  const result = await load(options);
  const after = await processCpuSeconds(pid);
  return { ...result, cpuSeconds: before !== undefined && after !== undefined ? after - before : undefined };
}

/** JSON POSTs over `connections` kept-alive sockets; each resolves to the answer's status. */
function poster(url: string, connections: number): { post(payload: string): Promise<number>; close(): void } {
  const target = new URL(url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  return {
    post: (payload) =>
      new Promise<number>((resolve, reject) => {
        const headers = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) };
        const request = http.request({ host: target.hostname, port: target.port, path: target.pathname, method: 'POST', agent, headers }, (response) =>
          response.resume().on('end', () => resolve(response.statusCode ?? 0)).on('error', reject),
        );
        request.on('error', reject);
        request.end(payload);
      }),
    close: () => agent.destroy(),
  };
}

/**
 * Logins per second, counted the way the ceiling counts verifications: `connections` clients each send the next
 * login as soon as the last is answered, stop sending at the end of the window, and the requests in flight are
 * waited for and counted. A load generator that drops them at the deadline would charge the window with hashes
 * it does not count, and leave them running into the next window.
 */
async function loginWindow(
  pid: number,
  url: string,
  connections: number,
  body: () => string,
): Promise<{ rate: number; count: number; statuses: Record<number, number>; cpuSeconds: number | undefined; parts: CpuByPart | undefined }> {
  const client = poster(url, connections);
  const statuses: Record<number, number> = {};
  const partsBefore = await cpuByPart(pid, DATABASE_NAME);
  const cpuBefore = await processCpuSeconds(pid);
  const start = performance.now();
  const deadline = start + WINDOW * 1000;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (performance.now() < deadline) {
        const status = await client.post(body());
        statuses[status] = (statuses[status] ?? 0) + 1;
      }
    }),
  );
  const elapsed = (performance.now() - start) / 1000;
  const cpuAfter = await processCpuSeconds(pid);
  const parts = cpuSpent(partsBefore, await cpuByPart(pid, DATABASE_NAME));
  client.close();
  const count = statuses[200] ?? 0;
  return { rate: count / elapsed, count, statuses, cpuSeconds: cpuBefore !== undefined && cpuAfter !== undefined ? cpuAfter - cpuBefore : undefined, parts };
}

/**
 * Registers `count` users, sending again what the service sheds (a loaded machine answers some 503s); returns
 * the usernames it accepted.
 */
async function register(url: string, prefix: string, count: number): Promise<string[]> {
  const client = poster(url, LOGIN_CONNECTIONS);
  const accepted: string[] = [];
  const answers: Record<number, number> = {};
  let sent = 0;
  await Promise.all(
    Array.from({ length: LOGIN_CONNECTIONS }, async () => {
      while (accepted.length < count && sent < 10 * count) {
        const username = `${prefix}_${++sent}`;
        const status = await client.post(JSON.stringify({ username, password: PASSWORD, password_confirm: PASSWORD }));
        answers[status] = (answers[status] ?? 0) + 1;
        if (status === 201) accepted.push(username);
        // As a client should: wait before sending again what was shed.
        else if (status === 503) await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }),
  );
  client.close();
  if (accepted.length === 0) throw new Error(`no registration succeeded: ${JSON.stringify(answers)}`);
  return accepted;
}

/** CPU seconds used so far by this process, the server and the baseline: the rest of the machine's busy time is others'. */
async function ourCpuSeconds(...pids: number[]): Promise<number | undefined> {
  const own = process.cpuUsage();
  const children = await Promise.all(pids.map(processCpuSeconds));
  if (children.some((c) => c === undefined)) return undefined;
  return (own.user + own.system) / 1e6 + children.reduce((sum: number, c) => sum + c!, 0);
}

/** Verifications per second of the service's hasher, kept busy, no HTTP; and the CPU each one took (ms). */
async function ceilingWindow(hasher: PasswordHasher, hash: string, windowSeconds: number): Promise<{ rate: number; cpuMs: number }> {
  const concurrency = 4 * os.availableParallelism();
  const cpu = process.cpuUsage();
  const start = performance.now();
  const deadline = start + windowSeconds * 1000;
  let done = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        await hasher.verify(hash, PASSWORD);
        done += 1;
      }
    }),
  );
  const elapsed = (performance.now() - start) / 1000;
  const used = process.cpuUsage(cpu);
  return { rate: done / elapsed, cpuMs: (used.user + used.system) / 1000 / done };
}

function describeHashing(config: Config): string {
  const { memoryKib, timeCost, parallelism } = config.argon2;
  const { threads, ...queue } = config.hashing;
  return `argon2id m=${memoryKib} KiB, t=${timeCost}, p=${parallelism}; ${threads} hashing threads (queue: ${Object.entries(queue).map(([k, v]) => `${k} ${v}`).join(', ')})`;
}

function perUnit(cpuSeconds: number | undefined, count: number, scale: number): number | undefined {
  return cpuSeconds === undefined || count === 0 ? undefined : (cpuSeconds * scale) / count;
}

/** CPU seconds by part over several login windows, and the logins they answered. */
class PartsPerLogin {
  private readonly seconds: CpuByPart = {};
  private logins = 0;
  private complete = true;

  add(parts: CpuByPart | undefined, logins: number): void {
    if (!parts) this.complete = false;
    for (const [part, spent] of Object.entries(parts ?? {})) this.seconds[part] = (this.seconds[part] ?? 0) + spent;
    this.logins += logins;
  }

  /** ms per login of a part, undefined where it could not be read. */
  perLogin(part: string): number | undefined {
    return this.complete && this.logins > 0 && this.seconds[part] !== undefined ? (1000 * this.seconds[part]!) / this.logins : undefined;
  }

  get parts(): string[] {
    return Object.keys(this.seconds);
  }

  /** One column per measured login; the last row is what no listed part used (the kernel's interrupts, other processes). */
  static markdown(columns: Record<string, PartsPerLogin>): string[] {
    const all = Object.values(columns);
    const parts = [...new Set(all.flatMap((c) => c.parts))].filter((p) => p !== 'whole machine (busy)' && p !== WAITING);
    const rest = (c: PartsPerLogin) => {
      const whole = c.perLogin('whole machine (busy)');
      const listed = parts.map((p) => c.perLogin(p));
      return whole === undefined || listed.some((l) => l === undefined) ? undefined : whole - listed.reduce((a: number, b) => a + b!, 0);
    };
    return [
      `| part | ${Object.keys(columns).join(' | ')} |`,
      `|---|${all.map(() => '---:').join('|')}|`,
      ...parts.map((p) => `| ${p} | ${all.map((c) => format(c.perLogin(p), 2)).join(' | ')} |`),
      `| anything else | ${all.map((c) => format(rest(c), 2)).join(' | ')} |`,
      `| **whole machine** | ${all.map((c) => `**${format(c.perLogin('whole machine (busy)'), 2)}**`).join(' | ')} |`,
      `| ${WAITING} | ${all.map((c) => format(c.perLogin(WAITING), 2)).join(' | ')} |`,
    ];
  }
}

async function main() {
  const scratch = await mkdtemp(join(os.tmpdir(), 'auth-bench-'));
  let settings: ReturnType<typeof serverEnvironment>;
  try {
    settings = serverEnvironment(scratch);
  } catch (error) {
    await rm(scratch, { recursive: true, force: true });
    throw error;
  }
  const { env: serverEnv, config, note } = settings;
  const cpuCount = os.availableParallelism();
  const atStart = await sampleCpu(1000);
  const machineAtStart = `load average ${loadAverage()} (1/5/15 min), steal ${format(atStart?.steal, 1)}% and busy ${format(atStart?.busy, 0)}% over 1 s`;
  const database = DATABASE_URL ? 'PostgreSQL (BENCH_DATABASE_URL)' : 'embedded database';
  console.log(`machine: ${cores()}, Node ${process.version}; ${machineAtStart}`);
  console.log(`hashing: ${describeHashing(config)}${CHEAP ? ' (--cheap-hash)' : ''}`);
  if (note) console.log(`note: ${note}`);
  console.log(`${database}; servers' NODE_OPTIONS ${SERVER_NODE_OPTIONS || '(none)'}; ${ROUNDS} rounds of ${WINDOW} s windows; flood ${FLOOD} s\n`);

  const hasher = await PasswordHasher.create(config.argon2, { threads: config.hashing.threads, queueLimit: Number.MAX_SAFE_INTEGER });
  const storedHash = await hasher.hash(PASSWORD);

  const profileDir = join(scratch, 'profiles');
  let server: Started | undefined;
  let baseline: Started | undefined;
  const rounds = new Rounds(ROUNDS);
  const single: [string, string][] = [];
  const loginWindows: Window[] = [];
  const meWindows: Window[] = [];
  let duringRounds: { steal: number; busy: number; others: number | undefined } | undefined;
  let profileLines: string[] = [];
  const loginParts = { service: new PartsPerLogin(), minimal: new PartsPerLogin() };
  try {
    server = await startProcess([...(PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []), 'dist/server.js'], serverEnv, join(scratch, 'server.log'), SERVER_ROOT);
    const serverPid = server.child.pid!;

    // The users the login windows sign in as.
    const started = performance.now();
    const users = await register(`${server.url}/api/auth/register`, `bench_${Date.now().toString(36)}`, USERS);
    console.log(`setup: ${users.length} users registered (${(users.length / ((performance.now() - started) / 1000)).toFixed(1)}/s)`);
    let next = 0;
    const loginBody = () => JSON.stringify({ username: users[next++ % users.length], password: PASSWORD });
    const login: Load = { url: `${server.url}/api/auth/login`, method: 'POST', connections: LOGIN_CONNECTIONS, body: loginBody };

    // The baseline checks the same token against the service's published key, on the same database.
    const signedIn = await fetch(login.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: loginBody() });
    const { access_token: token } = (await signedIn.json()) as { access_token: string };
    const claims = decodeJwt(token);
    const jwks = (await (await fetch(`${server.url}/.well-known/jwks.json`)).json()) as { keys: JWK[] };
    const jwk = jwks.keys.find((k) => k.alg === 'ES256') ?? jwks.keys[0];
    const ourMe = (await (await fetch(`${server.url}/api/auth/me`, { headers: { authorization: `Bearer ${token}` } })).json()) as Record<string, unknown>;
    if (!jwk) throw new Error('the service publishes no key: the baseline needs an asymmetric (ES256) signing key');
    baseline = await startProcess(['--import', 'tsx', 'bench/baseline-server.ts'], {
      NODE_OPTIONS: SERVER_NODE_OPTIONS,
      BASELINE_JWK: JSON.stringify(jwk),
      BASELINE_ISSUER: String(claims.iss),
      BASELINE_AUDIENCE: String(claims.aud),
      BASELINE_ARGON2: JSON.stringify({ ...config.argon2, threads: config.hashing.threads, niceness: HASHING_NICENESS }),
      ...(DATABASE_URL
        ? { BASELINE_DATABASE_URL: DATABASE_URL, BASELINE_POOL_SIZE: String(config.database.kind === 'postgres' ? config.database.poolSize : 10) }
        : {
            BASELINE_DATA_DIR: join(scratch, 'baseline-data'),
            BASELINE_MIGRATIONS: join(ROOT, 'dist/kernel/db/migrations'),
            BASELINE_SEED: JSON.stringify({
              userId: claims.sub,
              username: claims['username'],
              sessionId: claims['sid'],
              createdAt: ourMe['created_at'],
              updatedAt: ourMe['updated_at'],
              amr: claims['amr'],
              aal: claims['aal'],
            }),
            BASELINE_LOGIN_SEED: JSON.stringify({ usernames: users, hash: storedHash }),
          }),
    }, join(scratch, 'baseline.log'));
    const baselinePid = baseline.child.pid!;
    const bearer = { authorization: `Bearer ${token}` };
    const me: Load = { url: `${server.url}/api/auth/me`, headers: bearer, connections: ME_CONNECTIONS };
    const floor: Load = { url: `${baseline.url}/api/auth/me`, headers: bearer, connections: ME_CONNECTIONS };
    const minimalLogin = `${baseline.url}/api/auth/login`;
    const minimalAnswer = await fetch(minimalLogin, { method: 'POST', headers: { 'content-type': 'application/json' }, body: loginBody() });
    if (minimalAnswer.status !== 200) throw new Error(`the minimal login answered ${minimalAnswer.status}: ${await minimalAnswer.text()}`);
    const [ours, theirs] = await Promise.all([me, floor].map(async (l) => (await fetch(l.url, { headers: bearer })).json() as Promise<Record<string, unknown>>));
    if (!isDeepStrictEqual(ours, theirs)) {
      throw new Error(`for the same token the baseline answers ${JSON.stringify(theirs)}, the service ${JSON.stringify(ours)}`);
    }

    // One round that does not count, so that the JIT and the connection pools are warm in every round that does.
    await ceilingWindow(hasher, storedHash, WINDOW);
    await loginWindow(serverPid, login.url, LOGIN_CONNECTIONS, loginBody);
    await loginWindow(baselinePid, minimalLogin, LOGIN_CONNECTIONS, loginBody);
    for (const l of [floor, me]) await load(l);

    const rateName = CHEAP ? 'logins/s (cheap hash)' : 'logins/s';
    const roundsStart = await machineCpu();
    const oursBeforeRounds = await ourCpuSeconds(serverPid, baselinePid);
    for (let r = 0; r < ROUNDS; r++) {
      const roundStart = await machineCpu();
      const oursAtStart = await ourCpuSeconds(serverPid, baselinePid);
      const loadAtStart = os.loadavg()[0];
      const ceiling = await ceilingWindow(hasher, storedHash, WINDOW);
      const loginStart = monotonicUs();
      const logins = await loginWindow(serverPid, login.url, LOGIN_CONNECTIONS, loginBody);
      loginWindows.push({ startUs: loginStart, endUs: monotonicUs() });
      const minimal = await loginWindow(baselinePid, minimalLogin, LOGIN_CONNECTIONS, loginBody);
      loginParts.service.add(logins.parts, logins.count);
      loginParts.minimal.add(minimal.parts, minimal.count);
      const floorMe = await measured(baselinePid, floor);
      const meStart = monotonicUs();
      const serviceMe = await measured(serverPid, me);
      meWindows.push({ startUs: meStart, endUs: monotonicUs() });
      const roundEnd = await machineCpu();
      const oursAtEnd = await ourCpuSeconds(serverPid, baselinePid);
      const shares = cpuShares(roundStart, roundEnd);
      const others = roundStart && roundEnd && shares && oursAtStart !== undefined && oursAtEnd !== undefined
        ? shares.busy - (100 * (oursAtEnd - oursAtStart)) / ((roundEnd.total - roundStart.total) / TICKS_PER_SECOND)
        : undefined;

      const loginRate = logins.rate;
      const loginCount = logins.count;
      const failed = Object.entries(logins.statuses).filter(([status]) => status !== '200');
      if (failed.length > 0) console.log(`round ${r + 1}: logins answered ${failed.map(([status, n]) => `${status}×${n}`).join(', ')}`);
      const minimalFailed = Object.entries(minimal.statuses).filter(([status]) => status !== '200');
      if (minimalFailed.length > 0) console.log(`round ${r + 1}: minimal logins answered ${minimalFailed.map(([status, n]) => `${status}×${n}`).join(', ')}`);
      const floorRate = floorMe.perSecond['200'] ?? 0;
      const meRate = serviceMe.perSecond['200'] ?? 0;
      const cpuPerLogin = perUnit(logins.cpuSeconds, loginCount, 1000);
      const meCpu = perUnit(serviceMe.cpuSeconds, serviceMe.latencies[200]?.length ?? 0, 1e6);
      const floorCpu = perUnit(floorMe.cpuSeconds, floorMe.latencies[200]?.length ?? 0, 1e6);
      const outsideHash = cpuPerLogin === undefined ? undefined : cpuPerLogin - ceiling.cpuMs;
      // Throughput ratios pair two windows seconds apart; CPU-time ratios do not depend on how much of the
      // machine each window got, so they stay steadier while neighbours come and go.
      rounds.set(r, 'hash ceiling (verifications/s, no HTTP)', 'context', 1, ceiling.rate);
      rounds.set(r, rateName, 'context', 1, loginRate);
      // With a cheap hash the ceiling is far above anything HTTP can reach: the ratio then says little.
      rounds.set(r, 'login ÷ ceiling', CHEAP ? 'context' : 'result', 2, loginRate / ceiling.rate);
      rounds.set(r, 'minimal login (logins/s)', 'context', 1, minimal.rate);
      rounds.set(r, 'minimal login ÷ ceiling', 'context', 2, minimal.rate / ceiling.rate);
      rounds.set(r, 'login ÷ minimal login', 'result', 2, loginRate / minimal.rate);
      if (CHEAP) rounds.set(r, `logins/s per core (${cpuCount} cores)`, 'result', 1, loginRate / cpuCount);
      rounds.set(r, 'hash CPU per verification (ms)', 'context', 2, ceiling.cpuMs);
      rounds.set(r, 'server CPU per login (ms)', 'context', 2, cpuPerLogin);
      rounds.set(r, 'hash CPU ÷ server CPU per login', CHEAP ? 'context' : 'result', 2, cpuPerLogin === undefined ? undefined : ceiling.cpuMs / cpuPerLogin);
      rounds.set(r, 'server CPU per login outside its hash (ms)', CHEAP ? 'result' : 'context', 2, outsideHash);
      rounds.set(r, 'baseline /me (req/s)', 'context', 0, floorRate);
      rounds.set(r, 'service /me (req/s)', 'context', 0, meRate);
      rounds.set(r, '/me ÷ baseline', 'result', 2, meRate / floorRate);
      rounds.set(r, 'baseline CPU per /me (µs)', 'context', 0, floorCpu);
      rounds.set(r, 'server CPU per /me (µs)', 'context', 0, meCpu);
      rounds.set(r, 'baseline CPU ÷ server CPU per /me', 'result', 2, floorCpu === undefined || meCpu === undefined ? undefined : floorCpu / meCpu);
      rounds.set(r, 'load average (1 min) at round start', 'context', 2, loadAtStart);
      rounds.set(r, 'steal (% of CPU time in the round)', 'context', 1, shares?.steal);
      rounds.set(r, 'machine busy (% of CPU time in the round)', 'context', 0, shares?.busy);
      rounds.set(r, `of which other processes${DATABASE_URL ? ' (PostgreSQL included)' : ''}`, 'context', 0, others);
      console.log(
        `round ${r + 1}/${ROUNDS}: ceiling ${ceiling.rate.toFixed(1)}/s, ${rateName} ${loginRate.toFixed(1)} (${(loginRate / ceiling.rate).toFixed(2)}), ` +
          `minimal ${minimal.rate.toFixed(1)} (${(loginRate / minimal.rate).toFixed(2)}); ` +
          `/me ${meRate.toFixed(0)}/s, baseline ${floorRate.toFixed(0)}/s (${(meRate / floorRate).toFixed(2)}); ` +
          `CPU per login ${format(cpuPerLogin, 2)} ms (hash ${ceiling.cpuMs.toFixed(2)} ms); steal ${format(shares?.steal, 1)}%`,
      );
    }
    const roundsEnd = await machineCpu();
    const oursAfterRounds = await ourCpuSeconds(serverPid, baselinePid);
    const all = cpuShares(roundsStart, roundsEnd);
    if (all && roundsStart && roundsEnd) {
      const ours = oursBeforeRounds !== undefined && oursAfterRounds !== undefined ? oursAfterRounds - oursBeforeRounds : undefined;
      duringRounds = { ...all, others: ours === undefined ? undefined : all.busy - (100 * ours) / ((roundsEnd.total - roundsStart.total) / TICKS_PER_SECOND) };
    }

    // Token endpoints while logins saturate the CPU: the event loop should still answer them at once.
    const saturating = load(login);
    const [meBusy, jwksBusy] = await Promise.all([
      load({ ...me, connections: 2 }),
      load({ url: `${server.url}/.well-known/jwks.json`, connections: 2 }),
    ]);
    const busyLogins = await saturating;
    const meLatency = meBusy.latencies[200] ?? [];
    const jwksLatency = jwksBusy.latencies[200] ?? [];
    single.push(['/me under login saturation', `p50 ${percentile(meLatency, 50)} ms, p99 ${percentile(meLatency, 99)} ms`]);
    single.push(['/.well-known/jwks.json under login saturation', `p50 ${percentile(jwksLatency, 50)} ms, p99 ${percentile(jwksLatency, 99)} ms`]);
    single.push(['logins/s meanwhile', (busyLogins.perSecond['200'] ?? 0).toFixed(1)]);

    // Memory and overload: 1,000 connections trying to log in at once.
    let peakRss = (await rssMb(serverPid)) ?? 0;
    const sampler = setInterval(() => {
      void rssMb(serverPid).then((mb) => (peakRss = Math.max(peakRss, mb ?? 0)));
    }, 200);
    const flood = await load({ ...login, connections: 1000, seconds: FLOOD });
    clearInterval(sampler);
    const answered = flood.latencies[200] ?? [];
    const shed = flood.latencies[503] ?? [];
    const other = Object.entries(flood.latencies).filter(([s]) => s !== '200' && s !== '503').map(([s, v]) => `${s}×${v.length}`).join(', ');
    single.push([
      '1,000 connections logging in: admitted',
      `${(flood.perSecond['200'] ?? 0).toFixed(1)} logins/s, p99 ${percentile(answered, 99)} ms; shed with 503: ${shed.length} (p99 ${percentile(shed, 99)} ms); other: ${other || 'none'}`,
    ]);
    single.push(['peak RSS of the server during that flood', `${peakRss.toFixed(0)} MB`]);
  } finally {
    await stopProcess(baseline);
    await stopProcess(server);
    await hasher.close();
    if (PROFILE && server?.child.pid) {
      const file = await mainThreadProfile(profileDir, server.child.pid);
      profileLines = file
        ? [...(await summarize(file, loginWindows, ROOT, 'login')), '', ...(await summarize(file, meWindows, ROOT, '/me'))]
        : ['(the server wrote no profile)'];
    }
    await rm(scratch, { recursive: true, force: true });
  }

  const machineAtEnd = `load average ${loadAverage()}`;
  const warnings = rounds.warnings();
  const lines = [
    `# Benchmark ${new Date().toISOString()}${LABEL ? `: ${LABEL}` : ''} (${revision()})`,
    '',
    `${cores()}, Node ${process.version}; ${describeHashing(config)}${CHEAP ? ' (--cheap-hash)' : ''}; ${database}; servers' NODE_OPTIONS ${SERVER_NODE_OPTIONS || '(none)'}.`,
    ...(note ? ['', `Note: ${note}.`] : []),
    '',
    `Machine: at start ${machineAtStart}; during the rounds steal ${format(duringRounds?.steal, 1)}%, busy ${format(duringRounds?.busy, 0)}% of which other processes ${format(duringRounds?.others, 0)}%${DATABASE_URL ? ' (PostgreSQL included)' : ''}; at the end ${machineAtEnd}.`,
    '',
    `${ROUNDS} rounds; each runs ${WINDOW} s windows in turn: hash ceiling, logins (${LOGIN_CONNECTIONS} connections), baseline /me, service /me (${ME_CONNECTIONS} connections each). Results in bold, the other rows for context.`,
    '',
    ...rounds.markdown(),
    '',
    '| one window | result |',
    '|---|---|',
    ...single.map(([name, figure]) => `| ${name} | ${figure} |`),
    '',
    `CPU per login by part of the machine, over every round's login windows (ms; the ceiling's hash took ${format(rounds.median('hash CPU per verification (ms)'), 2)} ms):`,
    '',
    ...PartsPerLogin.markdown({ service: loginParts.service, 'minimal login': loginParts.minimal }),
    ...(warnings.length > 0 ? ['', ...warnings] : []),
    ...(profileLines.length > 0 ? ['', 'Server main thread during the login and the /me windows (node --cpu-prof):', '', '```', ...profileLines, '```'] : []),
    '',
  ];
  await mkdir(join(ROOT, 'bench/results'), { recursive: true });
  const file = join(ROOT, `bench/results/${new Date().toISOString().slice(0, 10)}.md`);
  await writeFile(file, `${lines.join('\n')}\n`, { flag: 'a' });
  console.log(`\n${lines.join('\n')}\nwritten to ${file}`);
}

await main();
