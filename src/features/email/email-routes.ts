import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { EMAIL_MAX_LENGTH } from '../../kernel/email-addresses.js';
import { callerOf } from '../../kernel/http/authentication.js';
import { clientInfo, signedIn } from '../../kernel/http/replies.js';
import { absentBodyIsEmpty, EXAMPLE_PASSWORD, LIMIT_ERRORS, Message, SecondFactorRequiredBody, SignedInBody, SingleLine } from '../../kernel/http/schemas.js';
import { onSuccess, signInAttempt, type AuditRule } from '../audit/audit-hook.js';
import { defineAuditEvents, type EventsOf } from '../audit/audit.js';
import { proofOf, ProofFields } from '../mfa/proof-fields.js';
import { secondFactorRequired } from '../sign-in/sign-in-routes.js';
import type { EmailAddresses } from './email.js';
import type { EmailSignIn } from './email-sign-in.js';
import type { PasswordReset } from './password-reset.js';

export const EMAIL_EVENTS = defineAuditEvents({
  email_set: 'The owner set or changed the account\'s email address: pending until the link sent to it is followed.',
  email_verified: 'An address was proven the account\'s: the link sent to it was followed.',
  email_removed: 'The owner removed the account\'s email address.',
  password_reset_requested: 'A password-reset link was sent to the account\'s proven address (the answer to whoever asked says nothing either way).',
  password_reset: 'The password was replaced through a reset link: every session ended.',
});

declare module '../audit/audit.js' {
  interface AuditEvents extends EventsOf<typeof EMAIL_EVENTS> {}
}

export const EXAMPLE_EMAIL = 'alice@example.com';

/** An address as typed: the rule (`invalid_email`) is the domain's, the schema only bounds it. */
const Email = SingleLine({ minLength: 1, maxLength: EMAIL_MAX_LENGTH + 16, description: 'An email address, such as alice@example.com', examples: [EXAMPLE_EMAIL] });
const LinkToken = Type.String({ minLength: 1, maxLength: 256, description: 'The `token` of the emailed link' });
const DeviceToken = Type.Optional(Type.String({ maxLength: 256, description: 'The `device_token` of an earlier sign-in on this device' }));
const EmailBody = Type.Object({ message: Type.String(), email: Type.String(), email_verified: Type.Boolean() });

/** What asking for a link or a code answers, whether or not an account has the address: 202 and this. */
const ASKED = {
  reset: 'If an account has this address (or name) and a verified address, a link to reset its password is on its way there',
  code: 'If an account has this verified address, a sign-in code is on its way there',
};
const Accepted = Type.Object({ message: Type.String() }, { description: 'The same answer whether or not an account has the address' });

/** A reset request is an event of the account it matched, if any; whoever asked is told nothing of it. */
const resetRequested: AuditRule = (outcome) =>
  outcome.status === 202 && outcome.code === undefined && outcome.request.userId !== undefined
    ? [{ type: 'password_reset_requested', userId: outcome.request.userId }]
    : [];

/**
 * The account's email address, password resets by email, and signing in with an emailed code. Served with
 * EMAIL_ENABLED only; the code sign-in with EMAIL_LOGIN_ENABLED too.
 */
