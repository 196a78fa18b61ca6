// A minimal browser client: register, log in (with a code from an authenticator app once one is added, or with a
// passkey), show /api/auth/me, log out. The access token stays in memory (a page reload signs out); a real app
// would also keep the refresh token and call /api/auth/refresh. Passkeys use @simplewebauthn/browser, loaded by
// index.html from vendor/ as window.SimpleWebAuthnBrowser.
const api = new URLSearchParams(location.search).get('api') || 'http://localhost:5000';
let accessToken = null;
// Between the two steps of a sign-in: what the password earned, to send with the code.
let mfaToken = null;
// An authenticator app being added, until its first code confirms it.
let enrolmentId = null;

const $ = (id) => document.getElementById(id);
$('api').textContent = api;
$('origin').textContent = location.origin;

function show(text, isError = false) {
  $('status').textContent = text;
  $('status').className = isError ? 'error' : '';
}

async function call(method, path, body) {
  let response;
  try {
    response = await fetch(api + path, {
      method,
      headers: {
        ...(body ? { 'Content-Type': 'application/json' } : {}),
        ...(accessToken ? { Authorization: `Bearer ${accessToken}` } : {}),
      },
      body: body ? JSON.stringify(body) : undefined,
    });
  } catch {
    // What fetch reports when the browser refuses the answer (CORS) or cannot reach the service.
    throw new Error(`Blocked: the browser could not call ${api} from ${location.origin} (not an allowed origin, or the service is down).`);
  }
  const data = await response.json();
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

// A refusal of the service, with its code kept for the few the page answers itself.
class ApiError extends Error {
  constructor(status, data) {
    super(`${status} ${data.error}: ${data.message}`);
    this.status = status;
    this.code = data.error;
  }
}

function credentials() {
  return { username: $('username').value, password: $('password').value };
}

async function act(action) {
  try {
    await action();
  } catch (error) {
    show(error.message, true);
  }
}

$('register').addEventListener('click', () =>
  act(async () => {
    const { username, password } = credentials();
    const data = await call('POST', '/api/auth/register', { username, password, password_confirm: password });
    accessToken = data.access_token;
    show(`Registered and signed in as ${data.user.username}.`);
  }),
);

function askForCode(button) {
  $('code').value = '';
  $('code-field').hidden = false;
  $('confirm-totp').hidden = button !== 'confirm-totp';
  $('submit-code').hidden = button !== 'submit-code';
  $('code').focus();
}

function codeDone() {
  $('code-field').hidden = true;
  $('confirm-totp').hidden = true;
  $('submit-code').hidden = true;
}

// What a password or a passkey sign-in answered: a session, or the need for a code first.
function signedIn(data, how = '') {
  if (data.mfa_required) {
    // The first step was right; no token until a code from the app (or a recovery code) comes with mfa_token.
    mfaToken = data.mfa_token;
    askForCode('submit-code');
    show('Enter the code from your authenticator app.');
    return;
  }
  accessToken = data.access_token;
  show(`Signed in as ${data.user.username}${how}.`);
}

$('login').addEventListener('click', () =>
  act(async () => {
    signedIn(await call('POST', '/api/auth/login', credentials()));
  }),
);

$('submit-code').addEventListener('click', () =>
  act(async () => {
    const code = $('code').value.trim();
    // Recovery codes are longer than the app's six digits.
    const proof = /^\d{6}$/.test(code) ? { code } : { recovery_code: code };
    const data = await call('POST', '/api/auth/login/mfa', { mfa_token: mfaToken, ...proof });
    accessToken = data.access_token;
    mfaToken = null;
    codeDone();
    show(`Signed in as ${data.user.username} with a second factor.`);
  }),
);

$('enrol-totp').addEventListener('click', () =>
  act(async () => {
    const data = await call('POST', '/api/auth/mfa/totp', {});
    enrolmentId = data.id;
    $('totp-secret').textContent = data.secret;
    // As an image: an SVG in an <img> runs nothing, whatever it holds.
    $('qr').src = `data:image/svg+xml;base64,${btoa(data.qr_svg)}`;
    $('enrolment').hidden = false;
    askForCode('confirm-totp');
    show('Scan the QR code, then enter the code the app shows.');
  }),
);

$('confirm-totp').addEventListener('click', () =>
  act(async () => {
    const data = await call('POST', `/api/auth/mfa/totp/${enrolmentId}/verify`, { code: $('code').value.trim() });
    // This session is a two-factor one now; the answer's token says so.
    accessToken = data.access_token;
    enrolmentId = null;
    $('enrolment').hidden = true;
    codeDone();
    show(`Two-factor sign-in is on. Keep these recovery codes somewhere safe; each works once:\n${data.recovery_codes.join('\n')}`);
  }),
);

$('me').addEventListener('click', () =>
  act(async () => {
    const me = await call('GET', '/api/auth/me');
    show(`You are ${me.username} (user ${me.id}), since ${me.created_at}; signed in at assurance level ${me.aal}.`);
  }),
);

$('logout').addEventListener('click', () =>
  act(async () => {
    await call('POST', '/api/auth/logout', {});
    show('Signed out. The old token no longer works here.');
  }),
);

// Passkeys. The library is a separate file: if it did not load, the rest of the page still works.
function webAuthn() {
  const library = window.SimpleWebAuthnBrowser;
  if (!library) throw new Error('Passkeys are unavailable: vendor/simplewebauthn-browser/index.umd.min.js did not load.');
  if (!library.browserSupportsWebAuthn()) throw new Error('This browser does not support passkeys (WebAuthn).');
  return library;
}

// What the browser or the authenticator refused comes from the device, not the service: said in words, by its
// standard name (https://www.w3.org/TR/webauthn-3/#sctn-createCredential).
const CEREMONY_FAILURES = {
  NotAllowedError: 'it was cancelled, it timed out, or no passkey for this site was chosen',
  InvalidStateError: 'this device already holds a passkey for this account',
  SecurityError: `this page (${location.origin}) may not use passkeys for the service's domain`,
  AbortError: 'another passkey request replaced it',
  ConstraintError: 'this device cannot keep a passkey that signs in without a username',
  NotSupportedError: "this device supports none of the service's signature algorithms",
};

async function ceremony(what, run) {
  try {
    return await run();
  } catch (error) {
    const name = error?.name || 'Error';
    throw new Error(`${what}: ${CEREMONY_FAILURES[name] ?? error?.message ?? String(error)} (${name}).`);
  }
}

// Adding a passkey is a sensitive change: a session that signed in more than a few minutes ago proves the
// password again, and a code from the authenticator app too on an account that has one.
async function registrationOptions() {
  try {
    return await call('POST', '/api/auth/passkeys/register/options', {});
  } catch (error) {
    if (error.code !== 'reauthentication_required') throw error;
  }
  const password = $('password').value;
  if (!password) throw new Error('Your sign-in is not recent: type your password above, then add the passkey again.');
  const code = $('code-field').hidden ? '' : $('code').value.trim();
  const proof = /^\d{6}$/.test(code) ? { code } : code ? { recovery_code: code } : {};
  try {
    const options = await call('POST', '/api/auth/passkeys/register/options', { current_password: password, ...proof });
    if (code) codeDone();
    return options;
  } catch (error) {
    if (error.code !== 'mfa_required') throw error;
    askForCode(null);
    throw new Error('Enter the code from your authenticator app, then add the passkey again.');
  }
}

function passkeyLabel(passkey) {
  return passkey.name ? `"${passkey.name}"` : 'without a name';
}

function plural(count, noun) {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

async function removePasskey(passkey) {
  await call('DELETE', `/api/auth/passkeys/${encodeURIComponent(passkey.id)}`);
}

function passkeyItem(passkey) {
  const item = document.createElement('li');
  item.dataset.id = passkey.id;
  // Text, never HTML: a passkey's name is whatever its owner typed.
  const used = passkey.last_used_at ? `last used ${passkey.last_used_at}` : 'never used';
  item.append(`${passkey.name || 'Passkey without a name'}: added ${passkey.created_at}, ${used}${passkey.backed_up ? ', synced' : ''}`);
  const rename = document.createElement('button');
  rename.type = 'button';
  rename.className = 'rename-passkey';
  rename.textContent = 'Rename';
  rename.addEventListener('click', () =>
    act(async () => {
      const name = prompt('New name of the passkey', passkey.name ?? '');
      if (name === null) return;
      const data = await call('PATCH', `/api/auth/passkeys/${encodeURIComponent(passkey.id)}`, { name: name.trim() });
      await listPasskeys();
      show(`Passkey renamed ${passkeyLabel(data.passkey)}.`);
    }),
  );
  const remove = document.createElement('button');
  remove.type = 'button';
  remove.className = 'remove-passkey';
  remove.textContent = 'Remove';
  remove.addEventListener('click', () =>
    act(async () => {
      await removePasskey(passkey);
      await listPasskeys();
      show(`Passkey ${passkeyLabel(passkey)} removed: the service refuses it from now on.`);
    }),
  );
  item.append(' ', rename, remove);
  return item;
}

async function listPasskeys() {
  const { passkeys } = await call('GET', '/api/auth/passkeys');
  $('passkey-list').replaceChildren(...passkeys.map(passkeyItem));
  $('passkey-list').hidden = passkeys.length === 0;
  return passkeys;
}

$('add-passkey').addEventListener('click', () =>
  act(async () => {
    const { startRegistration } = webAuthn();
    const optionsJSON = await registrationOptions();
    const response = await ceremony('No passkey was added', () => startRegistration({ optionsJSON }));
    const name = $('passkey-name').value.trim();
    const data = await call('POST', '/api/auth/passkeys/register', { response, ...(name ? { name } : {}) });
    $('passkey-name').value = '';
    if (!$('passkey-list').hidden) await listPasskeys();
    show(`Passkey added (${passkeyLabel(data.passkey)}). Next time, sign in with it: no username or password needed.`);
  }),
);

$('passkey-login').addEventListener('click', () =>
  act(async () => {
    const { startAuthentication } = webAuthn();
    // No username: the options name no credential, and the device offers the passkeys it holds for this site.
    const optionsJSON = await call('POST', '/api/auth/passkeys/login/options', {});
    const response = await ceremony('Passkey sign-in stopped', () => startAuthentication({ optionsJSON }));
    signedIn(await call('POST', '/api/auth/passkeys/login', { response }), ' with a passkey');
  }),
);

$('list-passkeys').addEventListener('click', () =>
  act(async () => {
    const passkeys = await listPasskeys();
    show(passkeys.length === 0 ? 'You have no passkeys.' : `You have ${plural(passkeys.length, 'passkey')}.`);
  }),
);

$('remove-passkeys').addEventListener('click', () =>
  act(async () => {
    const { passkeys } = await call('GET', '/api/auth/passkeys');
    for (const passkey of passkeys) await removePasskey(passkey);
    await listPasskeys();
    // The device keeps its copy until its owner deletes it there; the service refuses it either way.
    show(`Removed ${plural(passkeys.length, 'passkey')}: the service refuses ${passkeys.length === 1 ? 'it' : 'them'} from now on.`);
  }),
);

// The account's recent security events, as the service recorded them.
const EVENT_LABELS = {
  register: 'Account created',
  login_succeeded: 'Signed in',
  login_failed: 'Failed sign-in',
  logout: 'Signed out',
  session_revoked: 'Session ended',
  refresh_token_reused: 'A refresh token was used twice: its session was ended',
  password_changed: 'Password changed',
  username_changed: 'Username changed',
  mfa_enrolled: 'Authenticator app added',
  mfa_removed: 'Authenticator app removed',
  recovery_codes_replaced: 'New recovery codes',
  passkey_added: 'Passkey added',
  passkey_removed: 'Passkey removed',
  admin_action: 'Changed by an administrator',
  account_recovered: 'Account recovered',
};

function activityItem(event) {
  const item = document.createElement('li');
  item.dataset.type = event.type;
  const detail = event.details?.reason ?? event.details?.method;
  // Text, never HTML: the user agent is whatever the client sent.
  item.textContent = `${event.time}: ${EVENT_LABELS[event.type] ?? event.type}${detail ? ` (${detail})` : ''}` +
    ` from ${event.ip ?? 'an unknown address'}${event.user_agent ? `, ${event.user_agent}` : ''}`;
  return item;
}

$('show-activity').addEventListener('click', () =>
  act(async () => {
    const { events } = await call('GET', '/api/auth/events');
    $('activity-list').replaceChildren(...events.map(activityItem));
    $('activity-list').hidden = events.length === 0;
    show(events.length === 0 ? 'No activity recorded yet.' : `The last ${plural(events.length, 'event')} of your account.`);
  }),
);
