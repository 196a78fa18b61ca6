import { config as loadDotenv } from 'dotenv';
import { pino, type Logger } from 'pino';
import { ConfigError, loadConfig, type Config } from './kernel/config.js';

/** Reads `.env` (without overriding the real environment) and the settings; on a bad setting, says which and exits 1. */
export function loadSettingsOrExit(): Config {
  loadDotenv({ quiet: true });
  try {
    return loadConfig(process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
  }
}

/** JSON lines; in development on a terminal, pino-pretty's readable lines instead. */
export function createLogger(config: Config): Logger {
  const pretty = config.env === 'development' && process.stdout.isTTY;
  return pino({
    level: config.logLevel,
    ...(pretty ? { transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } } } : {}),
  });
}
