import type { Queryable } from '../../kernel/db/database.js';

/** A stored object of the provider library: its payload, and when it was consumed (a code, a rotated refresh token). */
export interface StoredModel {
  payload: Record<string, unknown>;
  consumedAt: Date | null;
}

// NUL and lone surrogates: JSON may carry them, jsonb refuses them. Request parameters a client chose (state,
// nonce, login_hint) are stored in interactions and codes; what they become is their sender's business.
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

function storable(payload: Record<string, unknown>): string {
  return JSON.stringify(payload, (_key, value: unknown) => (typeof value === 'string' ? value.replace(UNSTORABLE, '\uFFFD') : value));
}

/** Stores (or replaces) an object of the provider library; it is found until `expiresInSeconds` from now, if given. */
export async function upsertModel(
  db: Queryable,
  model: string,
  id: string,
  row: { payload: Record<string, unknown>; grantId?: string | undefined; uid?: string | undefined; userCode?: string | undefined; expiresInSeconds?: number | undefined },
): Promise<void> {
  await db.query(
    `INSERT INTO oidc_models (model, id, payload, grant_id, uid, user_code, expires_at)
     VALUES ($1, $2, $3::jsonb, $4, $5, $6, CASE WHEN $7::integer IS NULL THEN NULL ELSE now() + make_interval(secs => $7::integer) END)
     ON CONFLICT (model, id) DO UPDATE
       SET payload = EXCLUDED.payload, grant_id = EXCLUDED.grant_id, uid = EXCLUDED.uid, user_code = EXCLUDED.user_code,
           expires_at = EXCLUDED.expires_at`,
    [model, id, storable(row.payload), row.grantId ?? null, row.uid ?? null, row.userCode ?? null, row.expiresInSeconds ?? null],
  );
}

const UNEXPIRED = '(expires_at IS NULL OR expires_at > now())';

function toStored(row: { payload: Record<string, unknown>; consumed_at: Date | null } | undefined): StoredModel | undefined {
  return row && { payload: row.payload, consumedAt: row.consumed_at };
}

export async function findModel(db: Queryable, model: string, id: string): Promise<StoredModel | undefined> {
  const [row] = await db.query<{ payload: Record<string, unknown>; consumed_at: Date | null }>(
    `SELECT payload, consumed_at FROM oidc_models WHERE model = $1 AND id = $2 AND ${UNEXPIRED}`,
    [model, id],
  );
  return toStored(row);
}

export async function findModelBy(db: Queryable, model: string, column: 'uid' | 'user_code', value: string): Promise<StoredModel | undefined> {
  const [row] = await db.query<{ payload: Record<string, unknown>; consumed_at: Date | null }>(
    `SELECT payload, consumed_at FROM oidc_models WHERE model = $1 AND ${column} = $2 AND ${UNEXPIRED}`,
    [model, value],
  );
  return toStored(row);
}

export async function consumeModel(db: Queryable, model: string, id: string): Promise<void> {
  await db.query('UPDATE oidc_models SET consumed_at = now() WHERE model = $1 AND id = $2 AND consumed_at IS NULL', [model, id]);
}

export async function deleteModel(db: Queryable, model: string, id: string): Promise<void> {
  await db.query('DELETE FROM oidc_models WHERE model = $1 AND id = $2', [model, id]);
}

export async function deleteModelsOfGrant(db: Queryable, model: string, grantId: string): Promise<void> {
  await db.query('DELETE FROM oidc_models WHERE model = $1 AND grant_id = $2', [model, grantId]);
}

/** Objects past their expiry, which nothing finds any more. */
export async function purgeExpiredModels(db: Queryable): Promise<number> {
  const rows = await db.query('DELETE FROM oidc_models WHERE expires_at <= now() RETURNING id');
  return rows.length;
}

export interface StoredClient {
  id: string;
  /** The RFC 7591 metadata as registered (without the secret). */
  metadata: Record<string, unknown>;
  secretHash: Buffer | null;
  createdAt: Date;
  updatedAt: Date;
}

