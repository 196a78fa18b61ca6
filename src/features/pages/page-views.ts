import { eventKey, text, type Catalog, type TextKey } from './page-text.js';
import { html, trusted, type SafeHtml } from './page-html.js';

export interface Branding {
  productName: string;
  logoUrl: string | undefined;
  accentColour: string;
}

/** A refusal as a page shows it: the catalog's text, and the error code the JSON API answers for it. */
export interface PageError {
  code: string;
  text: string;
}

/** The fields of a form that proves, again, who the user is (see Reauthentication). */
export interface ProofView {
  /** The account has an authenticator app: a code is asked for too. */
  secondFactor: boolean;
}

export interface SignInView {
  /** Where its forms post: `/signin…`, or `/interaction/<uid>/…` in an app's sign-in. */
  base: string;
  csrf: string;
  username?: string | undefined;
  error?: PageError | undefined;
  notice?: string | undefined;
  /** The app the sign-in is for. */
  app?: string | undefined;
  /** Why the app sends the user here again. */
  reason?: 'again' | 'second-factor' | undefined;
  passkeys: boolean;
  signUpHref: string;
  /** An app's sign-in may be given up: the app gets access_denied. */
  cancel: boolean;
}

export interface SecondStepView {
  base: string;
  csrf: string;
  mfaToken: string;
  passkeys: boolean;
  error?: PageError | undefined;
  app?: string | undefined;
}

export interface SignUpView {
  base: string;
  csrf: string;
  username?: string | undefined;
  error?: PageError | undefined;
  signInHref: string;
  app?: string | undefined;
}

export interface AccountView {
  csrf: string;
  username: string;
  notice?: string | undefined;
  error?: PageError | undefined;
  /** Which section the error is about, to show it there. */
  errorAt?: string | undefined;
  sessions: { id: string; current: boolean; userAgent: string | null; createdAt: Date; lastUsedAt: Date }[];
  totp: { id: string } | undefined;
  recoveryCodesLeft: number;
  passkeys: { id: string; name: string; createdAt: Date; lastUsedAt: Date | null }[] | undefined;
  activity: { type: string; time: Date }[];
  now: Date;
}

export interface EnrolView {
  csrf: string;
  factorId: string;
  secret: string;
  qrSvg: string;
  error?: PageError | undefined;
}

type Section = 'sessions' | 'username' | 'password' | 'totp' | 'passkeys' | 'delete';

/**
 * The pages' HTML: every text from the catalog, every value escaped, no inline script or style. Each page has a
 * `main` landmark, one h1, labelled fields and a lang attribute, and reads on a 375 px wide screen.
 */
export class PageViews {
  constructor(
    private readonly branding: Branding,
    private readonly catalog: Catalog,
    /** PUBLIC_URL's path: where the pages are, seen from the browser. */
    readonly basePath: string,
    /** Served over https: browsers are told to use nothing else. */
    private readonly https: boolean,
  ) {}

  t(key: TextKey, values: Record<string, string | number> = {}): string {
    return text(this.catalog, key, values);
  }

  /** The catalog's text as HTML, with markup (a <time>) where its `{name}` is. */
  private tHtml(key: TextKey, values: Record<string, SafeHtml | string | number>): SafeHtml {
    const parts = this.catalog[key].split(/\{(\w+)\}/);
    return html`${parts.map((part, i) => (i % 2 === 0 ? part : (values[part] ?? `{${part}}`)))}`;
  }

  href(path: string): string {
    return `${this.basePath}${path}`;
  }

  /** No inline script or style anywhere; forms post to this origin, and to `formOrigins` (where an app's sign-in goes back to). */
  contentSecurityPolicy(formOrigins: string[] = []): string {
    const logo = this.branding.logoUrl === undefined ? '' : ` ${new URL(this.branding.logoUrl).origin}`;
    const forms = [...new Set(formOrigins)].map((origin) => ` ${origin}`).join('');
    return (
      `default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:${logo}; connect-src 'self'; ` +
      `form-action 'self'${forms}; frame-ancestors 'none'; base-uri 'none'${this.https ? '; upgrade-insecure-requests' : ''}`
    );
  }

