import type { FastifyInstance, FastifyRequest, preHandlerHookHandler } from 'fastify';
import type { Authenticated } from '../model.js';
import { clientInfo } from './replies.js';
import { ServiceError } from '../errors.js';

/**
 * Who may call a route: `user` needs `Authorization: Bearer <access_token>` of a live session; `admin` needs
 * `Authorization: Bearer <admin key>` of a live admin key. Neither credential is accepted where the other is.
 */
export type RouteAuth = 'user' | 'admin';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Declared once per route: enforces the credential before the handler and documents it in OpenAPI. */
    auth?: RouteAuth;
  }
  interface FastifyRequest {
    /** The caller proven by the route's `auth`; unset on public routes. */
    auth: Authenticated | undefined;
    /** The admin key that made an admin request: its name is the actor the audit trail records. */
    admin: { name: string } | undefined;
  }
}

/** The OpenAPI security scheme of each kind of credential, as registered in openapi.ts. */
export const SECURITY_SCHEMES = {
  user: 'bearerAuth',
  admin: 'adminKey',
} as const satisfies Record<RouteAuth, string>;

const BEARER = /^Bearer +([A-Za-z0-9._~+/-]+=*) *$/i;

/**
 * Makes `config: { auth }` on a route both the check and its documentation, so the two cannot drift apart.
 * Registered on the root instance before any route: onRoute sees only routes added after it.
 */
/** What proves each kind of credential: the features that own them (sessions, admin keys) provide these. */
export interface Authenticators {
  /** The user and session behind an access token, or ServiceError('invalid_token'). */
  user(token: string): Promise<Authenticated>;
  /** The admin key behind a bearer token (undefined when none was sent) from this address: its name, or a ServiceError. */
  admin(token: string | undefined, ip: string | undefined): Promise<{ name: string }>;
}

export function registerAuthentication(app: FastifyInstance, authenticators: Authenticators): void {
  app.decorateRequest('auth', undefined);
  app.decorateRequest('admin', undefined);

  const authenticateAdmin: preHandlerHookHandler = async (request) => {
    const match = BEARER.exec(request.headers.authorization ?? '');
    request.admin = await authenticators.admin(match?.[1], clientInfo(request).ip);
  };

  // After body validation, as a handler's own check was: a malformed request is answered 400 either way.
  const authenticateUser: preHandlerHookHandler = async (request) => {
    const match = BEARER.exec(request.headers.authorization ?? '');
    if (!match) throw new ServiceError('invalid_token', 'An access token is required: send Authorization: Bearer <access_token>');
    request.auth = await authenticators.user(match[1]!);
    request.userId = request.auth.user.id;
  };

  app.addHook('onRoute', (route) => {
    const auth = route.config?.auth;
    if (auth === undefined) return;
    route.schema = { ...route.schema, security: [{ [SECURITY_SCHEMES[auth]]: [] }] };
    route.preHandler = [auth === 'admin' ? authenticateAdmin : authenticateUser, ...asArray(route.preHandler)];
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

