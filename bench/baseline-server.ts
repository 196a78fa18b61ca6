/**
 * The floors, started by bench/run.ts beside the service: the least any Fastify handler can do for the same answer.
 *
 * `GET /api/auth/me` verifies the same ES256 token against the same public key and reads the same session row
 * with the service's one indexed query, and does nothing else (no logging, hooks, metrics or response schema).
 * The service's /me rate divided by this one is what the service adds to the token path, and it holds on a
 * machine whose speed drifts, because both are measured within seconds of each other.
 *
 * `POST /api/auth/login` is a login with nothing but what every login must do: the user's row, one argon2id
 * verification on a pool of worker threads with the service's parameters, thread count and nice value, a session
 * row with its refresh token, and an ES256 token signed with jose. The service's login rate divided by this one
 * is what the rest of the service's login costs, apart from the hash.
 *
 * BASELINE_JWK, BASELINE_ISSUER, BASELINE_AUDIENCE: the service's public key and the token's claims to check.
 * BASELINE_DATABASE_URL: the service's PostgreSQL (a pool of BASELINE_POOL_SIZE, the service's default size).
 * Without it, an embedded database of its own in BASELINE_DATA_DIR (the service's embedded database cannot be
 * opened by a second process): the shipped migrations from BASELINE_MIGRATIONS, then the user and session of
 * BASELINE_SEED, so the query reads the same schema, index and row as in the service.
 * BASELINE_ARGON2: {memoryKib, timeCost, parallelism, threads, niceness} of the service's hasher.
 * BASELINE_LOGIN_SEED (embedded only): {usernames, hash}: the accounts the login windows sign in as, all with
 * one hash of the benchmark's password (on PostgreSQL the baseline reads the accounts the service registered).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import Fastify from 'fastify';
import { createHash, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { exportJWK, generateKeyPair, importJWK, jwtVerify, SignJWT, type JWK } from 'jose';
import pg from 'pg';

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
}

const jwk = JSON.parse(required('BASELINE_JWK')) as JWK;
const algorithm = jwk.alg ?? 'ES256';
const key = await importJWK(jwk, algorithm);
const issuer = required('BASELINE_ISSUER');
const audience = required('BASELINE_AUDIENCE');
const idleTimeoutSeconds = Number(process.env['BASELINE_IDLE_TIMEOUT_SECONDS'] ?? 30 * 86_400);

// The service's findLiveSession, word for word: the same columns, plan and index. bench/run.ts checks that both
// answer the same /me for the same token.
const LIVE_SESSION = `SELECT u.id, u.username, u.roles, u.created_at, u.updated_at, s.id AS session_id, s.auth_method, s.authenticated_at, s.expires_at, s.amr, s.aal, u.user_metadata, u.app_metadata, u.email, u.email_verified_at
         FROM sessions s JOIN users u ON u.id = s.user_id
        WHERE s.id = $1 AND ($2::bigint IS NULL OR s.user_id = $2) AND s.revoked_at IS NULL AND s.expires_at > now() AND s.last_used_at > now() - make_interval(secs => $3)`;

interface SessionRow {
  id: string | number;
  username: string;
  roles: string[];
  created_at: Date;
  updated_at: Date;
  amr: string[];
  aal: number;
  user_metadata: Record<string, unknown>;
  app_metadata: Record<string, unknown>;
  email: string | null;
  email_verified_at: Date | null;
}

type Query = <Row = SessionRow>(text: string, params: unknown[]) => Promise<Row[]>;

async function openDatabase(): Promise<{ query: Query; close(): Promise<void> }> {
  const url = process.env['BASELINE_DATABASE_URL'];
  if (url) {
    const pool = new pg.Pool({ connectionString: url, max: Number(process.env['BASELINE_POOL_SIZE'] ?? 10) });
    return { query: async <Row,>(text: string, params: unknown[]) => (await pool.query(text, params)).rows as Row[], close: () => pool.end() };
  }
  const db = await PGlite.create(required('BASELINE_DATA_DIR'));
  const migrations = required('BASELINE_MIGRATIONS');
  for (const file of readdirSync(migrations).filter((f) => /^\d+_.*\.sql$/.test(f)).sort()) {
    await db.exec(readFileSync(join(migrations, file), 'utf8'));
  }
  // The service's user and session as its /me shows them, so that both answer the same.
  const seed = JSON.parse(required('BASELINE_SEED')) as {
    userId: string;
    username: string;
    sessionId: string;
    createdAt: string;
    updatedAt: string;
    amr: string[];
    aal: number;
  };
  await db.query(
    `INSERT INTO users (id, username, username_normalized, password_hash, created_at, updated_at) VALUES ($1, $2, $2, $3, $4, $5)`,
    [seed.userId, seed.username, JSON.parse(process.env['BASELINE_LOGIN_SEED'] ?? '{"hash":""}').hash, seed.createdAt, seed.updatedAt],
  );
  await db.query(`SELECT setval(pg_get_serial_sequence('users', 'id'), (SELECT max(id) FROM users))`);
  await db.query(
    `INSERT INTO sessions (id, user_id, auth_method, expires_at, amr, aal) VALUES ($1, $2, 'password', now() + interval '1 day', $3, $4)`,
    [seed.sessionId, seed.userId, seed.amr, seed.aal],
  );
  const logins = process.env['BASELINE_LOGIN_SEED'];
  if (logins) {
    const { usernames, hash } = JSON.parse(logins) as { usernames: string[]; hash: string };
    await db.query(
      `INSERT INTO users (username, username_normalized, password_hash) SELECT name, name, $2 FROM unnest($1::text[]) AS name ON CONFLICT DO NOTHING`,
      [usernames, hash],
    );
  }
  return { query: async <Row,>(text: string, params: unknown[]) => (await db.query(text, params)).rows as Row[], close: () => db.close() };
}

/**
 * argon2id verifications on worker threads: each thread takes jobs in turn, two at a time so that it never waits
 * for the event loop between them. As little as a pool can be, with the service's parameters.
 */
