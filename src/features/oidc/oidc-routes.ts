import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { adminAction } from '../audit/audit-hook.js';
import { SingleLine } from '../../kernel/http/schemas.js';
import { AUTH_METHODS, clientBody, GRANT_TYPES, type ClientRegistry } from './oidc-clients.js';
import { PROVIDER_PREFIX } from './oidc-paths.js';
import type { OpenIdProvider } from './openid-provider.js';

/**
 * The provider's own routes: the authorization, token, userinfo, logout, introspection and revocation endpoints
 * under /oidc, and the discovery document at the issuer's well-known address. oidc-provider reads the requests
 * itself (bodies included): Fastify hands them over untouched.
 */
export const providerRoutes: FastifyPluginAsyncTypebox<{ provider: OpenIdProvider }> = async (app, { provider }) => {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, _payload, done) => done(null, undefined));
  const handOver = async (request: FastifyRequest, reply: FastifyReply) => {
    // The headers every answer gets (security headers, X-Request-Id) are on the reply so far: the provider writes
    // to the raw response, so they go there first.
    for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) reply.raw.setHeader(name, value);
    reply.hijack();
    await provider.handle(request.raw, reply.raw);
  };
  app.route({ method: ['GET', 'POST', 'OPTIONS'], url: `${PROVIDER_PREFIX}/*`, schema: { hide: true }, handler: handOver });
  app.get(
    '/.well-known/openid-configuration',
    {
      schema: {
        summary: 'Discovery document: the OpenID provider, and issuer and jwks_uri for verifiers that configure themselves',
        description:
          'OpenID Connect Discovery 1.0. `jwks_uri`, `introspection_endpoint` and `revocation_endpoint` are the service\'s own, as for ' +
          "its access tokens; the provider's introspection and revocation endpoints for the tokens it issues to apps are " +
          '`/oidc/token/introspection` and `/oidc/token/revocation` (with the app\'s credentials).',
        tags: ['tokens'],
        response: {
          200: Type.Object(
            {
              issuer: Type.String(),
              jwks_uri: Type.String(),
              introspection_endpoint: Type.String(),
              revocation_endpoint: Type.String(),
              authorization_endpoint: Type.String(),
              token_endpoint: Type.String(),
              userinfo_endpoint: Type.String(),
              end_session_endpoint: Type.String(),
            },
            { additionalProperties: true },
          ),
        },
      },
    },
    handOver,
  );
};

const ClientId = Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' });
const Uri = Type.String({ minLength: 1, maxLength: 2000 });
const Uris = Type.Array(Uri, { maxItems: 20 });

/** RFC 7591's names. Every field may be left out; a client that signs users in needs `redirect_uris`. */
const ClientFields = {
  client_name: Type.Optional(SingleLine({ minLength: 1, maxLength: 100, description: 'Shown on the sign-in page' })),
  redirect_uris: Type.Optional(Type.Array(Uri, { maxItems: 20, description: 'Where a sign-in may go back to, compared exactly' })),
  post_logout_redirect_uris: Type.Optional(Type.Array(Uri, { maxItems: 20, description: 'Where a logout may go back to' })),
  grant_types: Type.Optional(
    Type.Array(Type.String({ maxLength: 64 }), { maxItems: 10, description: `Of ${GRANT_TYPES.join(', ')}; \`authorization_code\` unless given` }),
  ),
  token_endpoint_auth_method: Type.Optional(
    Type.String({ maxLength: 64, description: `${AUTH_METHODS.join(', ')}; \`none\`: a public client (no secret, PKCE)` }),
  ),
  backchannel_logout_uri: Type.Optional(Type.Union([Uri, Type.Null()], { description: 'Where a logout_token is posted when a session of the user ends' })),
  scope: Type.Optional(
    SingleLine({ maxLength: 4000, description: 'Space-separated: `openid profile roles offline_access`, and the APIs\' scopes; `openid profile roles` unless given' }),
  ),
};

const ClientBody = Type.Object({
  client_id: Type.String(),
  client_name: Type.Optional(Type.String()),
  redirect_uris: Uris,
  post_logout_redirect_uris: Uris,
  grant_types: Type.Array(Type.String()),
  response_types: Type.Array(Type.String()),
  token_endpoint_auth_method: Type.String(),
  backchannel_logout_uri: Type.Optional(Type.String()),
  scope: Type.String(),
  client_id_issued_at: Type.Integer({ description: 'Seconds since 1970 (RFC 7591)' }),
});

