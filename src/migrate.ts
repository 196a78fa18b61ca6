import { DatabaseUnavailableError } from './db/database.js';
import { migrate } from './db/migrate.js';
import { openDatabase } from './services.js';
import { createLogger, loadSettingsOrExit } from './startup.js';

/** `npm run migrate`: applies pending migrations and exits (the service also does this at start). */
const config = loadSettingsOrExit();
const log = createLogger(config);
const db = await openDatabase(config.database, log);
try {
  const applied = await migrate(db);
  log.info({ migrations: applied }, applied.length ? `applied ${applied.length} migration(s)` : 'database is up to date');
} catch (error) {
  const reason = error instanceof DatabaseUnavailableError ? `the database is unreachable (${error.reason})` : String(error);
  process.stderr.write(`migration failed, nothing was changed: ${reason}\n`);
  process.exitCode = 1;
} finally {
  await db.close();
}
