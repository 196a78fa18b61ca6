import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { Accounts } from './accounts.js';
import { isServiceError } from '../../kernel/errors.js';
import type { Authenticated, UserMetadata } from '../../kernel/model.js';
import { callerOf } from '../../kernel/http/authentication.js';
import { clientInfo, emailFields, publicUser, signedIn } from '../../kernel/http/replies.js';
import { proofOf, ProofFields } from '../mfa/proof-fields.js';
import {
  absentBodyIsEmpty,
  BODY_ERRORS,
  errorResponses,
  LIMIT_ERRORS,
  EmailFields,
  Message,
  NewUsername,
  OptionalText,
  SignedInBody,
  SingleLine,
  UserId, EXAMPLE_PASSWORD, EXAMPLE_USERNAME } from '../../kernel/http/schemas.js';
import { defineAuditEvents, type EventsOf } from '../audit/audit.js';
import { EMAIL_MAX_LENGTH } from '../../kernel/email-addresses.js';
import { onSuccess, type AuditRule, type Found } from '../audit/audit-hook.js';

export const ACCOUNT_EVENTS = defineAuditEvents({
  register: 'An account was created through the API, and signed in.',
  password_changed: 'The owner changed the password (every other session ended).',
  username_changed: 'The owner renamed the account.',
  account_deleted: 'The owner deleted the account.',
});

declare module '../audit/audit.js' {
  interface AuditEvents extends EventsOf<typeof ACCOUNT_EVENTS> {}
}

/** A change is one event per part changed. */
const changeEvents: AuditRule = (outcome) => {
  if (outcome.status !== 200 || outcome.code !== undefined) return [];
  const userId = outcome.request.userId;
  const events: Found[] = [];
  if (outcome.body['new_username']) events.push({ type: 'username_changed', userId });
  if (outcome.body['new_password']) events.push({ type: 'password_changed', userId });
  return events;
};

const Required = Type.String({ minLength: 1 });

/**
 * One security event per rename attempt, whatever its outcome: renames can probe which usernames exist, so
 * whoever tries many should stand out. Never the names themselves.
 */
function logRenameAttempt(request: FastifyRequest, userId: string, outcome: string): void {
  request.log.info({ event: 'username_change', userId, ip: clientInfo(request).ip, outcome }, 'username change attempt');
}

const Me = Type.Object({
  id: Type.Integer(),
  username: Type.String(),
  created_at: Type.String({ format: 'date-time' }),
  updated_at: Type.String({ format: 'date-time' }),
  amr: Type.Array(Type.String(), { description: "How this session's sign-in was proven (RFC 8176): `pwd`, and `otp` with a code" }),
  aal: Type.Integer({ description: "The session's assurance level: 1 the password alone, 2 with a second factor" }),
  roles: Type.Array(Type.String(), { description: 'Set by operators; access tokens carry them as `roles`' }),
  user_metadata: Type.Object({}, { additionalProperties: true, description: 'The user\'s own (PATCH /api/auth/me); not in access tokens unless the token hook puts it there' }),
  app_metadata: Type.Object({}, { additionalProperties: true, description: 'Set by operators (PATCH /admin/users/{id}); not in access tokens unless the token hook puts it there' }),
  ...EmailFields,
});

function me({ user, session }: Authenticated, metadata: UserMetadata) {
  return {
    ...publicUser(user),
    created_at: user.createdAt.toISOString(),
    updated_at: user.updatedAt.toISOString(),
    amr: session.amr,
    aal: session.aal,
    roles: user.roles,
    user_metadata: metadata.userMetadata,
    app_metadata: metadata.appMetadata,
    ...emailFields(user),
  };
}

