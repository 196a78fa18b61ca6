import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { AuthenticationResponseJSON, RegistrationResponseJSON } from '@simplewebauthn/server';
import { Type } from 'typebox';
import type { Accounts } from '../accounts/accounts.js';
import type { Passkeys, PasskeySummary } from './passkeys.js';
import { callerOf } from '../../kernel/http/authentication.js';
import { clientInfo, proofOf, secondFactorRequired, signedIn } from '../../kernel/http/replies.js';
import { absentBodyIsEmpty, BODY_ERRORS, errorResponses, LIMIT_ERRORS, Message, OptionalText, SecondFactorRequiredBody, SignedInBody, SingleLine, UuidId } from '../../kernel/http/schemas.js';

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
const Options = Type.Object(
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

/** Passkeys: a user's own (with a Bearer token), and signing in with one (no username typed). */
export const passkeyRoutes: FastifyPluginAsyncTypebox<{ passkeys: Passkeys; accounts: Accounts }> = async (app, { passkeys, accounts }) => {
  app.post(
    '/passkeys/register/options',
    {
      config: { auth: 'user' },
      preValidation: absentBodyIsEmpty,
      schema: {
        summary: 'Start adding a passkey: the options for navigator.credentials.create',
        description: 'A session older than REAUTH_WINDOW_SECONDS sends `current_password` (and `code` if the account has an authenticator app).',
        tags: ['passkeys'],
        body: Type.Object({ current_password: OptionalText, code: OptionalText, recovery_code: OptionalText }, { examples: [{}] }),
        response: {
          200: Options,
          ...errorResponses(...BODY_ERRORS, 'invalid_token', 'invalid_credentials', 'invalid_mfa_code', 'reauthentication_required', 'mfa_required',
            ...LIMIT_ERRORS, 'database_unavailable'),
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
      config: { auth: 'user' },
      schema: {
        summary: 'Add a passkey: the response of navigator.credentials.create',
        tags: ['passkeys'],
        body: Type.Object(
          { response: RegistrationResponse, name: Type.Optional(SingleLine({ maxLength: 64 })) },
          { examples: [{ name: 'My laptop', response: { id: 'AQID', rawId: 'AQID', type: 'public-key', response: { clientDataJSON: 'e30', attestationObject: 'oA' } } }] },
        ),
        response: {
          201: Type.Object({ passkey: PasskeyBody }),
          ...errorResponses(...BODY_ERRORS, 'invalid_token', 'invalid_passkey', 'passkey_exists', 'database_unavailable'),
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
      config: { auth: 'user' },
      schema: {
        summary: "The account's passkeys",
        tags: ['passkeys'],
        response: { 200: Type.Object({ passkeys: Type.Array(PasskeyBody) }), ...errorResponses('invalid_token', 'database_unavailable') },
      },
    },
    async (request) => ({ passkeys: (await passkeys.list(callerOf(request))).map(passkeyBody) }),
  );

  app.patch(
    '/passkeys/:id',
    {
      config: { auth: 'user' },
      schema: {
        summary: 'Rename a passkey',
        tags: ['passkeys'],
        params: PasskeyId,
        body: Type.Object({ name: SingleLine({ minLength: 1, maxLength: 64 }) }, { examples: [{ name: 'Work phone' }] }),
        response: { 200: Type.Object({ passkey: PasskeyBody }), ...errorResponses(...BODY_ERRORS, 'invalid_token', 'not_found', 'database_unavailable') },
      },
    },
    async (request) => ({ passkey: passkeyBody(await passkeys.rename(callerOf(request), request.params.id, request.body.name)) }),
  );

  app.delete(
    '/passkeys/:id',
    {
      config: { auth: 'user' },
      schema: {
        summary: 'Remove a passkey: it no longer signs in',
        tags: ['passkeys'],
        params: PasskeyId,
        response: { 200: Message, ...errorResponses('invalid_token', 'not_found', 'database_unavailable') },
      },
    },
    async (request) => {
      await passkeys.remove(callerOf(request), request.params.id);
      return { message: 'Passkey removed' };
    },
  );

  app.post(
    '/passkeys/login/options',
    {
      preValidation: absentBodyIsEmpty,
      schema: {
        summary: 'Start signing in with a passkey: the options for navigator.credentials.get',
        description: 'No username: the authenticator offers the passkeys it holds for this site. The challenge works once, for 5 minutes.',
        tags: ['passkeys'],
        body: Type.Object({}, { examples: [{}] }),
        response: { 200: Options, ...errorResponses(...BODY_ERRORS, ...LIMIT_ERRORS, 'database_unavailable') },
      },
    },
    async (request) => accounts.passkeyLoginOptions(clientInfo(request)),
  );

  app.post(
    '/passkeys/login',
    {
      config: { missingFieldsMessage: 'response is required!', countsAsLogin: true },
      schema: {
        summary: 'Sign in with a passkey: the response of navigator.credentials.get',
        description:
          'Answers what a password login answers. `amr` is `hwk` (a key bound to one authenticator) or `swk` (a synced one), with `user` and ' +
          '`aal` 2 when the authenticator verified the user. On an account with an authenticator app, a passkey that did not verify the user ' +
          'answers `mfa_required`, as a password does.',
        tags: ['passkeys'],
        body: Type.Object(
          { response: AuthenticationResponse, device_token: Type.Optional(Type.String({ maxLength: 256 })) },
          { examples: [{ response: { id: 'AQID', rawId: 'AQID', type: 'public-key', response: { clientDataJSON: 'e30', authenticatorData: 'AA', signature: 'AA' } } }] },
        ),
        response: {
          200: Type.Union([SignedInBody, SecondFactorRequiredBody]),
          ...errorResponses(...BODY_ERRORS, 'invalid_passkey', ...LIMIT_ERRORS, 'database_unavailable'),
        },
      },
    },
    async (request) => {
      const result = await accounts.loginWithPasskey(asAuthentication(request.body.response), request.body.device_token, clientInfo(request));
      if ('mfaToken' in result) return secondFactorRequired(request, 'Passkey accepted', result);
      return signedIn(request, 'Authenticated successfully', result);
    },
  );
};
