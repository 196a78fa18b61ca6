// The kinds of setting: how a setting's text is read and checked, and how a value is written back as text.
import { decodeSecretKey, secretKeyId, type SecretKey } from '../secret-box.js';
import { GENERATE_SECRET_COMMAND } from '../secret-strength.js';

/** At most `points` in `durationSeconds`. */
export interface Limit {
  points: number;
  durationSeconds: number;
}

/** A setting's text was refused; each problem names the setting and what it accepts. */
export class InvalidSetting extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('; '));
  }
}

export function refuse(...problems: string[]): never {
  throw new InvalidSetting(problems);
}

export interface SettingType<T> {
  /** The value `text` stands for; throws InvalidSetting if it stands for none. */
  parse(text: string, name: string): T;
  /** Text that `parse` reads back as `value`: how the README and .env.production.example write a default. */
  format(value: T): string;
}

export const integer = (min: number, max: number): SettingType<number> => ({
  parse(text, name) {
    const parsed = /^\d+$/.test(text) ? Number(text) : NaN;
    if (!Number.isSafeInteger(parsed) || parsed < min || parsed > max) {
      refuse(`${name} must be a whole number from ${min} to ${max} (got "${text}")`);
    }
    return parsed;
  },
  format: String,
});

const TRUE = ['true', '1', 'yes', 'on'];
const FALSE = ['false', '0', 'no', 'off'];
export const boolean: SettingType<boolean> = {
  parse(text, name) {
    const value = text.toLowerCase();
    if (TRUE.includes(value)) return true;
    if (FALSE.includes(value)) return false;
    return refuse(`${name} must be true or false (got "${value}")`);
  },
  format: String,
};

export const oneOf = <const T extends string>(allowed: readonly T[]): SettingType<T> => ({
  parse(text, name) {
    if (!(allowed as readonly string[]).includes(text)) refuse(`${name} must be one of ${allowed.join(', ')} (got "${text}")`);
    return text as T;
  },
  format: (value) => value,
});

export const text: SettingType<string> = { parse: (value) => value, format: (value) => value };

/** A URL, without trailing slashes so that paths can be appended. */
export const baseUrl: SettingType<string> = {
  parse(value, name) {
    try {
      new URL(value);
    } catch {
      refuse(`${name} must be a URL (got "${value}")`);
    }
    return value.replace(/\/+$/, '');
  },
  format: (value) => value,
};

/** A connection string; never repeated in a message, as it may hold a password. */
export const connectionString = (pattern: RegExp, what: string): SettingType<string> => ({
  parse(value, name) {
    if (!pattern.test(value)) refuse(`${name} must be ${what}`);
    return value;
  },
  format: (value) => value,
});

const WINDOW_UNITS = { '': 1, s: 1, m: 60, h: 3600, d: 86_400 } as const;

/** `<count>/<window>`, e.g. `10/15m`. */
export const limit: SettingType<Limit> = {
  parse(value, name) {
    const match = /^(\d+)\s*\/\s*(\d+)\s*([smhd]?)$/.exec(value);
    const points = match ? Number(match[1]) : NaN;
    const seconds = match ? Number(match[2]) * WINDOW_UNITS[match[3] as keyof typeof WINDOW_UNITS] : NaN;
    if (!(points >= 1 && points <= 1_000_000 && seconds >= 1 && seconds <= 30 * 86_400)) {
      refuse(`${name} must be <count>/<window> such as 10/15m (window in s, m, h or d, at most 30d; got "${value}")`);
    }
    return { points, durationSeconds: seconds };
  },
  format({ points, durationSeconds }) {
    const unit = (['d', 'h', 'm'] as const).find((u) => durationSeconds % WINDOW_UNITS[u] === 0) ?? 's';
    return `${points}/${durationSeconds / WINDOW_UNITS[unit]}${unit}`;
  },
};

/** `*`, or comma-separated origins (`scheme://host[:port]`). */
export const origins: SettingType<'*' | string[]> = {
  parse(value) {
    if (value === '*') return '*';
    const list = value.split(',').map((o) => o.trim().replace(/\/+$/, '')).filter((o) => o !== '');
    const bad = list.filter((origin) => origin === '*' || !/^https?:\/\/[^/\s]+$/.test(origin));
    if (bad.length > 0) refuse(...bad.map((origin) => `CORS_ORIGINS entries must be origins such as https://app.example.com (got "${origin}")`));
    return list;
  },
  format: (value) => (value === '*' ? '*' : value.join(',')),
};

/** Comma-separated origins, at least one, no wildcard. */
export const originList: SettingType<string[]> = {
  parse(value, name) {
    const list = value.split(',').map((o) => o.trim().replace(/\/+$/, '')).filter((o) => o !== '');
    const bad = list.filter((origin) => !/^https?:\/\/[^/\s*]+$/.test(origin));
    if (list.length === 0) refuse(`${name} must list at least one origin such as https://app.example.com`);
    if (bad.length > 0) refuse(...bad.map((origin) => `${name} entries must be origins such as https://app.example.com (got "${origin}")`));
    return list;
  },
  format: (value) => value.join(','),
};

/** `false`, `true`, a hop count, or proxy addresses/CIDRs, as Fastify's trustProxy takes them. */
export const proxyTrust: SettingType<boolean | number | string[]> = {
  parse(value, name) {
    if (/^(false|0|no|off)$/i.test(value)) return false;
    if (/^(true|yes|on)$/i.test(value)) return true;
    if (/^\d+$/.test(value)) return Number(value);
    const entries = value.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '');
    const bad = entries.filter((entry) => !/^[0-9a-fA-F.:]+(\/\d{1,3})?$/.test(entry));
    if (bad.length > 0) {
      refuse(...bad.map((entry) => `${name} must be true, false, a number of hops or proxy addresses/CIDRs such as 10.0.0.0/8 (got "${entry}")`));
    }
    return entries;
  },
  format: (value) => (Array.isArray(value) ? value.join(',') : String(value)),
};

/** Comma-separated 32-byte keys in base64 or hex, the current one first; never repeated in a message. */
export const secretKeys: SettingType<SecretKey[]> = {
  parse(value, name) {
    const entries = value.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '');
    const keys = entries.map(decodeSecretKey);
    if (entries.length === 0 || keys.some((key) => key === undefined)) {
      refuse(`${name} must be one or more comma-separated keys of 32 random bytes in base64 or hex, the current one first: generate one with ${GENERATE_SECRET_COMMAND}`);
    }
    return keys.map((key) => ({ id: secretKeyId(key!), key: key! }));
  },
  format: (keys) => keys.map((k) => k.key.toString('base64')).join(','),
};
