import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Audit, AuditEvent, AuditType, LoginFailureReason } from './audit.js';
import { clientInfo } from '../../kernel/http/replies.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The audit trail, for routes that record what the table below cannot see (operators' actions). */
    audit: Audit;
  }
}

/** What a route's answer was: the table below turns it into events. */
interface Outcome {
  request: FastifyRequest;
  status: number;
  /** The error code answered, if any (a string: codes other route files add are read here too). */
  code: string | undefined;
  /** The ServiceError's ids, if it had any. */
  context: Record<string, string> | undefined;
  body: Record<string, unknown>;
  params: Record<string, string>;
}

/** An event the answer stands for, its request's who/where filled in later. */
type Found = Omit<AuditEvent, 'ip' | 'userAgent' | 'requestId'>;
type Rule = (outcome: Outcome, audit: Audit) => Found[] | Promise<Found[]>;

const LOGIN_FAILURE_REASONS: Record<string, LoginFailureReason> = {
  too_many_attempts: 'rate_limited',
  account_locked: 'locked',
  invalid_mfa_code: 'second_factor',
  mfa_token_expired: 'second_factor',
  invalid_passkey: 'bad_passkey',
};

function userOf(outcome: Outcome): string | undefined {
  return outcome.request.userId;
}

/** A route whose success is one event of the caller's account. */
function onSuccess(status: number, type: AuditType, details: (outcome: Outcome) => Record<string, unknown> = () => ({})): Rule {
  return (outcome) => (outcome.status === status && outcome.code === undefined ? [{ type, userId: userOf(outcome), details: details(outcome) }] : []);
}

/**
 * A sign-in: tokens are `login_succeeded`; a refusal that says something about the account is `login_failed`
 * with its reason. A right password that still needs a second factor is no event yet: the second step records
 * the sign-in, or its failure. Malformed requests and an overloaded service are no security events.
 */
function login(method: 'password' | 'mfa' | 'passkey'): Rule {
  return (outcome) => {
    const { request, code, context } = outcome;
    if (code === undefined) {
      if (outcome.status !== 200 || request.awaitsSecondFactor) return [];
      return [{ type: 'login_succeeded', userId: userOf(outcome), details: { method } }];
    }
    let reason: LoginFailureReason | undefined = LOGIN_FAILURE_REASONS[code];
    if (code === 'invalid_credentials') {
      const given = context?.['reason'];
      reason = given === 'bad_password' || given === 'unknown_user' ? given : method === 'mfa' ? 'second_factor' : 'bad_password';
    }
    if (reason === undefined) return [];
    const userId = context?.['userId'];
    const typed = method === 'password' && typeof outcome.body['username'] === 'string' ? outcome.body['username'] : undefined;
    return [{ type: 'login_failed', userId, details: { reason, method }, typedUsername: userId === undefined ? typed : undefined }];
  };
}

/**
 * Which answers of which routes are events, keyed by method and route pattern. Route handlers know nothing of
 * the audit trail: an event is read off the answer after it is sent, so it never delays or fails a request.
 */
