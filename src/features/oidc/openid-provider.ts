import { hkdfSync } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import Provider, { errors, interactionPolicy, type Configuration, type KoaContextWithOIDC, type ResourceServer } from 'oidc-provider';
import type { Logger } from 'pino';
import type { Database } from '../../kernel/db/database.js';
import { findUser } from '../../kernel/db/user-queries.js';
import type { KeyRing } from '../tokens/signing-keys.js';
import { accountClaims, ACCOUNT_SCOPES, claimsByScope } from './oidc-claims.js';
import { INTERACTION_PATH, ROUTES } from './oidc-paths.js';
import { databaseAdapter, guarded } from './oidc-adapter.js';
import { RESERVED_CLAIMS, type ClaimsHook } from '../tokens/claims-hook.js';
import { API_SCOPE_METADATA, secretMatches, type ClientRegistry } from './oidc-clients.js';
import { deleteModel, deleteModelsOfGrant, linkProviderSession, purgeExpiredModels, takeEndedLinks, unlinkProviderSession } from './oidc-queries.js';

/** How the browser signed in to this service's own pages: the session an app's sign-in stands on. */
export interface BrowserSession {
  userId: string;
  sessionId: string;
  authenticatedAt: Date;
  amr: string[];
  aal: 1 | 2;
}

/** A page the provider shows to the browser: its HTML and the headers it needs (its Content-Security-Policy). */
export interface ProviderPage {
  html: string;
  headers: Record<string, string>;
}

/**
 * What the provider needs of the service's pages (src/features/pages): who the browser is signed in as, how to
 * sign it out, and the pages it shows itself. Handed in by the composition: the pages rank above this feature.
 */
export interface ProviderBrowser {
  /** The live session the request's cookies carry, if any. */
  session(cookieHeader: string | undefined): Promise<BrowserSession | undefined>;
  /** Ends that session; the Set-Cookie values that forget it. */
  signOut(cookieHeader: string | undefined): Promise<string[]>;
  /** The Content-Security-Policy of a page whose forms may lead to these origins as well as this one. */
  contentSecurityPolicy(formOrigins: string[]): string;
  errorPage(error: { error: string; description: string | undefined; status: number }): ProviderPage;
  confirmLogoutPage(input: { form: string; clientName: string | undefined; formOrigins: string[] }): ProviderPage;
  loggedOutPage(input: { clientName: string | undefined }): ProviderPage;
}

export interface ProviderSettings {
  /** PUBLIC_URL: the issuer, and where every endpoint is. */
  issuer: string;
  /** The `aud` of the service's access tokens: the audience of the access tokens for APIs too. */
  apiAudience: string;
  accessTokenTtlSeconds: number;
  refreshTokenTtlSeconds: number;
  /** How long a provider session and its grants may last: the service's own sessions' lifetime. */
  sessionTtlSeconds: number;
  /** `__Host-` and `__Secure-` cookies, marked Secure: https, or a loopback address browsers treat as secure. */
  secureCookies: boolean;
  /** TOKEN_HOOK_URL's: asked for claims before each access token for a user, as for the service's own tokens. */
  claimsHook?: ClaimsHook | undefined;
}

/** What an interaction (a sign-in the provider asks the pages for) is about. */
export interface InteractionView {
  uid: string;
  /** `login`, or `consent` (which first-party apps never need). */
  prompt: string;
  /** Why: `login_prompt` (the app asked for a fresh sign-in), `max_age`, `acr_values`, `no_session`, ... */
  reasons: string[];
  clientId: string;
  clientName: string | undefined;
  /** Where the sign-in goes back to: the app's registered redirect URI's origin. */
  redirectOrigin: string | undefined;
  /** Seconds: a sign-in older than this does not do. */
  maxAge: number | undefined;
  /** The app demands a second factor (`acr_values=aal2`). */
  needsSecondFactor: boolean;
  loginHint: string | undefined;
  /** The provider session the browser has, if any: it stands on the sign-in about to be made. */
  providerSessionUid: string | undefined;
}

/** Assurance levels as `acr` values: what `acr_values` may ask for. */
export const ACR_VALUES = ['aal1', 'aal2'] as const;
export function acrOf(aal: 1 | 2): (typeof ACR_VALUES)[number] {
  return aal === 2 ? 'aal2' : 'aal1';
}

