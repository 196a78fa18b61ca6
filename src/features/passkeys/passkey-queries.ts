import type { Queryable } from '../../kernel/db/database.js';
import type { User } from '../../kernel/model.js';
import { LOCKED, toUser } from '../../kernel/db/user-queries.js';

export type ChallengePurpose = 'register' | 'login' | 'second_step';

export interface StoredPasskey {
  id: string;
  userId: string;
  credentialId: string;
  publicKey: Uint8Array;
  counter: number;
  transports: string[];
  deviceType: string;
  backedUp: boolean;
  name: string;
  createdAt: Date;
  lastUsedAt: Date | null;
}

interface PasskeyRow {
  id: string;
  user_id: string | number;
  credential_id: string;
  public_key: Uint8Array;
  counter: string | number;
  transports: string[];
  device_type: string;
  backed_up: boolean;
  name: string;
  created_at: Date;
  last_used_at: Date | null;
}

const PASSKEY_COLUMNS = 'p.id, p.user_id, p.credential_id, p.public_key, p.counter, p.transports, p.device_type, p.backed_up, p.name, p.created_at, p.last_used_at';

function toPasskey(row: PasskeyRow): StoredPasskey {
  return {
    id: row.id,
    userId: String(row.user_id),
    credentialId: row.credential_id,
    publicKey: new Uint8Array(row.public_key),
    counter: Number(row.counter),
    transports: row.transports,
    deviceType: row.device_type,
    backedUp: row.backed_up,
    name: row.name,
    createdAt: row.created_at,
    lastUsedAt: row.last_used_at,
  };
}

/**
 * Whether it was stored: a challenge of a user is not if the user is gone. Its user's row is taken in KEY SHARE
 * mode first, so a deletion either waits for the insert (and takes the challenge along) or has happened.
 * `mfaChallengeId`: for a second step, the mfa_challenges row of the sign-in it belongs to.
 */
export async function insertChallenge(
  db: Queryable,
  challenge: { hash: Buffer; purpose: ChallengePurpose; userId?: string | undefined; mfaChallengeId?: string | undefined; ttlSeconds: number },
): Promise<boolean> {
  if (challenge.userId === undefined) {
    await db.query(
      'INSERT INTO webauthn_challenges (challenge_hash, purpose, expires_at) VALUES ($1, $2, now() + make_interval(secs => $3))',
      [challenge.hash, challenge.purpose, challenge.ttlSeconds],
    );
    return true;
  }
  const rows = await db.query(
    `INSERT INTO webauthn_challenges (challenge_hash, purpose, user_id, mfa_challenge_id, expires_at)
     SELECT $1, $2, id, $4, now() + make_interval(secs => $5) FROM users WHERE id = $3 FOR KEY SHARE
     RETURNING challenge_hash`,
    [challenge.hash, challenge.purpose, challenge.userId, challenge.mfaChallengeId ?? null, challenge.ttlSeconds],
  );
  return rows.length > 0;
}

/**
 * Deletes an owner's challenges of one purpose but its newest `keep` (the owner: an mfa_token's row when given,
 * else the user). It runs after each insert, so however many arrive at once, the last to run sees them all.
 */
export async function keepNewestChallenges(
  db: Queryable,
  purpose: ChallengePurpose,
  owner: { userId?: string | undefined; mfaChallengeId?: string | undefined },
  keep: number,
): Promise<void> {
  const [column, id] = owner.mfaChallengeId !== undefined ? ['mfa_challenge_id', owner.mfaChallengeId] : ['user_id', owner.userId];
  await db.query(
    `DELETE FROM webauthn_challenges
      WHERE ${column} = $1 AND purpose = $2
        AND challenge_hash NOT IN (
          SELECT challenge_hash FROM webauthn_challenges
           WHERE ${column} = $1 AND purpose = $2 AND expires_at > now()
           ORDER BY expires_at DESC, challenge_hash DESC LIMIT $3)`,
    [id, purpose, keep],
  );
}

/**
 * Uses up a live challenge of this purpose (and of this user, when it has one): one statement, so that a
 * challenge answers one response, however many arrive at once.
 */
