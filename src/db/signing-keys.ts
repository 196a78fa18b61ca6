import type { JWK } from 'jose';
import type { Queryable } from './database.js';

export interface StoredSigningKey {
  kid: string;
  alg: string;
  publicJwk: JWK;
  privateJwk: JWK;
  createdAt: Date;
}

/** Unretired keys, newest first. */
export async function listActiveSigningKeys(db: Queryable): Promise<StoredSigningKey[]> {
  const rows = await db.query<{ kid: string; alg: string; public_jwk: JWK; private_jwk: JWK; created_at: Date }>(
    'SELECT kid, alg, public_jwk, private_jwk, created_at FROM signing_keys WHERE retired_at IS NULL ORDER BY created_at DESC, kid',
  );
  return rows.map((r) => ({ kid: r.kid, alg: r.alg, publicJwk: r.public_jwk, privateJwk: r.private_jwk, createdAt: r.created_at }));
}

export async function insertSigningKey(
  db: Queryable,
  key: { kid: string; alg: string; publicJwk: JWK; privateJwk: JWK },
): Promise<void> {
  await db.query('INSERT INTO signing_keys (kid, alg, public_jwk, private_jwk) VALUES ($1, $2, $3::jsonb, $4::jsonb)', [
    key.kid,
    key.alg,
    JSON.stringify(key.publicJwk),
    JSON.stringify(key.privateJwk),
  ]);
}

/** Serialises key creation between instances starting at once (released at commit). */
export async function lockSigningKeys(db: Queryable): Promise<void> {
  await db.query(`SELECT pg_advisory_xact_lock(hashtext('user-auth-service:signing-keys:' || current_schema()))`);
}
