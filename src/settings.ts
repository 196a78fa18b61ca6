import { ADMIN_SETTINGS } from './features/administration/admin-settings.js';
import { AUDIT_SETTINGS } from './features/audit/audit-settings.js';
import { EMAIL_SETTINGS } from './features/email/email-settings.js';
import { MFA_SETTINGS } from './features/mfa/mfa-settings.js';
import { PASSKEY_SETTINGS } from './features/passkeys/passkey-settings.js';
import { PASSWORD_SETTINGS } from './features/passwords/password-settings.js';
import { RATE_LIMIT_SETTINGS } from './features/rate-limits/rate-limit-settings.js';
import { SESSION_SETTINGS } from './features/sessions/session-settings.js';
import { TOKEN_SETTINGS } from './features/tokens/token-settings.js';
import { WEBHOOK_SETTINGS } from './features/webhooks/webhook-settings.js';
import { OIDC_SETTINGS } from './features/oidc/oidc-settings.js';
import { PAGE_SETTINGS } from './features/pages/page-settings.js';
import { describeSettings as describe, loadSettings, rowsOf, type Env } from './kernel/settings/load-config.js';
import { findLookAlikes, lookAlikeWarning } from './kernel/settings/look-alikes.js';
import { SERVICE_SETTINGS } from './kernel/settings/service-settings.js';
import { inGroupOrder, type ConfigOf, type SettingRow, type SettingValuesOf } from './kernel/settings/settings-table.js';

/**
 * Every setting the service reads, as the list of the tables that declare them: the service-wide one
 * (src/kernel/settings/service-settings.ts) and each feature's, beside its routes. A table names each of its
 * settings once, with its kind, default and documentation, and builds its slice of the configuration; README.md's
 * configuration table and .env.production.example are generated from them (`npm run docs:settings`), and
 * test/config.test.ts fails when they fall behind.
 */
export const SETTING_TABLES = [
  SERVICE_SETTINGS,
  TOKEN_SETTINGS,
  SESSION_SETTINGS,
  PASSWORD_SETTINGS,
  MFA_SETTINGS,
  PASSKEY_SETTINGS,
  EMAIL_SETTINGS,
  ADMIN_SETTINGS,
  AUDIT_SETTINGS,
  RATE_LIMIT_SETTINGS,
  WEBHOOK_SETTINGS,
  OIDC_SETTINGS,
  PAGE_SETTINGS,
] as const;

/** Headings of the documentation, in this order; each row names its own. */
export const SETTING_GROUPS = [
  'Service',
  'Database',
  'Signing keys and tokens',
  'Sessions',
  'Password hashing',
  'Browsers and proxies',
  'Password policy',
  'Rate limits',
  'Second factor',
  'Passkeys',
  'Email',
  'Administration',
  'Audit trail',
  'Webhooks and hooks',
  'Single sign-on',
  'Pages',
] as const;

/** The typed, validated configuration: every table's slice. */
export type Config = ConfigOf<typeof SETTING_TABLES>;
/** The value of every setting, by name. */
export type SettingValues = SettingValuesOf<typeof SETTING_TABLES>;
export type SettingName = keyof SettingValues;

/** Every setting, by group as the documentation lists them. */
export const SETTINGS = inGroupOrder(rowsOf(SETTING_TABLES), SETTING_GROUPS) as readonly (SettingRow & { name: SettingName })[];
export const SETTING_NAMES: readonly SettingName[] = SETTINGS.map((row) => row.name);

/** The configuration `env` gives, and the value of every setting; throws a ConfigError that names every problem. */
export function readSettings(env: Env): { config: Config; values: SettingValues } {
  return loadSettings(SETTING_TABLES, env);
}

export function loadConfig(env: Env): Config {
  return readSettings(env).config;
}

/** Every setting's value in effect, for one log line at start; a secret shows only whether it is set. */
export function describeSettings(values: SettingValues): Record<SettingName, string> {
  return describe(SETTINGS, values) as Record<SettingName, string>;
}

/** A warning for each variable that looks like a setting but is not one (CORS_ORIGIN, DATABSE_URL, TRUST_PROXIES). */
export function settingLookAlikes(env: Env): string[] {
  return findLookAlikes(env, SETTING_NAMES).map(lookAlikeWarning);
}

export { ConfigError } from './kernel/settings/load-config.js';
