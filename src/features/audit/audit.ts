import { createHmac } from 'node:crypto';
import type { BaseLogger } from 'pino';
import type { Database } from '../../kernel/db/database.js';
import {
  addToAggregate,
  countLoginFailure,
  findAuditEvents,
  insertAuditEvents,
  purgeAuditEvents,
  type AuditDetails,
  type NewAuditEvent,
  type StoredAuditEvent,
} from './audit-queries.js';
import { declarations } from '../../kernel/declarations.js';
import { ServiceError } from '../../kernel/errors.js';
import { ipLimitKey } from '../../kernel/ip-addresses.js';
import { ROW_ID_PATTERN } from '../../kernel/model.js';
import { usernameLookupKey } from '../../kernel/usernames.js';

/**
 * The event types, by name, each with what it records (docs/audit.md is generated from them). Each feature
 * declares its own beside its routes with `defineAuditEvents`, and adds them here by declaration merging:
 * `declare module '../audit/audit.js' { interface AuditEvents extends EventsOf<typeof EVENTS> {} }`.
 */
export interface AuditEvents {}
export type AuditType = keyof AuditEvents;
export type EventsOf<T> = { [K in keyof T]: true };

const EVENT_TYPES = declarations<string>('audit event');

/** Declares a feature's audit event types, each with a sentence on what it records. */
export const defineAuditEvents = EVENT_TYPES.define;

/** The audit trail's own: what every sign-in route and every admin route records. */
export const AUDIT_EVENTS = defineAuditEvents({
  login_succeeded: 'A sign-in gave tokens: `method` is `password`, `passkey`, `mfa` (a second step) or `email`.',
  login_failed: 'A sign-in was refused: `reason` says why, `method` how it was tried. Failures at no known account are capped per client and minute, then aggregated.',
  admin_action: 'An operator acted through the admin API: `action` says what, the actor is `admin:<key name>`.',
});

declare module './audit.js' {
  interface AuditEvents extends EventsOf<typeof AUDIT_EVENTS> {}
}

/** Every declared type and what it records, in the order declared. */
export function declaredAuditEvents(): [AuditType, string][] {
  return EVENT_TYPES.entries() as [AuditType, string][];
}

/** Why a login failed, in `details.reason`. */
export type LoginFailureReason = 'bad_password' | 'unknown_user' | 'locked' | 'rate_limited' | 'second_factor' | 'bad_passkey' | 'bad_code';

export type { AuditDetails, StoredAuditEvent };

export interface AuditEvent {
  type: AuditType;
  userId?: string | undefined;
  /** `user` (the default), `admin:<key name>` or `system`. */
  actor?: string | undefined;
  ip?: string | null | undefined;
  userAgent?: string | null | undefined;
  requestId?: string | undefined;
  details?: Record<string, unknown> | undefined;
  /**
   * A failed login's name as typed, when it names no known account. Never stored: people type their password
   * there. It is kept as an HMAC of its normalised form, so attempts at one name can be told apart from others.
   */
  typedUsername?: string | undefined;
}

/**
 * The only keys `details` may carry, each a short scalar: whatever else a caller passes is dropped, so no
 * password, token, code or hash can reach a row or a log line by mistake.
 */
const DETAIL_KEYS = new Set([
  'reason',
  'method',
  'action',
  'scope',
  'session_id',
  'factor_id',
  'passkey_id',
  'sessions_ended',
  'aggregated',
  'count',
  'minute',
  'username_hmac',
  'until',
  'role',
  'changes',
  'name',
  'password',
  'webhook_id',
  'delivery_id',
]);
/** Keys whose value may only be true or false: `password` says whether one was set, never what it is. */
const BOOLEAN_DETAILS = new Set(['password', 'aggregated']);
const MAX_DETAIL_LENGTH = 100;
const MAX_USER_AGENT_LENGTH = 256;

/** Per client (see ipLimitKey), minute and reason, this many failed logins without a known account get rows of their own. */
export const INDIVIDUAL_FAILURES_PER_MINUTE = 3;
const HMAC_HEX_LENGTH = 32;

export const AUDIT_PAGE_MAX = 200;
// Bounds one statement's size however many events arrive at once.
const MAX_ROWS_PER_INSERT = 500;
export const RECENT_EVENTS = 50;

/** A page of search(): `next` is the cursor of the page after it, absent on the last one. */
export interface AuditPage {
  events: StoredAuditEvent[];
  next: string | undefined;
}