  private layout(input: { title: string; body: SafeHtml; narrow?: boolean; script?: boolean }): string {
    const { productName, logoUrl } = this.branding;
    return html`<!DOCTYPE html>
<html lang="${this.t('language')}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>${input.title} · ${productName}</title>
<link rel="stylesheet" href="${this.href('/assets/pages.css')}">
${input.script ? html`<script src="${this.href('/assets/passkeys.js')}" defer></script>` : ''}
</head>
<body>
<a class="skip" href="#main">${this.t('skip.main')}</a>
<header class="brand">${logoUrl ? html`<img src="${logoUrl}" alt="">` : ''}<span>${productName}</span></header>
<main id="main"${input.narrow ? html` class="narrow"` : ''}>
${input.body}
</main>
</body>
</html>
`.value;
  }

  private errorBox(error: PageError | undefined): SafeHtml {
    return error ? html`<p class="error" role="alert" data-error="${error.code}">${error.text}</p>` : html``;
  }

  private csrfField(csrf: string): SafeHtml {
    return html`<input type="hidden" name="csrf" value="${csrf}">`;
  }

  signIn(view: SignInView): string {
    const product = this.branding.productName;
    const app = view.app ?? product;
    const reason =
      view.reason === 'again' ? this.t('signIn.again', { app })
      : view.reason === 'second-factor' ? this.t('signIn.secondFactorWanted', { app })
      : undefined;
    const body = html`<h1>${this.t('signIn.heading', { product })}</h1>
${view.app ? html`<p class="muted">${this.t('signIn.toApp', { app: view.app })}</p>` : ''}
${reason ? html`<p class="notice">${reason}</p>` : ''}
${view.notice ? html`<p class="notice" role="status">${view.notice}</p>` : ''}
${this.errorBox(view.error)}
<form method="post" action="${this.href(`${view.base}/signin`)}">
${this.csrfField(view.csrf)}
<label for="username">${this.t('field.username')}</label>
<input id="username" name="username" type="text" autocomplete="username webauthn" autocapitalize="none" spellcheck="false" required value="${view.username ?? ''}">
<label for="password">${this.t('field.password')}</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">${this.t('signIn.submit')}</button>
</form>
${view.passkeys ? this.passkeyForm('sign-in', `${view.base}/passkey`, view.csrf, '/api/auth/passkeys/login/options') : ''}
<p>${this.t('signIn.noAccount')} <a href="${this.href(view.signUpHref)}">${this.t('signIn.signUp')}</a></p>
${view.cancel ? this.cancelForm(view.base, view.csrf, app) : ''}`;
    return this.layout({ title: this.t('signIn.title'), body, narrow: true, script: view.passkeys });
  }

  private passkeyForm(kind: 'sign-in' | 'second-step', action: string, csrf: string, optionsPath: string, mfaToken?: string): SafeHtml {
    const id = `passkey-${kind}`;
    return html`<form id="${id}" method="post" action="${this.href(action)}">
${this.csrfField(csrf)}
${mfaToken === undefined ? '' : html`<input type="hidden" name="mfa_token" value="${mfaToken}">`}
<input type="hidden" name="response" value="">
<p class="or" hidden data-with-script>${this.t('signIn.or')}</p>
<button type="button" class="secondary" hidden data-passkey="${kind}" data-form="${id}" data-status="${id}-status" data-options="${this.href(optionsPath)}" data-error="${this.t('errors.invalid_passkey')}">${kind === 'sign-in' ? this.t('signIn.passkey') : this.t('secondStep.passkey')}</button>
<p class="error" role="alert" id="${id}-status" hidden></p>
</form>`;
  }

  private cancelForm(base: string, csrf: string, app: string): SafeHtml {
    return html`<form method="post" action="${this.href(`${base}/cancel`)}">
${this.csrfField(csrf)}
<button type="submit" class="secondary">${this.t('signIn.cancel', { app })}</button>
</form>`;
  }

  secondStep(view: SecondStepView): string {
    const product = this.branding.productName;
    const body = html`<h1>${this.t('secondStep.heading')}</h1>
${view.app ? html`<p class="muted">${this.t('signIn.toApp', { app: view.app })}</p>` : ''}
${this.errorBox(view.error)}
<form method="post" action="${this.href(`${view.base}/second-step`)}">
${this.csrfField(view.csrf)}
<input type="hidden" name="mfa_token" value="${view.mfaToken}">
<p>${this.t('secondStep.intro', { product })}</p>
<label for="code">${this.t('field.code')}</label>
<input id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9 ]*" maxlength="32" required>
<button type="submit">${this.t('secondStep.submit')}</button>
</form>
<form method="post" action="${this.href(`${view.base}/second-step`)}">
${this.csrfField(view.csrf)}
<input type="hidden" name="mfa_token" value="${view.mfaToken}">
<p>${this.t('secondStep.recoveryIntro')}</p>
<label for="recovery_code">${this.t('field.recoveryCode')}</label>
<input id="recovery_code" name="recovery_code" type="text" autocomplete="off" autocapitalize="none" spellcheck="false" maxlength="64" required>
<button type="submit" class="secondary">${this.t('secondStep.recoverySubmit')}</button>
</form>
${view.passkeys ? this.passkeyForm('second-step', `${view.base}/second-step`, view.csrf, '/api/auth/login/mfa/passkey/options', view.mfaToken) : ''}`;
    return this.layout({ title: this.t('secondStep.title'), body, narrow: true, script: view.passkeys });
  }

