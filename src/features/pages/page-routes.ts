import formbody from '@fastify/formbody';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { isServiceError, ServiceError } from '../../kernel/errors.js';
import { clientInfo } from '../../kernel/http/replies.js';
import { INVALID_CREDENTIALS, type Authenticated, type SignedIn } from '../../kernel/model.js';
import type { Accounts } from '../accounts/accounts.js';
import { onSuccess, signInAttempt } from '../audit/audit-hook.js';
import type { InteractionView, OpenIdProvider } from '../oidc/openid-provider.js';
import { asAuthentication } from '../passkeys/passkey-routes.js';
import type { Sessions } from '../sessions/sessions.js';
import type { SecondFactorRequired, SignIn } from '../sign-in/sign-in.js';
import { PASSKEY_SCRIPT, stylesheet } from './page-assets.js';
import { browserSessionOf, type Pages } from './pages.js';
import type { PageError } from './page-views.js';

export interface SignInPageOptions {
  pages: Pages;
  signIn: SignIn;
  accounts: Accounts;
  sessions: Sessions;
  /** Undefined when the OpenID provider is off: the pages are the service's own then. */
  provider: OpenIdProvider | undefined;
  passkeysEnabled: boolean;
  accentColour: string;
  /** PUBLIC_URL's origin: a form post from anywhere else is refused, whatever it carries. */
  origin: string;
}

/** Where a sign-in's forms post, and the app's sign-in (interaction) it is part of, if any. */
interface Flow {
  base: string;
  interaction: InteractionView | undefined;
}

const DIRECT: Flow = { base: '', interaction: undefined };

/** A form's fields as text: a field sent twice, or not at all, is empty. */
export function formOf(request: FastifyRequest): (name: string) => string {
  const body = (typeof request.body === 'object' && request.body !== null ? request.body : {}) as Record<string, unknown>;
  return (name) => {
    const value = Object.hasOwn(body, name) ? body[name] : undefined;
    return typeof value === 'string' ? value : '';
  };
}

/** A page: HTML, with the pages' headers and any cookies. */
export function sendPage(reply: FastifyReply, pages: Pages, status: number, page: string, cookies: string[] = [], formOrigins: string[] = []): FastifyReply {
  for (const cookie of cookies) reply.header('set-cookie', cookie);
  return reply.code(status).headers(pages.headers(formOrigins)).type('text/html; charset=utf-8').send(page);
}

export function redirect(reply: FastifyReply, location: string, cookies: string[] = []): FastifyReply {
  for (const cookie of cookies) reply.header('set-cookie', cookie);
  return reply.code(303).header('cache-control', 'no-store').redirect(location, 303);
}

/** A refusal of the rules, noted for the metrics, the log line and the audit trail as the JSON API notes it. */
export function noteRefusal(request: FastifyRequest, reply: FastifyReply, pages: Pages, error: ServiceError): PageError {
  request.errorCode = error.code;
  request.errorContext = error.context;
  if (error.retryAfterSeconds !== undefined) reply.header('retry-after', String(error.retryAfterSeconds));
  return pages.errorOf(error);
}

/**
 * Posts need the form's token. A browser that says where the post comes from must say it is this site: Origin is
 * this origin (or "null", which a page without a Referer sends, as these pages are), and Sec-Fetch-Site is not
 * another site.
 */
export function registerFormChecks(app: Parameters<FastifyPluginAsync>[0], pages: Pages, origin: string): void {
  app.addHook('preHandler', async (request) => {
    if (request.method !== 'POST') return;
    const from = request.headers.origin;
    const site = request.headers['sec-fetch-site'];
    const elsewhere = (from !== undefined && from !== origin && from !== 'null') || site === 'cross-site' || site === 'same-site';
    const token = formOf(request)('csrf');
    if (elsewhere || !pages.sessions.csrfMatches(request.headers.cookie, token)) {
      throw new ServiceError('invalid_csrf_token', 'The form came without the token of its page');
    }
  });
}

/**
 * The HTML refusal of anything a page handler did not answer itself: a refusal of the rules (a CSRF token
 * missing, a rate limit) with its status, anything else a 500 that is logged.
 */
export function registerPageErrors(app: Parameters<FastifyPluginAsync>[0], pages: Pages): void {
  app.setErrorHandler(async (error, request, reply) => {
    if (isServiceError(error)) {
      const refusal = noteRefusal(request, reply, pages, error);
      return sendPage(reply, pages, error.status, pages.views.error({ message: refusal.text, code: refusal.code }));
    }
    // What the framework refuses before a handler runs (a body that is not a form, empty JSON, too large) is the
    // client's mistake: a 4xx page, as the JSON API answers it, never a 500.
    const status = (error as { statusCode?: unknown }).statusCode;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      request.errorCode = 'invalid_request';
      const message = pages.views.t('errors.invalid_request', { detail: 'the request could not be read' });
      return sendPage(reply, pages, status, pages.views.error({ message, code: 'invalid_request' }));
    }
    request.log.error({ err: error }, 'unhandled error');
    request.errorCode = 'internal_error';
    return sendPage(reply, pages, 500, pages.views.error({ message: pages.views.t('errors.internal_error'), code: 'internal_error' }));
  });
}

