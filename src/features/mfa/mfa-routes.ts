import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import QRCode from 'qrcode';
import { Type } from 'typebox';
import type { SecondFactors } from './mfa.js';
import { ServiceError } from '../../kernel/errors.js';
import { asAuthentication, AuthenticationResponse } from '../passkeys/passkey-routes.js';
import { callerOf } from '../../kernel/http/authentication.js';
import { clientInfo, proofOf, signedIn } from '../../kernel/http/replies.js';
import { absentBodyIsEmpty, BODY_ERRORS, errorResponses, LIMIT_ERRORS, Message, OptionalText, SignedInBody, UuidId } from '../../kernel/http/schemas.js';

const FactorId = Type.String({ format: 'uuid' });
const Code = Type.String({ minLength: 1, maxLength: 32, description: 'The 6-digit code the authenticator app shows now' });
const RecoveryCodes = Type.Array(Type.String(), {
  description: 'Ten one-time codes for when the authenticator app is lost: shown this once, store them somewhere safe',
});

/** What a sensitive second-factor change may bring to prove the caller is the owner (see `Reauthentication`). */
const ProofFields = {
  current_password: OptionalText,
  code: OptionalText,
  recovery_code: OptionalText,
};


/** Enrolment and management of a user's own second factors, and the second step of a sign-in. */
export const mfaRoutes: FastifyPluginAsyncTypebox<{ secondFactors: SecondFactors; passkeysEnabled: boolean }> = async (
  app,
  { secondFactors, passkeysEnabled },
) => {
  if (passkeysEnabled) {
    app.post(
      '/login/mfa/passkey/options',
      {
        config: { missingFieldsMessage: 'mfa_token is required!' },
        schema: {
          summary: 'Second step with a passkey instead of a code: the options for navigator.credentials.get',
          description: "Lists the account's passkeys; send the authenticator's response as `passkey` to /api/auth/login/mfa.",
          tags: ['second factor'],
          body: Type.Object({ mfa_token: Type.String({ minLength: 1, maxLength: 256 }) }, { examples: [{ mfa_token: 'rP3v0n2vJ0d3cY5iVQk9x8b1m7Wq2LzHfT6sNaUoEgA' }] }),
          response: {
            200: Type.Object({ challenge: Type.String() }, { additionalProperties: true }),
            ...errorResponses(...BODY_ERRORS, 'mfa_token_expired', 'database_unavailable'),
          },
        },
      },
      async (request) => secondFactors.passkeyOptions(request.body.mfa_token),
    );
  }

  app.post(
    '/login/mfa',
    {
      config: { missingFieldsMessage: 'mfa_token and code (or recovery_code) are required!', countsAsLogin: true },
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
          ...errorResponses(...BODY_ERRORS, 'invalid_mfa_code', 'mfa_token_expired', 'invalid_credentials', ...LIMIT_ERRORS, 'database_unavailable'),
        },
      },
    },
    async (request) => {
      const { mfa_token, code, recovery_code, passkey, device_token } = request.body;
      if ([code, recovery_code, passkey].filter((proof) => proof !== undefined).length !== 1) {
        throw new ServiceError('invalid_request', 'Send one of code, recovery_code or passkey');
      }
      const result = await secondFactors.completeSignIn(
        { mfaToken: mfa_token, code, recoveryCode: recovery_code, passkey: passkey && asAuthentication(passkey), deviceToken: device_token },
        clientInfo(request),
      );
      return signedIn(request, 'Authenticated successfully', result);
    },
  );

  app.get(
    '/mfa',
    {
      config: { auth: 'user' },
      schema: {
        summary: "The account's second factors, and how many recovery codes are left",
        tags: ['second factor'],
        response: {
          200: Type.Object({
            factors: Type.Array(
              Type.Object({
                id: FactorId,
                type: Type.Literal('totp'),
                created_at: Type.String({ format: 'date-time' }),
                last_used_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
              }),
            ),
            recovery_codes_remaining: Type.Integer(),
          }),
          ...errorResponses('invalid_token', 'database_unavailable'),
        },
      },
    },
    async (request) => {
      const { factors, recoveryCodesRemaining } = await secondFactors.list(callerOf(request));
      return {
        factors: factors.map((f) => ({ id: f.id, type: f.type, created_at: f.createdAt.toISOString(), last_used_at: f.lastUsedAt?.toISOString() ?? null })),
        recovery_codes_remaining: recoveryCodesRemaining,
      };
    },
  );

  app.post(
    '/mfa/totp',
    {
      config: { auth: 'user' },
      preValidation: absentBodyIsEmpty,
      schema: {
        summary: 'Start adding an authenticator app (TOTP)',
        description:
          'Answers the secret, as text, as an `otpauth://` URI and as a QR code (SVG). Nothing changes until the first code is confirmed ' +
          'at `/api/auth/mfa/totp/{id}/verify`, within 15 minutes. A session older than REAUTH_WINDOW_SECONDS needs `current_password`.',
        tags: ['second factor'],
        body: Type.Object({ current_password: OptionalText }, { examples: [{}] }),
        response: {
          201: Type.Object({
            id: FactorId,
            type: Type.Literal('totp'),
            secret: Type.String({ description: 'Base32, for typing into the app by hand' }),
            uri: Type.String({ description: '`otpauth://totp/...`: what the QR code holds' }),
            qr_svg: Type.String({ description: 'The URI as a QR code, an SVG document' }),
            expires_at: Type.String({ format: 'date-time', description: 'When the unconfirmed enrolment is dropped' }),
          }),
          ...errorResponses(...BODY_ERRORS, 'invalid_token', 'invalid_credentials', 'reauthentication_required', 'mfa_already_enrolled',
            ...LIMIT_ERRORS, 'mfa_unavailable', 'database_unavailable'),
        },
      },
    },
    async (request, reply) => {
      const enrolment = await secondFactors.enrolTotp(callerOf(request), proofOf(request.body), clientInfo(request));
      const qr_svg = await QRCode.toString(enrolment.uri, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
      return reply.code(201).send({
        id: enrolment.id,
        type: enrolment.type,
        secret: enrolment.secret,
        uri: enrolment.uri,
        qr_svg,
        expires_at: enrolment.expiresAt.toISOString(),
      });
    },
  );

  app.post(
    '/mfa/totp/:id/verify',
    {
      config: { auth: 'user' },
      schema: {
        summary: 'Confirm an authenticator app with its first code',
        description:
          'From now on signing in needs a code. This session becomes a two-factor session (the access token in the answer says so); ' +
          'every other session of the account ends. The answer holds the recovery codes, shown this once.',
        tags: ['second factor'],
        params: Type.Object({ id: UuidId }),
        body: Type.Object({ code: Code }, { examples: [{ code: '123456' }] }),
        response: {
          200: Type.Object({
            message: Type.String(),
            recovery_codes: RecoveryCodes,
            access_token: Type.String(),
            token_type: Type.Literal('Bearer'),
            expires_in: Type.Integer(),
          }),
          ...errorResponses(...BODY_ERRORS, 'invalid_token', 'invalid_mfa_code', 'not_found', 'mfa_already_enrolled', ...LIMIT_ERRORS,
            'mfa_unavailable', 'database_unavailable'),
        },
      },
    },
    async (request) => {
      const result = await secondFactors.confirmTotp(callerOf(request), request.params.id, request.body.code, clientInfo(request));
      return {
        message: 'Two-factor sign-in is on',
        recovery_codes: result.recoveryCodes,
        access_token: result.accessToken,
        token_type: 'Bearer' as const,
        expires_in: result.expiresIn,
      };
    },
  );

  app.delete(
    '/mfa/totp/:id',
    {
      config: { auth: 'user' },
      preValidation: absentBodyIsEmpty,
      schema: {
        summary: 'Remove an authenticator app',
        description: 'Needs a two-factor session younger than REAUTH_WINDOW_SECONDS, or `current_password` with a `code` (or `recovery_code`).',
        tags: ['second factor'],
        params: Type.Object({ id: UuidId }),
        body: Type.Object(ProofFields, { examples: [{ current_password: 'correct horse battery staple', code: '123456' }] }),
        response: {
          200: Message,
          ...errorResponses(...BODY_ERRORS, 'invalid_token', 'invalid_credentials', 'invalid_mfa_code', 'reauthentication_required',
            'mfa_required', 'not_found', ...LIMIT_ERRORS, 'mfa_unavailable', 'database_unavailable'),
        },
      },
    },
    async (request) => {
      await secondFactors.remove(callerOf(request), request.params.id, proofOf(request.body), clientInfo(request));
      return { message: 'Authenticator app removed' };
    },
  );

  app.post(
    '/mfa/recovery-codes',
    {
      config: { auth: 'user' },
      preValidation: absentBodyIsEmpty,
      schema: {
        summary: 'Replace the recovery codes',
        description: 'The old codes stop working. Needs what removing a factor needs.',
        tags: ['second factor'],
        body: Type.Object(ProofFields, { examples: [{ current_password: 'correct horse battery staple', code: '123456' }] }),
        response: {
          200: Type.Object({ message: Type.String(), recovery_codes: RecoveryCodes }),
          ...errorResponses(...BODY_ERRORS, 'invalid_token', 'invalid_credentials', 'invalid_mfa_code', 'reauthentication_required',
            'mfa_required', 'not_found', ...LIMIT_ERRORS, 'mfa_unavailable', 'database_unavailable'),
        },
      },
    },
    async (request) => {
      const codes = await secondFactors.replaceRecoveryCodes(callerOf(request), proofOf(request.body), clientInfo(request));
      return { message: 'New recovery codes: the old ones no longer work', recovery_codes: codes };
    },
  );
};