  signUp(view: SignUpView): string {
    const product = this.branding.productName;
    const body = html`<h1>${this.t('signUp.heading', { product })}</h1>
${view.app ? html`<p class="muted">${this.t('signIn.toApp', { app: view.app })}</p>` : ''}
${this.errorBox(view.error)}
<form method="post" action="${this.href(`${view.base}/signup`)}">
${this.csrfField(view.csrf)}
<label for="username">${this.t('field.username')}</label>
<input id="username" name="username" type="text" autocomplete="username" autocapitalize="none" spellcheck="false" required value="${view.username ?? ''}">
<label for="password">${this.t('field.password')}</label>
<input id="password" name="password" type="password" autocomplete="new-password" required aria-describedby="password-hint">
<p class="hint" id="password-hint">${this.t('signUp.passwordHint')}</p>
<label for="password_confirm">${this.t('field.passwordConfirm')}</label>
<input id="password_confirm" name="password_confirm" type="password" autocomplete="new-password" required>
<button type="submit">${this.t('signUp.submit')}</button>
</form>
<p>${this.t('signUp.haveAccount')} <a href="${this.href(view.signInHref)}">${this.t('signUp.signIn')}</a></p>`;
    return this.layout({ title: this.t('signUp.title'), body, narrow: true });
  }

  private ago(time: Date, now: Date): SafeHtml {
    const seconds = Math.max(0, Math.round((now.getTime() - time.getTime()) / 1000));
    const words =
      seconds < 60 ? this.t('time.ago.seconds')
      : seconds < 3600 ? this.t('time.ago.minutes', { count: Math.floor(seconds / 60) })
      : seconds < 86_400 ? this.t('time.ago.hours', { count: Math.floor(seconds / 3600) })
      : this.t('time.ago.days', { count: Math.floor(seconds / 86_400) });
    return html`<time datetime="${time.toISOString()}">${words}</time>`;
  }

  /** Fields that prove who the user is again: ids unique to the form (`prefix`). */
  private proofFields(prefix: string, proof: ProofView): SafeHtml {
    return html`<label for="${prefix}-current">${this.t('field.currentPassword')}</label>
<input id="${prefix}-current" name="current_password" type="password" autocomplete="current-password" aria-describedby="${prefix}-proof-hint">
${proof.secondFactor ? html`<label for="${prefix}-code">${this.t('field.code')}</label>
<input id="${prefix}-code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" maxlength="32" aria-describedby="${prefix}-proof-hint">` : ''}
<p class="hint" id="${prefix}-proof-hint">${this.t('field.proofHint')}</p>`;
  }

