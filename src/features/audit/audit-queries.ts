import type { Queryable } from '../../kernel/db/database.js';

export type AuditDetails = Record<string, string | number | boolean>;

export interface NewAuditEvent {
  type: string;
  userId: string | null;
  actor: string;
  ip: string | null;
  userAgent: string | null;
  requestId: string | null;
  details: AuditDetails;
}

export interface StoredAuditEvent extends NewAuditEvent {
  id: string;
  time: Date;
  /** The row's time to the microsecond, as the database prints it: what a keyset cursor holds. */
  cursorTime: string;
}

interface AuditRow {
  id: string | number;
  time: Date;
  cursor_time: string;
  type: string;
  user_id: string | number | null;
  actor: string;
  ip: string | null;
  user_agent: string | null;
  request_id: string | null;
  details: AuditDetails | string;
}

const COLUMNS = 'id, time, time::text AS cursor_time, type, user_id, actor, ip, user_agent, request_id, details';

function toEvent(row: AuditRow): StoredAuditEvent {
  return {
    id: String(row.id),
    time: row.time,
    cursorTime: row.cursor_time,
    type: row.type,
    userId: row.user_id === null ? null : String(row.user_id),
    actor: row.actor,
    ip: row.ip,
    userAgent: row.user_agent,
    requestId: row.request_id,
    details: typeof row.details === 'string' ? (JSON.parse(row.details) as AuditDetails) : row.details,
  };
}

/**
 * Writes events in one statement, in order: they share the statement's time, and their ids follow the order
 * given, which is how listings order events of the same time.
 */
export async function insertAuditEvents(db: Queryable, events: readonly NewAuditEvent[]): Promise<void> {
  const column = <T>(pick: (event: NewAuditEvent) => T) => events.map(pick);
  await db.query(
    `INSERT INTO audit_events (type, user_id, actor, ip, user_agent, request_id, details)
     SELECT type, user_id, actor, ip, user_agent, request_id, details::jsonb
       FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[]) WITH ORDINALITY
            AS e(type, user_id, actor, ip, user_agent, request_id, details, n)
      ORDER BY n`,
    [
      column((e) => e.type),
      column((e) => e.userId),
      column((e) => e.actor),
      column((e) => e.ip),
      column((e) => e.userAgent),
      column((e) => e.requestId),
      column((e) => JSON.stringify(e.details)),
    ],
  );
}

/**
 * Counts one failed login without a known account from `ip` in the database's current minute, whichever
 * instance answered it: the count so far (this one included) and the minute, as `2026-01-31T12:34Z`.
 */
export async function countLoginFailure(db: Queryable, ip: string, reason: string): Promise<{ count: number; minute: string }> {
  const [row] = await db.query<{ count: number; minute: string }>(
    `INSERT INTO audit_failure_buckets AS b (ip, minute, reason, count) VALUES ($1, date_trunc('minute', now()), $2, 1)
     ON CONFLICT (ip, minute, reason) DO UPDATE SET count = b.count + 1
     RETURNING b.count, to_char(b.minute AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI"Z"') AS minute`,
    [ip, reason],
  );
  return { count: Number(row!.count), minute: row!.minute };
}

/**
 * Adds one failure to the aggregate row of `key` (one address, minute and reason), creating it with a count of 1:
 * the database decides, so instances answering at once never make two.
 */
export async function addToAggregate(db: Queryable, key: string, event: NewAuditEvent): Promise<void> {
  await db.query(
    `INSERT INTO audit_events AS e (type, user_id, actor, ip, user_agent, request_id, details, aggregate_key)
     VALUES ($1, NULL, $2, $3, NULL, NULL, $4::jsonb || '{"count": 1}'::jsonb, $5)
     ON CONFLICT (aggregate_key) DO UPDATE
       SET details = jsonb_set(e.details, '{count}', to_jsonb((e.details->>'count')::integer + 1))`,
    [event.type, event.actor, event.ip, JSON.stringify(event.details), key],
  );
}

export interface AuditFilter {
  userId?: string | undefined;
  type?: string | undefined;
  /** The last row of the previous page: rows strictly older (by time, then id) come next. */
  before?: { time: string; id: string } | undefined;
  limit: number;
}

/** Newest first: time, then id, descending, so a page ends where the next one starts even when times tie. */
export async function findAuditEvents(db: Queryable, filter: AuditFilter): Promise<StoredAuditEvent[]> {
  const conditions: string[] = [];
  const params: unknown[] = [];
  if (filter.userId !== undefined) conditions.push(`user_id = $${params.push(filter.userId)}`);
  if (filter.type !== undefined) conditions.push(`type = $${params.push(filter.type)}`);
  if (filter.before) {
    conditions.push(`(time, id) < ($${params.push(filter.before.time)}::timestamptz, $${params.push(filter.before.id)}::bigint)`);
  }
  const where = conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '';
  const rows = await db.query<AuditRow>(
    `SELECT ${COLUMNS} FROM audit_events ${where} ORDER BY time DESC, id DESC LIMIT $${params.push(filter.limit)}`,
    params,
  );
  return rows.map(toEvent);
}

/** Drops events older than the retention, and the failure counts of minutes long past. */
export async function purgeAuditEvents(db: Queryable, retentionDays: number): Promise<number> {
  const rows = await db.query('DELETE FROM audit_events WHERE time < now() - make_interval(days => $1) RETURNING id', [retentionDays]);
  await db.query("DELETE FROM audit_failure_buckets WHERE minute < now() - interval '10 minutes'");
  return rows.length;
}
