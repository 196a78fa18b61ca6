import formbody from '@fastify/formbody';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { isServiceError, ServiceError } from '../../kernel/errors.js';
import { clientInfo } from '../../kernel/http/replies.js';
import type { Authenticated } from '../../kernel/model.js';
import type { Accounts } from '../accounts/accounts.js';
import { onSuccess } from '../audit/audit-hook.js';
import type { Audit } from '../audit/audit.js';
import type { SecondFactors } from '../mfa/mfa.js';
import type { Proof } from '../mfa/reauthentication.js';
import { totpUri } from '../mfa/totp.js';
import { asRegistration } from '../passkeys/passkey-routes.js';
import type { Passkeys } from '../passkeys/passkeys.js';
import type { Sessions } from '../sessions/sessions.js';
import { formOf, noteRefusal, redirect, registerFormChecks, registerPageErrors, sendPage } from './page-routes.js';
import type { TextKey } from './page-text.js';
import type { PageError } from './page-views.js';
import type { Pages } from './pages.js';
import { qrCodeSvg } from '../mfa/qr-code.js';

export interface AccountPageOptions {
  pages: Pages;
  accounts: Accounts;
  sessions: Sessions;
  secondFactors: SecondFactors;
  passkeys: Passkeys | undefined;
  audit: Audit;
  /** The issuer an authenticator app shows beside the account (MFA_ISSUER). */
  mfaIssuer: string;
  origin: string;
}

const RECENT_ACTIVITY = 20;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** What a redirect after a change says, by its `done` query value. */
const DONE: Record<string, TextKey> = {
  username: 'done.username',
  password: 'done.password',
  sessionEnded: 'done.sessionEnded',
  othersEnded: 'done.othersEnded',
  totpRemoved: 'done.totpRemoved',
  passkeyAdded: 'done.passkeyAdded',
  passkeyRenamed: 'done.passkeyRenamed',
  passkeyRemoved: 'done.passkeyRemoved',
};

type Section = 'sessions' | 'username' | 'password' | 'totp' | 'passkeys' | 'delete';

declare module 'fastify' {
  interface FastifyRequest {
    /** The browser's live session on an account page. */
    pageAuth: Authenticated | undefined;
  }
}

function proofOf(form: (name: string) => string): Proof {
  return { currentPassword: form('current_password') || undefined, code: form('code') || undefined, recoveryCode: form('recovery_code') || undefined };
}

/**
 * The account page: sessions, username and password, the authenticator app and its recovery codes, passkeys,
 * recent activity, and deletion. Each form calls the same rules as the JSON API, with the same proofs asked for.
 */
