import cors from '@fastify/cors';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Config } from './settings.js';
import { registerAudit } from './features/audit/audit-hook.js';
import { adminRoutes } from './features/administration/admin-routes.js';
import { accountRoutes } from './features/accounts/account-routes.js';
import { signInRoutes } from './features/sign-in/sign-in-routes.js';
import { registerAuthentication } from './kernel/http/authentication.js';
import { adminAuthenticator } from './features/administration/admin-keys.js';
import { registerRouteErrors } from './kernel/http/route-errors.js';
import { LIMIT_ERRORS } from './kernel/http/schemas.js';
import { clientErrorHandler, frameworkErrors, registerErrorHandlers } from './kernel/http/error-replies.js';
import { eventRoutes } from './features/audit/activity-routes.js';
import { healthRoutes } from './features/operations/health-routes.js';
import { registerLoadShedding } from './kernel/http/load-shedding.js';
import { metricsRoutes } from './features/operations/metrics-routes.js';
import { mfaRoutes } from './features/mfa/mfa-routes.js';
import { passkeyRoutes } from './features/passkeys/passkey-routes.js';
import { sharedSchemaCompilers } from './kernel/http/schema-compilers.js';
import { instrument, requestId } from './kernel/http/observability.js';
import { registerOpenApi } from './kernel/http/openapi.js';
import { registerSecurityHeaders } from './kernel/http/security-headers.js';
import { publicRoutes } from './features/tokens/discovery-routes.js';
import { sessionRoutes } from './features/sessions/session-routes.js';
import { webhookRoutes } from './features/webhooks/webhook-routes.js';
import { emailRoutes } from './features/email/email-routes.js';
import { emailPageRoutes } from './features/email/email-page-routes.js';
import type { Services } from './services.js';
import { clientAdminRoutes, providerRoutes } from './features/oidc/oidc-routes.js';
import { signInPageRoutes } from './features/pages/page-routes.js';
import { accountPageRoutes } from './features/pages/account-page-routes.js';

export interface AppOptions {
  /** `admin`: the admin API alone, for ADMIN_PORT; `public` (the default): everything else, and /admin too without ADMIN_PORT. */
  surface?: 'public' | 'admin';
  /** The process's logger; none (silent) by default, as tests want. */
  logger?: FastifyBaseLogger;
}

const TIMEOUT_CHECK_INTERVAL_MS = 1000;

function trustHops(hops: number) {
  return (_address: string, hop: number) => hop < hops;
}