interface ClientRow {
  id: string;
  metadata: Record<string, unknown>;
  secret_hash: Uint8Array | null;
  created_at: Date;
  updated_at: Date;
}

const CLIENT_COLUMNS = 'id, metadata, secret_hash, created_at, updated_at';

function toClient(row: ClientRow): StoredClient {
  return {
    id: row.id,
    metadata: row.metadata,
    secretHash: row.secret_hash === null ? null : Buffer.from(row.secret_hash),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export async function insertClient(db: Queryable, client: { id: string; metadata: Record<string, unknown>; secretHash: Buffer | null }): Promise<StoredClient> {
  const [row] = await db.query<ClientRow>(
    `INSERT INTO oidc_clients (id, metadata, secret_hash) VALUES ($1, $2::jsonb, $3) RETURNING ${CLIENT_COLUMNS}`,
    [client.id, JSON.stringify(client.metadata), client.secretHash],
  );
  return toClient(row!);
}

export async function findClient(db: Queryable, id: string): Promise<StoredClient | undefined> {
  const [row] = await db.query<ClientRow>(`SELECT ${CLIENT_COLUMNS} FROM oidc_clients WHERE id = $1`, [id]);
  return row && toClient(row);
}

export async function listClients(db: Queryable): Promise<StoredClient[]> {
  const rows = await db.query<ClientRow>(`SELECT ${CLIENT_COLUMNS} FROM oidc_clients ORDER BY created_at, id`);
  return rows.map(toClient);
}

export async function updateClient(db: Queryable, id: string, metadata: Record<string, unknown>): Promise<StoredClient | undefined> {
  const [row] = await db.query<ClientRow>(
    `UPDATE oidc_clients SET metadata = $2::jsonb, updated_at = now() WHERE id = $1 RETURNING ${CLIENT_COLUMNS}`,
    [id, JSON.stringify(metadata)],
  );
  return row && toClient(row);
}

/** Deletes the client and whatever the provider stored for it: its grants, codes and tokens stop working at once. */
export async function deleteClient(db: Queryable, id: string): Promise<boolean> {
  const rows = await db.query('DELETE FROM oidc_clients WHERE id = $1 RETURNING id', [id]);
  if (rows.length === 0) return false;
  await db.query(`DELETE FROM oidc_models WHERE payload->>'clientId' = $1`, [id]);
  return true;
}

/** A provider session stands on this service session (of this user) from now on. */
export async function linkProviderSession(db: Queryable, providerSessionUid: string, sessionId: string, userId: string): Promise<void> {
  await db.query(
    `INSERT INTO oidc_session_links (provider_session_uid, session_id, user_id) VALUES ($1, $2, $3)
     ON CONFLICT (provider_session_uid) DO UPDATE SET session_id = EXCLUDED.session_id, user_id = EXCLUDED.user_id, created_at = now()`,
    [providerSessionUid, sessionId, userId],
  );
}

/**
 * Takes the links whose service session has ended (by a logout, a revocation, a lock: it is marked so) or is gone
 * (its account was deleted): each is returned to one caller only, on any instance, and deleted. `userId` narrows
 * the search to one user's; without it, every user's.
 */
export async function takeEndedLinks(db: Queryable, userId: string | undefined): Promise<{ providerSessionUid: string; userId: string }[]> {
  const rows = await db.query<{ provider_session_uid: string; user_id: string | number }>(
    `DELETE FROM oidc_session_links l
      WHERE ($1::bigint IS NULL OR l.user_id = $1)
        AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.id = l.session_id AND s.revoked_at IS NULL AND s.expires_at > now())
      RETURNING l.provider_session_uid, l.user_id`,
    [userId ?? null],
  );
  return rows.map((row) => ({ providerSessionUid: row.provider_session_uid, userId: String(row.user_id) }));
}

/** Drops the link of a provider session that ended on its own (a logout at the provider). */
export async function unlinkProviderSession(db: Queryable, providerSessionUid: string): Promise<void> {
  await db.query('DELETE FROM oidc_session_links WHERE provider_session_uid = $1', [providerSessionUid]);
}
