import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ErrorCode } from '../errors.js';
import type { Metrics } from '../metrics.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Answers of this route count in auth_logins_total. */
    countsAsLogin?: boolean;
  }
  interface FastifyRequest {
    /** The user the request acted as or for, once known: for the request's log line. */
    userId: string | undefined;
    /** A login answered 200 that opened no session yet: the right password, and a second factor to come. */
    awaitsSecondFactor: boolean;
  }
}

// An incoming X-Request-Id is kept (so one id follows a request through every service) if it looks like an id.
const ACCEPTABLE_REQUEST_ID = /^[\w.:@-]{1,128}$/;

/** Fastify's genReqId: the caller's X-Request-Id, or a new UUID. */
export function requestId(request: { headers: Record<string, string | string[] | undefined> }): string {
  const incoming = request.headers['x-request-id'];
  return typeof incoming === 'string' && ACCEPTABLE_REQUEST_ID.test(incoming) ? incoming : randomUUID();
}

/** The route pattern, never the raw path: bounded label values, and no ids in metric names. */
function routeOf(request: FastifyRequest): string {
  return request.routeOptions.url ?? 'unmatched';
}

/** A login's outcome for auth_logins_total, from the code it was refused with (none: it succeeded). */
function loginResult(code: ErrorCode | undefined): string {
  switch (code) {
    case undefined:
      return 'success';
    case 'invalid_credentials':
    case 'invalid_mfa_code':
    case 'invalid_passkey':
    case 'invalid_email_code':
    case 'account_locked':
    case 'mfa_token_expired':
    case 'invalid_request':
    case 'invalid_json':
      return 'failure';
    case 'too_many_attempts':
      return 'rate_limited';
    case 'overloaded':
    case 'rate_limiter_unavailable':
      return 'overloaded';
    default:
      return 'error';
  }
}

/**
 * One JSON log line per request (id, method, route, status, time, user id when known: never a body or a header),
 * the X-Request-Id answer header, and the request metrics.
 */
export function instrument(app: FastifyInstance, metrics: Metrics): void {
  app.decorateRequest('userId', undefined);
  app.decorateRequest('awaitsSecondFactor', false);

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });

  app.addHook('onResponse', async (request, reply) => {
    const route = routeOf(request);
    const labels = { method: request.method, route, status_code: String(reply.statusCode) };
    const seconds = reply.elapsedTime / 1000;
    metrics.httpRequests.inc(labels);
    metrics.httpDuration.observe(labels, seconds);
    if (request.routeOptions.config.countsAsLogin) {
      metrics.logins.inc({ result: request.awaitsSecondFactor ? 'mfa_required' : loginResult(request.errorCode) });
    }
    request.log.info(
      {
        method: request.method,
        url: request.url.split('?')[0],
        route,
        statusCode: reply.statusCode,
        responseTimeMs: Math.round(reply.elapsedTime * 10) / 10,
        ...(request.userId ? { userId: request.userId } : {}),
        ip: request.ip,
      },
      'request',
    );
  });
}