/** Assembles the HTTP service from ready parts. Nothing happens until the caller listens or injects. */
export function buildApp(config: Config, services: Services, options: AppOptions = {}): FastifyInstance {
  const app = Fastify({
    ...(options.logger ? { loggerInstance: options.logger } : { logger: false }),
    bodyLimit: config.bodyLimitBytes,
    // Slow clients are cut off (408, connection closed) instead of holding a connection for as long as they like.
    requestTimeout: config.http.requestTimeoutSeconds * 1000,
    keepAliveTimeout: config.http.keepAliveTimeoutSeconds * 1000,
    http: {
      headersTimeout: config.http.headersTimeoutSeconds * 1000,
      // Node looks for expired requests this often (30 s by default): a timeout is honoured within a second.
      connectionsCheckingInterval: TIMEOUT_CHECK_INTERVAL_MS,
    },
    genReqId: requestId,
    // Errors raised before routing or by Node's parser answer in the same JSON shape as everything else.
    frameworkErrors,
    clientErrorHandler,
    // observability.ts writes one line per request instead of Fastify's two.
    logController: new LogController({ requestIdLogLabel: 'requestId', disableRequestLogging: true }),
    schemaController: sharedSchemaCompilers,
    // A hop count means: believe that many X-Forwarded-For entries from the right (what Fastify does for a number).
    trustProxy: typeof config.trustProxy === 'number' ? trustHops(config.trustProxy) : config.trustProxy,
    ajv: {
      customOptions: {
        // A number where a string belongs is an error, not something to guess at.
        coerceTypes: false,
        removeAdditional: true,
        allErrors: false,
      },
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  // The API speaks JSON only: Fastify's built-in text/plain parser would let other bodies reach the schemas.
  app.removeContentTypeParser('text/plain');
  registerErrorHandlers(app, services.metrics);
  instrument(app, services.metrics);
  const surface = options.surface ?? 'public';
  const withAdmin = surface === 'admin' || config.adminPort === undefined;
  if (config.docsEnabled && surface === 'public') registerOpenApi(app);
  registerRouteErrors(app, { user: ['invalid_token'], admin: ['invalid_admin_key', ...LIMIT_ERRORS] });
  registerAuthentication(app, { user: (token) => services.sessions.authenticate(token), admin: adminAuthenticator(services.adminKeys, services.limits) });
  registerAudit(app, services.audit);
  registerLoadShedding(app, services.hasher);
  registerSecurityHeaders(app);
  if (withAdmin) {
    app.register(adminRoutes, { prefix: '/admin', administration: services.administration, adminKeys: services.adminKeys, audit: services.audit, passkeys: services.passkeys });
    app.register(webhookRoutes, { prefix: '/admin', webhooks: services.webhooks });
    if (services.clients) app.register(clientAdminRoutes, { prefix: '/admin', clients: services.clients });
  }
  if (surface === 'admin') return app;
  app.register(cors, {
    origin: config.cors.origins,
    credentials: config.cors.allowCredentials,
    methods: ['GET', 'POST', 'PATCH', 'DELETE'],
    allowedHeaders: ['Authorization', 'Content-Type', 'X-Request-Id'],
    exposedHeaders: ['WWW-Authenticate', 'Retry-After', 'X-Request-Id'],
    maxAge: 600,
  });
  app.register(publicRoutes, { keys: services.keys, publicUrl: config.publicUrl, issuer: config.jwt.issuer, discovery: services.oidc === undefined });
  if (services.oidc) app.register(providerRoutes, { provider: services.oidc });
  const origin = new URL(config.publicUrl).origin;
  app.register(signInPageRoutes, {
    pages: services.pages,
    signIn: services.signIn,
    accounts: services.accounts,
    sessions: services.sessions,
    provider: services.oidc,
    passkeysEnabled: services.passkeys !== undefined,
    accentColour: config.pages.accentColour,
    origin,
  });
  app.register(accountPageRoutes, {
    pages: services.pages,
    accounts: services.accounts,
    sessions: services.sessions,
    secondFactors: services.secondFactors,
    passkeys: services.passkeys,
    audit: services.audit,
    mfaIssuer: config.mfa.issuer,
    origin,
  });
  app.register(healthRoutes, { services, readiness: { redisRequired: config.rateLimits.onRedisFailure === 'closed' } });
  if (config.metricsPort === undefined) app.register(metricsRoutes, { metrics: services.metrics });
  if (services.email) app.register(emailPageRoutes, { productName: config.email!.productName });
  app.register(
    async (api) => {
      // Answers here carry tokens or account data: no cache may keep them.
      api.addHook('onSend', async (_request, reply) => {
        reply.header('cache-control', 'no-store');
      });
      api.register(accountRoutes, { accounts: services.accounts });
      api.register(signInRoutes, { signIn: services.signIn, passkeysEnabled: services.passkeys !== undefined });
      api.register(sessionRoutes, { sessions: services.sessions });
      api.register(mfaRoutes, { secondFactors: services.secondFactors });
      if (services.passkeys) api.register(passkeyRoutes, { passkeys: services.passkeys });
      api.register(eventRoutes, { audit: services.audit });
      if (services.email) api.register(emailRoutes, services.email);
    },
    { prefix: '/api/auth' },
  );
  return app;
}

/** /metrics alone, for METRICS_PORT: scraped from inside the network, never public. */
export function buildMetricsApp(metrics: Services['metrics']): FastifyInstance {
  const app = Fastify({ logger: false });
  app.register(metricsRoutes, { metrics });
  return app;
}
