import type { Logger } from 'pino';
import { ServiceError } from '../errors.js';
import { withoutCredentials, type DatabaseConfig } from '../settings/service-settings.js';
import type { Database } from './database.js';

/** The database the settings name: PostgreSQL at DATABASE_URL, or the embedded one in DATA_DIR. */
export async function openDatabase(config: DatabaseConfig, log: Logger): Promise<Database> {
  if (config.kind === 'postgres') {
    log.info({ database: 'postgres', host: withoutCredentials(config.url) }, 'using PostgreSQL (DATABASE_URL)');
    // Loaded only here, as PGlite is below: a process on the embedded database never loads pg.
    const { openPostgres } = await import('./postgres.js');
    return openPostgres(config, log);
  }
  log.info({ database: 'embedded', dataDir: config.dataDir }, `using the embedded PostgreSQL (PGlite) in ${config.dataDir}`);
  // Loaded only here: the production image leaves PGlite out unless built with EMBEDDED_DATABASE=true.
  let embedded: typeof import('./embedded.js');
  try {
    embedded = await import('./embedded.js');
  } catch (error) {
    const pgliteMissing =
      error instanceof Error && 'code' in error && error.code === 'ERR_MODULE_NOT_FOUND' && error.message.includes("'@electric-sql/pglite'");
    if (pgliteMissing) {
      throw new ServiceError(
        'not_ready',
        'the embedded database is not installed in this image: set DATABASE_URL, or build with --build-arg EMBEDDED_DATABASE=true',
      );
    }
    throw error;
  }
  return embedded.openEmbedded(config.dataDir);
}
