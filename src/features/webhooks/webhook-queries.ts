import type { Queryable } from '../../kernel/db/database.js';

/** A secret as stored: AES-256-GCM under the SECRETS_ENCRYPTION_KEY key of `keyId`, the endpoint's id bound to it. */
export interface SealedSecret {
  sealed: Buffer;
  keyId: string;
}

export interface StoredEndpoint {
  id: string;
  url: string;
  description: string;
  /** Event types, or `*`. */
  events: string[];
  enabled: boolean;
  secret: SealedSecret;
  /** The secret before the last rotation, while it still signs. */
  previous: (SealedSecret & { until: Date }) | undefined;
  createdAt: Date;
  updatedAt: Date;
}

interface EndpointRow {
  id: string;
  url: string;
  description: string;
  events: string[];
  enabled: boolean;
  secret_sealed: Buffer;
  secret_key_id: string;
  previous_secret_sealed: Buffer | null;
  previous_secret_key_id: string | null;
  previous_secret_until: Date | null;
  created_at: Date;
  updated_at: Date;
}

// The previous secret only while it still signs: an expired one is as good as gone.
const COLUMNS = `id, url, description, events, enabled, secret_sealed, secret_key_id, created_at, updated_at,
  CASE WHEN previous_secret_until > now() THEN previous_secret_sealed END AS previous_secret_sealed,
  CASE WHEN previous_secret_until > now() THEN previous_secret_key_id END AS previous_secret_key_id,
  CASE WHEN previous_secret_until > now() THEN previous_secret_until END AS previous_secret_until`;

function toEndpoint(row: EndpointRow): StoredEndpoint {
  return {
    id: row.id,
    url: row.url,
    description: row.description,
    events: row.events,
    enabled: row.enabled,
    secret: { sealed: Buffer.from(row.secret_sealed), keyId: row.secret_key_id },
    previous:
      row.previous_secret_sealed && row.previous_secret_key_id && row.previous_secret_until
        ? { sealed: Buffer.from(row.previous_secret_sealed), keyId: row.previous_secret_key_id, until: row.previous_secret_until }
        : undefined,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export async function insertEndpoint(
  db: Queryable,
  endpoint: { id: string; url: string; description: string; events: string[]; secret: SealedSecret },
): Promise<StoredEndpoint> {
  const [row] = await db.query<EndpointRow>(
    `INSERT INTO webhook_endpoints (id, url, description, events, secret_sealed, secret_key_id) VALUES ($1, $2, $3, $4, $5, $6)
     RETURNING ${COLUMNS}`,
    [endpoint.id, endpoint.url, endpoint.description, endpoint.events, endpoint.secret.sealed, endpoint.secret.keyId],
  );
  return toEndpoint(row!);
}

export async function listEndpoints(db: Queryable): Promise<StoredEndpoint[]> {
  const rows = await db.query<EndpointRow>(`SELECT ${COLUMNS} FROM webhook_endpoints ORDER BY created_at, id`);
  return rows.map(toEndpoint);
}

export async function findEndpoint(db: Queryable, id: string): Promise<StoredEndpoint | undefined> {
  const [row] = await db.query<EndpointRow>(`SELECT ${COLUMNS} FROM webhook_endpoints WHERE id = $1`, [id]);
  return row && toEndpoint(row);
}

export async function updateEndpoint(
  db: Queryable,
  id: string,
  changes: { url?: string | undefined; description?: string | undefined; events?: string[] | undefined; enabled?: boolean | undefined },
): Promise<StoredEndpoint | undefined> {
  const [row] = await db.query<EndpointRow>(
    `UPDATE webhook_endpoints
        SET url = COALESCE($2, url), description = COALESCE($3, description), events = COALESCE($4, events),
            enabled = COALESCE($5, enabled), updated_at = now()
      WHERE id = $1 RETURNING ${COLUMNS}`,
    [id, changes.url ?? null, changes.description ?? null, changes.events ?? null, changes.enabled ?? null],
  );
  return row && toEndpoint(row);
}

/** The new secret signs from now on; the current one goes on signing beside it for `overlapSeconds`. */
export async function rotateEndpointSecret(db: Queryable, id: string, secret: SealedSecret, overlapSeconds: number): Promise<StoredEndpoint | undefined> {
  const [row] = await db.query<EndpointRow>(
    `UPDATE webhook_endpoints
        SET previous_secret_sealed = secret_sealed, previous_secret_key_id = secret_key_id,
            previous_secret_until = now() + make_interval(secs => $4),
            secret_sealed = $2, secret_key_id = $3, updated_at = now()
      WHERE id = $1 RETURNING ${COLUMNS}`,
    [id, secret.sealed, secret.keyId, overlapSeconds],
  );
  return row && toEndpoint(row);
}

export async function deleteEndpoint(db: Queryable, id: string): Promise<boolean> {
  const rows = await db.query('DELETE FROM webhook_endpoints WHERE id = $1 RETURNING id', [id]);
  return rows.length > 0;
}

/** The enabled endpoints that want events of `type`. */
export async function findSubscribedEndpointIds(db: Queryable, type: string): Promise<string[]> {
  const rows = await db.query<{ id: string }>(
    `SELECT id FROM webhook_endpoints WHERE enabled AND ($1 = ANY (events) OR '*' = ANY (events)) ORDER BY created_at, id`,
    [type],
  );
  return rows.map((row) => row.id);
}

/** How many stored secrets (current, and previous while they sign) each key sealed. */
export async function countEndpointSecretsByKey(db: Queryable): Promise<Map<string, number>> {
  const rows = await db.query<{ key_id: string; count: string | number }>(
    `SELECT key_id, count(*) AS count FROM (
       SELECT secret_key_id AS key_id FROM webhook_endpoints
       UNION ALL
       SELECT previous_secret_key_id FROM webhook_endpoints WHERE previous_secret_until > now()
     ) AS secrets GROUP BY key_id`,
  );
  return new Map(rows.map((row) => [row.key_id, Number(row.count)]));
}

/** Endpoints with a secret (current, or previous while it signs) not sealed under `keyId`. */
export async function findEndpointsNotUnderKey(db: Queryable, keyId: string): Promise<StoredEndpoint[]> {
  const rows = await db.query<EndpointRow>(
    `SELECT ${COLUMNS} FROM webhook_endpoints
      WHERE secret_key_id <> $1 OR (previous_secret_until > now() AND previous_secret_key_id <> $1)`,
    [keyId],
  );
  return rows.map(toEndpoint);
}

/** Stores resealed secrets, unless a rotation changed them meanwhile; returns whether it did. */
export async function resealEndpoint(db: Queryable, before: StoredEndpoint, secret: SealedSecret, previous: SealedSecret | undefined): Promise<boolean> {
  const rows = await db.query(
    `UPDATE webhook_endpoints SET secret_sealed = $3, secret_key_id = $4,
            previous_secret_sealed = COALESCE($5, previous_secret_sealed), previous_secret_key_id = COALESCE($6, previous_secret_key_id)
      WHERE id = $1 AND secret_sealed = $2 RETURNING id`,
    [before.id, before.secret.sealed, secret.sealed, secret.keyId, previous?.sealed ?? null, previous?.keyId ?? null],
  );
  return rows.length > 0;
}
