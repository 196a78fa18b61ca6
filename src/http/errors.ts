import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ERRORS, ServiceError, type ErrorCode } from '../errors.js';
import type { Metrics } from '../metrics.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The original service's message when a required body field is missing or empty. */
    missingFieldsMessage?: string;
  }
  interface FastifyRequest {
    /** The code of the error this request was answered with, if any: metrics read it. */
    errorCode: ErrorCode | undefined;
  }
}

const WWW_AUTHENTICATE = 'Bearer realm="user-auth-service"';

/** The message a client sees for codes whose internal message is meant for logs. */
const PUBLIC_MESSAGES: Partial<Record<ErrorCode, string>> = {
  database_unavailable: 'The database is unavailable; try again shortly',
};

function send(request: FastifyRequest, reply: FastifyReply, code: ErrorCode, message: string): FastifyReply {
  request.errorCode = code;
  return reply.code(ERRORS[code].status).type('application/json; charset=utf-8').send({ error: code, message });
}

/** Fastify's own refusals (body parsing, limits), by their stable codes. */
const FASTIFY_ERRORS: Record<string, [ErrorCode, string]> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: ['unsupported_media_type', 'Content-Type must be application/json'],
  FST_ERR_CTP_BODY_TOO_LARGE: ['payload_too_large', 'The request body is too large'],
  FST_ERR_CTP_INVALID_JSON_BODY: ['invalid_json', 'The request body is not valid JSON'],
  FST_ERR_CTP_EMPTY_JSON_BODY: ['invalid_json', 'The request body is empty but Content-Type says JSON'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: ['invalid_request', 'Content-Length does not match the body'],
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

function sendServiceError(error: ServiceError, request: FastifyRequest, reply: FastifyReply, metrics: Metrics): FastifyReply {
  switch (error.code) {
    case 'refresh_token_reused':
      // A reused refresh token means a copy is in someone else's hands: worth an operator's attention.
      request.log.warn(error.context, 'refresh token reuse detected: session ended');
      break;
    case 'invalid_token': {
      // RFC 6750 §3.1: a request that carried no credentials at all gets the challenge without an error code.
      const presented = request.headers.authorization !== undefined;
      reply.header('www-authenticate', presented ? `${WWW_AUTHENTICATE}, error="invalid_token"` : WWW_AUTHENTICATE);
      break;
    }
    case 'too_many_attempts':
      metrics.rateLimitRejections.inc({ rule: error.rule ?? 'unknown' });
      break;
    case 'rate_limiter_unavailable':
      request.log.warn('login refused: rate-limit store unavailable (RATE_LIMIT_ON_REDIS_FAILURE=closed)');
      break;
    case 'database_unavailable':
      request.log.warn({ reason: error.context?.['reason'] }, 'database unavailable');
      break;
    default:
      break;
  }
  if (error.retryAfterSeconds !== undefined) reply.header('retry-after', String(error.retryAfterSeconds));
  return send(request, reply, error.code, PUBLIC_MESSAGES[error.code] ?? error.message);
}

/** Every error leaves as `{"error", "message"}` with a 4xx status, or 503/500 without internals. */
export function registerErrorHandlers(app: FastifyInstance, metrics: Metrics): void {
  app.decorateRequest('errorCode', undefined);

  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof ServiceError) return sendServiceError(error, request, reply, metrics);
    if (error.validation) return send(request, reply, 'invalid_request', validationMessage(error, request));
    const known = error.code === undefined ? undefined : FASTIFY_ERRORS[error.code];
    if (known) return send(request, reply, ...known);
    if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
      request.errorCode = 'invalid_request';
      return reply
        .code(error.statusCode)
        .type('application/json; charset=utf-8')
        .send({ error: 'invalid_request', message: error.message });
    }
    request.log.error({ err: error }, 'unhandled error');
    return send(request, reply, 'internal_error', 'Something went wrong on our side');
  });

  app.setNotFoundHandler((request, reply) =>
    send(request, reply, 'not_found', `No route ${request.method} ${request.url.split('?')[0]}`),
  );
}
