import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { USERNAME_RULE } from '../usernames.js';
import { errorSpec, ServiceError, type ErrorCode } from '../errors.js';
import type { Metrics } from '../metrics.js';
import { SINGLE_LINE_PATTERN, TEXT_PATTERN } from './schemas.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The original service's message when a required body field is missing or empty. */
    missingFieldsMessage?: string;
    /** The route answers HTML pages for browsers, its refusals too: they are left as they are. */
    html?: boolean;
  }
  interface FastifyRequest {
    /** The code of the error this request was answered with, if any: metrics read it. */
    errorCode: ErrorCode | undefined;
    /** The ids a ServiceError carried (never a secret): the audit trail reads whose account a refusal was about. */
    errorContext: Record<string, string> | undefined;
  }
}

function send(request: FastifyRequest, reply: FastifyReply, code: ErrorCode, message: string): FastifyReply {
  request.errorCode = code;
  return reply.code(errorSpec(code).status).type('application/json; charset=utf-8').send({ error: code, message });
}

/** Fastify's own refusals (body parsing, limits), by their stable codes. */
const FASTIFY_ERRORS: Record<string, [ErrorCode, string]> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: ['unsupported_media_type', 'Content-Type must be application/json'],
  FST_ERR_CTP_BODY_TOO_LARGE: ['payload_too_large', 'The request body is too large'],
  FST_ERR_CTP_INVALID_JSON_BODY: ['invalid_json', 'The request body is not valid JSON'],
  FST_ERR_CTP_EMPTY_JSON_BODY: ['invalid_json', 'The request body is empty but Content-Type says JSON'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: ['invalid_request', 'Content-Length does not match the body'],
};

/** The body field a validation issue is about (`/username`), when the body is an object. */
function fieldValue(request: FastifyRequest, instancePath: string): unknown {
  const body = request.body;
  if (typeof body !== 'object' || body === null || !/^\/[a-z_]+$/.test(instancePath)) return undefined;
  return (body as Record<string, unknown>)[instancePath.slice(1)];
}

const USERNAME_FIELDS = new Set(['/username', '/new_username']);
const NO_CONTROLS_PATTERNS = new Set<unknown>([SINGLE_LINE_PATTERN, TEXT_PATTERN]);

/** A schema's refusal as the code and message a client gets: the domain's own where the schema checks its rule. */
function validationAnswer(error: FastifyError, request: FastifyRequest): [ErrorCode, string] {
  const issues = error.validation ?? [];
  const missingFieldsMessage = request.routeOptions.config.missingFieldsMessage;
  const missing = issues.some(
    (issue) =>
      issue.keyword === 'required' ||
      (issue.keyword === 'minLength' && fieldValue(request, issue.instancePath) === '') ||
      (issue.instancePath === '' && (request.body === undefined || request.body === null)),
  );
  if (missing && missingFieldsMessage !== undefined) return ['invalid_request', missingFieldsMessage];
  // The schemas state the username's length so that the document shows it; the answer stays the domain's.
  const usernameRule = issues.some(
    (issue) => USERNAME_FIELDS.has(issue.instancePath) && ['minLength', 'maxLength', 'pattern'].includes(issue.keyword),
  );
  if (usernameRule) return ['invalid_username', USERNAME_RULE];
  // The pattern itself says nothing to a person.
  const control = issues.find((issue) => issue.keyword === 'pattern' && NO_CONTROLS_PATTERNS.has(issue.params['pattern']));
  if (control) return ['invalid_request', `Invalid request: ${error.validationContext ?? 'body'}${control.instancePath} must not contain control characters`];
  return ['invalid_request', `Invalid request: ${error.message}`];
}

/**
 * A ServiceError as its code's row says: its status, its challenge, its log line, its public message. Knows no
 * feature: each declares its codes' rows beside its routes.
 */
