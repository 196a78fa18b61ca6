import { isServiceError } from '../../kernel/errors.js';
import { loadMigrations, pendingMigrations, type Migration } from '../../kernel/db/migrate.js';
import type { Queryable } from '../../kernel/db/database.js';
import type { RedisConnection } from '../../kernel/db/redis.js';
import type { Metrics } from '../../kernel/metrics.js';
import type { KeyRing } from '../tokens/signing-keys.js';

/** What readiness looks at: the parts of the running service that it depends on. */
export interface ReadinessParts {
  db: Queryable;
  keys: Pick<KeyRing, 'signing'>;
  redis: RedisConnection | undefined;
  metrics: Metrics;
  /** With EMAIL_ENABLED: whether the SMTP server answers (the development log mailbox has none to ask). */
  email?: { sender: { usesSmtp: boolean; status(): CheckResult } } | undefined;
}

/** `ok`; `degraded: <why>` for a part the service can do without for now; otherwise why it is not ready. */
export type CheckResult = 'ok' | string;

export interface ReadinessPolicy {
  /**
   * With RATE_LIMIT_ON_REDIS_FAILURE=closed logins stop while Redis is down, so the instance is not ready. In the
   * default `open` mode they go on with per-instance counters: Redis is then a degraded part, not a reason for a
   * load balancer to pull every instance at once.
   */
  redisRequired: boolean;
}

// The migrations this build ships, read from disk once rather than at every probe.
let migrations: Migration[] | undefined;
function knownMigrations(): Migration[] {
  return (migrations ??= loadMigrations());
}

export interface Readiness {
  ready: boolean;
  /** Ready, but some part is degraded. */
  degraded: boolean;
  /** Each part and `ok`, or why it is not. */
  checks: Record<string, CheckResult>;
}

/**
 * Whether this instance can serve: the database answers and is migrated, a signing key is loaded, Redis answers if
 * configured; SMTP, when email goes through it, is reported but never makes the instance unready.
 */
export async function checkReadiness(services: ReadinessParts, policy: ReadinessPolicy): Promise<Readiness> {
  const checks: Record<string, CheckResult> = {};
  const database = async () => {
    const pending = await pendingMigrations(services.db, knownMigrations());
    return pending.length === 0 ? 'ok' : `migrations ${pending.join(', ')} not applied: run npm run migrate`;
  };
  const optional = new Set<string>();
  const parts: [string, () => Promise<CheckResult>][] = [
    ['database', database],
    ['signing_key', async () => (services.keys.signing.key ? 'ok' : 'no signing key loaded')],
  ];
  if (services.redis) {
    const client = services.redis.client;
    parts.push(['redis', async () => ((await client.ping()) === 'PONG' ? 'ok' : 'unexpected answer to PING')]);
    if (!policy.redisRequired) optional.add('redis');
  }
  if (services.email?.sender.usesSmtp) {
    const sender = services.email.sender;
    // Its state as the sender last saw it (it probes while the server is down): no connection per probe of ours.
    // The messages wait in the outbox meanwhile, so the instance still serves.
    parts.push(['smtp', async () => sender.status()]);
    optional.add('smtp');
  }
  await Promise.all(
    parts.map(async ([name, check]) => {
      checks[name] = await check().catch(
        (error: Error) => `unreachable: ${isServiceError(error, 'database_unavailable') ? error.context?.['reason'] : error.message}`,
      );
    }),
  );
  for (const [name, result] of Object.entries(checks)) {
    services.metrics.dependencyUp.set({ dependency: name }, result === 'ok' ? 1 : 0);
    if (result !== 'ok' && optional.has(name)) checks[name] = `degraded: ${result}`;
  }
  const failing = Object.entries(checks).filter(([name, result]) => result !== 'ok' && !optional.has(name));
  return { ready: failing.length === 0, degraded: Object.values(checks).some((r) => r !== 'ok'), checks };
}
