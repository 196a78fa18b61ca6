import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AuthError, type AuthErrorCode } from '../auth/errors.js';
import { OverloadedError } from '../auth/hash-pool.js';
import { RateLimitedError, RateLimiterUnavailableError } from '../auth/rate-limits.js';
import { DatabaseUnavailableError } from '../db/database.js';
import type { Metrics } from '../metrics.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The original service's message when a required body field is missing or empty. */
    missingFieldsMessage?: string;
  }
}

const STATUS_BY_CODE: Record<AuthErrorCode, number> = {
  invalid_request: 400,
  invalid_username: 400,
  invalid_password: 400,
  password_mismatch: 400,
  invalid_credentials: 401,
  invalid_token: 401,
  invalid_refresh_token: 401,
  refresh_token_reused: 401,
  not_found: 404,
  weak_password: 400,
  too_many_attempts: 429,
  forbidden: 403,
  reauthentication_required: 403,
  username_taken: 409,
};

const WWW_AUTHENTICATE = 'Bearer realm="user-auth-service"';
const RETRY_AFTER_SECONDS = 5;
const OVERLOADED_RETRY_AFTER_SECONDS = 1;

function send(reply: FastifyReply, status: number, error: string, message: string): FastifyReply {
  return reply.code(status).type('application/json; charset=utf-8').send({ error, message });
}

/** Fastify's own refusals (body parsing, limits), by their stable codes. */
const FASTIFY_ERRORS: Record<string, [number, string, string]> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, 'unsupported_media_type', 'Content-Type must be application/json'],
  FST_ERR_CTP_BODY_TOO_LARGE: [413, 'payload_too_large', 'The request body is too large'],
  FST_ERR_CTP_INVALID_JSON_BODY: [400, 'invalid_json', 'The request body is not valid JSON'],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, 'invalid_json', 'The request body is empty but Content-Type says JSON'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [400, 'invalid_request', 'Content-Length does not match the body'],
};

function validationMessage(error: FastifyError, request: FastifyRequest): string {
  const missingFieldsMessage = request.routeOptions.config.missingFieldsMessage;
  const missing = (error.validation ?? []).some(
    (issue) =>
      issue.keyword === 'required' ||
      (issue.keyword === 'minLength' && issue.params['limit'] === 1) ||
      (issue.instancePath === '' && (request.body === undefined || request.body === null)),
  );
  if (missing && missingFieldsMessage !== undefined) return missingFieldsMessage;
  return `Invalid request: ${error.message}`;
}

/** Every error leaves as `{"error", "message"}` with a 4xx status, or 503/500 without internals. */
export function registerErrorHandlers(app: FastifyInstance, metrics: Metrics): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof AuthError) {
      // A reused refresh token means a copy is in someone else's hands: worth an operator's attention.
      if (error.code === 'refresh_token_reused') request.log.warn(error.context, 'refresh token reuse detected: session ended');
      if (error.code === 'invalid_token') {
        // RFC 6750 §3.1: a request that carried no credentials at all gets the challenge without an error code.
        const presented = request.headers.authorization !== undefined;
        reply.header('www-authenticate', presented ? `${WWW_AUTHENTICATE}, error="invalid_token"` : WWW_AUTHENTICATE);
      }
      if (error instanceof RateLimitedError) {
        reply.header('retry-after', String(error.retryAfterSeconds));
        metrics.rateLimitRejections.inc({ rule: error.rule });
      }
      return send(reply, STATUS_BY_CODE[error.code], error.code, error.message);
    }
    if (error instanceof OverloadedError) {
      // Shed at once: a client retrying in a second does better than one waiting behind a queue that only grows.
      reply.header('retry-after', String(OVERLOADED_RETRY_AFTER_SECONDS));
      return send(reply, 503, 'overloaded', 'The service is busy; try again in a moment');
    }
    if (error instanceof RateLimiterUnavailableError) {
      request.log.warn('login refused: rate-limit store unavailable (RATE_LIMIT_ON_REDIS_FAILURE=closed)');
      reply.header('retry-after', String(RETRY_AFTER_SECONDS));
      return send(reply, 503, 'rate_limiter_unavailable', 'Sign-in is briefly unavailable; try again shortly');
    }
    if (error.validation) return send(reply, 400, 'invalid_request', validationMessage(error, request));
    if (error instanceof DatabaseUnavailableError) {
      request.log.warn({ reason: error.reason }, 'database unavailable');
      reply.header('retry-after', String(RETRY_AFTER_SECONDS));
      return send(reply, 503, 'database_unavailable', 'The database is unavailable; try again shortly');
    }
    const known = error.code === undefined ? undefined : FASTIFY_ERRORS[error.code];
    if (known) return send(reply, ...known);
    if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
      return send(reply, error.statusCode, 'invalid_request', error.message);
    }
    request.log.error({ err: error }, 'unhandled error');
    return send(reply, 500, 'internal_error', 'Something went wrong on our side');
  });

  app.setNotFoundHandler((request, reply) =>
    send(reply, 404, 'not_found', `No route ${request.method} ${request.url.split('?')[0]}`),
  );
}
