import { config as loadDotenv } from 'dotenv';
import { pino, type Logger } from 'pino';
import { ConfigError, loadConfig, type Config } from './config.js';

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

export function createLogger(config: Config): Logger {
  return pino({ level: config.logLevel });
}
