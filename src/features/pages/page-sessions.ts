import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Authenticated, SignedIn } from '../../kernel/model.js';
import type { Sessions } from '../sessions/sessions.js';

export interface PageCookieSettings {
  /** `__Host-` names and the Secure attribute: https, or a loopback address that browsers treat as secure. */
  secure: boolean;
  /** The session's absolute lifetime: the cookie outlives it by nothing. */
  sessionMaxAgeSeconds: number;
  deviceMaxAgeSeconds: number;
}

const CSRF_BYTES = 32;
const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;

/** `name=value` pairs of a Cookie header; the first of a name wins, as browsers send the most specific first. */
export function parseCookies(header: string | undefined): Map<string, string> {
  const cookies = new Map<string, string>();
  for (const pair of (header ?? '').split(';')) {
    const at = pair.indexOf('=');
    if (at <= 0) continue;
    const name = pair.slice(0, at).trim();
    if (!cookies.has(name)) cookies.set(name, pair.slice(at + 1).trim());
  }
  return cookies;
}

/**
 * A browser's sign-in on the pages: a session of the service (the one the JSON API's sign-in starts), whose
 * refresh token the browser keeps in an HttpOnly cookie; its device token in another, as an app keeps it. The
 * pages resume the session from the cookie at each request (sessions.resume), so a logout, a password change or
 * a lock ends it here as everywhere. A third cookie carries the token every form must send back (CSRF).
 */
export class PageSessions {
  readonly names: { session: string; device: string; csrf: string };

  constructor(
    private readonly sessions: Sessions,
    private readonly settings: PageCookieSettings,
  ) {
    const prefix = settings.secure ? '__Host-' : '';
    this.names = { session: `${prefix}session`, device: `${prefix}device`, csrf: `${prefix}csrf` };
  }

  private cookie(name: string, value: string, maxAgeSeconds: number): string {
    return `${name}=${value}; Path=/; Max-Age=${maxAgeSeconds}; HttpOnly; SameSite=Lax${this.settings.secure ? '; Secure' : ''}`;
  }

  /** The live session the cookies carry, if any. */
  async current(cookieHeader: string | undefined): Promise<Authenticated | undefined> {
    const token = parseCookies(cookieHeader).get(this.names.session);
    return token === undefined ? undefined : this.sessions.resume(token);
  }

  /** The device token the browser keeps, if any: sign-ins present it, as apps present theirs. */
  deviceToken(cookieHeader: string | undefined): string | undefined {
    return parseCookies(cookieHeader).get(this.names.device);
  }

  /** The cookies of a new sign-in: its session, and its device token. */
  signedInCookies(signedIn: SignedIn): string[] {
    return [
      this.cookie(this.names.session, signedIn.refreshToken, this.settings.sessionMaxAgeSeconds),
      ...(signedIn.deviceToken === undefined ? [] : [this.cookie(this.names.device, signedIn.deviceToken, this.settings.deviceMaxAgeSeconds)]),
    ];
  }

  forgetSessionCookie(): string {
    return this.cookie(this.names.session, '', 0);
  }

  /** What forgets a session cookie the browser still sends: none if it sends none. */
  signOutCookies(cookieHeader: string | undefined): string[] {
    return parseCookies(cookieHeader).has(this.names.session) ? [this.forgetSessionCookie()] : [];
  }

  /** Ends the session the cookies carry, if it is live; the Set-Cookie values that forget it. */
  async signOut(cookieHeader: string | undefined): Promise<string[]> {
    const auth = await this.current(cookieHeader);
    if (auth) await this.sessions.logout(auth, 'local');
    return this.signOutCookies(cookieHeader);
  }

  /** The token the page's forms carry: the browser's, or a new one to set. */
  csrf(cookieHeader: string | undefined): { token: string; setCookie: string | undefined } {
    const current = parseCookies(cookieHeader).get(this.names.csrf);
    if (current !== undefined && TOKEN_SHAPE.test(current)) return { token: current, setCookie: undefined };
    const token = randomBytes(CSRF_BYTES).toString('base64url');
    return { token, setCookie: this.cookie(this.names.csrf, token, this.settings.sessionMaxAgeSeconds) };
  }

  /**
   * Whether a form post carries the token of the browser that was shown the form (double submit: another site
   * can make a browser post, not read or set its __Host- cookie), compared in constant time.
   */
  csrfMatches(cookieHeader: string | undefined, submitted: string | undefined): boolean {
    const expected = parseCookies(cookieHeader).get(this.names.csrf);
    if (expected === undefined || submitted === undefined || !TOKEN_SHAPE.test(expected) || !TOKEN_SHAPE.test(submitted)) return false;
    return timingSafeEqual(Buffer.from(expected), Buffer.from(submitted));
  }
}
