import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { KeyRing } from './signing-keys.js';

const Jwk = Type.Object({
  kty: Type.String(),
  kid: Type.Optional(Type.String()),
  alg: Type.Optional(Type.String()),
  use: Type.Optional(Type.String()),
  crv: Type.Optional(Type.String()),
  x: Type.Optional(Type.String()),
  y: Type.Optional(Type.String()),
  n: Type.Optional(Type.String()),
  e: Type.Optional(Type.String()),
});

// Verifiers cache the key set; a rotated key is published long before it signs anything.
const JWKS_MAX_AGE_SECONDS = 300;

/** Health check, public keys and the discovery document: no authentication, no database. */
export const publicRoutes: FastifyPluginAsyncTypebox<{
  keys: KeyRing;
  publicUrl: string;
  issuer: string;
  /** False when the OpenID provider serves the discovery document in its place (src/features/oidc). */
  discovery?: boolean;
}> = async (app, { keys, publicUrl, issuer, discovery = true }) => {
  // The original service's health check, kept for its load balancers.
  app.get(
    '/',
    { schema: { summary: "Health check (the original service's)", tags: ['operations'], response: { 200: { content: { 'text/plain': { schema: Type.Literal('OK') } } } } } },
    async (_request, reply) =>
      reply.type('text/plain; charset=utf-8').send('OK'),
  );

  app.get(
    '/.well-known/jwks.json',
    { schema: { summary: 'Public keys that verify access tokens (empty with HS256)', tags: ['tokens'], response: { 200: Type.Object({ keys: Type.Array(Jwk) }) } } },
    async (_request, reply) => {
      reply.header('cache-control', `public, max-age=${JWKS_MAX_AGE_SECONDS}`);
      return keys.jwks as { keys: { kty: string }[] };
    },
  );

  if (!discovery) return;

  // OpenID Connect discovery's fields that token verifiers read (jose, API gateways): where the keys are, what
  // `iss` to expect, and where to ask about a token or end its session (RFC 8414's names). This service issues no
  // ID tokens and has no authorization endpoint, so it claims none of the OpenID Provider fields it could not honour.
  app.get(
    '/.well-known/openid-configuration',
    {
      schema: {
        summary: 'Discovery document: issuer and jwks_uri for verifiers that configure themselves',
        tags: ['tokens'],
        response: {
          200: Type.Object({
            issuer: Type.String(),
            jwks_uri: Type.String(),
            introspection_endpoint: Type.String(),
            revocation_endpoint: Type.String(),
          }),
        },
      },
    },
    async (_request, reply) => {
      reply.header('cache-control', `public, max-age=${JWKS_MAX_AGE_SECONDS}`);
      return {
        issuer,
        jwks_uri: `${publicUrl}/.well-known/jwks.json`,
        introspection_endpoint: `${publicUrl}/api/auth/introspect`,
        revocation_endpoint: `${publicUrl}/api/auth/revoke`,
      };
    },
  );
};