  account(view: AccountView): string {
    const proof: ProofView = { secondFactor: view.totp !== undefined };
    const errorAt = (section: Section) => (view.errorAt === section ? this.errorBox(view.error) : html``);
    const csrf = this.csrfField(view.csrf);
    const sessions = view.sessions.map(
      (s) => html`<li>${s.current ? html`<strong>${this.t('sessions.current')}</strong>` : s.userAgent ?? this.t('sessions.unknownDevice')}<br>
<span class="muted">${this.tHtml('sessions.since', { time: this.ago(s.createdAt, view.now) })}, ${this.tHtml('sessions.lastUsed', { time: this.ago(s.lastUsedAt, view.now) })}</span>
${s.current ? '' : html`<form method="post" action="${this.href('/account/sessions/end')}">${csrf}<input type="hidden" name="id" value="${s.id}"><button type="submit" class="small secondary">${this.t('sessions.end')}</button></form>`}</li>`,
    );
    const passkeys = view.passkeys?.map(
      (p, i) => html`<li><strong>${p.name}</strong><br><span class="muted">${this.tHtml('passkeys.created', { time: this.ago(p.createdAt, view.now) })}${p.lastUsedAt ? html`, ${this.tHtml('passkeys.lastUsed', { time: this.ago(p.lastUsedAt, view.now) })}` : ''}</span>
<form method="post" action="${this.href('/account/passkeys/rename')}">${csrf}<input type="hidden" name="id" value="${p.id}">
<label for="passkey-name-${i}">${this.t('field.passkeyName')}</label><input id="passkey-name-${i}" name="name" type="text" maxlength="64" required value="${p.name}">
<button type="submit" class="small secondary">${this.t('passkeys.rename')}</button></form>
<form method="post" action="${this.href('/account/passkeys/remove')}">${csrf}<input type="hidden" name="id" value="${p.id}">
${this.proofFields(`passkey-remove-${i}`, proof)}
<button type="submit" class="small danger">${this.t('passkeys.remove')}</button></form></li>`,
    );
    const body = html`<h1>${this.t('account.heading')}</h1>
<p>${this.t('account.signedInAs', { username: view.username })}</p>
${view.notice ? html`<p class="notice" role="status">${view.notice}</p>` : ''}
${view.errorAt === undefined ? this.errorBox(view.error) : ''}
<form method="post" action="${this.href('/signout')}">${csrf}<button type="submit" class="secondary">${this.t('account.signOut')}</button></form>

<section aria-labelledby="sessions-heading">
<h2 id="sessions-heading">${this.t('sessions.heading')}</h2>
${errorAt('sessions')}
<ul class="plain">${sessions}</ul>
${view.sessions.length > 1 ? html`<form method="post" action="${this.href('/account/sessions/end-others')}">${csrf}<button type="submit" class="secondary">${this.t('sessions.endOthers')}</button></form>` : ''}
</section>

<section aria-labelledby="username-heading">
<h2 id="username-heading">${this.t('username.heading')}</h2>
${errorAt('username')}
<form method="post" action="${this.href('/account/username')}">${csrf}
<label for="new_username">${this.t('field.newUsername')}</label>
<input id="new_username" name="new_username" type="text" autocomplete="username" autocapitalize="none" spellcheck="false" required value="${view.username}">
<button type="submit">${this.t('username.submit')}</button>
</form>
</section>

<section aria-labelledby="password-heading">
<h2 id="password-heading">${this.t('password.heading')}</h2>
${errorAt('password')}
<p class="muted">${this.t('password.othersSignedOut')}</p>
<form method="post" action="${this.href('/account/password')}">${csrf}
${this.proofFields('password', proof)}
<label for="new_password">${this.t('field.newPassword')}</label>
<input id="new_password" name="new_password" type="password" autocomplete="new-password" required>
<label for="new_password_confirm">${this.t('field.newPasswordConfirm')}</label>
<input id="new_password_confirm" name="new_password_confirm" type="password" autocomplete="new-password" required>
<button type="submit">${this.t('password.submit')}</button>
</form>
</section>

<section aria-labelledby="totp-heading">
<h2 id="totp-heading">${this.t('totp.heading')}</h2>
${errorAt('totp')}
${view.totp
  ? html`<p>${this.t('totp.on', { count: view.recoveryCodesLeft })}</p>
<form method="post" action="${this.href('/account/recovery-codes')}">${csrf}
${this.proofFields('codes', proof)}
<button type="submit" class="secondary">${this.t('totp.newCodes')}</button>
</form>
<form method="post" action="${this.href('/account/totp/remove')}">${csrf}<input type="hidden" name="id" value="${view.totp.id}">
${this.proofFields('totp-remove', proof)}
<button type="submit" class="danger">${this.t('totp.remove')}</button>
</form>`
  : html`<p>${this.t('totp.off')}</p>
<form method="post" action="${this.href('/account/totp')}">${csrf}
${this.proofFields('totp-add', proof)}
<button type="submit">${this.t('totp.add')}</button>
</form>`}
</section>

${view.passkeys === undefined ? '' : html`<section aria-labelledby="passkeys-heading">
<h2 id="passkeys-heading">${this.t('passkeys.heading')}</h2>
${errorAt('passkeys')}
${view.passkeys.length === 0 ? html`<p>${this.t('passkeys.none')}</p>` : html`<ul class="plain">${passkeys}</ul>`}
<form id="passkey-register" method="post" action="${this.href('/account/passkeys')}">${csrf}
<input type="hidden" name="response" value="">
<label for="passkey-new-name">${this.t('field.passkeyName')}</label>
<input id="passkey-new-name" name="name" type="text" maxlength="64">
${this.proofFields('passkey-add', proof)}
<p class="muted" data-without-script>${this.t('passkeys.needsScript')}</p>
<button type="button" hidden data-passkey="register" data-form="passkey-register" data-status="passkey-register-status" data-options="${this.href('/account/passkeys/options')}" data-error="${this.t('errors.invalid_passkey')}">${this.t('passkeys.add')}</button>
<p class="error" role="alert" id="passkey-register-status" hidden></p>
</form>
</section>`}

<section aria-labelledby="activity-heading">
<h2 id="activity-heading">${this.t('activity.heading')}</h2>
${view.activity.length === 0 ? html`<p>${this.t('activity.none')}</p>` : html`<ul class="plain">${view.activity.map((event) => html`<li>${this.tHtml('activity.item', { event: this.t(eventKey(event.type)), time: this.ago(event.time, view.now) })}</li>`)}</ul>`}
</section>

<section aria-labelledby="delete-heading">
<h2 id="delete-heading">${this.t('delete.heading')}</h2>
${errorAt('delete')}
<p>${this.t('delete.warning')}</p>
<form method="post" action="${this.href('/account/delete')}">${csrf}
${this.proofFields('delete', proof)}
<button type="submit" class="danger">${this.t('delete.submit')}</button>
</form>
</section>`;
    return this.layout({ title: this.t('account.title'), body, script: view.passkeys !== undefined });
  }