export const emailRoutes: FastifyPluginAsyncTypebox<{ addresses: EmailAddresses; reset: PasswordReset; codes: EmailSignIn | undefined }> = async (
  app,
  { addresses, reset, codes },
) => {
  app.post(
    '/email',
    {
      config: {
        audit: onSuccess(200, 'email_set'),
        errors: ['invalid_email', 'invalid_credentials', 'invalid_mfa_code', 'reauthentication_required', 'mfa_required', ...LIMIT_ERRORS, 'overloaded'],
        auth: 'user',
      },
      schema: {
        summary: "Set or change the token's own email address: pending until the link sent to it is followed",
        description:
          'Needs what a password change needs: `current_password`, unless the session signed in within REAUTH_WINDOW_SECONDS. A verification ' +
          'link goes to the address (the same address again: a new link); a verified address it replaces is told. The answer is the same ' +
          'whether or not another account has the address; counted against EMAIL_SEND_LIMIT_PER_ADDRESS.',
        tags: ['email'],
        body: Type.Object({ email: Email, ...ProofFields }, { examples: [{ email: EXAMPLE_EMAIL, current_password: EXAMPLE_PASSWORD }] }),
        response: { 200: EmailBody },
      },
    },
    async (request) => {
      const change = await addresses.change(callerOf(request), { email: request.body.email, ...proofOf(request.body) }, clientInfo(request));
      const email = change.email!;
      return {
        message: change.verificationSent ? 'Address saved: follow the link sent to it to verify it' : 'This address is already verified',
        email: email.address,
        email_verified: email.verified,
      };
    },
  );

  app.delete(
    '/email',
    {
      config: {
        audit: onSuccess(200, 'email_removed'),
        errors: ['invalid_credentials', 'invalid_mfa_code', 'reauthentication_required', 'mfa_required', ...LIMIT_ERRORS, 'overloaded'],
        auth: 'user',
      },
      preValidation: absentBodyIsEmpty,
      schema: {
        summary: "Remove the token's own email address",
        description: 'Needs what a password change needs. A verified address is told. Without an address, password resets and sign-in codes by email stop.',
        tags: ['email'],
        body: Type.Object({ ...ProofFields }, { examples: [{ current_password: EXAMPLE_PASSWORD }] }),
        response: { 200: Message },
      },
    },
    async (request) => {
      await addresses.remove(callerOf(request), proofOf(request.body), clientInfo(request));
      return { message: 'Email address removed' };
    },
  );

  app.post(
    '/email/verify',
    {
      config: { audit: onSuccess(200, 'email_verified'), errors: ['invalid_email_token', 'email_taken', ...LIMIT_ERRORS], missingFieldsMessage: 'token is required!' },
      schema: {
        summary: 'Verify an address with the token of the link sent to it',
        description:
          'The link is `${PUBLIC_URL}/verify-email?token=…`; its page sends the token here. It works once, for EMAIL_VERIFY_TTL_SECONDS, and only ' +
          "while the address is still the account's. A wrong token counts in the login limits.",
        tags: ['email'],
        body: Type.Object({ token: LinkToken }, { examples: [{ token: 'dG9rZW4gb2YgdGhlIGxpbmsgc2VudCB0byB0aGUgYWRkcmVzcw' }] }),
        response: { 200: EmailBody },
      },
    },
    async (request) => {
      const { userId, email } = await addresses.verify(request.body.token, clientInfo(request));
      request.userId = userId;
      return { message: 'Email address verified', email: email.address, email_verified: true };
    },
  );

  app.post(
    '/password/forgot',
    {
      config: { audit: resetRequested, errors: ['invalid_email', ...LIMIT_ERRORS] },
      schema: {
        summary: 'Ask for a password-reset link, by email address or by username',
        description:
          'Always `202` with one body, in about the same time, whether or not an account matches: a link goes out only to the verified ' +
          'address of an account. Counted against EMAIL_SEND_LIMIT_PER_ADDRESS (by what was typed, account or not) and EMAIL_SEND_LIMIT_PER_IP; ' +
          "a client with a `device_token` of the account counts against that token instead. A newer link ends the older ones.",
        tags: ['email'],
        body: Type.Object(
          { email: Type.Optional(Email), username: Type.Optional(SingleLine({ minLength: 1, maxLength: 256 })), device_token: DeviceToken },
          { examples: [{ email: EXAMPLE_EMAIL }] },
        ),
        response: { 202: Accepted },
      },
    },
    async (request, reply) => {
      const { email, username, device_token } = request.body;
      const asked = await reset.forgot({ email, username, deviceToken: device_token }, clientInfo(request));
      // For the audit trail only: the answer is the same either way.
      request.userId = asked.userId;
      return reply.code(202).send({ message: ASKED.reset });
    },
  );

  app.post(
    '/password/reset',
    {
      config: {
        audit: onSuccess(200, 'password_reset'),
        errors: ['invalid_email_token', 'invalid_password', 'weak_password', 'password_mismatch', ...LIMIT_ERRORS, 'overloaded'],
        missingFieldsMessage: 'token, new_password and new_password_confirm are required!',
        hashesPassword: true,
      },
      schema: {
        summary: 'Set a new password with the token of a reset link',
        description:
          'The link is `${PUBLIC_URL}/reset-password?token=…`; its page sends the token here. Every session of the account ends, its sign-in ' +
          'counters clear and its other reset links end; its verified address is told. No sign-in: sign in with the new password (and the ' +
          'second factor, if the account has one). A wrong token counts in the login limits.',
        tags: ['email'],
        body: Type.Object(
          { token: LinkToken, new_password: Type.String({ minLength: 1 }), new_password_confirm: Type.String({ minLength: 1 }) },
          { examples: [{ token: 'dG9rZW4gb2YgdGhlIGxpbmsgc2VudCB0byB0aGUgYWRkcmVzcw', new_password: EXAMPLE_PASSWORD, new_password_confirm: EXAMPLE_PASSWORD }] },
        ),
        response: { 200: Message },
      },
    },
    async (request) => {
      const { token, new_password, new_password_confirm } = request.body;
      const { userId } = await reset.reset({ token, newPassword: new_password, newPasswordConfirm: new_password_confirm }, clientInfo(request));
      request.userId = userId;
      return { message: 'Password replaced: every session ended; sign in with the new password' };
    },
  );

  if (!codes) return;

  app.post(
    '/login/email',
    {
      config: { errors: ['invalid_email', ...LIMIT_ERRORS], missingFieldsMessage: 'email is required!' },
      schema: {
        summary: 'Ask for a sign-in code by email',
        description:
          'Always `202` with one body, in about the same time, whether or not an account has the address: a six-digit code goes out only to a ' +
          'verified address. It works once, for 10 minutes, and for 5 wrong codes (not counting those of a client with a `device_token` of the ' +
          'account); a newer code leaves the older ones working. Counted against EMAIL_SEND_LIMIT_PER_ADDRESS and EMAIL_SEND_LIMIT_PER_IP.',
        tags: ['email'],
        body: Type.Object({ email: Email, device_token: DeviceToken }, { examples: [{ email: EXAMPLE_EMAIL }] }),
        response: { 202: Accepted },
      },
    },
    async (request, reply) => {
      await codes.requestCode({ email: request.body.email, deviceToken: request.body.device_token }, clientInfo(request));
      return reply.code(202).send({ message: ASKED.code });
    },
  );

  app.post(
    '/login/email/verify',
    {
      config: {
        audit: signInAttempt('email'),
        errors: ['invalid_email', 'invalid_email_code', 'invalid_credentials', 'account_locked', ...LIMIT_ERRORS],
        missingFieldsMessage: 'email and code are required!',
        countsAsLogin: true,
      },
      schema: {
        summary: 'Sign in with the emailed code',
        description:
          'Answers what a password login answers, `amr` `["email"]` and `aal` 1: one factor. An account with a second factor answers ' +
          '`mfa_required` and an `mfa_token` for /api/auth/login/mfa. Each wrong code counts in the login limits as a wrong password does.',
        tags: ['email'],
        body: Type.Object(
          { email: Email, code: Type.String({ minLength: 1, maxLength: 32, description: 'The six digits of the message' }), device_token: DeviceToken },
          { examples: [{ email: EXAMPLE_EMAIL, code: '123456' }] },
        ),
        response: { 200: Type.Union([SignedInBody, SecondFactorRequiredBody]) },
      },
    },
    async (request) => {
      const { email, code, device_token } = request.body;
      const result = await codes.verifyCode({ email, code, deviceToken: device_token }, clientInfo(request));
      if ('mfaToken' in result) return secondFactorRequired(request, 'Code accepted', result);
      return signedIn(request, 'Authenticated successfully', result);
    },
  );
};

