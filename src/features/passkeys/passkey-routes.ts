import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { AuthenticationResponseJSON, RegistrationResponseJSON } from '@simplewebauthn/server';
import { Type } from 'typebox';
import type { Passkeys, PasskeySummary } from './passkeys.js';
import { callerOf } from '../../kernel/http/authentication.js';
import { clientInfo } from '../../kernel/http/replies.js';
import { proofOf, ProofFields } from '../mfa/proof-fields.js';
import { absentBodyIsEmpty, BODY_ERRORS, errorResponses, LIMIT_ERRORS, Message, SingleLine, UuidId } from '../../kernel/http/schemas.js';
import { defineAuditEvents, type EventsOf } from '../audit/audit.js';
import { onSuccess } from '../audit/audit-hook.js';

export const PASSKEY_EVENTS = defineAuditEvents({
  passkey_added: 'A passkey was added to the account.',
  passkey_removed: 'A passkey was removed (`passkey_id`), by its owner or an operator.',
});

declare module '../audit/audit.js' {
  interface AuditEvents extends EventsOf<typeof PASSKEY_EVENTS> {}
}

const Base64Url = (maxLength: number) => Type.String({ minLength: 1, maxLength, pattern: '^[A-Za-z0-9_-]+={0,2}$' });

/** What `startRegistration()` of @simplewebauthn/browser (or navigator.credentials.create, as JSON) gives. */
export const RegistrationResponse = Type.Object(
  {
    id: Base64Url(1024),
    rawId: Base64Url(1024),
    type: Type.Literal('public-key'),
    response: Type.Object({
      clientDataJSON: Base64Url(4096),
      attestationObject: Base64Url(8192),
      transports: Type.Optional(Type.Array(SingleLine({ maxLength: 32 }), { maxItems: 10 })),
    }),
    clientExtensionResults: Type.Optional(Type.Object({})),
    authenticatorAttachment: Type.Optional(SingleLine({ maxLength: 32 })),
  },
  { description: 'The PublicKeyCredential of the registration, as JSON (what @simplewebauthn/browser\'s startRegistration returns)' },
);

/** What `startAuthentication()` gives. */
export const AuthenticationResponse = Type.Object(
  {
    id: Base64Url(1024),
    rawId: Base64Url(1024),
    type: Type.Literal('public-key'),
    response: Type.Object({
      clientDataJSON: Base64Url(4096),
      authenticatorData: Base64Url(4096),
      signature: Base64Url(1024),
      userHandle: Type.Optional(SingleLine({ maxLength: 1024 })),
    }),
    clientExtensionResults: Type.Optional(Type.Object({})),
    authenticatorAttachment: Type.Optional(SingleLine({ maxLength: 32 })),
  },
  { description: 'The PublicKeyCredential of the sign-in, as JSON (what @simplewebauthn/browser\'s startAuthentication returns)' },
);

export function asRegistration(response: unknown): RegistrationResponseJSON {
  return { clientExtensionResults: {}, ...(response as object) } as RegistrationResponseJSON;
}

export function asAuthentication(response: unknown): AuthenticationResponseJSON {
  return { clientExtensionResults: {}, ...(response as object) } as AuthenticationResponseJSON;
}

/** WebAuthn options for the browser: passed as they are to startRegistration / startAuthentication. */
export const PasskeyOptions = Type.Object(
  { challenge: Type.String() },
  { additionalProperties: true, description: 'PublicKeyCredentialCreationOptionsJSON or PublicKeyCredentialRequestOptionsJSON: give it to the browser as it is' },
);

export const PasskeyBody = Type.Object({
  id: Type.String({ format: 'uuid' }),
  name: Type.String(),
  device_type: Type.String({ description: '`singleDevice` (bound to one authenticator) or `multiDevice` (synced)' }),
  backed_up: Type.Boolean(),
  transports: Type.Array(Type.String()),
  created_at: Type.String({ format: 'date-time' }),
  last_used_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
});

export function passkeyBody(p: PasskeySummary) {
  return {
    id: p.id,
    name: p.name,
    device_type: p.deviceType,
    backed_up: p.backedUp,
    transports: p.transports,
    created_at: p.createdAt.toISOString(),
    last_used_at: p.lastUsedAt?.toISOString() ?? null,
  };
}