export interface AuditOptions {
  /** The HMAC key for the names of failed logins (see `typedUsername`). */
  usernameKey: Buffer;
  retentionDays: number;
  /** Where audit lines go when the caller gives no logger of its own. */
  log: Pick<BaseLogger, 'info' | 'warn'>;
  /** Called once per recorded event: the metric. */
  counted?: (type: AuditType) => void;
}

function cleanDetails(details: Record<string, unknown> | undefined): AuditDetails {
  const clean: AuditDetails = {};
  for (const [key, value] of Object.entries(details ?? {})) {
    if (!DETAIL_KEYS.has(key)) continue;
    if (BOOLEAN_DETAILS.has(key)) {
      if (typeof value === 'boolean') clean[key] = value;
    } else if (typeof value === 'string') clean[key] = value.slice(0, MAX_DETAIL_LENGTH);
    else if ((typeof value === 'number' && Number.isFinite(value)) || typeof value === 'boolean') clean[key] = value;
  }
  return clean;
}

function encodeCursor(event: StoredAuditEvent): string {
  return Buffer.from(JSON.stringify([event.cursorTime, event.id])).toString('base64url');
}

// A timestamptz as PostgreSQL prints it (what a cursor holds): an offset of hours, and of minutes when it has them.
const DATABASE_TIME = /^(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(?:\.\d{1,6})?[+-](\d\d)(?::(\d\d))?$/;
const CURSOR_ID = new RegExp(ROW_ID_PATTERN);

/**
 * Whether the text names a real instant, as the database printed it: a day the month has, no hour 24, no leap
 * second (PostgreSQL reads :60 as the next minute, so no time it prints has one), an offset it accepts, a year
 * from 1970 to 9999. Anything else was not handed out, and must not reach the database as a time to compare with.
 */
function isDatabaseTime(text: string): boolean {
  const match = DATABASE_TIME.exec(text);
  if (!match) return false;
  const [year, month, day, hour, minute, second, offsetHours, offsetMinutes = 0] = match.slice(1).map((part) => Number(part ?? 0));
  if (year! < 1970 || year! > 9999 || offsetHours! > 15 || offsetMinutes > 59) return false;
  const time = new Date(Date.UTC(year!, month! - 1, day!, hour!, minute!, second!));
  return (
    time.getUTCFullYear() === year &&
    time.getUTCMonth() === month! - 1 &&
    time.getUTCDate() === day &&
    time.getUTCHours() === hour &&
    time.getUTCMinutes() === minute &&
    time.getUTCSeconds() === second
  );
}

function decodeCursor(cursor: string): { time: string; id: string } {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (
      Array.isArray(parsed) &&
      parsed.length === 2 &&
      typeof parsed[0] === 'string' &&
      isDatabaseTime(parsed[0]) &&
      typeof parsed[1] === 'string' &&
      CURSOR_ID.test(parsed[1])
    ) {
      return { time: parsed[0], id: parsed[1] };
    }
  } catch {
    // answered below
  }
  throw new ServiceError('invalid_request', 'The cursor `after` is not one this service handed out');
}

/**
 * The audit trail: one row per security event of an account, one JSON log line (`"audit": true`) for log
 * pipelines, and a count per type. Recording never fails the caller: the event it could not write is logged at
 * warn, and what the request did stands.
 */
export class Audit {
  private readonly pending = new Set<Promise<void>>();

  constructor(
    private readonly db: Database,
    private readonly options: AuditOptions,
  ) {}

  /** Records `event`; resolves when it is stored (or failed to be), and never rejects. */
  record(event: AuditEvent, log: Pick<BaseLogger, 'info' | 'warn'> = this.options.log): Promise<void> {
    const write = this.write(event, log).catch((error: unknown) => {
      log.warn({ err: error, auditType: event.type }, 'audit event not recorded');
    });
    this.pending.add(write);
    void write.finally(() => this.pending.delete(write));
    return write;
  }

