import { config as loadDotenv } from 'dotenv';
import { pino, type Logger } from 'pino';
import { ConfigError, readSettings, type Config, type SettingValues } from './settings.js';

/**
 * Reads `.env` (without overriding the real environment) and the settings: the configuration, and the value of
 * every setting. On a bad setting, says which and exits 1.
 */
export function loadSettingsOrExit(): { config: Config; values: SettingValues } {
  loadDotenv({ quiet: true });
  try {
    return readSettings(process.env);
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