export async function consumeChallenge(db: Queryable, hash: Buffer, purpose: ChallengePurpose, userId: string | undefined): Promise<boolean> {
  const rows = await db.query(
    `DELETE FROM webauthn_challenges
      WHERE challenge_hash = $1 AND purpose = $2 AND expires_at > now() AND user_id IS NOT DISTINCT FROM $3::bigint
      RETURNING challenge_hash`,
    [hash, purpose, userId ?? null],
  );
  return rows.length > 0;
}

export async function purgeExpiredChallenges(db: Queryable): Promise<number> {
  const rows = await db.query('DELETE FROM webauthn_challenges WHERE expires_at < now() RETURNING challenge_hash');
  return rows.length;
}

/**
 * A unique violation if another account (or this one) already registered the credential; undefined if the user
 * is gone (its row is taken in KEY SHARE mode first, as insertChallenge does).
 */
export async function insertPasskey(
  db: Queryable,
  passkey: Omit<StoredPasskey, 'id' | 'createdAt' | 'lastUsedAt'>,
): Promise<StoredPasskey | undefined> {
  const [row] = await db.query<PasskeyRow>(
    `INSERT INTO passkeys AS p (user_id, credential_id, public_key, counter, transports, device_type, backed_up, name)
     SELECT id, $2, $3, $4, $5, $6, $7, $8 FROM users WHERE id = $1 FOR KEY SHARE
     RETURNING ${PASSKEY_COLUMNS}`,
    [passkey.userId, passkey.credentialId, Buffer.from(passkey.publicKey), passkey.counter, passkey.transports, passkey.deviceType, passkey.backedUp, passkey.name],
  );
  return row && toPasskey(row);
}

export async function listPasskeys(db: Queryable, userId: string): Promise<StoredPasskey[]> {
  const rows = await db.query<PasskeyRow>(`SELECT ${PASSKEY_COLUMNS} FROM passkeys p WHERE p.user_id = $1 ORDER BY p.created_at, p.id`, [userId]);
  return rows.map(toPasskey);
}

/** The passkey a response names, with its user and what a session needs of the account. */
export async function findPasskeyForSignIn(
  db: Queryable,
  credentialId: string,
): Promise<{ passkey: StoredPasskey; user: User; passwordHash: string; hasSecondFactor: boolean; locked: boolean } | undefined> {
  const [row] = await db.query<
    PasskeyRow & { username: string; roles: string[]; user_created_at: Date; updated_at: Date; password_hash: string; has_second_factor: boolean; locked: boolean }
  >(
    `SELECT ${PASSKEY_COLUMNS}, u.username, u.roles, u.created_at AS user_created_at, u.updated_at, u.password_hash, u.has_second_factor,
            ${LOCKED.replace(/users\./g, 'u.')} AS locked
       FROM passkeys p JOIN users u ON u.id = p.user_id
      WHERE p.credential_id = $1`,
    [credentialId],
  );
  if (!row) return undefined;
  return {
    passkey: toPasskey(row),
    user: toUser({ id: row.user_id, username: row.username, roles: row.roles, created_at: row.user_created_at, updated_at: row.updated_at }),
    passwordHash: row.password_hash,
    hasSecondFactor: row.has_second_factor,
    locked: row.locked,
  };
}

/**
 * Records a use: the new signature counter, only if the stored one is still the one the signature was checked
 * against (two uses at once cannot both move it).
 */
export async function recordPasskeyUse(db: Queryable, id: string, expectedCounter: number, newCounter: number): Promise<boolean> {
  const rows = await db.query('UPDATE passkeys SET counter = $3, last_used_at = now() WHERE id = $1 AND counter = $2 RETURNING id', [id, expectedCounter, newCounter]);
  return rows.length > 0;
}

export async function renamePasskey(db: Queryable, userId: string, id: string, name: string): Promise<StoredPasskey | undefined> {
  const [row] = await db.query<PasskeyRow>(`UPDATE passkeys p SET name = $3 WHERE p.id = $1 AND p.user_id = $2 RETURNING ${PASSKEY_COLUMNS}`, [id, userId, name]);
  return row && toPasskey(row);
}

export async function deletePasskey(db: Queryable, userId: string, id: string): Promise<boolean> {
  const rows = await db.query('DELETE FROM passkeys WHERE id = $1 AND user_id = $2 RETURNING id', [id, userId]);
  return rows.length > 0;
}
