import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { MAX_ROLES, ROLE_PATTERN } from './roles.js';
import { MAX_PAGE, type AdminUserDetail, type AdminUserRow, type Administration } from './admin-accounts.js';
import type { Audit } from '../audit/audit.js';
import type { Passkeys } from '../passkeys/passkeys.js';
import { PasskeyBody, passkeyBody } from '../passkeys/passkey-routes.js';
import { adminAction } from '../audit/audit-hook.js';
import type { AdminKey, AdminKeys } from './admin-keys.js';
import { absentBodyIsEmpty, BODY_ERRORS, EmailFields, errorResponses, EXAMPLE_PASSWORD, EXAMPLE_USERNAME, Instant, LIMIT_ERRORS, NewUsername, NumericId, SingleLine, Text, UuidId } from '../../kernel/http/schemas.js';
import { emailFields } from '../../kernel/http/replies.js';
import { EMAIL_MAX_LENGTH } from '../../kernel/email-addresses.js';

const UserIdParam = Type.Object({ id: NumericId });
const Roles = Type.Array(Type.String({ pattern: ROLE_PATTERN }), { maxItems: MAX_ROLES, description: 'Short names, e.g. `admin`, `billing:read`' });
const Lock = Type.Union([
  Type.Null(),
  Type.Object({
    reason: Type.Union([Type.String(), Type.Null()]),
    since: Type.String({ format: 'date-time' }),
    until: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  }),
]);

const AdminUser = Type.Object({
  id: Type.Integer(),
  username: Type.String(),
  roles: Roles,
  created_at: Type.String({ format: 'date-time' }),
  updated_at: Type.String({ format: 'date-time' }),
  lock: Lock,
  ...EmailFields,
});

const Metadata = (description: string) => Type.Object({}, { additionalProperties: true, description });

const AdminUserDetailBody = Type.Object({
  ...AdminUser.properties,
  user_metadata: Metadata("The user's own (PATCH /api/auth/me)"),
  app_metadata: Metadata('Set by operators (PATCH /admin/users/{id})'),
  last_login_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  live_sessions: Type.Integer(),
  factors: Type.Array(Type.Object({ id: Type.String(), type: Type.String() })),
  passkeys: Type.Integer(),
});

function adminUser(row: AdminUserRow) {
  return {
    id: Number(row.user.id),
    username: row.user.username,
    roles: row.user.roles,
    created_at: row.user.createdAt.toISOString(),
    updated_at: row.user.updatedAt.toISOString(),
    lock: row.locked ? { reason: row.lockReason, since: row.lockedAt!.toISOString(), until: row.lockedUntil?.toISOString() ?? null } : null,
    ...emailFields(row.user),
  };
}

function adminUserDetail(detail: AdminUserDetail) {
  return {
    ...adminUser(detail),
    user_metadata: detail.userMetadata,
    app_metadata: detail.appMetadata,
    last_login_at: detail.lastLoginAt?.toISOString() ?? null,
    live_sessions: detail.liveSessions,
    factors: detail.factors,
    passkeys: detail.passkeys,
  };
}

const ADMIN = { auth: 'admin' } as const;
// 1 to 200, as a query string carries it.
const PAGE_SIZE = '^(200|1[0-9]{2}|[1-9][0-9]?)$';

/**
 * The admin API: operators' work on accounts, each request with an admin key and each action in the audit
 * trail with the key's name as actor. Served under /admin, on ADMIN_PORT alone when it is set.
 */
