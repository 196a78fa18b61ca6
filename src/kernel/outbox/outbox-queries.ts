import type { Queryable } from '../db/database.js';

export type OutboxState = 'pending' | 'sent' | 'failed';

export interface OutboxRow {
  id: string;
  topic: string;
  subject: string | null;
  payload: unknown;
  state: OutboxState;
  created_at: Date;
  available_at: Date;
  attempts: number;
  last_error: string | null;
  last_attempt_at: Date | null;
  finished_at: Date | null;
}

const COLUMNS =
  'id::text AS id, topic, subject, payload, state, created_at, available_at, attempts, last_error, last_attempt_at, finished_at';

/** Writes a message; `tx` is the transaction of the change it tells of. */
export async function insertOutboxRow(
  tx: Queryable,
  message: { topic: string; subject?: string | null; payload: unknown; availableAt?: Date },
): Promise<string> {
  const [row] = await tx.query<{ id: string }>(
    `INSERT INTO outbox (topic, subject, payload, available_at) VALUES ($1, $2, $3, COALESCE($4, now())) RETURNING id::text AS id`,
    [message.topic, message.subject ?? null, JSON.stringify(message.payload), message.availableAt ?? null],
  );
  return row!.id;
}

/**
 * Takes up to `limit` due rows of `topics` for this sender: each gets one more attempt and is hidden from every
 * other sender for `leaseSeconds`. A sender that dies mid-delivery leaves the row to be taken again when the lease
 * ends: delivery is at least once.
 */
export async function claimDueRows(db: Queryable, topics: readonly string[], limit: number, leaseSeconds: number): Promise<OutboxRow[]> {
  return db.query<OutboxRow>(
    `UPDATE outbox SET attempts = attempts + 1, last_attempt_at = now(), available_at = now() + make_interval(secs => $3)
      WHERE id IN (
        SELECT id FROM outbox
         WHERE state = 'pending' AND available_at <= now() AND topic = ANY($1::text[])
         ORDER BY available_at, id
         LIMIT $2
         FOR UPDATE SKIP LOCKED)
      RETURNING ${COLUMNS}`,
    [topics, limit, leaseSeconds],
  );
}

export async function markSent(db: Queryable, id: string, payload?: unknown): Promise<void> {
  await db.query(
    `UPDATE outbox SET state = 'sent', finished_at = now(), last_error = NULL, payload = COALESCE($2::jsonb, payload) WHERE id = $1`,
    [id, payload === undefined ? null : JSON.stringify(payload)],
  );
}

export async function markRetry(db: Queryable, id: string, error: string, delaySeconds: number): Promise<void> {
  await db.query(
    `UPDATE outbox SET last_error = $2, available_at = now() + make_interval(secs => $3) WHERE id = $1 AND state = 'pending'`,
    [id, error, delaySeconds],
  );
}

export async function markFailed(db: Queryable, id: string, error: string, payload?: unknown): Promise<void> {
  await db.query(
    `UPDATE outbox SET state = 'failed', finished_at = now(), last_error = $2, payload = COALESCE($3::jsonb, payload) WHERE id = $1`,
    [id, error, payload === undefined ? null : JSON.stringify(payload)],
  );
}

/** Rows of a topic (and subject) waiting for a retry become due now: the destination answered again. */
export async function releaseWaiting(db: Queryable, topic: string, subject: string | null): Promise<number> {
  const rows = await db.query<{ id: string }>(
    `UPDATE outbox SET available_at = now()
      WHERE state = 'pending' AND topic = $1 AND subject IS NOT DISTINCT FROM $2 AND attempts > 0 AND available_at > now()
        AND last_error IS NOT NULL
      RETURNING id::text AS id`,
    [topic, subject],
  );
  return rows.length;
}

/** Puts a finished or waiting row back in line at once, as a new series of attempts. */
export async function requeueRow(db: Queryable, topic: string, id: string): Promise<OutboxRow | undefined> {
  const [row] = await db.query<OutboxRow>(
    `UPDATE outbox SET state = 'pending', available_at = now(), finished_at = NULL, attempts = 0, created_at = now()
      WHERE id = $2 AND topic = $1 RETURNING ${COLUMNS}`,
    [topic, id],
  );
  return row;
}

export async function findOutboxRow(db: Queryable, topic: string, id: string): Promise<OutboxRow | undefined> {
  const [row] = await db.query<OutboxRow>(`SELECT ${COLUMNS} FROM outbox WHERE topic = $1 AND id = $2`, [topic, id]);
  return row;
}

/** The newest rows of a topic, optionally of one subject, newest first. */
export async function recentOutboxRows(db: Queryable, topic: string, options: { subject?: string; limit: number }): Promise<OutboxRow[]> {
  return db.query<OutboxRow>(
    `SELECT ${COLUMNS} FROM outbox WHERE topic = $1 AND ($2::text IS NULL OR subject = $2) ORDER BY id DESC LIMIT $3`,
    [topic, options.subject ?? null, options.limit],
  );
}

export async function countOutboxByState(db: Queryable): Promise<{ topic: string; state: OutboxState; count: number }[]> {
  const rows = await db.query<{ topic: string; state: OutboxState; count: string | number }>(
    `SELECT topic, state, count(*) AS count FROM outbox GROUP BY topic, state`,
  );
  return rows.map((row) => ({ topic: row.topic, state: row.state, count: Number(row.count) }));
}

/** Deletes rows delivered or given up on before `before`. */
export async function deleteFinishedRows(db: Queryable, before: Date): Promise<number> {
  const rows = await db.query<{ id: string }>(`DELETE FROM outbox WHERE state <> 'pending' AND finished_at < $1 RETURNING id::text AS id`, [before]);
  return rows.length;
}

/** Gives up at once on the rows of a topic and subject not yet delivered (their destination is gone): failed, with `reason`. */
export async function abandonPendingRows(db: Queryable, topic: string, subject: string, reason: string): Promise<number> {
  const rows = await db.query<{ id: string }>(
    `UPDATE outbox SET state = 'failed', finished_at = now(), last_error = $3
      WHERE state = 'pending' AND topic = $1 AND subject = $2 RETURNING id::text AS id`,
    [topic, subject, reason],
  );
  return rows.length;
}