const PasskeyId = Type.Object({ id: UuidId });

/** A user's own passkeys (with a Bearer token); signing in with one is the sign-in feature's. */
export const passkeyRoutes: FastifyPluginAsyncTypebox<{ passkeys: Passkeys }> = async (app, { passkeys }) => {
  app.post(
    '/passkeys/register/options',
    {
      config: { errors: ['invalid_credentials', 'invalid_mfa_code', 'reauthentication_required', 'mfa_required', ...LIMIT_ERRORS], auth: 'user' },
      preValidation: absentBodyIsEmpty,
      schema: {
        summary: 'Start adding a passkey: the options for navigator.credentials.create',
        description: 'A session older than REAUTH_WINDOW_SECONDS sends `current_password` (and `code` if the account has an authenticator app).',
        tags: ['passkeys'],
        body: Type.Object(ProofFields, { examples: [{}] }),
        response: {
          200: PasskeyOptions,
        },
      },
    },
    async (request) => {
      return passkeys.registrationOptions(callerOf(request), proofOf(request.body), clientInfo(request));
    },
  );

  app.post(
    '/passkeys/register',
    {
      config: { audit: onSuccess(201, 'passkey_added'), errors: ['invalid_passkey', 'passkey_exists'], auth: 'user' },
      schema: {
        summary: 'Add a passkey: the response of navigator.credentials.create',
        tags: ['passkeys'],
        body: Type.Object(
          { response: RegistrationResponse, name: Type.Optional(SingleLine({ maxLength: 64 })) },
          { examples: [{ name: 'My laptop', response: { id: 'AQID', rawId: 'AQID', type: 'public-key', response: { clientDataJSON: 'e30', attestationObject: 'oA' } } }] },
        ),
        response: {
          201: Type.Object({ passkey: PasskeyBody }),
        },
      },
    },
    async (request, reply) => {
      const passkey = await passkeys.register(callerOf(request), asRegistration(request.body.response), request.body.name);
      return reply.code(201).send({ passkey: passkeyBody(passkey) });
    },
  );

  app.get(
    '/passkeys',
    {
      config: { errors: [], auth: 'user' },
      schema: {
        summary: "The account's passkeys",
        tags: ['passkeys'],
        response: { 200: Type.Object({ passkeys: Type.Array(PasskeyBody) }) },
      },
    },
    async (request) => ({ passkeys: (await passkeys.list(callerOf(request))).map(passkeyBody) }),
  );

  app.patch(
    '/passkeys/:id',
    {
      config: { errors: ['not_found'], auth: 'user' },
      schema: {
        summary: 'Rename a passkey',
        tags: ['passkeys'],
        params: PasskeyId,
        body: Type.Object({ name: SingleLine({ minLength: 1, maxLength: 64 }) }, { examples: [{ name: 'Work phone' }] }),
        response: { 200: Type.Object({ passkey: PasskeyBody }) },
      },
    },
    async (request) => ({ passkey: passkeyBody(await passkeys.rename(callerOf(request), request.params.id, request.body.name)) }),
  );

  app.delete(
    '/passkeys/:id',
    {
      config: { audit: onSuccess(200, 'passkey_removed', (o) => ({ passkey_id: o.params['id'] })), errors: ['invalid_credentials', 'invalid_mfa_code', 'reauthentication_required', 'mfa_required', 'not_found', ...LIMIT_ERRORS], auth: 'user' },
      preValidation: absentBodyIsEmpty,
      schema: {
        summary: 'Remove a passkey: it no longer signs in',
        description:
          'Needs what removing any factor needs: on an account with an authenticator app, a two-factor session younger than ' +
          'REAUTH_WINDOW_SECONDS, or `current_password` with a `code` (or `recovery_code`); otherwise a session younger than ' +
          'REAUTH_WINDOW_SECONDS, or `current_password`.',
        tags: ['passkeys'],
        params: PasskeyId,
        body: Type.Object(ProofFields, { examples: [{}] }),
        response: {
          200: Message,
        },
      },
    },
    async (request) => {
      await passkeys.remove(callerOf(request), request.params.id, proofOf(request.body), clientInfo(request));
      return { message: 'Passkey removed' };
    },
  );


};
