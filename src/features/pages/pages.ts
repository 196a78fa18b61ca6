import type { ServiceError } from '../../kernel/errors.js';
import type { Authenticated } from '../../kernel/model.js';
import type { BrowserSession, ProviderBrowser, ProviderPage } from '../oidc/openid-provider.js';
import type { PageSessions } from './page-sessions.js';
import { errorKey } from './page-text.js';
import type { PageError, PageViews } from './page-views.js';
import './page-errors.js';

/** Codes whose domain message says what exactly is wrong (a password rule, a name rule): shown after the catalog's text. */
const DETAILED = new Set(['invalid_username', 'invalid_password', 'weak_password', 'invalid_request']);

export function browserSessionOf(auth: Authenticated): BrowserSession {
  return {
    userId: auth.user.id,
    sessionId: auth.session.id,
    authenticatedAt: auth.session.authenticatedAt,
    amr: auth.session.amr,
    aal: auth.session.aal,
  };
}

/**
 * The service's own pages for browsers: their HTML (views), the browser's sign-in (page sessions), and what the
 * OpenID provider asks of them (it shows its few pages through these, and learns who the browser is from them).
 */
export class Pages implements ProviderBrowser {
  constructor(
    readonly views: PageViews,
    readonly sessions: PageSessions,
  ) {}

  /** A refusal of the rules, as a page shows it: the catalog's text for its code (and the rule's detail where it helps). */
  errorOf(error: ServiceError): PageError {
    const key = errorKey(error.code);
    if (!key) return { code: error.code, text: this.views.t('errors.internal_error') };
    const values: Record<string, string | number> = { detail: DETAILED.has(error.code) ? error.message : '' };
    if (error.retryAfterSeconds !== undefined) values['seconds'] = error.retryAfterSeconds;
    return { code: error.code, text: this.views.t(key, values).replace(/:\s*$/, '.') };
  }

  headers(formOrigins: string[] = []): Record<string, string> {
    return {
      'content-security-policy': this.views.contentSecurityPolicy(formOrigins),
      'cache-control': 'no-store',
      'x-frame-options': 'DENY',
    };
  }

  async session(cookieHeader: string | undefined): Promise<BrowserSession | undefined> {
    const auth = await this.sessions.current(cookieHeader);
    return auth && browserSessionOf(auth);
  }

  signOut(cookieHeader: string | undefined): Promise<string[]> {
    return this.sessions.signOut(cookieHeader);
  }

  contentSecurityPolicy(formOrigins: string[]): string {
    return this.views.contentSecurityPolicy(formOrigins);
  }

  errorPage(error: { error: string; description: string | undefined; status: number }): ProviderPage {
    return { html: this.views.error({ message: error.description ?? error.error, code: error.error }), headers: this.headers() };
  }

  confirmLogoutPage(input: { form: string; clientName: string | undefined; formOrigins: string[] }): ProviderPage {
    return { html: this.views.confirmLogout(input), headers: this.headers(input.formOrigins) };
  }

  loggedOutPage(input: { clientName: string | undefined }): ProviderPage {
    return { html: this.views.loggedOut(input), headers: this.headers() };
  }
}
