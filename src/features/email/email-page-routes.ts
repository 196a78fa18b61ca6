import type { FastifyPluginAsync } from 'fastify';

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const escapeHtml = (value: string) => value.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);

/**
 * What the pages do: send the link's token (and, to reset, the new password) to the JSON API, and show its answer.
 * A script of its own rather than inline: the security headers allow scripts from this origin only.
 */
const PAGE_SCRIPT = `'use strict';
const form = document.querySelector('form[data-api]');
const result = document.getElementById('result');
const button = form.querySelector('button');
form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const body = { token: new URLSearchParams(location.search).get('token') || '' };
  for (const input of form.querySelectorAll('input[name]')) body[input.name] = input.value;
  button.disabled = true;
  result.textContent = 'One moment…';
  try {
    const response = await fetch(form.dataset.api, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const answer = await response.json();
    result.textContent = answer.message;
    result.dataset.outcome = response.ok ? 'done' : answer.error;
    if (response.ok) form.hidden = true;
  } catch {
    result.textContent = 'The service could not be reached: try again.';
  } finally {
    button.disabled = false;
  }
});
`;

function page(product: string, title: string, form: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} · ${escapeHtml(product)}</title>
<style>
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #222; max-width: 28rem; margin: 3rem auto; padding: 0 1rem; line-height: 1.5; }
label { display: block; margin: 0.8rem 0 0.2rem; }
input { width: 100%; box-sizing: border-box; padding: 0.5rem; font-size: 1rem; }
button { margin-top: 1rem; padding: 0.6rem 1.2rem; font-size: 1rem; background: #1a5fb4; color: #fff; border: 0; border-radius: 4px; }
#result { margin-top: 1rem; }
</style>
</head>
<body>
<main>
<p>${escapeHtml(product)}</p>
<h1>${escapeHtml(title)}</h1>
${form}
<p id="result" role="status"></p>
</main>
<script src="/email-pages.js"></script>
</body>
</html>
`;
}

/**
 * Where the emailed links lead (`/verify-email?token=…`, `/reset-password?token=…`): small pages that send the
 * token to the JSON API when asked to, never on opening, since mail scanners open links. Not part of the API.
 */
export const emailPageRoutes: FastifyPluginAsync<{ productName: string }> = async (app, { productName }) => {
  const verifyPage = page(
    productName,
    'Verify your email address',
    `<form data-api="/api/auth/email/verify">
<p>Confirm that this address is the one of your account.</p>
<button type="submit">Verify my address</button>
</form>`,
  );
  const resetPage = page(
    productName,
    'Choose a new password',
    `<form data-api="/api/auth/password/reset">
<label for="new_password">New password</label>
<input id="new_password" name="new_password" type="password" autocomplete="new-password" required>
<label for="new_password_confirm">The same again</label>
<input id="new_password_confirm" name="new_password_confirm" type="password" autocomplete="new-password" required>
<button type="submit">Set the new password</button>
</form>`,
  );

  const html = (body: string) => async (_request: unknown, reply: import('fastify').FastifyReply) =>
    // The token is in the address: no cache may keep the page, and no link on it may carry the address away.
    reply.header('cache-control', 'no-store').header('referrer-policy', 'no-referrer').type('text/html; charset=utf-8').send(body);

  app.get('/verify-email', { schema: { hide: true } }, html(verifyPage));
  app.get('/reset-password', { schema: { hide: true } }, html(resetPage));
  app.get('/email-pages.js', { schema: { hide: true } }, async (_request, reply) =>
    reply.header('cache-control', 'public, max-age=300').type('text/javascript; charset=utf-8').send(PAGE_SCRIPT),
  );
};
