import type { FastifyInstance } from 'fastify';
import type { ErrorCode } from '../errors.js';
import type { RouteAuth } from './authentication.js';
import { BODY_ERRORS, errorResponses } from './schemas.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * The codes this route answers of its own. What its declarations imply is added here, not written by every
     * route: the body's errors for a route with a body, its credential's for one with `auth`, and
     * `database_unavailable` for every route that declares errors.
     */
    errors?: ErrorCode[];
  }
}

/**
 * Completes each route's OpenAPI responses from its declarations: the codes it lists, and those its body, its
 * `auth` and the database imply, grouped by the status the error table gives them. Registered on the root
 * instance before any route: onRoute sees only routes added after it.
 */
export function registerRouteErrors(app: FastifyInstance, authErrors: Record<RouteAuth, readonly ErrorCode[]>): void {
  app.addHook('onRoute', (route) => {
    const config = route.config ?? {};
    if (config.errors === undefined && config.auth === undefined) return;
    const codes = new Set<ErrorCode>(config.errors ?? []);
    if (route.schema?.body !== undefined) BODY_ERRORS.forEach((code) => codes.add(code));
    if (config.auth !== undefined) authErrors[config.auth].forEach((code) => codes.add(code));
    codes.add('database_unavailable');
    route.schema = { ...route.schema, response: { ...errorResponses(...codes), ...(route.schema?.response as object | undefined) } };
  });
}