/** In an interaction's result: the service session the sign-in started, which the provider session will stand on. */
const SESSION_RESULT = 'urn:user-auth-service:session';

/**
 * The OpenID provider: panva's oidc-provider, configured with this service's database, signing keys, accounts
 * and pages. Apps sign users in with the authorization code flow (PKCE) through the service's own pages, and
 * services get tokens with their client credentials. Built again when the signing keys change (a rotation), as
 * the library takes its keys at construction; everything it keeps is in the database, so the new one carries on.
 */
/** Claims of the provider's own access tokens that a hook may not set either: whom the token is for, and what it allows. */
const PROVIDER_CLAIMS: ReadonlySet<string> = new Set(['client_id', 'scope', 'acr', 'auth_time', 'cnf', 'azp']);

export class OpenIdProvider {
  private built: { fingerprint: string; provider: Provider; callback: (req: IncomingMessage, res: ServerResponse) => Promise<void> } | undefined;

  constructor(
    private readonly db: Database,
    private readonly keys: KeyRing,
    readonly clients: ClientRegistry,
    private readonly settings: ProviderSettings,
    private readonly log: Pick<Logger, 'info' | 'warn' | 'error'>,
    private readonly browser: ProviderBrowser,
  ) {}

  /** The library's instance for the current keys. */
  get provider(): Provider {
    return this.current().provider;
  }

  private current() {
    const fingerprint = this.keys.privateJwks.map((key) => key.kid).join(' ');
    if (this.built?.fingerprint !== fingerprint) {
      const provider = this.build();
      const handle = provider.callback();
      this.built = { fingerprint, provider, callback: async (req, res) => handle(req, res) };
    }
    return this.built;
  }