function hashPool(settings: { threads: number; niceness: number }): (hash: string, password: string) => Promise<boolean> {
  const argon2Path = createRequire(import.meta.url).resolve('@node-rs/argon2');
  const source = `
    const { parentPort, workerData } = require('node:worker_threads');
    try { require('node:os').setPriority(0, workerData.niceness); } catch {}
    const argon2 = require(workerData.argon2Path);
    parentPort.on('message', ({ id, hash, password }) => {
      let result = false;
      try { result = argon2.verifySync(hash, password); } catch {}
      parentPort.postMessage({ id, result });
    });`;
  const waiting: { id: number; hash: string; password: string }[] = [];
  const pending = new Map<number, (matches: boolean) => void>();
  const threads = Array.from({ length: settings.threads }, () => {
    const thread = { worker: new Worker(source, { eval: true, workerData: { argon2Path, niceness: settings.niceness } }), busy: 0 };
    thread.worker.unref();
    thread.worker.on('message', ({ id, result }: { id: number; result: boolean }) => {
      thread.busy -= 1;
      pending.get(id)!(result);
      pending.delete(id);
      feed();
    });
    return thread;
  });
  const feed = () => {
    for (const thread of threads) {
      while (thread.busy < 2 && waiting.length > 0) {
        thread.busy += 1;
        thread.worker.postMessage(waiting.shift());
      }
    }
  };
  let nextId = 0;
  return (hash, password) =>
    new Promise((resolve) => {
      const id = nextId++;
      pending.set(id, resolve);
      waiting.push({ id, hash, password });
      feed();
    });
}

const db = await openDatabase();
const app = Fastify({ logger: false });

const invalid = { error: 'invalid_token', message: 'The access token is invalid' };

app.get('/api/auth/me', async (request, reply) => {
  const token = /^Bearer +(\S+)$/i.exec(request.headers.authorization ?? '')?.[1];
  if (!token) return reply.code(401).send(invalid);
  let claims;
  try {
    ({ payload: claims } = await jwtVerify(token, key, { algorithms: [algorithm], issuer, audience }));
  } catch {
    return reply.code(401).send(invalid);
  }
  const [row] = await db.query(LIVE_SESSION, [claims['sid'], claims.sub, idleTimeoutSeconds]);
  if (!row) return reply.code(401).send(invalid);
  return {
    id: Number(row.id),
    username: row.username,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
    amr: row.amr,
    aal: row.aal,
    roles: row.roles,
    user_metadata: row.user_metadata,
    app_metadata: row.app_metadata,
    ...(row.email ? { email: row.email, email_verified: row.email_verified_at !== null } : {}),
  };
});

const argon2 = JSON.parse(required('BASELINE_ARGON2')) as { threads: number; niceness: number };
const verify = hashPool(argon2);
// A key of its own, of the service's kind: signing costs the same whatever the key.
const { privateKey, publicKey } = await generateKeyPair('ES256');
const kid = (await exportJWK(publicKey)).x!.slice(0, 16);
// An unknown name is still verified once, as a login must; the bench only sends names that exist.
const DUMMY_HASH = '$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$ZGdXJ6SIxvOnrNQBcFrTnRUNyKcQVPIXQEVXHGoTIv4';
const invalidCredentials = { error: 'invalid_credentials', message: 'Invalid username or password' };

app.post<{ Body: { username?: unknown; password?: unknown } }>('/api/auth/login', async (request, reply) => {
  const { username, password } = request.body ?? {};
  if (typeof username !== 'string' || typeof password !== 'string') return reply.code(400).send({ error: 'invalid_request', message: 'username and password are required' });
  const [user] = await db.query<{ id: string; username: string; password_hash: string }>(
    'SELECT id, username, password_hash FROM users WHERE username_normalized = $1',
    [username.toLowerCase()],
  );
  if (!(await verify(user?.password_hash ?? DUMMY_HASH, password)) || !user) return reply.code(401).send(invalidCredentials);
  const refreshToken = randomBytes(32).toString('base64url');
  const [session] = await db.query<{ id: string }>(
    `WITH session AS (
       INSERT INTO sessions (user_id, auth_method, expires_at) VALUES ($1, 'password', now() + interval '30 days') RETURNING id
     )
     INSERT INTO refresh_tokens (session_id, token_hash) SELECT id, $2 FROM session RETURNING session_id AS id`,
    [user.id, createHash('sha256').update(refreshToken).digest()],
  );
  const accessToken = await new SignJWT({ username: user.username, sid: session!.id })
    .setProtectedHeader({ alg: 'ES256', kid })
    .setSubject(String(user.id))
    .setIssuer(issuer)
    .setAudience(audience)
    .setIssuedAt()
    .setExpirationTime('15m')
    .sign(privateKey);
  return { access_token: accessToken, token_type: 'Bearer', expires_in: 900, refresh_token: refreshToken };
});

process.once('SIGTERM', () => {
  void app.close().then(() => db.close()).then(() => process.exit(0));
});

const address = await app.listen({ host: '127.0.0.1', port: 0 });
console.log(`baseline listening on ${address}`);
