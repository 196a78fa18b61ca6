import type { FastifyInstance, FastifyRequest, preHandlerHookHandler } from 'fastify';
import type { Authenticated } from '../auth/model.js';
import type { Sessions } from '../auth/sessions.js';
import { ServiceError } from '../errors.js';

/** Who may call a route: `user` needs `Authorization: Bearer <access_token>` of a live session. */
export type RouteAuth = 'user';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Declared once per route: enforces the credential before the handler and documents it in OpenAPI. */
    auth?: RouteAuth;
  }
  interface FastifyRequest {
    /** The caller proven by the route's `auth`; unset on public routes. */
    auth: Authenticated | undefined;
  }
}

/** The OpenAPI security scheme of each kind of credential, as registered in openapi.ts. */
export const SECURITY_SCHEMES = {
  user: 'bearerAuth',
} as const satisfies Record<RouteAuth, string>;

const BEARER = /^Bearer +([A-Za-z0-9._~+/-]+=*) *$/i;

/**
 * Makes `config: { auth }` on a route both the check and its documentation, so the two cannot drift apart.
 * Registered on the root instance before any route: onRoute sees only routes added after it.
 */
export function registerAuthentication(app: FastifyInstance, sessions: Sessions): void {
  app.decorateRequest('auth', undefined);

  // After body validation, as a handler's own check was: a malformed request is answered 400 either way.
  const authenticateUser: preHandlerHookHandler = async (request) => {
    const match = BEARER.exec(request.headers.authorization ?? '');
    if (!match) throw new ServiceError('invalid_token', 'An access token is required: send Authorization: Bearer <access_token>');
    request.auth = await sessions.authenticate(match[1]!);
    request.userId = request.auth.user.id;
  };

  app.addHook('onRoute', (route) => {
    const auth = route.config?.auth;
    if (auth === undefined) return;
    route.schema = { ...route.schema, security: [{ [SECURITY_SCHEMES[auth]]: [] }] };
    route.preHandler = [authenticateUser, ...asArray(route.preHandler)];
  });
}

function asArray<T>(value: T | T[] | undefined): T[] {
  return value === undefined ? [] : Array.isArray(value) ? value : [value];
}

/** The caller of a route declared with `auth`; a route without it has no caller to read. */
export function callerOf(request: FastifyRequest): Authenticated {
  if (!request.auth) throw new Error(`route ${request.routeOptions.url} reads its caller but declares no auth`);
  return request.auth;
}

