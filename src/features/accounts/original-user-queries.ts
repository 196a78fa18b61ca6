import pg from 'pg';
import type { Queryable } from '../../kernel/db/database.js';

/** A row of the original Flask service's `users` table. */
export interface OriginalUser {
  id: string;
  username: string;
  passwordHash: string;
}

/** Reads the original service's users (read-only) from its PostgreSQL database. */
export async function readOriginalUsers(url: string): Promise<OriginalUser[]> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    const { rows } = await client.query<{ id: string | number; username: string; password: string }>(
      'SELECT id, username, password FROM users ORDER BY id',
    );
    return rows.map((r) => ({ id: String(r.id), username: r.username, passwordHash: r.password }));
  } finally {
    await client.end();
  }
}

export type ImportOutcome = 'imported' | 'renamed' | 'already_present' | 'id_taken';

/**
 * Inserts one user with its original id and hash. A name that is already another account's (case-insensitively)
 * is parked as `<name>#<id>`, as the adoption migration does.
 */
export async function importUser(db: Queryable, user: OriginalUser, normalized: string): Promise<ImportOutcome> {
  const [existing] = await db.query<{ username: string }>('SELECT username FROM users WHERE id = $1', [user.id]);
  if (existing) return existing.username === user.username ? 'already_present' : 'id_taken';
  for (const [key, outcome] of [[normalized, 'imported'], [`${normalized}#${user.id}`, 'renamed']] as const) {
    const inserted = await db.query(
      `INSERT INTO users (id, username, username_normalized, password_hash) OVERRIDING SYSTEM VALUE
       VALUES ($1, $2, $3, $4) ON CONFLICT (username_normalized) DO NOTHING RETURNING id`,
      [user.id, user.username, key, user.passwordHash],
    );
    if (inserted.length > 0) return outcome;
  }
  return 'id_taken';
}

/** New registrations continue after the highest imported id. */
export async function advanceUserIds(db: Queryable): Promise<void> {
  await db.query(`SELECT setval(pg_get_serial_sequence('users', 'id'), GREATEST((SELECT max(id) FROM users), 1))`);
}