  enrolTotp(view: EnrolView): string {
    const body = html`<h1>${this.t('totp.enrolTitle')}</h1>
${this.errorBox(view.error)}
<p>${this.t('totp.enrolIntro')}</p>
<div class="qr" role="img" aria-label="${this.t('totp.qrLabel')}">${trusted(view.qrSvg)}</div>
<p class="key">${this.t('totp.secret', { secret: view.secret })}</p>
<form method="post" action="${this.href('/account/totp/confirm')}">
${this.csrfField(view.csrf)}
<input type="hidden" name="factor_id" value="${view.factorId}">
<input type="hidden" name="secret" value="${view.secret}">
<label for="code">${this.t('field.code')}</label>
<input id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" maxlength="32" required>
<button type="submit">${this.t('totp.confirm')}</button>
</form>`;
    return this.layout({ title: this.t('totp.enrolTitle'), body, narrow: true });
  }

  recoveryCodes(codes: string[]): string {
    const body = html`<h1>${this.t('totp.codesTitle')}</h1>
<p>${this.t('totp.codesIntro')}</p>
<ol class="codes">${codes.map((code) => html`<li>${code}</li>`)}</ol>
<p><a href="${this.href('/account')}">${this.t('totp.codesDone')}</a></p>`;
    return this.layout({ title: this.t('totp.codesTitle'), body, narrow: true });
  }

  error(input: { title?: string; message: string; code?: string | undefined; accountLink?: boolean }): string {
    const body = html`<h1>${input.title ?? this.t('error.heading')}</h1>
<p class="error" role="alert"${input.code ? html` data-error="${input.code}"` : ''}>${input.message}</p>
${input.code ? html`<p class="muted">${this.t('error.code', { code: input.code })}</p>` : ''}
${input.accountLink ? html`<p><a href="${this.href('/account')}">${this.t('error.backToAccount')}</a></p>` : ''}`;
    return this.layout({ title: this.t('error.title'), body, narrow: true });
  }

  confirmLogout(input: { form: string; clientName: string | undefined }): string {
    const product = this.branding.productName;
    const body = html`<h1>${this.t('logout.heading', { product })}</h1>
${input.clientName ? html`<p>${this.t('logout.fromApp', { app: input.clientName })}</p>` : ''}
${trusted(input.form)}
<button type="submit" form="op.logoutForm" name="logout" value="yes">${this.t('logout.yes')}</button>
<button type="submit" form="op.logoutForm" class="secondary">${this.t('logout.no')}</button>`;
    return this.layout({ title: this.t('logout.title'), body, narrow: true });
  }

  loggedOut(input: { clientName: string | undefined }): string {
    const body = html`<h1>${this.t('loggedOut.heading')}</h1>
${input.clientName ? html`<p>${this.t('loggedOut.fromApp', { app: input.clientName })}</p>` : ''}`;
    return this.layout({ title: this.t('loggedOut.title'), body, narrow: true });
  }
}
