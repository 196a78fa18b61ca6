import { isServiceError } from './errors.js';
import { loadMigrations, pendingMigrations, type Migration } from './db/migrate.js';
import type { Services } from './services.js';

export type CheckResult = 'ok' | string;

// The migrations this build ships, read from disk once rather than at every probe.
let migrations: Migration[] | undefined;
function knownMigrations(): Migration[] {
  return (migrations ??= loadMigrations());
}

export interface Readiness {
  ready: boolean;
  /** Each part and `ok`, or why it is not. */
  checks: Record<string, CheckResult>;
}

/** Whether this instance can serve: the database answers and is migrated, a signing key is loaded, Redis answers if configured. */
export async function checkReadiness(services: Services): Promise<Readiness> {
  const checks: Record<string, CheckResult> = {};
  const database = async () => {
    const pending = await pendingMigrations(services.db, knownMigrations());
    return pending.length === 0 ? 'ok' : `migrations ${pending.join(', ')} not applied: run npm run migrate`;
  };
  const parts: [string, () => Promise<CheckResult>][] = [
    ['database', database],
    ['signing_key', async () => (services.keys.signing.key ? 'ok' : 'no signing key loaded')],
  ];
  if (services.redis) {
    const client = services.redis.client;
    parts.push(['redis', async () => ((await client.ping()) === 'PONG' ? 'ok' : 'unexpected answer to PING')]);
  }
  await Promise.all(
    parts.map(async ([name, check]) => {
      checks[name] = await check().catch(
        (error: Error) => `unreachable: ${isServiceError(error, 'database_unavailable') ? error.context?.['reason'] : error.message}`,
      );
    }),
  );
  return { ready: Object.values(checks).every((result) => result === 'ok'), checks };
}
