// A minimal browser client: register, log in (with a code from an authenticator app once one is added), show
// /api/auth/me, log out. The access token stays in memory (a page reload signs out); a real app would also keep
// the refresh token and call /api/auth/refresh.
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
  if (!response.ok) throw new Error(`${response.status} ${data.error}: ${data.message}`);
  return data;
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

$('login').addEventListener('click', () =>
  act(async () => {
    const data = await call('POST', '/api/auth/login', credentials());
    if (data.mfa_required) {
      // The password was right; no token until a code from the app (or a recovery code) comes with mfa_token.
      mfaToken = data.mfa_token;
      askForCode('submit-code');
      show('Enter the code from your authenticator app.');
      return;
    }
    accessToken = data.access_token;
    show(`Signed in as ${data.user.username}.`);
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
