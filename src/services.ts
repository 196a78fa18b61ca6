import type { FastifyBaseLogger } from 'fastify';
import { Accounts } from './auth/accounts.js';
import { PasswordHasher } from './auth/passwords.js';
import { loadKeyRing, type KeyRing } from './auth/signing-keys.js';
import { AccessTokens } from './auth/tokens.js';
import type { Config, DatabaseConfig } from './config.js';
import type { Database } from './db/database.js';
import { openEmbedded } from './db/embedded.js';
import { migrate } from './db/migrate.js';
import { openPostgres } from './db/postgres.js';

/** Everything the HTTP layer needs, ready to serve. */
export interface Services {
  db: Database;
  hasher: PasswordHasher;
  keys: KeyRing;
  accounts: Accounts;
  close(): Promise<void>;
}

export async function openDatabase(config: DatabaseConfig, log: FastifyBaseLogger): Promise<Database> {
  if (config.kind === 'postgres') {
    log.info({ database: 'postgres', host: hostOf(config.url) }, 'using PostgreSQL (DATABASE_URL)');
    return openPostgres(config, log);
  }
  log.info({ database: 'embedded', dataDir: config.dataDir }, `using the embedded PostgreSQL (PGlite) in ${config.dataDir}`);
  return openEmbedded(config.dataDir);
}

/**
 * Opens the database (unless one is given: tests pass theirs and keep it), applies pending migrations,
 * loads the signing keys and computes the dummy password hash.
 */
export async function openServices(config: Config, log: FastifyBaseLogger, database?: Database): Promise<Services> {
  const db = database ?? (await openDatabase(config.database, log));
  const closeDb = database ? async () => {} : () => db.close();
  try {
    const applied = await migrate(db);
    if (applied.length > 0) log.info({ migrations: applied }, 'applied database migrations');
    const keys = await loadKeyRing(db, config.jwt);
    log.info({ alg: keys.signing.alg, kid: keys.signing.kid }, 'access tokens are signed');
    const hasher = await PasswordHasher.create(config.argon2);
    const tokens = new AccessTokens(keys, {
      issuer: config.jwt.issuer,
      audience: config.jwt.audience,
      ttlSeconds: config.jwt.accessTokenTtlSeconds,
    });
    const accounts = new Accounts(db, hasher, tokens, { reauthWindowSeconds: config.reauthWindowSeconds });
    return { db, hasher, keys, accounts, close: closeDb };
  } catch (error) {
    await closeDb();
    throw error;
  }
}

/** Host and port only: the URL's password must not reach a log. */
function hostOf(url: string): string {
  try {
    const { hostname, port, pathname } = new URL(url);
    return `${hostname}${port ? `:${port}` : ''}${pathname}`;
  } catch {
    return '(unparsable URL)';
  }
}