  /** Answers a request of the provider's (under /oidc, or discovery); resolves once it is answered. */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    await this.current().callback(req, res);
  }

  /** What the interaction this request's cookie names is about; the library's SessionNotFound when there is none. */
  async interaction(req: IncomingMessage, res: ServerResponse): Promise<InteractionView> {
    const provider = this.provider;
    const details = await provider.interactionDetails(req, res);
    const params = details.params as Record<string, string | undefined>;
    const client = params['client_id'] === undefined ? undefined : await provider.Client.find(params['client_id']);
    const redirect = params['redirect_uri'] === undefined ? undefined : URL.parse(params['redirect_uri']);
    const maxAge = params['max_age'] === undefined ? undefined : Number(params['max_age']);
    return {
      uid: details.uid,
      prompt: details.prompt.name,
      reasons: details.prompt.reasons,
      clientId: params['client_id'] ?? '',
      clientName: client?.clientName,
      redirectOrigin: redirect?.origin,
      maxAge: maxAge !== undefined && Number.isFinite(maxAge) ? maxAge : undefined,
      needsSecondFactor: (params['acr_values'] ?? '').split(' ').includes('aal2'),
      loginHint: params['login_hint'],
      providerSessionUid: details.session?.uid,
    };
  }

  /**
   * The interaction's sign-in is done: the browser is signed in as `session` says. Returns where to send it (the
   * authorization request resumes there). A provider session the browser already has stands on it from now on.
   */
  async finishSignIn(req: IncomingMessage, res: ServerResponse, interaction: InteractionView, session: BrowserSession): Promise<string> {
    if (interaction.providerSessionUid !== undefined) {
      await linkProviderSession(this.db, interaction.providerSessionUid, session.sessionId, session.userId);
    }
    const login = { accountId: session.userId, ts: Math.floor(session.authenticatedAt.getTime() / 1000), amr: session.amr, acr: acrOf(session.aal), remember: true };
    return this.provider.interactionResult(req, res, { login, [SESSION_RESULT]: { sessionId: session.sessionId } }, { mergeWithLastSubmission: false });
  }

  /** Gives up the interaction: the app gets `error` at its redirect URI. */
  async abandon(req: IncomingMessage, res: ServerResponse, error: string, description: string): Promise<string> {
    return this.provider.interactionResult(req, res, { error, error_description: description }, { mergeWithLastSubmission: false });
  }

  /**
   * Ends the provider sessions that stand on a service session that has ended (of `userId`, or of anyone): each
   * app signed in through one is told at its back-channel logout URI, and its grants and tokens are revoked.
   * Returns how many provider sessions ended.
   */
  async endSessionsOf(userId?: string): Promise<number> {
    const links = await takeEndedLinks(this.db, userId);
    for (const link of links) await this.endProviderSession(link.providerSessionUid);
    return links.length;
  }

  async purgeExpired(): Promise<number> {
    return purgeExpiredModels(this.db);
  }

  private async endProviderSession(uid: string): Promise<void> {
    const provider = this.provider;
    const session = await provider.Session.findByUid(uid);
    if (!session) return;
    const accountId = session.accountId;
    const authorizations = Object.entries(session.authorizations ?? {});
    // What the apps hold stops working before they are told: an app that acts on the logout finds it done.
    for (const [, authorization] of authorizations) if (authorization.grantId) await this.revokeGrant(authorization.grantId);
    await session.destroy();
    await Promise.all(
      authorizations.map(async ([clientId, authorization]) => {
        const client = (await provider.Client.find(clientId)) as (InstanceType<Provider['Client']> & { backchannelLogout(sub: string, sid: string): Promise<void> }) | undefined;
        if (!client?.backchannelLogoutUri || !accountId || !authorization.sid) return;
        await client.backchannelLogout(accountId, authorization.sid).then(
          () => this.log.info({ clientId }, 'back-channel logout delivered'),
          (error: unknown) => this.log.warn({ clientId, err: error }, 'back-channel logout not delivered'),
        );
      }),
    );
  }

  private async revokeGrant(grantId: string): Promise<void> {
    for (const model of ['AccessToken', 'RefreshToken', 'AuthorizationCode']) await deleteModelsOfGrant(this.db, model, grantId);
    await deleteModel(this.db, 'Grant', grantId);
  }

  private build(): Provider {
    const provider = new Provider(this.settings.issuer, this.configuration());
    const issuer = new URL(this.settings.issuer);
    // Every address the provider writes is under PUBLIC_URL, whatever Host a request came with.
    const basePath = issuer.pathname.replace(/\/$/, '');
    provider.use(async (ctx, next) => {
      Object.defineProperty(ctx.request, 'origin', { value: issuer.origin });
      // Secure cookies are refused by the cookie library on a connection it does not see as https.
      if (this.settings.secureCookies) Object.defineProperty(ctx.request, 'secure', { value: true });
      if (basePath) (ctx.req as IncomingMessage & { originalUrl?: string }).originalUrl = `${basePath}${ctx.req.url}`;
      ctx.set('content-security-policy', this.pages().contentSecurityPolicy(formOrigins(ctx)));
      await next();
      // The answer is made: a failure here (the database gone meanwhile) leaves it as it is. A session link that
      // could not be written costs that session its back-channel logout only: the provider honours it no longer
      // than the browser's own sign-in lives (the browser_session check).
      await this.afterRoute(ctx as KoaContextWithOIDC).catch((error: unknown) => this.log.warn({ err: error, route: (ctx as KoaContextWithOIDC).oidc?.route }, 'after the provider answered'));
    });
    provider.on('server_error', (_ctx: unknown, error: unknown) => this.log.error({ err: error }, 'OpenID provider fault'));
    provider.on('backchannel.error', (_ctx: unknown, error: unknown, client: { clientId: string }) =>
      this.log.warn({ clientId: client.clientId, err: error }, 'back-channel logout not delivered'),
    );
    // The library's own HTML and error pages are the pages feature's; its default Koa logger would write to stderr.
    provider.app.silent = true;
    // Client secrets are stored as their SHA-256 (oidc-clients.ts): presented ones are compared as such.
    Object.defineProperty(provider.Client.prototype, 'compareClientSecret', {
      value(this: { clientSecret?: string }, presented: string) {
        return typeof presented === 'string' && this.clientSecret !== undefined && secretMatches(this.clientSecret, presented);
      },
    });
    return provider;
  }

  /** After a route: a resumed sign-in links its provider session; a logout at the provider signs the pages out too. */
  private async afterRoute(ctx: KoaContextWithOIDC): Promise<void> {
    const oidc = ctx.oidc as KoaContextWithOIDC['oidc'] | undefined;
    if (!oidc) return;
    if (oidc.route === 'resume') {
      const result = oidc.result as Record<string, unknown> | undefined;
      const link = result?.[SESSION_RESULT] as { sessionId?: string } | undefined;
      const session = oidc.session;
      if (link?.sessionId && session?.uid && session.accountId && !(session as { destroyed?: boolean }).destroyed) {
        await linkProviderSession(this.db, session.uid, link.sessionId, session.accountId);
      }
    }
    if (oidc.route === 'end_session_confirm' && (oidc.params as Record<string, unknown> | undefined)?.['logout']) {
      if (oidc.session?.uid) await unlinkProviderSession(this.db, oidc.session.uid);
      for (const cookie of await this.pages().signOut(ctx.get('cookie') || undefined)) ctx.append('set-cookie', cookie);
    }
    if (oidc.route === 'discovery' && ctx.status === 200 && typeof ctx.body === 'object' && ctx.body !== null) {
      ctx.body = this.discovery(ctx.body as Record<string, unknown>);
      ctx.set('cache-control', 'public, max-age=300');
    }
  }

  /**
   * The provider's discovery document on top of what the service published before it: the same `jwks_uri` (every
   * verifying key, as @user-auth/verify reads them), and the service's own introspection and revocation
   * endpoints for its access tokens (the provider's, for the tokens it issues to apps, are under /oidc/token/).
   */
  private discovery(document: Record<string, unknown>): Record<string, unknown> {
    const issuer = this.settings.issuer;
    return {
      ...document,
      jwks_uri: `${issuer}/.well-known/jwks.json`,
      introspection_endpoint: `${issuer}/api/auth/introspect`,
      revocation_endpoint: `${issuer}/api/auth/revoke`,
    };
  }

  private pages(): ProviderBrowser {
    return this.browser;
  }

  private configuration(): Configuration {
    const { settings, db, keys } = this;
    // Never HS256: the provider is off with a shared secret (oidc-settings.ts).
    const alg = keys.signing.alg as 'ES256' | 'RS256' | 'EdDSA';
    const pages = () => this.pages();
    const ttl = {
      AccessToken: settings.accessTokenTtlSeconds,
      ClientCredentials: settings.accessTokenTtlSeconds,
      IdToken: settings.accessTokenTtlSeconds,
      AuthorizationCode: 60,
      Interaction: 15 * 60,
      RefreshToken: settings.refreshTokenTtlSeconds,
      Session: settings.sessionTtlSeconds,
      Grant: settings.sessionTtlSeconds,
    };
    const prefix = settings.secureCookies ? { host: '__Host-', secure: '__Secure-' } : { host: '', secure: '' };
    const cookie = { httpOnly: true, sameSite: 'lax' as const, secure: settings.secureCookies, path: '/', signed: true };
    const apiResource = settings.issuer;
    const policy = interactionPolicy.base();
    const login = policy.get('login')!;
    login.checks.add(
      new interactionPolicy.Check('browser_session', 'the sign-in of this browser has ended', async (ctx) => {
        const accountId = ctx.oidc.session?.accountId;
        if (!accountId) return interactionPolicy.Check.NO_NEED_TO_PROMPT;
        const browser = await guarded(() => pages().session(ctx.get('cookie') || undefined))();
        return browser?.userId === accountId ? interactionPolicy.Check.NO_NEED_TO_PROMPT : interactionPolicy.Check.REQUEST_PROMPT;
      }),
    );
    login.checks.add(
      new interactionPolicy.Check('acr_values', 'the app asks for a second factor', (ctx) => {
        const wanted = String(ctx.oidc.params?.['acr_values'] ?? '').split(' ');
        if (!wanted.includes('aal2') || ctx.oidc.session?.acr === 'aal2') return interactionPolicy.Check.NO_NEED_TO_PROMPT;
        // What was just proved in this interaction is the app's to judge (acr says aal1): asking again would loop.
        return ctx.oidc.result?.login ? interactionPolicy.Check.NO_NEED_TO_PROMPT : interactionPolicy.Check.REQUEST_PROMPT;
      }),
    );

    return {
      adapter: databaseAdapter(db, (id) => this.clients.providerMetadata(id)),
      clients: [],
      findAccount: guarded(async (_ctx: unknown, sub: string) => {
        const account = /^[1-9][0-9]{0,18}$/.test(sub) ? await findUser(db, sub) : undefined;
        if (!account || account.locked) return undefined;
        return { accountId: sub, claims: async () => accountClaims(account) as { sub: string } };
      }),
      jwks: { keys: keys.privateJwks as never[] },
      claims: claimsByScope(),
      scopes: [...ACCOUNT_SCOPES],
      acrValues: [...ACR_VALUES],
      responseTypes: ['code'],
      clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'none'],
      clientDefaults: { grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic', id_token_signed_response_alg: alg },
      enabledJWA: {
        idTokenSigningAlgValues: [alg],
        userinfoSigningAlgValues: [alg],
        introspectionSigningAlgValues: [alg],
        authorizationSigningAlgValues: [alg],
        requestObjectSigningAlgValues: [alg],
        clientAuthSigningAlgValues: [alg],
      },
      extraClientMetadata: { properties: [API_SCOPE_METADATA] },
      pkce: { methods: ['S256'], required: () => true },
      routes: ROUTES,
      cookies: {
        keys: cookieKeys(keys),
        names: { session: `${prefix.host}oidc-session`, interaction: `${prefix.secure}oidc-interaction`, resume: `${prefix.secure}oidc-resume` },
        long: cookie,
        short: cookie,
      },
      ttl,
      interactions: { url: async (_ctx, interaction) => `${new URL(settings.issuer).pathname.replace(/\/$/, '')}${INTERACTION_PATH}/${interaction.uid}`, policy },
      features: {
        devInteractions: { enabled: false },
        registration: { enabled: false },
        clientCredentials: { enabled: true },
        introspection: { enabled: true },
        revocation: { enabled: true },
        userinfo: { enabled: true },
        backchannelLogout: { enabled: true },
        rpInitiatedLogout: {
          enabled: true,
          async logoutSource(ctx, form) {
            const clientName = ctx.oidc.client?.clientName;
            const page = pages().confirmLogoutPage({ form, clientName, formOrigins: formOrigins(ctx) });
            ctx.set(page.headers);
            ctx.type = 'html';
            ctx.body = page.html;
          },
          async postLogoutSuccessSource(ctx) {
            const page = pages().loggedOutPage({ clientName: ctx.oidc.client?.clientName });
            ctx.set(page.headers);
            ctx.type = 'html';
            ctx.body = page.html;
          },
        },
        resourceIndicators: {
          enabled: true,
          // Service-to-service tokens are for the APIs that trust this service's tokens; a user's, unless asked
          // for them (`resource`), for the userinfo endpoint only.
          async defaultResource(ctx) {
            return (ctx.oidc.route === 'token' && ctx.oidc.params?.['grant_type'] === 'client_credentials' ? apiResource : undefined) as string;
          },
          async useGrantedResource() {
            return false;
          },
          async getResourceServerInfo(_ctx, indicator, client): Promise<ResourceServer> {
            if (indicator !== apiResource) throw new errors.InvalidTarget();
            return {
              scope: String((client as unknown as Record<string, unknown>)[API_SCOPE_METADATA] ?? ''),
              audience: settings.apiAudience,
              accessTokenTTL: settings.accessTokenTtlSeconds,
              accessTokenFormat: 'jwt',
              jwt: { sign: { alg } },
            };
          },
        },
      },
      formats: {
        customizers: {
          // The type the service's own access tokens carry, which @user-auth/verify and the APIs behind it accept.
          // What keeps an ID token from passing for an access token is the audience: an app's id, never the APIs'.
          async jwt(_ctx, _token, jwt) {
            jwt.header = { ...jwt.header, typ: 'JWT' };
            return jwt;
          },
        },
      },
      extraTokenClaims: guarded(async (ctx: KoaContextWithOIDC, token: unknown) => {
        const accountId = (token as { accountId?: string }).accountId;
        if (!accountId) return undefined;
        const signIn = (ctx.oidc.entities.AuthorizationCode ?? ctx.oidc.entities.RefreshToken) as
          | { acr?: string; amr?: string[]; authTime?: number; scope?: string }
          | undefined;
        if (!signIn) return undefined;
        const granted = new Set((signIn.scope ?? '').split(' '));
        const hook = this.settings.claimsHook;
        const user = granted.has('roles') || hook ? await findUser(db, accountId) : undefined;
        const claims: Record<string, unknown> = {
          ...(signIn.authTime === undefined ? {} : { auth_time: signIn.authTime }),
          ...(signIn.amr === undefined ? {} : { amr: signIn.amr }),
          ...(signIn.acr === undefined ? {} : { acr: signIn.acr, aal: signIn.acr === 'aal2' ? 2 : 1 }),
          ...(user && granted.has('roles') ? { roles: user.roles } : {}),
        };
        if (!hook || !user) return claims;
        // The hook adds to what the provider and the service set, never over it; a failure with TOKEN_HOOK_FAILURE=deny
        // leaves as hook_unavailable, and no token is issued.
        const added = await hook.claims(db, {
          user: { id: user.id, username: user.username, roles: user.roles },
          session: { id: String((token as { sessionUid?: string }).sessionUid ?? ''), aal: claims['aal'] === 2 ? 2 : 1, amr: signIn.amr ?? [] },
          claims: { sub: accountId, ...claims },
        });
        for (const [name, value] of Object.entries(added)) {
          if (!Object.hasOwn(claims, name) && !RESERVED_CLAIMS.has(name) && !PROVIDER_CLAIMS.has(name) && name !== '__proto__') claims[name] = value;
        }
        return claims;
      }),
      // Every app is the operator's own: what it asks for within what it was registered with is granted, with no
      // consent screen. The grant grows with what it asks for.
      loadExistingGrant: guarded(async (ctx: KoaContextWithOIDC) => {
        const { client, session, result } = ctx.oidc;
        if (!client || !session?.accountId) return undefined;
        const grantId = (result?.['consent'] as { grantId?: string } | undefined)?.grantId ?? session.grantIdFor(client.clientId);
        const found = grantId ? await ctx.oidc.provider.Grant.find(grantId) : undefined;
        const grant =
          found && found.accountId === session.accountId && found.clientId === client.clientId
            ? found
            : new ctx.oidc.provider.Grant({ clientId: client.clientId, accountId: session.accountId });
        const scopes = [...(ctx.oidc as unknown as { requestParamOIDCScopes: Set<string> }).requestParamOIDCScopes].join(' ');
        if (scopes) grant.addOIDCScope(scopes);
        const claims = [...ctx.oidc.requestParamClaims];
        if (claims.length > 0) grant.addOIDCClaims(claims);
        for (const [indicator, server] of Object.entries(ctx.oidc.resourceServers ?? {})) {
          if (server.scope) grant.addResourceScope(indicator, server.scope);
        }
        await grant.save();
        return grant;
      }),
      async issueRefreshToken(_ctx, client) {
        return client.grantTypeAllowed('refresh_token');
      },
      rotateRefreshToken: true,
      // An app's browser page may call the token endpoint from the origins it is redirected to.
      clientBasedCORS(_ctx, origin, client) {
        return client.redirectUris?.some((uri) => URL.parse(uri)?.origin === origin) ?? false;
      },
      async renderError(ctx, out, error) {
        const status = (error as { statusCode?: number }).statusCode ?? ctx.status ?? 500;
        const page = pages().errorPage({ error: out.error, description: out.error_description, status });
        ctx.set(page.headers);
        ctx.type = 'html';
        ctx.body = page.html;
      },
    };
  }
}

/**
 * Where a provider page's forms may lead besides itself: the logout page's confirmation leads on to the app's
 * post-logout redirect URI (browsers hold form submissions' redirects to the form-action directive too).
 */
function formOrigins(ctx: { path: string; query: Record<string, unknown> }): string[] {
  if (ctx.path !== ROUTES.end_session) return [];
  const target = ctx.query['post_logout_redirect_uri'];
  const origin = typeof target === 'string' ? URL.parse(target)?.origin : undefined;
  return origin && origin !== 'null' ? [origin] : [];
}

/**
 * The keys the provider signs its cookies with: one derived from each private signing key, the signing one first,
 * so that every instance signs alike, and a cookie signed before a rotation still verifies while its key does.
 */
function cookieKeys(keys: KeyRing): Buffer[] {
  return keys.privateJwks
    .filter((jwk) => typeof jwk.d === 'string')
    .map((jwk) => Buffer.from(hkdfSync('sha256', Buffer.from(jwk.d!, 'base64url'), Buffer.alloc(0), 'user-auth-service provider cookies', 32)));
}
