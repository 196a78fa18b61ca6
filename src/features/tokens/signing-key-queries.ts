import type { JWK } from 'jose';
import type { Queryable } from '../../kernel/db/database.js';

export interface StoredSigningKey {
  kid: string;
  alg: string;
  publicJwk: JWK;
  /** Null for an operator's key (JWT_PRIVATE_KEY): its private half never leaves the operator's secret store. */
  privateJwk: JWK | null;
  createdAt: Date;
  /** When it stops verifying: null while it is the current key, in the future while its last tokens expire. */
  retiredAt: Date | null;
}

interface Row {
  kid: string;
  alg: string;
  public_jwk: JWK;
  private_jwk: JWK | null;
  created_at: Date;
  retired_at: Date | null;
}

const COLUMNS = 'kid, alg, public_jwk, private_jwk, created_at, retired_at';

function toKey(r: Row): StoredSigningKey {
  return { kid: r.kid, alg: r.alg, publicJwk: r.public_jwk, privateJwk: r.private_jwk, createdAt: r.created_at, retiredAt: r.retired_at };
}

/** Keys that still verify (not yet retired), newest first. */
export async function listVerifyingKeys(db: Queryable): Promise<StoredSigningKey[]> {
  const rows = await db.query<Row>(
    `SELECT ${COLUMNS} FROM signing_keys WHERE retired_at IS NULL OR retired_at > now() ORDER BY created_at DESC, kid`,
  );
  return rows.map(toKey);
}

/** Every key ever used, retired ones included, newest first: for operators. */
export async function listAllKeys(db: Queryable): Promise<StoredSigningKey[]> {
  const rows = await db.query<Row>(`SELECT ${COLUMNS} FROM signing_keys ORDER BY created_at DESC, kid`);
  return rows.map(toKey);
}

/** Adds a key as current; a key already known by this kid (an operator switching back to it) becomes current again. */
export async function upsertSigningKey(
  db: Queryable,
  key: { kid: string; alg: string; publicJwk: JWK; privateJwk: JWK | null },
): Promise<void> {
  await db.query(
    `INSERT INTO signing_keys (kid, alg, public_jwk, private_jwk) VALUES ($1, $2, $3::jsonb, $4::jsonb)
     ON CONFLICT (kid) DO UPDATE SET retired_at = NULL`,
    [key.kid, key.alg, JSON.stringify(key.publicJwk), key.privateJwk === null ? null : JSON.stringify(key.privateJwk)],
  );
}

/** Schedules every other current key's retirement `afterSeconds` from now: they verify until then, and sign no more. */
export async function supersedeOtherKeys(db: Queryable, kid: string, afterSeconds: number): Promise<string[]> {
  const rows = await db.query<{ kid: string }>(
    `UPDATE signing_keys SET retired_at = now() + make_interval(secs => $2) WHERE kid <> $1 AND retired_at IS NULL RETURNING kid`,
    [kid, afterSeconds],
  );
  return rows.map((r) => r.kid);
}

/** Retires a key at once; false if there is no such key or it is already retired. */
export async function retireKeyNow(db: Queryable, kid: string): Promise<boolean> {
  const rows = await db.query(
    'UPDATE signing_keys SET retired_at = now() WHERE kid = $1 AND (retired_at IS NULL OR retired_at > now()) RETURNING kid',
    [kid],
  );
  return rows.length > 0;
}

/** Serialises key changes between instances starting at once and the CLI (released at commit). */
export async function lockSigningKeys(db: Queryable): Promise<void> {
  await db.query(`SELECT pg_advisory_xact_lock(hashtext('user-auth-service:signing-keys:' || current_schema()))`);
}
