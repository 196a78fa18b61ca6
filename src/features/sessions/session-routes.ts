import formbody from '@fastify/formbody';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Sessions } from './sessions.js';
import { callerOf } from '../../kernel/http/authentication.js';
import { clientInfo, emailFields, signedIn } from '../../kernel/http/replies.js';
import { absentBodyIsEmpty, BODY_ERRORS, EmailFields, errorResponses, LIMIT_ERRORS, Message, SignedInBody, UuidId } from '../../kernel/http/schemas.js';
import { defineAuditEvents, type EventsOf } from '../audit/audit.js';
import { onSuccess, type AuditRule } from '../audit/audit-hook.js';

export const SESSION_EVENTS = defineAuditEvents({
  logout: 'A session ended at its owner\'s request: `scope` is `local`, `others` or `global`; `method` `revoke` for RFC 7009.',
  refresh_token_reused: 'A refresh token was used twice: its session was ended, as a copy is in other hands.',
  session_revoked: 'The owner ended one of their sessions from the sessions list.',
});

declare module '../audit/audit.js' {
  interface AuditEvents extends EventsOf<typeof SESSION_EVENTS> {}
}

const reuseAlarm: AuditRule = (outcome) =>
  outcome.code === 'refresh_token_reused' && outcome.context?.['userId'] !== undefined
    ? [{ type: 'refresh_token_reused', userId: outcome.context['userId'], actor: 'system', details: { session_id: outcome.context['sessionId'] } }]
    : [];

const SessionBody = Type.Object({
  id: Type.String({ format: 'uuid' }),
  current: Type.Boolean({ description: 'The session of the access token that asked' }),
  auth_method: Type.String(),
  amr: Type.Array(Type.String(), { description: 'How its sign-in was proven (RFC 8176): `pwd`, and `otp` with a code' }),
  aal: Type.Integer({ description: 'Assurance level: 1 the password alone, 2 with a second factor' }),
  created_at: Type.String({ format: 'date-time' }),
  last_used_at: Type.String({ format: 'date-time', description: 'Last login or refresh' }),
  expires_at: Type.String({ format: 'date-time', description: 'When it ends unless refreshed before (idle timeout), or its absolute end' }),
  user_agent: Type.Union([Type.String(), Type.Null()]),
  ip: Type.Union([Type.String(), Type.Null()]),
});

/** RFC 7662 §2.2. Inactive tokens get `{"active": false}` and nothing else. */
const IntrospectionBody = Type.Object({
  active: Type.Boolean(),
  token_type: Type.Optional(Type.Literal('Bearer')),
  sub: Type.Optional(Type.String()),
  user_id: Type.Optional(Type.Integer()),
  username: Type.Optional(Type.String({ description: 'Current username (may differ from the claim after a rename)' })),
  sid: Type.Optional(Type.String()),
  iss: Type.Optional(Type.String()),
  aud: Type.Optional(Type.Union([Type.String(), Type.Array(Type.String())])),
  iat: Type.Optional(Type.Integer()),
  exp: Type.Optional(Type.Integer()),
  auth_time: Type.Optional(Type.Integer()),
  amr: Type.Optional(Type.Array(Type.String())),
  aal: Type.Optional(Type.Integer()),
  roles: Type.Optional(Type.Array(Type.String(), { description: "The user's roles now (may differ from the claim until the next refresh)" })),
  jti: Type.Optional(Type.String()),
  user_metadata: Type.Optional(Type.Object({}, { additionalProperties: true, description: "The user's own metadata now" })),
  app_metadata: Type.Optional(Type.Object({}, { additionalProperties: true, description: "The operators' metadata now" })),
  ...EmailFields,
});

