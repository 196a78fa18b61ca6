/**
 * The floor for `GET /api/auth/me`, started by bench/run.ts beside the service: the least any Fastify handler
 * can do for the same answer. It verifies the same ES256 token against the same public key and reads the same
 * session row with the service's one indexed query, and does nothing else (no logging, hooks, metrics or
 * response schema). The service's /me rate divided by this one is what the service adds to the token path,
 * and it holds on a machine whose speed drifts, because both are measured within seconds of each other.
 *
 * BASELINE_JWK, BASELINE_ISSUER, BASELINE_AUDIENCE: the service's public key and the token's claims to check.
 * BASELINE_DATABASE_URL: the service's PostgreSQL (a pool of BASELINE_POOL_SIZE, the service's default size).
 * Without it, an embedded database of its own in BASELINE_DATA_DIR (the service's embedded database cannot be
 * opened by a second process): the shipped migrations from BASELINE_MIGRATIONS, then the user and session of
 * BASELINE_SEED, so the query reads the same schema, index and row as in the service.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import Fastify from 'fastify';
import { importJWK, jwtVerify, type JWK } from 'jose';
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

// The service's findLiveSession, word for word: the same plan, on the same index.
const LIVE_SESSION = `SELECT u.id, u.username, u.created_at, u.updated_at, s.id AS session_id, s.auth_method, s.authenticated_at
       FROM sessions s JOIN users u ON u.id = s.user_id
      WHERE s.id = $1 AND ($2::bigint IS NULL OR s.user_id = $2)
        AND s.revoked_at IS NULL AND s.expires_at > now() AND s.last_used_at > now() - make_interval(secs => $3)`;

interface SessionRow {
  id: string | number;
  username: string;
  created_at: Date;
  updated_at: Date;
}

type Query = (text: string, params: unknown[]) => Promise<SessionRow[]>;

async function openDatabase(): Promise<{ query: Query; close(): Promise<void> }> {
  const url = process.env['BASELINE_DATABASE_URL'];
  if (url) {
    const pool = new pg.Pool({ connectionString: url, max: Number(process.env['BASELINE_POOL_SIZE'] ?? 10) });
    return { query: async (text, params) => (await pool.query<SessionRow>(text, params)).rows, close: () => pool.end() };
  }
  const db = await PGlite.create(required('BASELINE_DATA_DIR'));
  const migrations = required('BASELINE_MIGRATIONS');
  for (const file of readdirSync(migrations).filter((f) => /^\d+_.*\.sql$/.test(f)).sort()) {
    await db.exec(readFileSync(join(migrations, file), 'utf8'));
  }
  const seed = JSON.parse(required('BASELINE_SEED')) as { userId: string; username: string; sessionId: string };
  await db.query(`INSERT INTO users (id, username, username_normalized, password_hash) VALUES ($1, $2, $2, '')`, [seed.userId, seed.username]);
  await db.query(
    `INSERT INTO sessions (id, user_id, auth_method, expires_at) VALUES ($1, $2, 'password', now() + interval '1 day')`,
    [seed.sessionId, seed.userId],
  );
  return { query: async (text, params) => (await db.query<SessionRow>(text, params)).rows, close: () => db.close() };
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
  return { id: Number(row.id), username: row.username, created_at: row.created_at.toISOString(), updated_at: row.updated_at.toISOString() };
});

process.once('SIGTERM', () => {
  void app.close().then(() => db.close()).then(() => process.exit(0));
});

const address = await app.listen({ host: '127.0.0.1', port: 0 });
console.log(`baseline listening on ${address}`);