/** The original service's register, change and delete (same paths, fields and messages), plus /me and /validate; its login is the sign-in feature's. */
export const accountRoutes: FastifyPluginAsyncTypebox<{ accounts: Accounts }> = async (app, { accounts }) => {
  app.post(
    '/register',
    {
      config: { audit: onSuccess(201, 'register'), errors: ['invalid_username', 'invalid_password', 'weak_password', 'password_mismatch', 'username_taken', 'invalid_email', ...LIMIT_ERRORS, 'overloaded', 'hook_unavailable'], missingFieldsMessage: 'Username and passwords are required!', hashesPassword: true },
      schema: {
        summary: 'Create an account and sign in',
        description:
          'With EMAIL_ENABLED, an optional `email`: the account\'s address, pending until the link sent to it is followed (the answer is the ' +
          'same whether or not another account has it).',
        tags: ['accounts'],
        body: Type.Object(
          {
            username: NewUsername,
            password: Required,
            password_confirm: Required,
            email: Type.Optional(SingleLine({ minLength: 1, maxLength: EMAIL_MAX_LENGTH + 16, description: 'Optional: an email address for resets and sign-in codes' })),
          },
          { examples: [{ username: EXAMPLE_USERNAME, password: EXAMPLE_PASSWORD, password_confirm: EXAMPLE_PASSWORD }] },
        ),
        response: {
          201: SignedInBody,
        },
      },
    },
    async (request, reply) => {
      const { username, password, password_confirm, email } = request.body;
      const result = await accounts.register({ username, password, passwordConfirm: password_confirm, email }, clientInfo(request));
      return reply.code(201).send(signedIn(request, 'User registered successfully', result));
    },
  );



  app.post(
    '/change',
    {
      config: { audit: changeEvents, errors: ['invalid_username', 'invalid_password', 'weak_password', 'password_mismatch', 'invalid_credentials', 'invalid_mfa_code', 'forbidden', 'reauthentication_required', 'mfa_required', 'username_taken', ...LIMIT_ERRORS, 'overloaded'], auth: 'user' },
      schema: {
        summary: "Change the token's own username and/or password",
        description:
          'An empty or absent field leaves that part as it is. A new password needs `current_password`, unless the session signed in with ' +
          'the password within REAUTH_WINDOW_SECONDS; it ends every other session.',
        tags: ['accounts'],
        body: Type.Object(
          {
            user_id: Type.Optional(UserId),
            new_username: Type.Optional(Type.Union([NewUsername, Type.Literal(''), Type.Null()])),
            new_password: OptionalText,
            new_password_confirm: OptionalText,
            ...ProofFields,
          },
          { examples: [{ new_username: 'alice_smith' }] },
        ),
        response: {
          200: Message,
        },
      },
    },
    async (request) => {
      const auth = callerOf(request);
      const body = request.body;
      const renaming = Boolean(body.new_username);
      try {
        await accounts.change(auth, {
          userId: body.user_id,
          newUsername: body.new_username ?? undefined,
          newPassword: body.new_password ?? undefined,
          newPasswordConfirm: body.new_password_confirm ?? undefined,
          ...proofOf(body),
        }, clientInfo(request));
      } catch (error) {
        if (renaming) logRenameAttempt(request, auth.user.id, isServiceError(error) ? error.code : 'error');
        throw error;
      }
      if (renaming) logRenameAttempt(request, auth.user.id, 'changed');
      return { message: 'User credentials updated successfully' };
    },
  );

  app.delete(
    '/delete',
    {
      config: { audit: onSuccess(200, 'account_deleted'), errors: ['invalid_credentials', 'invalid_mfa_code', 'forbidden', 'reauthentication_required', 'mfa_required', ...LIMIT_ERRORS, 'overloaded'], auth: 'user' },
      preValidation: absentBodyIsEmpty,
      schema: {
        summary: "Delete the token's own account",
        description: 'Needs `current_password`, unless the session signed in with the password within REAUTH_WINDOW_SECONDS.',
        tags: ['accounts'],
        body: Type.Object({ user_id: Type.Optional(UserId), ...ProofFields }, { examples: [{ current_password: EXAMPLE_PASSWORD }] }),
        response: {
          200: Message,
        },
      },
    },
    async (request) => {
      const auth = callerOf(request);
      await accounts.delete(auth, { userId: request.body.user_id, ...proofOf(request.body) }, clientInfo(request));
      return { message: 'User account deleted successfully' };
    },
  );

  app.get(
    '/me',
    {
      config: { errors: [], auth: 'user' },
      schema: { summary: "The token's user", tags: ['accounts'], response: { 200: Me } },
    },
    async (request) => {
      const auth = callerOf(request);
      return me(auth, auth.metadata);
    },
  );

  app.patch(
    '/me',
    {
      config: { errors: [], auth: 'user' },
      schema: {
        summary: "Set the token's user's own metadata",
        description:
          '`user_metadata` replaces the whole object: a JSON object of at most 4 KB, nested at most 5 deep, keys of 1 to 64 characters without ' +
          'control characters. Other services read it in `/me`, in introspection and (if the token hook adds it) in tokens.',
        tags: ['accounts'],
        body: Type.Object(
          { user_metadata: Type.Object({}, { additionalProperties: true }) },
          { examples: [{ user_metadata: { theme: 'dark', locale: 'en-GB' } }] },
        ),
        response: { 200: Me },
      },
    },
    async (request) => {
      const auth = callerOf(request);
      return me(auth, await accounts.setUserMetadata(auth, request.body.user_metadata));
    },
  );

  app.post(
    '/validate',
    {
      config: { errors: [...BODY_ERRORS], auth: 'user' },
      schema: {
        summary: "Check a token (the original service's endpoint)",
        tags: ['tokens'],
        response: {
          200: Type.Object({
            message: Type.String(),
            valid: Type.Literal(1),
            user: Type.Object({ user_id: Type.Integer(), username: Type.String() }),
          })
        },
      },
    },
    async (request) => {
      const { user } = callerOf(request);
      return { message: 'Token is valid', valid: 1 as const, user: { user_id: Number(user.id), username: user.username } };
    },
  );
};