// RFC 7662 and RFC 7009 clients (API gateways, OAuth libraries) post a form; JSON works too. The form parser is
// registered for these routes only.
const formRoutes: FastifyPluginAsyncTypebox<{ sessions: Sessions }> = async (app, { sessions }) => {
  await app.register(formbody, { bodyLimit: 8192 });
  // The token is the only credential here; a refresh token this service issued says whose session ended.
  const revocation: AuditRule = async (outcome) => {
    if (outcome.status !== 200 || typeof outcome.body['token'] !== 'string') return [];
    const userId = await sessions.refreshTokenOwner(outcome.body['token']);
    return userId === undefined ? [] : [{ type: 'logout', userId, details: { method: 'revoke' } }];
  };
  app.post(
    '/introspect',
    {
      config: { errors: [], missingFieldsMessage: 'token is required!' },
      schema: {
        summary: 'Whether an access token is active right now, its session included (RFC 7662)',
        description:
          'Needs no credentials: the answer tells no more than GET /api/auth/me with the same token would. ' +
          'Unknown, expired, revoked and malformed tokens all answer 200 {"active": false}.',
        tags: ['tokens'],
        body: Type.Object(
          { token: Type.String({ minLength: 1 }), token_type_hint: Type.Optional(Type.String()) },
          { examples: [{ token: 'eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6Ii4uLiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl' }] },
        ),
        response: { 200: IntrospectionBody },
      },
    },
    async (request) => {
      const result = await sessions.introspect(request.body.token);
      if (!result.active) return { active: false };
      const { claims, user, metadata } = result;
      return {
        active: true,
        token_type: 'Bearer' as const,
        sub: user.id,
        user_id: Number(user.id),
        username: user.username,
        sid: claims['sid'] as string,
        iss: claims.iss,
        aud: claims.aud,
        iat: claims.iat,
        exp: claims.exp,
        auth_time: claims['auth_time'] as number,
        amr: claims['amr'] as string[] | undefined,
        aal: claims['aal'] as number | undefined,
        roles: user.roles,
        jti: claims.jti,
        user_metadata: metadata.userMetadata,
        app_metadata: metadata.appMetadata,
        ...emailFields(user),
      };
    },
  );

  app.post(
    '/revoke',
    {
      config: { audit: revocation, errors: [...LIMIT_ERRORS], missingFieldsMessage: 'token is required!' },
      schema: {
        summary: 'End the session of a refresh token, or of an access token (RFC 7009)',
        description:
          'Needs no access token: the token sent is the proof, so a client whose access token has expired can still ' +
          'sign out. A refresh token (current or already exchanged) or a still-valid access token ends its session, ' +
          'as a logout does. Unknown, expired, malformed and already-ended tokens answer 200 too. `token_type_hint` ' +
          'is accepted and not needed.',
        tags: ['sessions'],
        body: Type.Object(
          {
            token: Type.String({ minLength: 1, description: 'A refresh token, or an access token' }),
            token_type_hint: Type.Optional(Type.String({ description: '`refresh_token` or `access_token`; any other value is ignored' })),
          },
          { examples: [{ token: 'the refresh_token of the last sign-in or refresh', token_type_hint: 'refresh_token' }] },
        ),
        response: {
          200: Type.Object({}, { description: 'The token no longer works, whether or not it did before' }),
        },
      },
    },
    async (request) => {
      await sessions.revoke(request.body.token, clientInfo(request));
      return {};
    },
  );
};

/** The token lifecycle: refresh, logout, revocation, the user's sessions, and introspection for other services. */
export const sessionRoutes: FastifyPluginAsyncTypebox<{ sessions: Sessions }> = async (app, { sessions }) => {
  app.post(
    '/refresh',
    {
      config: { audit: reuseAlarm, errors: ['invalid_refresh_token', 'refresh_token_reused', ...LIMIT_ERRORS, 'hook_unavailable'], missingFieldsMessage: 'refresh_token is required!' },
      schema: {
        summary: 'Exchange a refresh token for a new access token and a new refresh token',
        tags: ['sessions'],
        body: Type.Object(
          { refresh_token: Type.String({ minLength: 1 }) },
          { examples: [{ refresh_token: 'the refresh_token of the last sign-in or refresh' }] },
        ),
        response: {
          200: SignedInBody,
        },
      },
    },
    async (request) => signedIn(request, 'Token refreshed successfully', await sessions.refresh(request.body.refresh_token, clientInfo(request))),
  );

  app.post(
    '/logout',
    {
      config: { audit: onSuccess(200, 'logout', (o) => ({ scope: typeof o.body['scope'] === 'string' ? o.body['scope'] : 'local' })), errors: [], auth: 'user' },
      preValidation: absentBodyIsEmpty,
      schema: {
        summary: 'End this session (`local`, the default), every other one (`others`) or all of them (`global`)',
        tags: ['sessions'],
        body: Type.Object(
          { scope: Type.Optional(Type.Union([Type.Literal('local'), Type.Literal('others'), Type.Literal('global')])) },
          { examples: [{ scope: 'local' }] },
        ),
        response: {
          200: Type.Object({ message: Type.String(), sessions_ended: Type.Integer() }),
        },
      },
    },
    async (request) => {
      const auth = callerOf(request);
      const ended = await sessions.logout(auth, request.body.scope ?? 'local');
      return { message: 'Logged out successfully', sessions_ended: ended };
    },
  );

  app.get(
    '/sessions',
    {
      config: { errors: [], auth: 'user' },
      schema: {
        summary: "The token's user's live sessions, most recently used first",
        tags: ['sessions'],
        response: { 200: Type.Object({ sessions: Type.Array(SessionBody) }) },
      },
    },
    async (request) => {
      const auth = callerOf(request);
      const list = await sessions.list(auth);
      return {
        sessions: list.map((s) => ({
          id: s.id,
          current: s.id === auth.session.id,
          auth_method: s.authMethod,
          amr: s.amr,
          aal: s.aal,
          created_at: s.createdAt.toISOString(),
          last_used_at: s.lastUsedAt.toISOString(),
          expires_at: s.expiresAt.toISOString(),
          user_agent: s.userAgent,
          ip: s.ip,
        })),
      };
    },
  );

  app.delete(
    '/sessions/:id',
    {
      config: { audit: onSuccess(200, 'session_revoked', (o) => ({ session_id: o.params['id']?.toLowerCase() })), errors: ['invalid_request', 'not_found'], auth: 'user' },
      schema: {
        summary: "End one of the token's user's sessions",
        tags: ['sessions'],
        params: Type.Object({ id: UuidId }),
        response: { 200: Message },
      },
    },
    async (request) => {
      const auth = callerOf(request);
      await sessions.end(auth, request.params.id.toLowerCase());
      return { message: 'Session ended' };
    },
  );

  app.register(formRoutes, { sessions });
};