export const adminRoutes: FastifyPluginAsyncTypebox<{
  administration: Administration;
  adminKeys: AdminKeys;
  audit: Audit;
  passkeys: Passkeys | undefined;
}> = async (app, { administration, adminKeys, audit, passkeys }) => {
  app.addHook('onSend', async (_request, reply) => {
    reply.header('cache-control', 'no-store');
  });

  app.get(
    '/users',
    {
      config: { ...ADMIN, errors: ['invalid_request', 'invalid_email'] },
      schema: {
        summary: 'Search users by username prefix or by email address, in pages',
        description:
          '`after` is the `next` of the page before (the last id): pages stay put while users are added. At most 200 a page. ' +
          '`email` finds the accounts with this address, proven or pending, whatever its case.',
        tags: ['administration'],
        querystring: Type.Object({
          query: Type.Optional(SingleLine({ maxLength: 64 })),
          email: Type.Optional(SingleLine({ maxLength: EMAIL_MAX_LENGTH + 16 })),
          after: Type.Optional(NumericId),
          limit: Type.Optional(Type.String({ pattern: PAGE_SIZE, description: '1 to 200' })),
        }),
        response: {
          200: Type.Object({ users: Type.Array(AdminUser), next: Type.Union([Type.String(), Type.Null()]) }),
        },
      },
    },
    async (request) => {
      const { query = '', email, after, limit } = request.query;
      const page = await administration.search(query, after, Math.min(Number(limit ?? 50), MAX_PAGE), email);
      return { users: page.users.map(adminUser), next: page.next ?? null };
    },
  );

  app.get(
    '/users/:id',
    {
      config: { ...ADMIN, errors: ['invalid_request', 'not_found'] },
      schema: {
        summary: 'One user: roles, lock, last login, live sessions, second factors, passkeys',
        tags: ['administration'],
        params: UserIdParam,
        response: { 200: AdminUserDetailBody },
      },
    },
    async (request) => adminUserDetail(await administration.get(request.params.id)),
  );

  app.post(
    '/users',
    {
      config: { ...ADMIN, audit: adminAction('user_created', 201), errors: ['invalid_username', 'invalid_password', 'weak_password', 'username_taken', 'overloaded'] },
      schema: {
        summary: 'Create a user, with a password or without (then it signs in after a recovery code)',
        tags: ['administration'],
        body: Type.Object(
          { username: NewUsername, password: Type.Optional(Type.String({ minLength: 1 })) },
          { examples: [{ username: EXAMPLE_USERNAME, password: EXAMPLE_PASSWORD }] },
        ),
        response: {
          201: AdminUserDetailBody,
        },
      },
    },
    async (request, reply) => {
      const created = await administration.create(request.body.username, request.body.password);
      request.userId = created.user.id;
      request.auditDetails = { password: request.body.password !== undefined };
      return reply.code(201).send(adminUserDetail(created));
    },
  );

  app.patch(
    '/users/:id',
    {
      config: { ...ADMIN, audit: adminAction('user_updated'), errors: ['invalid_username', 'username_taken', 'not_found', 'invalid_email', 'email_taken'] },
      schema: {
        summary: 'Rename, set roles or app_metadata, lock or unlock, set or remove the email address',
        description:
          'A lock (`{"locked": true, "reason": "...", "until": "<optional time>"}`) ends every session at once; signing in then answers ' +
          '`403 account_locked`, but only to the right password. Roles reach access tokens at their next refresh. `app_metadata` replaces ' +
          'the whole object: a JSON object of at most 4 KB, nested at most 5 deep, keys of 1 to 64 characters without control characters. ' +
          '`email` sets the address (`null` removes it), pending and sent a verification link unless `email_verified` is true; ' +
          '`email_verified` alone proves or unproves the current one. A proven address that another account has proven answers `409 email_taken`.',
        tags: ['administration'],
        params: UserIdParam,
        body: Type.Object(
          {
            username: Type.Optional(NewUsername),
            roles: Type.Optional(Roles),
            locked: Type.Optional(Type.Boolean()),
            reason: Type.Optional(Text({ maxLength: 500 })),
            until: Type.Optional(Instant()),
            app_metadata: Type.Optional(Type.Object({}, { additionalProperties: true })),
            email: Type.Optional(Type.Union([SingleLine({ maxLength: EMAIL_MAX_LENGTH + 16 }), Type.Null()])),
            email_verified: Type.Optional(Type.Boolean()),
          },
          { examples: [{ roles: ['support'], app_metadata: { plan: 'pro' } }] },
        ),
        response: {
          200: Type.Object({ ...AdminUserDetailBody.properties, sessions_ended: Type.Integer() }),
        },
      },
    },
    async (request) => {
      const { username, roles, locked, reason, until, app_metadata, email, email_verified } = request.body;
      const { detail, endedSessions } = await administration.update(request.params.id, {
        username,
        roles,
        lock: locked === undefined ? undefined : { locked, reason, until: until === undefined ? undefined : new Date(until) },
        appMetadata: app_metadata,
        email,
        emailVerified: email_verified,
      });
      const changes = [
        username !== undefined && 'username',
        roles !== undefined && 'roles',
        app_metadata !== undefined && 'app_metadata',
        locked === true && 'locked',
        locked === false && 'unlocked',
        email !== undefined && 'email',
        email_verified !== undefined && 'email_verified',
      ].filter(Boolean);
      request.auditDetails = { changes: changes.join(','), sessions_ended: endedSessions };
      return { ...adminUserDetail(detail), sessions_ended: endedSessions };
    },
  );

  app.delete(
    '/users/:id',
    {
      config: { ...ADMIN, audit: adminAction('user_deleted'), errors: ['invalid_request', 'not_found'] },
      schema: {
        summary: 'Delete a user, its sessions, factors and passkeys',
        tags: ['administration'],
        params: UserIdParam,
        response: { 200: Type.Object({ message: Type.String() }) },
      },
    },
    async (request) => {
      await administration.delete(request.params.id);
      return { message: 'User deleted' };
    },
  );

  app.post(
    '/users/:id/logout',
    {
      config: { ...ADMIN, audit: adminAction('sessions_ended'), errors: ['invalid_request', 'not_found'] },
      preValidation: absentBodyIsEmpty,
      schema: {
        summary: 'End every session of a user',
        tags: ['administration'],
        params: UserIdParam,
        response: { 200: Type.Object({ sessions_ended: Type.Integer() }) },
      },
    },
    async (request) => {
      const ended = await administration.logout(request.params.id);
      request.auditDetails = { sessions_ended: ended };
      return { sessions_ended: ended };
    },
  );

  app.delete(
    '/users/:id/limits',
    {
      config: { ...ADMIN, audit: adminAction('limits_cleared'), errors: ['invalid_request', 'not_found'] },
      schema: {
        summary: "Clear an account's brute-force counters (an owner held out by someone else's guesses)",
        tags: ['administration'],
        params: UserIdParam,
        response: { 200: Type.Object({ message: Type.String() }) },
      },
    },
    async (request) => {
      await administration.clearLimits(request.params.id);
      return { message: "The account's sign-in counters are cleared" };
    },
  );

  app.post(
    '/users/:id/recovery-code',
    {
      config: { ...ADMIN, audit: adminAction('recovery_code_issued', 201), errors: ['invalid_request', 'not_found'] },
      preValidation: absentBodyIsEmpty,
      schema: {
        summary: 'A one-time recovery code for the user to set a new password with (POST /api/auth/recover)',
        description: 'Shown once; a new one replaces the old; valid RECOVERY_CODE_TTL_SECONDS. Hand it to the user over a channel you trust.',
        tags: ['administration'],
        params: UserIdParam,
        response: {
          201: Type.Object({ code: Type.String(), expires_at: Type.String({ format: 'date-time' }) }),
        },
      },
    },
    async (request, reply) => {
      const { code, expiresAt } = await administration.issueRecoveryCode(request.params.id);
      return reply.code(201).send({ code, expires_at: expiresAt.toISOString() });
    },
  );

  if (passkeys) {
    app.get(
      '/users/:id/passkeys',
      {
        config: { ...ADMIN, errors: ['invalid_request', 'not_found'] },
        schema: {
          summary: "A user's passkeys",
          tags: ['administration'],
          params: UserIdParam,
          response: { 200: Type.Object({ passkeys: Type.Array(PasskeyBody) }) },
        },
      },
      async (request) => {
        await administration.get(request.params.id);
        return { passkeys: (await passkeys.listOf(request.params.id)).map(passkeyBody) };
      },
    );

    app.delete(
      '/users/:id/passkeys/:passkeyId',
      {
        config: { ...ADMIN, audit: adminAction('passkey_removed'), errors: ['invalid_request', 'not_found'] },
        schema: {
          summary: "Remove one of a user's passkeys (a lost or stolen authenticator)",
          tags: ['administration'],
          params: Type.Object({ ...UserIdParam.properties, passkeyId: UuidId }),
          response: { 200: Type.Object({ message: Type.String() }) },
        },
      },
      async (request) => {
        await passkeys.removeOf(request.params.id, request.params.passkeyId);
        request.auditDetails = { passkey_id: request.params.passkeyId };
        return { message: 'Passkey removed' };
      },
    );
  }

  const AdminKeyBody = Type.Object({
    name: Type.String(),
    created_at: Type.String({ format: 'date-time' }),
    last_used_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    revoked_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  });
  const adminKeyBody = (k: AdminKey) => ({
    name: k.name,
    created_at: k.createdAt.toISOString(),
    last_used_at: k.lastUsedAt?.toISOString() ?? null,
    revoked_at: k.revokedAt?.toISOString() ?? null,
  });
  const KeyName = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$', description: '1 to 64 letters, digits, ".", "_" or "-"' });

  app.post(
    '/keys',
    {
      config: { ...ADMIN, audit: adminAction('admin_key_created', 201), errors: [] },
      schema: {
        summary: 'Create an admin key: shown this once',
        description:
          'What `user-auth admin-keys:create` does, without a shell on the server: with ADMIN_BOOTSTRAP_KEY, the first key is made ' +
          'over HTTP, and the bootstrap key stops working.',
        tags: ['administration'],
        body: Type.Object({ name: KeyName }, { examples: [{ name: 'ops' }] }),
        response: { 201: Type.Object({ key: Type.String({ description: 'uas_admin_…: store it now, it is not shown again' }), admin_key: AdminKeyBody }) },
      },
    },
    async (request, reply) => {
      const { key, adminKey } = await adminKeys.create(request.body.name);
      request.auditDetails = { name: adminKey.name };
      return reply.code(201).send({ key, admin_key: adminKeyBody(adminKey) });
    },
  );

  app.get(
    '/keys',
    {
      config: { ...ADMIN, errors: [] },
      schema: { summary: 'The admin keys: names and use, never the keys', tags: ['administration'], response: { 200: Type.Object({ keys: Type.Array(AdminKeyBody) }) } },
    },
    async () => ({ keys: (await adminKeys.list()).map(adminKeyBody) }),
  );

  app.delete(
    '/keys/:name',
    {
      config: { ...ADMIN, audit: adminAction('admin_key_revoked'), errors: ['invalid_request', 'not_found'] },
      schema: { summary: 'Revoke an admin key', tags: ['administration'], params: Type.Object({ name: KeyName }), response: { 200: Type.Object({ message: Type.String() }) } },
    },
    async (request) => {
      await adminKeys.revoke(request.params.name);
      request.auditDetails = { name: request.params.name };
      return { message: 'Admin key revoked' };
    },
  );

  app.get(
    '/audit',
    {
      config: { ...ADMIN, errors: ['invalid_request'] },
      schema: {
        summary: 'The audit trail: security events, newest first, in pages',
        tags: ['administration'],
        querystring: Type.Object({
          user_id: Type.Optional(NumericId),
          type: Type.Optional(SingleLine({ maxLength: 64 })),
          after: Type.Optional(SingleLine({ maxLength: 200 })),
          limit: Type.Optional(Type.String({ pattern: PAGE_SIZE, description: '1 to 200' })),
        }),
        response: {
          200: Type.Object({
            events: Type.Array(
              Type.Object({
                id: Type.String(),
                time: Type.String({ format: 'date-time' }),
                type: Type.String(),
                user_id: Type.Union([Type.Integer(), Type.Null()]),
                actor: Type.String(),
                ip: Type.Union([Type.String(), Type.Null()]),
                user_agent: Type.Union([Type.String(), Type.Null()]),
                request_id: Type.Union([Type.String(), Type.Null()]),
                details: Type.Object({}, { additionalProperties: true }),
              }),
            ),
            next: Type.Union([Type.String(), Type.Null()]),
          })
        },
      },
    },
    async (request) => {
      const { user_id, type, after, limit } = request.query;
      const page = await audit.search({ userId: user_id, type, after, limit: limit === undefined ? undefined : Number(limit) });
      return {
        events: page.events.map((e) => ({
          id: String(e.id),
          time: e.time.toISOString(),
          type: e.type,
          user_id: e.userId === null || e.userId === undefined ? null : Number(e.userId),
          actor: e.actor,
          ip: e.ip ?? null,
          user_agent: e.userAgent ?? null,
          request_id: e.requestId ?? null,
          details: e.details ?? {},
        })),
        next: page.next ?? null,
      };
    },
  );
};