export const accountPageRoutes: FastifyPluginAsync<AccountPageOptions> = async (app, options) => {
  const { pages, accounts, sessions, secondFactors, passkeys, audit } = options;
  const { views } = pages;
  await app.register(formbody, { bodyLimit: 16 * 1024 });
  app.decorateRequest('pageAuth', undefined);
  // Signed out (or never signed in): to the sign-in page, before the form's token is looked at.
  app.addHook('preHandler', async (request, reply) => {
    const auth = await pages.sessions.current(request.headers.cookie);
    if (!auth) return redirect(reply, views.href('/signin'), pages.sessions.signOutCookies(request.headers.cookie));
    request.pageAuth = auth;
    request.userId = auth.user.id;
  });
  registerFormChecks(app, pages, options.origin);
  registerPageErrors(app, pages);

  const authOf = (request: FastifyRequest) => request.pageAuth!;
  const csrfOf = (request: FastifyRequest, reply: FastifyReply) => {
    const { token, setCookie } = pages.sessions.csrf(request.headers.cookie);
    if (setCookie) reply.header('set-cookie', setCookie);
    return token;
  };

  async function accountPage(request: FastifyRequest, reply: FastifyReply, status: number, extra: { notice?: string; error?: PageError; errorAt?: Section } = {}) {
    const auth = authOf(request);
    const [list, factors, keys, events] = await Promise.all([
      sessions.list(auth),
      secondFactors.list(auth),
      passkeys?.list(auth),
      audit.recent(auth.user.id, RECENT_ACTIVITY),
    ]);
    const html = views.account({
      csrf: csrfOf(request, reply),
      username: auth.user.username,
      sessions: list.map((s) => ({ id: s.id, current: s.id === auth.session.id, userAgent: s.userAgent, createdAt: s.createdAt, lastUsedAt: s.lastUsedAt })),
      totp: factors.factors.find((factor) => factor.type === 'totp'),
      recoveryCodesLeft: factors.recoveryCodesRemaining,
      passkeys: keys?.map((p) => ({ id: p.id, name: p.name, createdAt: p.createdAt, lastUsedAt: p.lastUsedAt })),
      activity: events.map((event) => ({ type: event.type, time: event.time })),
      now: new Date(),
      ...extra,
    });
    return sendPage(reply, pages, status, html);
  }

  /** Runs a change; a refusal shows the account page again, with the error at its section. */
  async function change(request: FastifyRequest, reply: FastifyReply, section: Section, work: () => Promise<FastifyReply>) {
    try {
      return await work();
    } catch (error) {
      if (!isServiceError(error)) throw error;
      // The session ended meanwhile (a password change elsewhere, a lock): signed out.
      if (error.code === 'invalid_token') return redirect(reply, views.href('/signin'), pages.sessions.signOutCookies(request.headers.cookie));
      const refusal = noteRefusal(request, reply, pages, error);
      return accountPage(request, reply, error.status, { error: refusal, errorAt: section });
    }
  }

  const done = (reply: FastifyReply, what: keyof typeof DONE) => redirect(reply, views.href(`/account?done=${what}`));
  const page = { html: true } as const;
  const hidden = { hide: true } as const;

  app.get<{ Querystring: { done?: string } }>('/account', { config: page, schema: hidden }, async (request, reply) => {
    const what = request.query.done;
    return accountPage(request, reply, 200, { notice: what !== undefined && Object.hasOwn(DONE, what) ? views.t(DONE[what]!) : undefined });
  });

  app.post('/account/sessions/end', { config: { ...page, audit: onSuccess(303, 'session_revoked') }, schema: hidden }, async (request, reply) =>
    change(request, reply, 'sessions', async () => {
      const id = formOf(request)('id');
      if (!UUID.test(id)) throw new ServiceError('not_found', 'No live session with this id belongs to you');
      await sessions.end(authOf(request), id);
      return done(reply, 'sessionEnded');
    }),
  );

  app.post('/account/sessions/end-others', { config: { ...page, audit: onSuccess(303, 'logout', () => ({ scope: 'others' })) }, schema: hidden }, async (request, reply) =>
    change(request, reply, 'sessions', async () => {
      await sessions.logout(authOf(request), 'others');
      return done(reply, 'othersEnded');
    }),
  );

  app.post('/account/username', { config: { ...page, audit: onSuccess(303, 'username_changed') }, schema: hidden }, async (request, reply) =>
    change(request, reply, 'username', async () => {
      const newUsername = formOf(request)('new_username');
      if (newUsername === '') throw new ServiceError('invalid_request', 'new_username is required');
      await accounts.change(authOf(request), { newUsername }, clientInfo(request));
      return done(reply, 'username');
    }),
  );

  app.post('/account/password', { config: { ...page, audit: onSuccess(303, 'password_changed'), hashesPassword: true }, schema: hidden }, async (request, reply) =>
    change(request, reply, 'password', async () => {
      const form = formOf(request);
      if (form('new_password') === '') throw new ServiceError('invalid_request', 'new_password is required');
      await accounts.change(authOf(request), { newPassword: form('new_password'), newPasswordConfirm: form('new_password_confirm'), ...proofOf(form) }, clientInfo(request));
      return done(reply, 'password');
    }),
  );

  async function enrolPage(request: FastifyRequest, reply: FastifyReply, status: number, enrolment: { id: string; secret: string; uri: string }, error?: PageError) {
    const qrSvg = await qrCodeSvg(enrolment.uri);
    return sendPage(reply, pages, status, views.enrolTotp({ csrf: csrfOf(request, reply), factorId: enrolment.id, secret: enrolment.secret, qrSvg, error }));
  }

  app.post('/account/totp', { config: page, schema: hidden }, async (request, reply) =>
    change(request, reply, 'totp', async () => {
      const enrolment = await secondFactors.enrolTotp(authOf(request), proofOf(formOf(request)), clientInfo(request));
      return enrolPage(request, reply, 200, enrolment);
    }),
  );

  app.post(
    '/account/totp/confirm',
    { config: { ...page, audit: onSuccess(200, 'mfa_enrolled', (o) => ({ factor_id: o.body['factor_id'] })) }, schema: hidden },
    async (request, reply) => {
      const form = formOf(request);
      try {
        if (!UUID.test(form('factor_id'))) throw new ServiceError('not_found', 'No enrolment with this id is waiting for its code');
        const result = await secondFactors.confirmTotp(authOf(request), form('factor_id'), form('code'), clientInfo(request));
        return sendPage(reply, pages, 200, views.recoveryCodes(result.recoveryCodes));
      } catch (error) {
        if (!isServiceError(error)) throw error;
        const refusal = noteRefusal(request, reply, pages, error);
        // A wrong code: the same QR code again (its key is the one this page showed), to try the next code.
        if (error.code === 'invalid_mfa_code' && /^[A-Z2-7]{16,128}$/.test(form('secret'))) {
          const account = authOf(request).user.username;
          const uri = totpUri({ secret: form('secret'), issuer: options.mfaIssuer, account });
          return enrolPage(request, reply, error.status, { id: form('factor_id'), secret: form('secret'), uri }, refusal);
        }
        if (error.code === 'invalid_token') return redirect(reply, views.href('/signin'), pages.sessions.signOutCookies(request.headers.cookie));
        return accountPage(request, reply, error.status, { error: refusal, errorAt: 'totp' });
      }
    },
  );

  app.post('/account/totp/remove', { config: { ...page, audit: onSuccess(303, 'mfa_removed', (o) => ({ factor_id: o.body['id'] })) }, schema: hidden }, async (request, reply) =>
    change(request, reply, 'totp', async () => {
      const form = formOf(request);
      if (!UUID.test(form('id'))) throw new ServiceError('not_found', 'No such factor of yours');
      await secondFactors.remove(authOf(request), form('id'), proofOf(form), clientInfo(request));
      return done(reply, 'totpRemoved');
    }),
  );

  app.post('/account/recovery-codes', { config: { ...page, audit: onSuccess(200, 'recovery_codes_replaced') }, schema: hidden }, async (request, reply) =>
    change(request, reply, 'totp', async () => {
      const codes = await secondFactors.replaceRecoveryCodes(authOf(request), proofOf(formOf(request)), clientInfo(request));
      return sendPage(reply, pages, 200, views.recoveryCodes(codes));
    }),
  );

  if (passkeys) {
    // Called by the page's script: WebAuthn options as JSON, or a refusal in the JSON API's shape.
    app.post('/account/passkeys/options', { schema: hidden }, async (request, reply) => {
      try {
        return await passkeys.registrationOptions(authOf(request), proofOf(formOf(request)), clientInfo(request));
      } catch (error) {
        if (!isServiceError(error)) throw error;
        const refusal = noteRefusal(request, reply, pages, error);
        return reply.code(error.status).send({ error: refusal.code, message: refusal.text });
      }
    });

    app.post('/account/passkeys', { config: { ...page, audit: onSuccess(303, 'passkey_added') }, schema: hidden }, async (request, reply) =>
      change(request, reply, 'passkeys', async () => {
        const form = formOf(request);
        let response: unknown;
        try {
          response = JSON.parse(form('response'));
        } catch {
          throw new ServiceError('invalid_request', 'The passkey response is not JSON');
        }
        if (typeof response !== 'object' || response === null) throw new ServiceError('invalid_request', 'The passkey response is not JSON');
        await passkeys.register(authOf(request), asRegistration(response), form('name').slice(0, 64) || undefined);
        return done(reply, 'passkeyAdded');
      }),
    );

    app.post('/account/passkeys/rename', { config: page, schema: hidden }, async (request, reply) =>
      change(request, reply, 'passkeys', async () => {
        const form = formOf(request);
        if (!UUID.test(form('id'))) throw new ServiceError('not_found', 'No passkey with this id is yours');
        if (form('name').trim() === '' || /[\u0000-\u001F\u007F-\u009F]/.test(form('name'))) throw new ServiceError('invalid_request', 'name must be 1 to 64 characters on one line');
        await passkeys.rename(authOf(request), form('id'), form('name'));
        return done(reply, 'passkeyRenamed');
      }),
    );

    app.post(
      '/account/passkeys/remove',
      { config: { ...page, audit: onSuccess(303, 'passkey_removed', (o) => ({ passkey_id: o.body['id'] })) }, schema: hidden },
      async (request, reply) =>
        change(request, reply, 'passkeys', async () => {
          const form = formOf(request);
          if (!UUID.test(form('id'))) throw new ServiceError('not_found', 'No passkey with this id is yours');
          await passkeys.remove(authOf(request), form('id'), proofOf(form), clientInfo(request));
          return done(reply, 'passkeyRemoved');
        }),
    );
  }

  app.post('/account/delete', { config: { ...page, audit: onSuccess(303, 'account_deleted') }, schema: hidden }, async (request, reply) =>
    change(request, reply, 'delete', async () => {
      await accounts.delete(authOf(request), proofOf(formOf(request)), clientInfo(request));
      return redirect(reply, views.href('/signin?done=deleted'), [pages.sessions.forgetSessionCookie()]);
    }),
  );
};