const RULES: Record<string, Rule> = {
  'POST /api/auth/register': onSuccess(201, 'register'),
  'POST /api/auth/login': login('password'),
  'POST /api/auth/login/mfa': login('mfa'),
  'POST /api/auth/passkeys/login': login('passkey'),
  'POST /api/auth/change': (outcome) => {
    if (outcome.status !== 200 || outcome.code !== undefined) return [];
    const userId = userOf(outcome);
    const events: Found[] = [];
    if (outcome.body['new_username']) events.push({ type: 'username_changed', userId });
    if (outcome.body['new_password']) events.push({ type: 'password_changed', userId });
    return events;
  },
  'DELETE /api/auth/delete': onSuccess(200, 'account_deleted'),
  'POST /api/auth/logout': onSuccess(200, 'logout', (o) => ({ scope: typeof o.body['scope'] === 'string' ? o.body['scope'] : 'local' })),
  // The token is the only credential here; a refresh token this service issued says whose session ended.
  'POST /api/auth/revoke': async (outcome, audit) => {
    if (outcome.status !== 200 || typeof outcome.body['token'] !== 'string') return [];
    const userId = await audit.refreshTokenOwner(outcome.body['token']);
    return userId === undefined ? [] : [{ type: 'logout', userId, details: { method: 'revoke' } }];
  },
  'DELETE /api/auth/sessions/:id': onSuccess(200, 'session_revoked', (o) => ({ session_id: o.params['id']?.toLowerCase() })),
  'POST /api/auth/refresh': (outcome) =>
    outcome.code === 'refresh_token_reused' && outcome.context?.['userId'] !== undefined
      ? [{ type: 'refresh_token_reused', userId: outcome.context['userId'], actor: 'system', details: { session_id: outcome.context['sessionId'] } }]
      : [],
  'POST /api/auth/mfa/totp/:id/verify': onSuccess(200, 'mfa_enrolled', (o) => ({ factor_id: o.params['id'] })),
  'DELETE /api/auth/mfa/totp/:id': onSuccess(200, 'mfa_removed', (o) => ({ factor_id: o.params['id'] })),
  'POST /api/auth/mfa/recovery-codes': onSuccess(200, 'recovery_codes_replaced'),
  'POST /api/auth/passkeys/register': onSuccess(201, 'passkey_added'),
  'DELETE /api/auth/passkeys/:id': onSuccess(200, 'passkey_removed', (o) => ({ passkey_id: o.params['id'] })),
  // The owner redeeming a recovery code an operator issued (the admin API's /users/:id/recovery-code).
  'POST /api/auth/recover': onSuccess(200, 'account_recovered'),
};

function asRecord(value: unknown): Record<string, any> {
  return typeof value === 'object' && value !== null ? (value as Record<string, any>) : {};
}

/** The app's logger, not the request's: the line carries the request id once, as a field of the event. */
function auditLog(request: FastifyRequest) {
  return request.server.log;
}

/** Who, from where: the request's part of every event. */
function origin(request: FastifyRequest): Pick<AuditEvent, 'ip' | 'userAgent' | 'requestId'> {
  return { ip: clientInfo(request).ip, userAgent: request.headers['user-agent'], requestId: request.id };
}

/** Records the events of the answers listed in RULES, once each answer is sent. Registered before the routes. */
export function registerAudit(app: FastifyInstance, audit: Audit): void {
  app.decorate('audit', audit);
  app.addHook('onResponse', async (request: FastifyRequest, reply: FastifyReply) => {
    const rule = RULES[`${request.method} ${request.routeOptions.url ?? ''}`];
    if (!rule) return;
    const outcome: Outcome = {
      request,
      status: reply.statusCode,
      code: request.errorCode,
      context: request.errorContext,
      body: asRecord(request.body),
      params: asRecord(request.params),
    };
    try {
      const events = await rule(outcome, audit);
      await Promise.all(events.map((event) => audit.record({ ...event, ...origin(request) }, auditLog(request))));
    } catch (error) {
      request.log.warn({ err: error }, 'audit event not recorded');
    }
  });
}

/** For a route the table cannot read (a recovery, say): records `type` for `userId` from this request. */
export function auditEvent(request: FastifyRequest, type: AuditType, userId: string | undefined, details: Record<string, unknown> = {}): Promise<void> {
  return request.server.audit.record({ type, userId, details, ...origin(request) }, auditLog(request));
}

/**
 * An operator's action through the admin API: `admin_action` with `details.action`, by `admin:<key name>` (the
 * admin authentication sets `request.admin`). Resolves once recorded; never rejects.
 */
export function auditAdmin(request: FastifyRequest, action: string, userId: string | undefined, details: Record<string, unknown> = {}): Promise<void> {
  const actor = request.admin ? `admin:${request.admin.name}` : 'admin';
  return request.server.audit.record({ type: 'admin_action', userId, actor, details: { ...details, action }, ...origin(request) }, auditLog(request));
}
