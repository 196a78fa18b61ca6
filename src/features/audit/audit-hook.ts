import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Audit, AuditEvent, AuditType, LoginFailureReason } from './audit.js';
import { clientInfo } from '../../kernel/http/replies.js';

/** What a route's answer was: its declared rule turns it into events. */
export interface Outcome {
  request: FastifyRequest;
  status: number;
  /** The error code answered, if any. */
  code: string | undefined;
  /** The ServiceError's ids, if it had any. */
  context: Record<string, string> | undefined;
  body: Record<string, unknown>;
  params: Record<string, string>;
}

/** An event the answer stands for, its request's who/where filled in later. */
export type Found = Omit<AuditEvent, 'ip' | 'userAgent' | 'requestId'>;
export type AuditRule = (outcome: Outcome) => Found[] | Promise<Found[]>;

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * The events this route's answers stand for, declared beside the route. Read off the answer after it is
     * sent: the handler knows nothing of the audit trail, and recording never delays or fails a request.
     */
    audit?: AuditRule;
  }
  interface FastifyRequest {
    /** What a handler learnt that its route's audit rule records (an admin action's counts, say); never a secret. */
    auditDetails: Record<string, unknown> | undefined;
  }
}

const LOGIN_FAILURE_REASONS: Record<string, LoginFailureReason> = {
  too_many_attempts: 'rate_limited',
  account_locked: 'locked',
  invalid_mfa_code: 'second_factor',
  mfa_token_expired: 'second_factor',
  invalid_passkey: 'bad_passkey',
  invalid_email_code: 'bad_code',
};

function userOf(outcome: Outcome): string | undefined {
  return outcome.request.userId;
}

function succeeded(outcome: Outcome, status: number): boolean {
  return outcome.status === status && outcome.code === undefined;
}

/** A route whose success is one event of the caller's account. */
export function onSuccess(status: number, type: AuditType, details: (outcome: Outcome) => Record<string, unknown> = () => ({})): AuditRule {
  return (outcome) => (succeeded(outcome, status) ? [{ type, userId: userOf(outcome), details: details(outcome) }] : []);
}

/**
 * A sign-in: tokens are `login_succeeded`; a refusal that says something about the account is `login_failed`
 * with its reason. A first step that still needs a second factor is no event yet: the second step records the
 * sign-in, or its failure. Malformed requests and an overloaded service are no security events. A sign-in
 * answers `successStatus` when it succeeds (a page's is a redirect).
 */
export function signInAttempt(method: 'password' | 'mfa' | 'passkey' | 'email', successStatus = 200): AuditRule {
  return (outcome) => {
    const { request, code, context } = outcome;
    if (code === undefined) {
      if (outcome.status !== successStatus || request.awaitsSecondFactor) return [];
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
 * An operator's action through the admin API: `admin_action` with `details.action`, by `admin:<key name>` (the
 * admin authentication sets `request.admin`), about the user in the path or the one the handler noted.
 */
export function adminAction(action: string, status = 200): AuditRule {
  return (outcome) => {
    if (!succeeded(outcome, status)) return [];
    const { request } = outcome;
    const actor = request.admin ? `admin:${request.admin.name}` : 'admin';
    return [{ type: 'admin_action', userId: outcome.params['id'] ?? userOf(outcome), actor, details: { ...request.auditDetails, action } }];
  };
}

function asRecord(value: unknown): Record<string, any> {
  return typeof value === 'object' && value !== null ? (value as Record<string, any>) : {};
}

/** Records the events that each route's declared rule reads off its answer, once the answer is sent. Registered before the routes. */
export function registerAudit(app: FastifyInstance, audit: Audit): void {
  app.decorateRequest('auditDetails', undefined);
  app.addHook('onResponse', async (request: FastifyRequest, reply: FastifyReply) => {
    const rule = request.routeOptions.config.audit;
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
      // A rule that needs no lookup is recorded before this hook yields: whoever awaits the audit's settled()
      // once the answer has arrived finds its events.
      const found = rule(outcome);
      const events = found instanceof Promise ? await found : found;
      // The app's logger, not the request's: the line carries the request id once, as a field of the event.
      const origin = { ip: clientInfo(request).ip, userAgent: request.headers['user-agent'], requestId: request.id };
      await Promise.all(events.map((event) => audit.record({ ...event, ...origin }, request.server.log)));
    } catch (error) {
      request.log.warn({ err: error }, 'audit event not recorded');
    }
  });
}
