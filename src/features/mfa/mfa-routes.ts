import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { SecondFactors } from './mfa.js';
import { callerOf } from '../../kernel/http/authentication.js';
import { clientInfo } from '../../kernel/http/replies.js';
import { proofOf, ProofFields } from './proof-fields.js';
import { absentBodyIsEmpty, BODY_ERRORS, errorResponses, LIMIT_ERRORS, Message, OptionalText, EXAMPLE_PASSWORD, UuidId } from '../../kernel/http/schemas.js';
import { defineAuditEvents, type EventsOf } from '../audit/audit.js';
import { onSuccess } from '../audit/audit-hook.js';
import { qrCodeSvg } from './qr-code.js';

export const MFA_EVENTS = defineAuditEvents({
  mfa_enrolled: 'An authenticator app was confirmed: signing in now needs its code (`factor_id`).',
  mfa_removed: 'An authenticator app was removed (`factor_id`).',
  recovery_codes_replaced: 'New recovery codes replaced the old ones.',
});

declare module '../audit/audit.js' {
  interface AuditEvents extends EventsOf<typeof MFA_EVENTS> {}
}

const FactorId = Type.String({ format: 'uuid' });
export const Code = Type.String({ minLength: 1, maxLength: 32, description: 'The 6-digit code the authenticator app shows now' });
const RecoveryCodes = Type.Array(Type.String(), {
  description: 'Ten one-time codes for when the authenticator app is lost: shown this once, store them somewhere safe',
});


/** Enrolment and management of a user's own second factors; the second step of a sign-in is the sign-in feature's. */
export const mfaRoutes: FastifyPluginAsyncTypebox<{ secondFactors: SecondFactors }> = async (app, { secondFactors }) => {

  app.get(
    '/mfa',
    {
      config: { errors: [], auth: 'user' },
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
          })
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
      config: { errors: ['invalid_credentials', 'reauthentication_required', 'mfa_already_enrolled', ...LIMIT_ERRORS, 'mfa_unavailable'], auth: 'user' },
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
          })
        },
      },
    },
    async (request, reply) => {
      const enrolment = await secondFactors.enrolTotp(callerOf(request), proofOf(request.body), clientInfo(request));
      const qr_svg = await qrCodeSvg(enrolment.uri);
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
      config: { audit: onSuccess(200, 'mfa_enrolled', (o) => ({ factor_id: o.params['id'] })), errors: ['invalid_mfa_code', 'not_found', 'mfa_already_enrolled', ...LIMIT_ERRORS, 'mfa_unavailable', 'hook_unavailable'], auth: 'user' },
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
          })
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
      config: { audit: onSuccess(200, 'mfa_removed', (o) => ({ factor_id: o.params['id'] })), errors: ['invalid_credentials', 'invalid_mfa_code', 'reauthentication_required', 'mfa_required', 'not_found', ...LIMIT_ERRORS, 'mfa_unavailable'], auth: 'user' },
      preValidation: absentBodyIsEmpty,
      schema: {
        summary: 'Remove an authenticator app',
        description: 'Needs a two-factor session younger than REAUTH_WINDOW_SECONDS, or `current_password` with a `code` (or `recovery_code`).',
        tags: ['second factor'],
        params: Type.Object({ id: UuidId }),
        body: Type.Object(ProofFields, { examples: [{ current_password: EXAMPLE_PASSWORD, code: '123456' }] }),
        response: {
          200: Message,
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
      config: { audit: onSuccess(200, 'recovery_codes_replaced'), errors: ['invalid_credentials', 'invalid_mfa_code', 'reauthentication_required', 'mfa_required', 'not_found', ...LIMIT_ERRORS, 'mfa_unavailable'], auth: 'user' },
      preValidation: absentBodyIsEmpty,
      schema: {
        summary: 'Replace the recovery codes',
        description: 'The old codes stop working. Needs what removing a factor needs.',
        tags: ['second factor'],
        body: Type.Object(ProofFields, { examples: [{ current_password: EXAMPLE_PASSWORD, code: '123456' }] }),
        response: {
          200: Type.Object({ message: Type.String(), recovery_codes: RecoveryCodes }),
        },
      },
    },
    async (request) => {
      const codes = await secondFactors.replaceRecoveryCodes(callerOf(request), proofOf(request.body), clientInfo(request));
      return { message: 'New recovery codes: the old ones no longer work', recovery_codes: codes };
    },
  );
};
