import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { ServiceError } from '../../kernel/errors.js';
import { clientInfo, signedIn } from '../../kernel/http/replies.js';
import { absentBodyIsEmpty, BODY_ERRORS, errorResponses, LIMIT_ERRORS, SecondFactorRequiredBody, SignedInBody, EXAMPLE_PASSWORD, EXAMPLE_USERNAME } from '../../kernel/http/schemas.js';
import { Code } from '../mfa/mfa-routes.js';
import { asAuthentication, AuthenticationResponse, PasskeyOptions } from '../passkeys/passkey-routes.js';
import type { SecondFactorRequired, SignIn } from './sign-in.js';
import { defineAuditEvents, type EventsOf } from '../audit/audit.js';
import { onSuccess, signInAttempt } from '../audit/audit-hook.js';

export const SIGN_IN_EVENTS = defineAuditEvents({
  account_recovered: "The owner redeemed an operator's account recovery code: a new password, every other session ended.",
});

declare module '../audit/audit.js' {
  interface AuditEvents extends EventsOf<typeof SIGN_IN_EVENTS> {}
}

const Required = Type.String({ minLength: 1 });

/**
 * The answer of a first step that proved enough for the account's password but not its second factor: no token,
 * only what the second step at /api/auth/login/mfa needs. Counted in auth_logins_total as `mfa_required`.
 */
export function secondFactorRequired(request: FastifyRequest, accepted: string, result: SecondFactorRequired) {
  request.awaitsSecondFactor = true;
  return {
    message: `${accepted}: send a code from your authenticator app to /api/auth/login/mfa`,
    mfa_required: true as const,
    mfa_token: result.mfaToken,
    factors: result.factors,
  };
}

/**
 * Signing in: with a password, a passkey or an operator's account recovery code, then the second step of an
 * account with a second factor.
 */
