import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { errorAnswer, VerifyError } from './errors.js';
import { policiesOf, type AccessClaims, type AccessRequirement } from './policies.js';
import type { Verifier } from './verifier.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Who may call the route: `true` for any valid access token, or what the token must hold. Unset: anyone. */
    access?: true | AccessRequirement;
  }
  interface FastifyRequest {
    /** The caller's verified claims on a route with `config.access`; null on the others. */
    user: AccessClaims | null;
  }
}

export interface FastifyAccessOptions {
  verifier: Verifier;
  /**
   * Check the verifier (`verifier.check()`) once the app is ready, and log what is wrong (a warning) or what it
   * trusts (info) through the app's logger: a misconfigured issuer shows at start, not as 503s. It does not hold
   * the start, nor fail it: the auth service may come up later. Default true.
   */
  checkAtStart?: boolean;
}

/**
 * A Fastify onRequest hook that admits only callers whose bearer token verifies and meets `requirement`, and
 * answers the others itself (401/403 with WWW-Authenticate, 503 if the keys cannot be fetched): for routes
 * declared without the plugin's `config.access`, or for a whole scope with `addHook('onRequest', …)`. Each
 * refusal's reason goes to `request.log`: `info` for a refused token, `warn` when tokens cannot be checked at all.
 */
export function accessHook(verifier: Verifier, requirement?: AccessRequirement) {
  const policies = policiesOf(requirement);
  return async function checkAccess(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
    try {
      request.user = await verifier.authenticate(request.headers.authorization, policies);
      return undefined;
    } catch (error) {
      if (!(error instanceof VerifyError)) request.log.error({ err: error }, 'access check failed');
      else if (error.code === 'verifier_unavailable') {
        request.log.warn({ code: error.code, reason: error.reason, err: error.cause }, `access tokens cannot be verified: ${error.reason}`);
      } else request.log.info({ code: error.code, reason: error.reason }, `access refused (${error.code}): ${error.reason}`);
      const answer = errorAnswer(error);
      // Returned, as Fastify wants of an async hook that answers: the request goes no further.
      return reply.code(answer.status).headers(answer.headers).send(answer.body);
    }
  };
}

/**
 * Route option `config: { access: true | { roles, aal, maxAuthAge, policies } }`: checked before the body is read;
 * the handler finds the claims in `request.user`. Register it before the routes it protects (it sees routes as
 * they are added). Routes without `access` stay public.
 */
export const fastifyAccess: FastifyPluginAsync<FastifyAccessOptions> = async (app, { verifier, checkAtStart = true }) => {
  app.decorateRequest('user', null);
  if (checkAtStart) {
    app.addHook('onReady', async () => {
      // Not awaited: an auth service that starts after this app is not a reason to hold or fail its start.
      verifier.check().then(
        () => app.log.info("access tokens can be verified: the service's keys are fetched"),
        (error: unknown) => {
          const reason = error instanceof VerifyError ? error.reason : String(error);
          app.log.warn({ reason }, `access tokens cannot be verified yet: ${reason}`);
        },
      );
    });
  }
  app.addHook('onRoute', (route) => {
    const access = route.config?.access;
    if (access === undefined) return;
    const hook = accessHook(verifier, access === true ? {} : access);
    const existing = route.onRequest === undefined ? [] : [route.onRequest].flat();
    route.onRequest = [hook, ...existing] as typeof route.onRequest;
  });
};

// What fastify-plugin does: the decorator and the hook belong to the app that registers the plugin, so its routes see them.
Object.assign(fastifyAccess, { [Symbol.for('skip-override')]: true, [Symbol.for('fastify.display-name')]: '@user-auth/verify' });

export default fastifyAccess;