const ADMIN = { auth: 'admin' } as const;
const METADATA_ERRORS = ['invalid_client_metadata', 'invalid_redirect_uri'] as const;

/** The admin API's registry of apps (OpenID Connect clients), under /admin. */
export const clientAdminRoutes: FastifyPluginAsyncTypebox<{ clients: ClientRegistry }> = async (app, { clients }) => {
  app.addHook('onSend', async (_request, reply) => {
    reply.header('cache-control', 'no-store');
  });

  app.post(
    '/clients',
    {
      config: { ...ADMIN, audit: adminAction('client_registered', 201), errors: [...METADATA_ERRORS] },
      schema: {
        summary: 'Register an app that signs users in (an OpenID Connect client): its secret is shown this once',
        description:
          'RFC 7591 metadata. A confidential client (the default, `client_secret_basic`) gets a `client_secret`; a public one ' +
          '(`token_endpoint_auth_method: none`) gets none and must use PKCE. The client gets only the grants and scopes given here, and no consent screen.',
        tags: ['single sign-on'],
        body: Type.Object(ClientFields, {
          examples: [
            {
              client_name: 'Wiki',
              redirect_uris: ['https://wiki.example.com/callback'],
              post_logout_redirect_uris: ['https://wiki.example.com/'],
              grant_types: ['authorization_code', 'refresh_token'],
              backchannel_logout_uri: 'https://wiki.example.com/backchannel-logout',
              scope: 'openid profile roles',
            },
          ],
        }),
        response: {
          201: Type.Object({
            ...ClientBody.properties,
            client_secret: Type.Optional(Type.String({ description: 'Shown this once: only its SHA-256 is kept' })),
            client_secret_expires_at: Type.Optional(Type.Integer({ description: '0: it does not expire' })),
          }),
        },
      },
    },
    async (request, reply) => {
      const { client, secret } = await clients.register({ ...request.body, backchannel_logout_uri: request.body.backchannel_logout_uri ?? undefined });
      request.auditDetails = { name: client.clientId };
      return reply.code(201).send({ ...clientBody(client), ...(secret === undefined ? {} : { client_secret: secret, client_secret_expires_at: 0 }) });
    },
  );

  app.get(
    '/clients',
    {
      config: { ...ADMIN, errors: [] },
      schema: { summary: 'The registered apps (never their secrets)', tags: ['single sign-on'], response: { 200: Type.Object({ clients: Type.Array(ClientBody) }) } },
    },
    async () => ({ clients: (await clients.list()).map(clientBody) }),
  );

  app.get(
    '/clients/:id',
    {
      config: { ...ADMIN, errors: ['invalid_request', 'not_found'] },
      schema: { summary: 'A registered app', tags: ['single sign-on'], params: Type.Object({ id: ClientId }), response: { 200: ClientBody } },
    },
    async (request) => clientBody(await clients.get(request.params.id)),
  );

  app.patch(
    '/clients/:id',
    {
      config: { ...ADMIN, audit: adminAction('client_updated'), errors: [...METADATA_ERRORS, 'not_found'] },
      schema: {
        summary: "Change an app's registration: the fields given",
        description: 'The secret stays as it is; `backchannel_logout_uri: null` removes it. A client cannot move between public and confidential.',
        tags: ['single sign-on'],
        params: Type.Object({ id: ClientId }),
        body: Type.Object(ClientFields, { examples: [{ redirect_uris: ['https://wiki.example.com/callback', 'https://wiki.example.com/login/callback'] }] }),
        response: { 200: ClientBody },
      },
    },
    async (request) => {
      const { backchannel_logout_uri: backchannel, ...changes } = request.body;
      const updated = await clients.update(request.params.id, changes, backchannel);
      request.auditDetails = { name: updated.clientId };
      return clientBody(updated);
    },
  );

  app.delete(
    '/clients/:id',
    {
      config: { ...ADMIN, audit: adminAction('client_deleted'), errors: ['invalid_request', 'not_found'] },
      schema: {
        summary: 'Delete an app: it signs nobody in any more, and the tokens it holds stop working',
        tags: ['single sign-on'],
        params: Type.Object({ id: ClientId }),
        response: { 200: Type.Object({ message: Type.String() }) },
      },
    },
    async (request) => {
      await clients.remove(request.params.id);
      request.auditDetails = { name: request.params.id };
      return { message: 'Client deleted' };
    },
  );
};
