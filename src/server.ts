import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { buildApp, buildMetricsApp } from './app.js';
import { describeSettings, settingLookAlikes, type Config } from './settings.js';
import { isServiceError } from './kernel/errors.js';
import { compileEmbeddedDatabaseForQuickStart } from './kernel/db/quick-start.js';
import { openServices, type Services } from './services.js';
import { createLogger, loadSettingsOrExit } from './startup.js';

// A database that is still starting (a container started beside it) is waited for, not crashed on.
const STARTUP_ATTEMPTS = 15;
const STARTUP_RETRY_MS = 2000;

function warnDevelopmentMode(config: Config): void {
  const lines = [
    'DEVELOPMENT MODE: not for production (NODE_ENV is not "production").',
    config.database.kind === 'embedded'
      ? `- embedded database in ${config.database.dataDir} (set DATABASE_URL for PostgreSQL)`
      : '- PostgreSQL from DATABASE_URL',
    config.jwt.algorithm === 'HS256'
      ? '- tokens signed with JWT_SECRET_KEY'
      : config.jwt.privateKey
        ? '- tokens signed with JWT_PRIVATE_KEY'
        : '- signing key generated and kept in the database',
    `- CORS: ${config.cors.origins === '*' ? 'every origin allowed' : config.cors.origins.join(', ') || 'no origin'}`,
    'See "Production checklist" in docs/deployment.md before deploying.',
  ];
  const width = Math.max(...lines.map((l) => l.length)) + 4;
  const bar = '!'.repeat(width);
  process.stderr.write(`${bar}\n${lines.map((l) => `! ${l.padEnd(width - 4)} !`).join('\n')}\n${bar}\n`);
}

async function openServicesPatiently(config: Config, log: Logger): Promise<Services> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await openServices(config, log);
    } catch (error) {
      if (!isServiceError(error, 'database_unavailable') || attempt === STARTUP_ATTEMPTS) throw error;
      log.warn({ reason: error.context?.['reason'], attempt }, `database unavailable, retrying in ${STARTUP_RETRY_MS / 1000} s`);
      await sleep(STARTUP_RETRY_MS);
    }
  }
}

async function main(): Promise<void> {
  const { config, values } = loadSettingsOrExit();
  const log = createLogger(config);
  for (const warning of settingLookAlikes(process.env)) log.warn(warning);
  log.info({ settings: describeSettings(values) }, 'effective configuration');
  if (config.env !== 'production') warnDevelopmentMode(config);
  // In development, a start is what is waited for.
  if (config.env !== 'production' && config.database.kind === 'embedded') compileEmbeddedDatabaseForQuickStart();

  const services = await openServicesPatiently(config, log);
  const app = buildApp(config, services, { logger: log });
  const metricsApp = config.metricsPort === undefined ? undefined : buildMetricsApp(services.metrics);
  const adminApp = config.adminPort === undefined ? undefined : buildApp(config, services, { logger: log, surface: 'admin' });

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down: finishing requests in flight');
    const timer = setTimeout(() => {
      log.error(`shutdown timed out after ${config.shutdownTimeoutSeconds} s: exiting with requests unfinished`);
      process.exit(1);
    }, config.shutdownTimeoutSeconds * 1000);
    timer.unref();
    // Stops accepting connections, then resolves once every request in flight has been answered.
    await Promise.all([app.close(), metricsApp?.close(), adminApp?.close()]);
    await services.close();
    log.info('stopped');
    process.exit(0);
  };
  // Kept listening during the shutdown, where a repeated signal changes nothing: Ctrl-C under `npm start` delivers
  // SIGINT twice (the terminal signals the whole process group, and npm passes its own on), and the second must not
  // cut short the shutdown the first began. SHUTDOWN_TIMEOUT_SECONDS still bounds it.
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));

  await app.listen({
    host: config.host,
    port: config.port,
    listenTextResolver: (address) => `user-auth-service listening on ${address}`,
  });
  if (metricsApp) {
    const address = await metricsApp.listen({ host: config.host, port: config.metricsPort! });
    log.info(`metrics on ${address}/metrics`);
  }
  if (adminApp) {
    const address = await adminApp.listen({ host: config.host, port: config.adminPort! });
    log.info(`admin API on ${address}/admin`);
  }
}

main().catch((error: unknown) => {
  const reason = isServiceError(error, 'database_unavailable') ? `the database is unreachable (${error.context?.['reason']})` : error;
  process.stderr.write(`user-auth-service failed to start: ${reason instanceof Error ? reason.message : String(reason)}\n`);
  process.exit(1);
});
