// A minimal browser client: register, log in, show /api/auth/me, log out. The access token stays in memory
// (a page reload signs out); a real app would also keep the refresh token and call /api/auth/refresh.
const api = new URLSearchParams(location.search).get('api') || 'http://localhost:5000';
let accessToken = null;

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

$('login').addEventListener('click', () =>
  act(async () => {
    const data = await call('POST', '/api/auth/login', credentials());
    accessToken = data.access_token;
    show(`Signed in as ${data.user.username}.`);
  }),
);

$('me').addEventListener('click', () =>
  act(async () => {
    const me = await call('GET', '/api/auth/me');
    show(`You are ${me.username} (user ${me.id}), since ${me.created_at}.`);
  }),
);

$('logout').addEventListener('click', () =>
  act(async () => {
    await call('POST', '/api/auth/logout', {});
    show('Signed out. The old token no longer works here.');
  }),
);
