/**
 * Every text the pages show, by key: English is shipped. A translation is another object with the same keys
 * (TypeScript checks it has them all); `{name}` is a value put in by the page.
 */
export const ENGLISH = {
  'language': 'en',

  'brand.home': '{product} home',
  'skip.main': 'Skip to the content',

  'signIn.title': 'Sign in',
  'signIn.heading': 'Sign in to {product}',
  'signIn.toApp': 'to continue to {app}',
  'signIn.again': '{app} asks you to sign in again.',
  'signIn.secondFactorWanted': '{app} asks for a second factor: sign in with your password and a code from your authenticator app.',
  'signIn.submit': 'Sign in',
  'signIn.passkey': 'Use a passkey',
  'signIn.or': 'or',
  'signIn.noAccount': 'No account yet?',
  'signIn.signUp': 'Create an account',
  'signIn.cancel': 'Cancel and go back to {app}',

  'secondStep.title': 'Second step',
  'secondStep.heading': 'Enter a code',
  'secondStep.intro': 'Open your authenticator app and enter the 6-digit code it shows for {product}.',
  'secondStep.submit': 'Verify',
  'secondStep.recoveryIntro': 'Lost your authenticator app? Enter one of your recovery codes instead.',
  'secondStep.recoverySubmit': 'Use the recovery code',
  'secondStep.passkey': 'Use a passkey instead',

  'signUp.title': 'Create an account',
  'signUp.heading': 'Create an account on {product}',
  'signUp.submit': 'Create account',
  'signUp.haveAccount': 'Already have an account?',
  'signUp.signIn': 'Sign in',
  'signUp.passwordHint': 'At least 10 characters; a few words you will remember make a good one.',

  'field.username': 'Username',
  'field.password': 'Password',
  'field.passwordConfirm': 'Repeat the password',
  'field.currentPassword': 'Current password',
  'field.newPassword': 'New password',
  'field.newPasswordConfirm': 'Repeat the new password',
  'field.newUsername': 'New username',
  'field.code': 'Code from the authenticator app',
  'field.recoveryCode': 'Recovery code',
  'field.passkeyName': 'Name of the passkey',
  'field.proofHint': 'Not needed within a few minutes of signing in.',

  'account.title': 'Your account',
  'account.heading': 'Your account',
  'account.signedInAs': 'Signed in as {username}',
  'account.signOut': 'Sign out',

  'sessions.heading': 'Where you are signed in',
  'sessions.current': 'This browser',
  'sessions.since': 'Signed in {time}',
  'sessions.lastUsed': 'last used {time}',
  'sessions.unknownDevice': 'Unknown device',
  'sessions.end': 'Sign out this session',
  'sessions.endOthers': 'Sign out everywhere else',

  'username.heading': 'Username',
  'username.submit': 'Change username',

  'password.heading': 'Password',
  'password.submit': 'Change password',
  'password.othersSignedOut': 'Changing it signs you out everywhere else.',

  'totp.heading': 'Authenticator app',
  'totp.off': 'Signing in needs your password only. Add an authenticator app for a second step.',
  'totp.on': 'Signing in needs a code from your authenticator app. Recovery codes left: {count}.',
  'totp.add': 'Add an authenticator app',
  'totp.remove': 'Remove the authenticator app',
  'totp.newCodes': 'Get new recovery codes',
  'totp.enrolTitle': 'Add an authenticator app',
  'totp.enrolIntro': 'Scan this code with your authenticator app, or type the key into it. Then enter the code the app shows.',
  'totp.qrLabel': 'QR code of the key for your authenticator app',
  'totp.secret': 'Key: {secret}',
  'totp.confirm': 'Turn on',
  'totp.codesTitle': 'Your recovery codes',
  'totp.codesIntro': 'Each code signs you in once if you lose your authenticator app. Store them somewhere safe: they are not shown again.',
  'totp.codesDone': 'I have stored them',

  'passkeys.heading': 'Passkeys',
  'passkeys.none': 'No passkeys yet.',
  'passkeys.created': 'Added {time}',
  'passkeys.lastUsed': 'last used {time}',
  'passkeys.rename': 'Rename',
  'passkeys.remove': 'Remove',
  'passkeys.add': 'Add a passkey',
  'passkeys.needsScript': 'Adding a passkey needs JavaScript.',

  'activity.heading': 'Recent activity',
  'activity.none': 'Nothing yet.',
  'activity.item': '{event}, {time}',

  'delete.heading': 'Delete your account',
  'delete.warning': 'This deletes your account and signs you out everywhere, for good.',
  'delete.submit': 'Delete my account',

  'done.username': 'Your username is changed.',
  'done.password': 'Your password is changed; every other session is signed out.',
  'done.sessionEnded': 'That session is signed out.',
  'done.othersEnded': 'Every other session is signed out.',
  'done.totpRemoved': 'The authenticator app is removed.',
  'done.passkeyAdded': 'The passkey is added.',
  'done.passkeyRenamed': 'The passkey is renamed.',
  'done.passkeyRemoved': 'The passkey is removed.',
  'done.signedOut': 'You are signed out.',
  'done.deleted': 'Your account is deleted.',

  'logout.title': 'Sign out',
  'logout.heading': 'Sign out of {product}?',
  'logout.fromApp': '{app} asks to sign you out.',
  'logout.yes': 'Sign out',
  'logout.no': 'Stay signed in',
  'loggedOut.title': 'Signed out',
  'loggedOut.heading': 'You are signed out',
  'loggedOut.fromApp': 'You are signed out of {app}.',

  'error.title': 'Something went wrong',
  'error.heading': 'This request cannot go on',
  'error.expiredInteraction': 'This sign-in has expired, or began in another browser. Go back to the app and start again.',
  'error.code': 'Error code: {code}',
  'error.backToAccount': 'Go to your account',

  'time.ago.seconds': 'just now',
  'time.ago.minutes': '{count} min ago',
  'time.ago.hours': '{count} h ago',
  'time.ago.days': '{count} days ago',

  // The security events of the audit trail, by their type.
  'events.register': 'Account created',
  'events.login_succeeded': 'Signed in',
  'events.login_failed': 'Failed sign-in',
  'events.logout': 'Signed out',
  'events.session_revoked': 'Session signed out',
  'events.refresh_token_reused': 'A session was ended: its token was used twice',
  'events.password_changed': 'Password changed',
  'events.username_changed': 'Username changed',
  'events.mfa_enrolled': 'Authenticator app added',
  'events.mfa_removed': 'Authenticator app removed',
  'events.recovery_codes_replaced': 'New recovery codes',
  'events.passkey_added': 'Passkey added',
  'events.passkey_removed': 'Passkey removed',
  'events.account_recovered': 'Password reset with a recovery code',
  'events.admin_action': 'Changed by an administrator',
  'events.other': 'Security event',

  // The answers of the rules the pages share with the JSON API, by their error code.
  'errors.invalid_credentials': 'Wrong username or password.',
  'errors.too_many_attempts': 'Too many attempts. Try again in {seconds} seconds.',
  'errors.rate_limiter_unavailable': 'Sign-ins are paused for a moment. Try again shortly.',
  'errors.overloaded': 'The service is busy. Try again in a few seconds.',
  'errors.database_unavailable': 'The service is unavailable. Try again shortly.',
  'errors.account_locked': 'This account is locked. Contact the people who run this service.',
  'errors.invalid_mfa_code': 'That code is wrong, expired or already used.',
  'errors.mfa_token_expired': 'This sign-in took too long or had too many wrong codes. Sign in again.',
  'errors.mfa_required': 'This account has an authenticator app: enter a code from it too.',
  'errors.invalid_username': 'That username cannot be used: {detail}',
  'errors.invalid_password': 'That password cannot be used: {detail}',
  'errors.weak_password': 'That password is too easy to guess: {detail}',
  'errors.password_mismatch': 'The two passwords are not the same.',
  'errors.username_taken': 'That username is taken, or looks too much like one that is.',
  'errors.reauthentication_required': 'Enter your current password (and a code, if you have an authenticator app) to do this.',
  'errors.mfa_already_enrolled': 'This account has an authenticator app already.',
  'errors.mfa_unavailable': 'Authenticator apps cannot be added on this service right now.',
  'errors.not_found': 'That is not there any more.',
  'errors.invalid_passkey': 'The passkey could not be checked. Try again.',
  'errors.passkey_exists': 'That passkey is added already.',
  'errors.invalid_csrf_token': 'This form has expired, or came from another site. Reload the page and try again.',
  'errors.invalid_request': 'Something in the form is missing or wrong: {detail}',
  'errors.invalid_token': 'You were signed out. Sign in again.',
  'errors.forbidden': 'That is not allowed.',
  'errors.internal_error': 'Something went wrong on our side. Try again.',
} as const;

export type TextKey = keyof typeof ENGLISH;
export type Catalog = { readonly [K in TextKey]: string };

/** The catalog's text for `key`, each `{name}` replaced by its value. */
export function text(catalog: Catalog, key: TextKey, values: Record<string, string | number> = {}): string {
  return catalog[key].replace(/\{(\w+)\}/g, (whole, name: string) => (name in values ? String(values[name]) : whole));
}

/** The catalog's key for an error code, if it has one. */
export function errorKey(code: string): TextKey | undefined {
  const key = `errors.${code}`;
  return key in ENGLISH ? (key as TextKey) : undefined;
}

/** The catalog's key for an audit event type. */
export function eventKey(type: string): TextKey {
  const key = `events.${type}`;
  return key in ENGLISH ? (key as TextKey) : 'events.other';
}