  /** Resolves once every event recorded so far is written: before the database closes, and for tests. */
  async settled(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  /** The account's last events, newest first. */
  async recent(userId: string, limit = RECENT_EVENTS): Promise<StoredAuditEvent[]> {
    return findAuditEvents(this.db, { userId, limit: Math.min(Math.max(limit, 1), AUDIT_PAGE_MAX) });
  }

  /** Any account's events (or everyone's), newest first, a page at a time: `after` is the `next` of the page before. */
  async search(query: { userId?: string | undefined; type?: string | undefined; after?: string | undefined; limit?: number | undefined }): Promise<AuditPage> {
    const limit = Math.min(Math.max(query.limit ?? RECENT_EVENTS, 1), AUDIT_PAGE_MAX);
    const events = await findAuditEvents(this.db, {
      userId: query.userId,
      type: query.type,
      before: query.after === undefined ? undefined : decodeCursor(query.after),
      limit: limit + 1,
    });
    const page = events.slice(0, limit);
    return { events: page, next: events.length > limit ? encodeCursor(page[page.length - 1]!) : undefined };
  }

  /** Drops events older than AUDIT_RETENTION_DAYS. */
  async purge(): Promise<number> {
    return purgeAuditEvents(this.db, this.options.retentionDays);
  }

  /** The HMAC of a typed username's normalised form, under the key given to the constructor. */
  usernameHmac(typed: string): string {
    const normalized = usernameLookupKey(typed) ?? typed.normalize('NFKC').trim().toLowerCase();
    return createHmac('sha256', this.options.usernameKey).update(normalized, 'utf8').digest('hex').slice(0, HMAC_HEX_LENGTH);
  }

  /** Rows waiting for the next write, each with what its caller awaits. */
  private queued: { row: NewAuditEvent; written: () => void; failed: (error: unknown) => void }[] = [];

  /**
   * Rows recorded in one turn of the event loop go to the database together, in one statement: under load a
   * login's event costs a share of an INSERT rather than one of its own. `settled()` still waits for each.
   */
  private insert(row: NewAuditEvent): Promise<void> {
    return new Promise((written, failed) => {
      this.queued.push({ row, written, failed });
      if (this.queued.length === 1) setImmediate(() => void this.flush());
    });
  }

  private async flush(): Promise<void> {
    const batch = this.queued.splice(0, MAX_ROWS_PER_INSERT);
    if (this.queued.length > 0) setImmediate(() => void this.flush());
    try {
      await insertAuditEvents(this.db, batch.map((b) => b.row));
      for (const b of batch) b.written();
    } catch (error) {
      for (const b of batch) b.failed(error);
    }
  }

  private async write(event: AuditEvent, log: Pick<BaseLogger, 'info' | 'warn'>): Promise<void> {
    const details = cleanDetails(event.details);
    if (event.typedUsername !== undefined && event.userId === undefined) details['username_hmac'] = this.usernameHmac(event.typedUsername);
    const row: NewAuditEvent = {
      type: event.type,
      userId: event.userId ?? null,
      actor: event.actor ?? 'user',
      ip: event.ip ?? null,
      userAgent: event.userAgent?.slice(0, MAX_USER_AGENT_LENGTH) ?? null,
      requestId: event.requestId ?? null,
      details,
    };
    // A failed login that names no account is what credential stuffing makes by the thousand: past the first few
    // per client and minute, one row per minute counts them, and the rows a client can cause stay bounded. A
    // client is what the rate limits count as one (an IPv6 /64 is one), or each of its addresses would be a
    // fresh client here; the aggregate row names the client.
    if (row.type === 'login_failed' && row.userId === null) {
      const reason = typeof details['reason'] === 'string' ? details['reason'] : 'unknown';
      const client = row.ip === null ? '' : ipLimitKey(row.ip);
      const { count, minute } = await countLoginFailure(this.db, client, reason);
      if (count > INDIVIDUAL_FAILURES_PER_MINUTE) {
        const aggregate = { ...row, ip: client === '' ? null : client, details: { reason, aggregated: true, minute } };
        await addToAggregate(this.db, `login_failed|${client}|${minute}|${reason}`, aggregate);
        this.options.counted?.(event.type);
        // The line says what the row says; one per failure would be the flood again, in the logs.
        if (count === INDIVIDUAL_FAILURES_PER_MINUTE + 1) {
          log.info({ audit: true, type: row.type, actor: row.actor, ip: row.ip, requestId: row.requestId, details: aggregate.details }, 'audit: further failed logins from this address this minute are counted on one row');
        }
        return;
      }
    }
    await this.insert(row);
    this.options.counted?.(event.type);
    log.info(
      {
        audit: true,
        type: row.type,
        ...(row.userId === null ? {} : { userId: row.userId }),
        actor: row.actor,
        ip: row.ip,
        userAgent: row.userAgent,
        requestId: row.requestId,
        details,
      },
      `audit: ${row.type}`,
    );
  }
}