function sendServiceError(error: ServiceError, request: FastifyRequest, reply: FastifyReply, metrics: Metrics): FastifyReply {
  request.errorContext = error.context;
  const spec = errorSpec(error.code);
  const log = error.log ?? spec.log;
  if (log) request.log[log.level](error.context ?? {}, log.message);
  if (spec.challenge) {
    // RFC 6750 §3.1: a request that carried no credentials at all gets the challenge without an error code.
    const presented = error.code === 'invalid_token' && request.headers.authorization !== undefined;
    reply.header('www-authenticate', presented ? `${spec.challenge}, error="invalid_token"` : spec.challenge);
  }
  if (error.rule !== undefined) metrics.rateLimitRejections.inc({ rule: error.rule });
  if (error.retryAfterSeconds !== undefined) reply.header('retry-after', String(error.retryAfterSeconds));
  return send(request, reply, error.code, spec.publicMessage ?? error.message);
}

/**
 * Headers for the answers that Fastify or Node write before any hook has run (a malformed URL or request line,
 * oversized headers, a request too slow to arrive): the security headers that helmet adds to every other answer,
 * as strict as an error body allows.
 */
export const RAW_ANSWER_HEADERS: Record<string, string> = {
  'content-type': 'application/json; charset=utf-8',
  'cache-control': 'no-store',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
  'cross-origin-resource-policy': 'same-origin',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'SAMEORIGIN',
};

/**
 * Fastify's frameworkErrors: a URL it cannot decode, a path parameter too long. These bypass the hooks, so
 * the headers that helmet would have added are set here.
 */
export function frameworkErrors(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  reply.headers(RAW_ANSWER_HEADERS).header('x-request-id', request.id);
  const message = error.code === 'FST_ERR_BAD_URL' ? 'The URL is malformed' : 'The request cannot be routed';
  void send(request, reply, 'invalid_request', message);
}

/**
 * Node's clientError: the request could not even be parsed (bad request line, headers over the size limit) or
 * did not arrive in time (REQUEST_TIMEOUT_SECONDS, HEADERS_TIMEOUT_SECONDS). Nothing of Fastify runs; the answer
 * is written straight to the socket, which is then closed.
 */
export function clientErrorHandler(error: NodeJS.ErrnoException, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const [code, message]: [ErrorCode, string] =
    error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? ['request_timeout', 'The request did not arrive in time']
      : error.code === 'HPE_HEADER_OVERFLOW'
        ? ['headers_too_large', 'The request headers are too large']
        : ['invalid_request', 'The request is not valid HTTP'];
  const status = errorSpec(code).status;
  const body = JSON.stringify({ error: code, message });
  const headers = { ...RAW_ANSWER_HEADERS, 'content-length': String(Buffer.byteLength(body)), connection: 'close' };
  if (socket.writable) {
    const head = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('');
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n${head}\r\n${body}`);
  }
  socket.destroy();
}

/** Every error leaves as `{"error", "message"}` with a 4xx status, or 503/500 without internals. */
export function registerErrorHandlers(app: FastifyInstance, metrics: Metrics): void {
  app.decorateRequest('errorCode', undefined);
  app.decorateRequest('errorContext', undefined);

  // Plugins answer some refusals in plain text themselves (@fastify/cors: an OPTIONS request that is not a
  // valid preflight). Any error answer that is not JSON yet is put into the house shape here.
  app.addHook('onSend', async (request, reply, payload) => {
    if (reply.statusCode < 400 || String(reply.getHeader('content-type') ?? '').startsWith('application/json')) return payload;
    if (request.routeOptions.config?.html && String(reply.getHeader('content-type') ?? '').startsWith('text/html')) return payload;
    const code: ErrorCode = reply.statusCode === 404 ? 'not_found' : reply.statusCode >= 500 ? 'internal_error' : 'invalid_request';
    request.errorCode ??= code;
    reply.type('application/json; charset=utf-8');
    const text = typeof payload === 'string' && payload.length <= 200 ? payload : STATUS_CODES[reply.statusCode] ?? 'Error';
    return JSON.stringify({ error: code, message: text });
  });

  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof ServiceError) return sendServiceError(error, request, reply, metrics);
    if (error.validation) return send(request, reply, ...validationAnswer(error, request));
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
