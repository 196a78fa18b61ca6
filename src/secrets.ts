import type { Logger } from 'pino';
import { countFactorsByKey, generatedSecretsKey } from './features/mfa/mfa-queries.js';
import { countEndpointSecretsByKey } from './features/webhooks/webhook-queries.js';
import type { Database } from './kernel/db/database.js';
import { ServiceError } from './kernel/errors.js';
import { newSecretKey, SecretBox, type SecretKey } from './kernel/secret-box.js';
import type { Config } from './settings.js';

/**
 * The key ring that encrypts second-factor secrets. SECRETS_ENCRYPTION_KEY when set, and then every stored
 * secret must be under one of its keys. Unset, development generates a key and keeps it in the database (which
 * protects nothing, and says so); production runs without second factors, and refuses to start if there are some.
 */
export async function openSecretBox(db: Database, config: Config, log: Logger): Promise<SecretBox | undefined> {
  // Second factors' secrets and webhook endpoints' signing secrets, under the keys that sealed them.
  const factors = await countFactorsByKey(db);
  const endpoints = await countEndpointSecretsByKey(db);
  const stored = new Map(factors);
  for (const [keyId, count] of endpoints) stored.set(keyId, (stored.get(keyId) ?? 0) + count);
  let keys: SecretKey[] | undefined = config.mfa.encryptionKeys;
  if (!keys && config.env !== 'production') {
    const generated = await generatedSecretsKey(db, newSecretKey());
    keys = [{ id: generated.id, key: generated.key }];
    // A warning for whoever runs it in development; the test suites start hundreds of apps this way.
    (config.env === 'development' ? log.warn : log.info).call(
      log,
      { keyId: generated.id },
      'SECRETS_ENCRYPTION_KEY is not set: second-factor secrets are encrypted with a key generated for development and kept in the database. ' +
        'Set SECRETS_ENCRYPTION_KEY (openssl rand -base64 32) in production',
    );
  }
  const known = new Set((keys ?? []).map((k) => k.id));
  const orphans = [...stored].filter(([keyId]) => !known.has(keyId));
  if (orphans.length > 0) {
    const countIn = (counts: Map<string, number>) => orphans.reduce((sum, [keyId]) => sum + (counts.get(keyId) ?? 0), 0);
    const what = [
      countIn(factors) > 0 ? `${countIn(factors)} second-factor secrets` : undefined,
      countIn(endpoints) > 0 ? `${countIn(endpoints)} webhook secrets` : undefined,
    ].filter(Boolean).join(' and ');
    throw new ServiceError(
      'not_ready',
      keys
        ? `${what} are encrypted under keys that SECRETS_ENCRYPTION_KEY does not hold (ids ${orphans.map(([id]) => id).join(', ')}): ` +
            'add the key they were encrypted with after the current one (comma-separated)'
        : `${what} are stored, and SECRETS_ENCRYPTION_KEY is not set: set it to the key they were encrypted with`,
    );
  }
  if (config.mfa.encryptionKeys) log.info({ keyId: keys![0]!.id, keys: keys!.length }, 'second-factor secrets are encrypted (SECRETS_ENCRYPTION_KEY)');
  else if (!keys) log.warn('SECRETS_ENCRYPTION_KEY is not set: enrolling a second factor is refused until it is');
  return keys && new SecretBox(keys);
}