export const signInRoutes: FastifyPluginAsyncTypebox<{ signIn: SignIn; passkeysEnabled: boolean }> = async (app, { signIn, passkeysEnabled }) => {
  app.post(
    '/login',
    {
      config: { audit: signInAttempt('password'), errors: ['invalid_credentials', ...LIMIT_ERRORS, 'overloaded', 'hook_unavailable'], missingFieldsMessage: 'Username and password are required!', countsAsLogin: true, hashesPassword: true },
      schema: {
        summary: 'Sign in with username and password',
        tags: ['accounts'],
        body: Type.Object(
          {
            username: Required,
            password: Required,
            device_token: Type.Optional(Type.String({ maxLength: 256, description: 'The `device_token` of an earlier sign-in on this device' })),
          },
          { examples: [{ username: EXAMPLE_USERNAME, password: EXAMPLE_PASSWORD }] },
        ),
        description:
          'On an account with a second factor, the right password answers `mfa_required` and an `mfa_token` instead of tokens: ' +
          'send it with a code to /api/auth/login/mfa. A wrong password answers the same either way.',
        response: {
          200: Type.Union([SignedInBody, SecondFactorRequiredBody]),
        },
      },
    },
    async (request) => {
      const { username, password, device_token } = request.body;
      const result = await signIn.login({ username, password, deviceToken: device_token }, clientInfo(request));
      if ('mfaToken' in result) return secondFactorRequired(request, 'Password accepted', result);
      return signedIn(request, 'Authenticated successfully', result);
    },
  );

  app.post(
    '/recover',
    {
      config: { audit: onSuccess(200, 'account_recovered'), errors: ['invalid_password', 'weak_password', 'password_mismatch', 'invalid_recovery_code', 'account_locked', ...LIMIT_ERRORS, 'overloaded', 'hook_unavailable'], missingFieldsMessage: 'Username, code and new passwords are required!', hashesPassword: true },
      schema: {
        summary: "Set a new password with an operator's recovery code, and sign in",
        description:
          'The code comes from an operator (POST /admin/users/{id}/recovery-code). Every session of the account ends and its sign-in counters ' +
          'clear; the answer is a sign-in. A wrong code and a name nobody has answer alike, and count as failed logins.',
        tags: ['accounts'],
        body: Type.Object(
          { username: Required, code: Type.String({ minLength: 1, maxLength: 128 }), new_password: Required, new_password_confirm: Required },
          { examples: [{ username: EXAMPLE_USERNAME, code: 'Zx3vQ0mJk2V9rT7wYcLpNw', new_password: EXAMPLE_PASSWORD, new_password_confirm: EXAMPLE_PASSWORD }] },
        ),
        response: {
          200: SignedInBody,
        },
      },
    },
    async (request) => {
      const { username, code, new_password, new_password_confirm } = request.body;
      const result = await signIn.recover({ username, code, newPassword: new_password, newPasswordConfirm: new_password_confirm }, clientInfo(request));
      return signedIn(request, 'Password replaced: signed in', result);
    },
  );

  if (passkeysEnabled) {
    app.post(
      '/login/mfa/passkey/options',
      {
        config: { errors: ['mfa_token_expired', ...LIMIT_ERRORS], missingFieldsMessage: 'mfa_token is required!' },
        schema: {
          summary: 'Second step with a passkey instead of a code: the options for navigator.credentials.get',
          description: "Lists the account's passkeys; send the authenticator's response as `passkey` to /api/auth/login/mfa.",
          tags: ['second factor'],
          body: Type.Object({ mfa_token: Type.String({ minLength: 1, maxLength: 256 }) }, { examples: [{ mfa_token: 'rP3v0n2vJ0d3cY5iVQk9x8b1m7Wq2LzHfT6sNaUoEgA' }] }),
          response: {
            200: Type.Object({ challenge: Type.String() }, { additionalProperties: true }),
          },
        },
      },
      async (request) => signIn.secondStepPasskeyOptions(request.body.mfa_token, clientInfo(request)),
    );
  }


  app.post(
    '/login/mfa',
    {
      config: { audit: signInAttempt('mfa'), errors: ['invalid_mfa_code', 'mfa_token_expired', 'invalid_credentials', ...LIMIT_ERRORS, 'hook_unavailable'], missingFieldsMessage: 'mfa_token and code (or recovery_code) are required!', countsAsLogin: true },
      schema: {
        summary: 'Second step of a sign-in: the mfa_token and a code open the session',
        description:
          'Send `code` (from the authenticator app), `recovery_code`, or `passkey` (the response to the options of /api/auth/login/mfa/passkey/options). ' +
          'Answers exactly what a login without a second factor answers.',
        tags: ['second factor'],
        body: Type.Object(
          {
            mfa_token: Type.String({ minLength: 1, maxLength: 256 }),
            code: Type.Optional(Code),
            recovery_code: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
            passkey: Type.Optional(AuthenticationResponse),
            device_token: Type.Optional(Type.String({ maxLength: 256 })),
          },
          { examples: [{ mfa_token: 'rP3v0n2vJ0d3cY5iVQk9x8b1m7Wq2LzHfT6sNaUoEgA', code: '123456' }] },
        ),
        response: {
          200: SignedInBody,
        },
      },
    },
    async (request) => {
      const { mfa_token, code, recovery_code, passkey, device_token } = request.body;
      if ([code, recovery_code, passkey].filter((proof) => proof !== undefined).length !== 1) {
        throw new ServiceError('invalid_request', 'Send one of code, recovery_code or passkey');
      }
      const result = await signIn.completeSecondStep(
        { mfaToken: mfa_token, code, recoveryCode: recovery_code, passkey: passkey && asAuthentication(passkey), deviceToken: device_token },
        clientInfo(request),
      );
      return signedIn(request, 'Authenticated successfully', result);
    },
  );

  if (passkeysEnabled) {
    app.post(
      '/passkeys/login/options',
      {
        preValidation: absentBodyIsEmpty,
        config: { errors: [...LIMIT_ERRORS] },
        schema: {
          summary: 'Start signing in with a passkey: the options for navigator.credentials.get',
          description: 'No username: the authenticator offers the passkeys it holds for this site. The challenge works once, for 5 minutes.',
          tags: ['passkeys'],
          body: Type.Object({}, { examples: [{}] }),
          response: { 200: PasskeyOptions },
        },
      },
      async (request) => signIn.passkeyLoginOptions(clientInfo(request)),
    );

    app.post(
      '/passkeys/login',
      {
        config: { audit: signInAttempt('passkey'), errors: ['invalid_passkey', ...LIMIT_ERRORS, 'hook_unavailable'], missingFieldsMessage: 'response is required!', countsAsLogin: true },
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
          },
        },
      },
      async (request) => {
        const result = await signIn.loginWithPasskey(asAuthentication(request.body.response), request.body.device_token, clientInfo(request));
        if ('mfaToken' in result) return secondFactorRequired(request, 'Passkey accepted', result);
        return signedIn(request, 'Authenticated successfully', result);
      },
    );
  }
};