/** Sign in, sign up and sign out, on their own and as the sign-in an app asked for (an OpenID interaction). */
export const signInPageRoutes: FastifyPluginAsync<SignInPageOptions> = async (app, options) => {
  const { pages, signIn, accounts, sessions, provider, passkeysEnabled } = options;
  const { views } = pages;
  await app.register(formbody, { bodyLimit: 16 * 1024 });
  registerFormChecks(app, pages, options.origin);
  registerPageErrors(app, pages);

  const page = { html: true } as const;
  const cookieOf = (request: FastifyRequest) => request.headers.cookie;
  const csrf = (request: FastifyRequest, reply: FastifyReply) => {
    const { token, setCookie } = pages.sessions.csrf(cookieOf(request));
    if (setCookie) reply.header('set-cookie', setCookie);
    return token;
  };
  const formOrigins = (flow: Flow) => (flow.interaction?.redirectOrigin ? [flow.interaction.redirectOrigin] : []);

  function signInForm(request: FastifyRequest, reply: FastifyReply, flow: Flow, status: number, extra: { username?: string; error?: PageError; notice?: string } = {}) {
    const interaction = flow.interaction;
    const reason =
      interaction === undefined ? undefined
      : interaction.needsSecondFactor ? ('second-factor' as const)
      : interaction.reasons.includes('login_prompt') || interaction.reasons.includes('max_age') ? ('again' as const)
      : undefined;
    const html = views.signIn({
      base: flow.base,
      csrf: csrf(request, reply),
      app: interaction ? (interaction.clientName ?? interaction.clientId) : undefined,
      reason,
      passkeys: passkeysEnabled,
      signUpHref: `${flow.base}/signup`,
      cancel: interaction !== undefined,
      username: extra.username ?? interaction?.loginHint,
      error: extra.error,
      notice: extra.notice,
    });
    return sendPage(reply, pages, status, html, [], formOrigins(flow));
  }

  function secondStepForm(request: FastifyRequest, reply: FastifyReply, flow: Flow, status: number, mfaToken: string, passkeyFactor: boolean, error?: PageError) {
    const interaction = flow.interaction;
    const html = views.secondStep({
      base: flow.base,
      csrf: csrf(request, reply),
      mfaToken,
      passkeys: passkeysEnabled && passkeyFactor,
      app: interaction ? (interaction.clientName ?? interaction.clientId) : undefined,
      error,
    });
    return sendPage(reply, pages, status, html, [], formOrigins(flow));
  }

  function secondStepNeeded(request: FastifyRequest, reply: FastifyReply, flow: Flow, result: SecondFactorRequired) {
    request.awaitsSecondFactor = true;
    return secondStepForm(request, reply, flow, 200, result.mfaToken, result.factors.some((factor) => factor.type === 'passkey'));
  }

  /** The browser is signed in: to its account page, or back to the app that asked. The session it had before ends. */
  async function signedIn(request: FastifyRequest, reply: FastifyReply, flow: Flow, result: SignedIn) {
    request.userId = result.user.id;
    const previous = await pages.sessions.current(cookieOf(request));
    const cookies = pages.sessions.signedInCookies(result);
    let location = views.href('/account');
    if (flow.interaction && provider) {
      const session = await sessions.resume(result.refreshToken);
      // Deleted or signed out in the instant since.
      if (!session) throw new ServiceError('invalid_credentials', INVALID_CREDENTIALS);
      location = await provider.finishSignIn(request.raw, reply.raw, flow.interaction, browserSessionOf(session));
    }
    if (previous && previous.session.id !== undefined) await endPrevious(previous);
    return redirect(reply, location, cookies);
  }

  async function endPrevious(previous: Authenticated) {
    await sessions.logout(previous, 'local').catch(() => 0);
  }

  /** The app's sign-in this request belongs to: its cookie must name the interaction of the path. */
  async function interactionFlow(request: FastifyRequest<{ Params: { uid: string } }>, reply: FastifyReply): Promise<Flow | undefined> {
    if (!provider) return undefined;
    try {
      const interaction = await provider.interaction(request.raw, reply.raw);
      if (interaction.uid !== request.params.uid) return undefined;
      return { base: `/interaction/${interaction.uid}`, interaction };
    } catch (error) {
      if (isServiceError(error)) throw error;
      return undefined;
    }
  }

  function expired(reply: FastifyReply) {
    return sendPage(reply, pages, 400, views.error({ message: views.t('error.expiredInteraction') }));
  }

  /** The browser's sign-in does for the app: no fresh one asked for, recent enough, with a second factor if asked. */
  function satisfies(interaction: InteractionView, auth: Authenticated): boolean {
    if (interaction.reasons.includes('login_prompt')) return false;
    const age = (Date.now() - auth.session.authenticatedAt.getTime()) / 1000;
    if (interaction.maxAge !== undefined && age > interaction.maxAge) return false;
    return !interaction.needsSecondFactor || auth.session.aal === 2;
  }

  async function password(request: FastifyRequest, reply: FastifyReply, flow: Flow) {
    const form = formOf(request);
    try {
      if (form('username') === '' || form('password') === '') throw new ServiceError('invalid_request', 'Username and password are required!');
      const result = await signIn.login({ username: form('username'), password: form('password'), deviceToken: pages.sessions.deviceToken(cookieOf(request)) }, clientInfo(request));
      if ('mfaToken' in result) return secondStepNeeded(request, reply, flow, result);
      return await signedIn(request, reply, flow, result);
    } catch (error) {
      if (!isServiceError(error)) throw error;
      return signInForm(request, reply, flow, error.status, { username: form('username'), error: noteRefusal(request, reply, pages, error) });
    }
  }

  async function secondStep(request: FastifyRequest, reply: FastifyReply, flow: Flow) {
    const form = formOf(request);
    const mfaToken = form('mfa_token');
    const passkey = parsedPasskey(form('response'));
    try {
      const proofs = [form('code'), form('recovery_code'), passkey].filter((proof) => proof !== '' && proof !== undefined);
      if (proofs.length !== 1) throw new ServiceError('invalid_request', 'Send one of code, recovery_code or passkey');
      const result = await signIn.completeSecondStep(
        {
          mfaToken,
          code: form('code') || undefined,
          recoveryCode: form('recovery_code') || undefined,
          passkey: passkey && asAuthentication(passkey),
          deviceToken: pages.sessions.deviceToken(cookieOf(request)),
        },
        clientInfo(request),
      );
      return await signedIn(request, reply, flow, result);
    } catch (error) {
      if (!isServiceError(error)) throw error;
      const refusal = noteRefusal(request, reply, pages, error);
      // A sign-in that cannot go on starts again from the password.
      if (error.code === 'mfa_token_expired' || error.code === 'invalid_credentials') return signInForm(request, reply, flow, error.status, { error: refusal });
      return secondStepForm(request, reply, flow, error.status, mfaToken, passkeysEnabled, refusal);
    }
  }

  async function passkeySignIn(request: FastifyRequest, reply: FastifyReply, flow: Flow) {
    const form = formOf(request);
    try {
      const passkey = parsedPasskey(form('response'));
      if (!passkey) throw new ServiceError('invalid_request', 'response is required!');
      const result = await signIn.loginWithPasskey(asAuthentication(passkey), pages.sessions.deviceToken(cookieOf(request)), clientInfo(request));
      if ('mfaToken' in result) return secondStepNeeded(request, reply, flow, result);
      return await signedIn(request, reply, flow, result);
    } catch (error) {
      if (!isServiceError(error)) throw error;
      return signInForm(request, reply, flow, error.status, { error: noteRefusal(request, reply, pages, error) });
    }
  }

  function signUpForm(request: FastifyRequest, reply: FastifyReply, flow: Flow, status: number, extra: { username?: string; error?: PageError } = {}) {
    const interaction = flow.interaction;
    const html = views.signUp({
      base: flow.base,
      csrf: csrf(request, reply),
      signInHref: flow.interaction ? flow.base : '/signin',
      app: interaction ? (interaction.clientName ?? interaction.clientId) : undefined,
      ...extra,
    });
    return sendPage(reply, pages, status, html, [], formOrigins(flow));
  }

  async function signUp(request: FastifyRequest, reply: FastifyReply, flow: Flow) {
    const form = formOf(request);
    try {
      if (form('username') === '' || form('password') === '' || form('password_confirm') === '') {
        throw new ServiceError('invalid_request', 'Username and passwords are required!');
      }
      const result = await accounts.register({ username: form('username'), password: form('password'), passwordConfirm: form('password_confirm') }, clientInfo(request));
      return await signedIn(request, reply, flow, result);
    } catch (error) {
      if (!isServiceError(error)) throw error;
      return signUpForm(request, reply, flow, error.status, { username: form('username'), error: noteRefusal(request, reply, pages, error) });
    }
  }

  const DONE_NOTICES = { signedOut: 'done.signedOut', deleted: 'done.deleted' } as const;

  app.get('/assets/pages.css', { schema: { hide: true } }, async (_request, reply) =>
    reply.type('text/css; charset=utf-8').header('cache-control', 'public, max-age=300').send(stylesheet(options.accentColour)),
  );
  app.get('/assets/passkeys.js', { schema: { hide: true } }, async (_request, reply) =>
    reply.type('text/javascript; charset=utf-8').header('cache-control', 'public, max-age=300').send(PASSKEY_SCRIPT),
  );

  app.get<{ Querystring: { done?: string } }>('/signin', { config: page, schema: { hide: true } }, async (request, reply) => {
    if (await pages.sessions.current(cookieOf(request))) return redirect(reply, views.href('/account'));
    const done = request.query.done;
    const notice = done !== undefined && Object.hasOwn(DONE_NOTICES, done) ? views.t(DONE_NOTICES[done as keyof typeof DONE_NOTICES]) : undefined;
    return signInForm(request, reply, DIRECT, 200, { notice });
  });
  const PASSWORD = { ...page, audit: signInAttempt('password', 303), countsAsLogin: true, hashesPassword: true };
  const SECOND_STEP = { ...page, audit: signInAttempt('mfa', 303), countsAsLogin: true };
  const PASSKEY = { ...page, audit: signInAttempt('passkey', 303), countsAsLogin: true };
  const SIGN_UP = { ...page, audit: onSuccess(303, 'register'), hashesPassword: true };
  app.post('/signin', { config: PASSWORD, schema: { hide: true } }, (request, reply) => password(request, reply, DIRECT));
  app.post('/second-step', { config: SECOND_STEP, schema: { hide: true } }, (request, reply) => secondStep(request, reply, DIRECT));
  app.post('/passkey', { config: PASSKEY, schema: { hide: true } }, (request, reply) => passkeySignIn(request, reply, DIRECT));
  app.get('/signup', { config: page, schema: { hide: true } }, async (request, reply) => signUpForm(request, reply, DIRECT, 200));
  app.post('/signup', { config: SIGN_UP, schema: { hide: true } }, (request, reply) => signUp(request, reply, DIRECT));
  app.post(
    '/signout',
    { config: { ...page, audit: onSuccess(303, 'logout', () => ({ scope: 'local' })) }, schema: { hide: true } },
    async (request, reply) => {
      const auth = await pages.sessions.current(cookieOf(request));
      if (auth) request.userId = auth.user.id;
      return redirect(reply, views.href('/signin?done=signedOut'), await pages.sessions.signOut(cookieOf(request)));
    },
  );

  if (!provider) return;

  type Uid = { Params: { uid: string } };
  app.get<Uid>('/interaction/:uid', { config: page, schema: { hide: true } }, async (request, reply) => {
    const flow = await interactionFlow(request, reply);
    if (!flow?.interaction) return expired(reply);
    const auth = await pages.sessions.current(cookieOf(request));
    if (auth && flow.interaction.prompt === 'login' && satisfies(flow.interaction, auth)) {
      request.userId = auth.user.id;
      return redirect(reply, await provider.finishSignIn(request.raw, reply.raw, flow.interaction, browserSessionOf(auth)));
    }
    return signInForm(request, reply, flow, 200);
  });
  const withFlow = (handler: (request: FastifyRequest, reply: FastifyReply, flow: Flow) => Promise<FastifyReply>) => async (request: FastifyRequest<Uid>, reply: FastifyReply) => {
    const flow = await interactionFlow(request, reply);
    return flow ? handler(request, reply, flow) : expired(reply);
  };
  app.post<Uid>('/interaction/:uid/signin', { config: PASSWORD, schema: { hide: true } }, withFlow(password));
  app.post<Uid>('/interaction/:uid/second-step', { config: SECOND_STEP, schema: { hide: true } }, withFlow(secondStep));
  app.post<Uid>('/interaction/:uid/passkey', { config: PASSKEY, schema: { hide: true } }, withFlow(passkeySignIn));
  app.get<Uid>('/interaction/:uid/signup', { config: page, schema: { hide: true } }, withFlow(async (request, reply, flow) => signUpForm(request, reply, flow, 200)));
  app.post<Uid>('/interaction/:uid/signup', { config: SIGN_UP, schema: { hide: true } }, withFlow(signUp));
  app.post<Uid>(
    '/interaction/:uid/cancel',
    { config: page, schema: { hide: true } },
    withFlow(async (request, reply) => redirect(reply, await provider.abandon(request.raw, reply.raw, 'access_denied', 'The user cancelled the sign-in'))),
  );
};

/** A passkey response from a form field (JSON), or undefined for none; text that is no JSON object is refused. */
function parsedPasskey(field: string): object | undefined {
  if (field === '') return undefined;
  try {
    const parsed: unknown = JSON.parse(field);
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) return parsed;
  } catch {
    // answered below
  }
  throw new ServiceError('invalid_request', 'The passkey response is not JSON');
}
