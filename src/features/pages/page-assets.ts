/**
 * The pages' stylesheet and their one script, served from the service's own origin (the Content-Security-Policy
 * allows no inline style or script). The script only adds passkeys: everything else works without it.
 */

function channel(hex: string, at: number): number {
  const value = parseInt(hex.slice(at, at + 2), 16) / 255;
  return value <= 0.04045 ? value / 12.92 : ((value + 0.055) / 1.055) ** 2.4;
}

/** WCAG's relative luminance of `#rrggbb`. */
function luminance(hex: string): number {
  return 0.2126 * channel(hex, 1) + 0.7152 * channel(hex, 3) + 0.0722 * channel(hex, 5);
}

function contrast(a: string, b: string): number {
  const [light, dark] = [luminance(a), luminance(b)].sort((x, y) => y - x) as [number, number];
  return (light + 0.05) / (dark + 0.05);
}

/** `hex` darkened by `amount` (0 to 1) toward black. */
function darker(hex: string, amount: number): string {
  const parts = [1, 3, 5].map((at) => Math.round(parseInt(hex.slice(at, at + 2), 16) * (1 - amount)));
  return `#${parts.map((part) => part.toString(16).padStart(2, '0')).join('')}`;
}

/** The accent, and what reads on it and as a link on white: AA contrast (4.5:1) whatever colour is configured. */
export function accentColours(accent: string): { accent: string; onAccent: string; link: string } {
  const onAccent = contrast(accent, '#ffffff') >= 4.5 ? '#ffffff' : '#000000';
  let link = accent;
  for (let step = 1; contrast(link, '#ffffff') < 4.5 && step <= 20; step++) link = darker(accent, step * 0.05);
  return { accent, onAccent, link };
}

export function stylesheet(accentColour: string): string {
  const { accent, onAccent, link } = accentColours(accentColour);
  return `:root { --accent: ${accent}; --on-accent: ${onAccent}; --link: ${link}; color-scheme: light; }
*, *::before, *::after { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: #1f2937; background: #f3f4f6; }
.skip { position: absolute; left: -10000px; }
.skip:focus { left: 1rem; top: 1rem; background: #fff; padding: .5rem 1rem; z-index: 1; }
header.brand { display: flex; align-items: center; gap: .75rem; max-width: 40rem; margin: 0 auto; padding: 1rem; font-weight: 600; }
header.brand img { max-height: 2.5rem; max-width: 10rem; }
main { background: #fff; max-width: 40rem; margin: 0 auto 2rem; padding: 1.25rem; border-radius: .5rem; box-shadow: 0 1px 3px rgba(0,0,0,.12); }
main.narrow { max-width: 26rem; }
h1 { font-size: 1.5rem; line-height: 1.25; margin: 0 0 1rem; }
h2 { font-size: 1.15rem; margin: 0 0 .5rem; }
p { margin: .5rem 0; }
label { display: block; font-weight: 600; margin: .75rem 0 .25rem; }
input { width: 100%; padding: .6rem .7rem; font: inherit; color: inherit; background: #fff; border: 1px solid #6b7280; border-radius: .375rem; }
button { font: inherit; padding: .6rem 1rem; margin-top: 1rem; border-radius: .375rem; border: 1px solid var(--accent); background: var(--accent); color: var(--on-accent); cursor: pointer; }
button.secondary { background: #fff; color: var(--link); border-color: var(--link); }
button.small { padding: .3rem .6rem; margin-top: .25rem; font-size: .9rem; }
button.danger { background: #b91c1c; border-color: #b91c1c; color: #fff; }
a { color: var(--link); }
input:focus-visible, button:focus-visible, a:focus-visible { outline: 3px solid var(--link); outline-offset: 2px; }
.error { border-left: 4px solid #b91c1c; background: #fef2f2; color: #7f1d1d; padding: .5rem .75rem; margin: .75rem 0; }
.notice { border-left: 4px solid #047857; background: #ecfdf5; color: #064e3b; padding: .5rem .75rem; margin: .75rem 0; }
.hint { color: #4b5563; font-size: .9rem; margin: .25rem 0 0; }
.muted { color: #4b5563; }
.or { text-align: center; color: #4b5563; margin: 1rem 0 0; }
ul.plain { list-style: none; padding: 0; margin: 0; }
ul.plain > li { padding: .6rem 0; border-bottom: 1px solid #e5e7eb; overflow-wrap: anywhere; }
ol.codes { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; columns: 2; padding-left: 1.5rem; }
code, .key { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; overflow-wrap: anywhere; }
.qr svg { display: block; width: 12rem; height: 12rem; }
section { border-top: 1px solid #e5e7eb; margin-top: 1.5rem; padding-top: 1rem; }
form.inline { display: inline; }
[hidden] { display: none !important; }
@media (max-width: 30rem) { main { border-radius: 0; padding: 1rem; } ol.codes { columns: 1; } }
`;
}

/**
 * Passkeys on the pages: a button with `data-passkey` ("sign-in", "second-step" or "register") gets the WebAuthn
 * options from `data-options`, asks the browser's authenticator, and submits the form named by `data-form` with the
 * credential as JSON in its `response` field. Hidden where the browser has no WebAuthn.
 */
export const PASSKEY_SCRIPT = `(function () {
  'use strict';
  if (!window.PublicKeyCredential || !navigator.credentials) return;
  function decode(text) {
    var base64 = text.replace(/-/g, '+').replace(/_/g, '/');
    var binary = atob(base64 + '==='.slice((base64.length + 3) % 4));
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes.buffer;
  }
  function encode(buffer) {
    var bytes = new Uint8Array(buffer);
    var binary = '';
    for (var i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]);
    return btoa(binary).replace(/\\+/g, '-').replace(/\\//g, '_').replace(/=+$/, '');
  }
  function credentials(list) {
    return (list || []).map(function (c) { return Object.assign({}, c, { id: decode(c.id) }); });
  }
  function asJson(credential) {
    var r = credential.response;
    var response = { clientDataJSON: encode(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = encode(r.attestationObject);
      if (r.getTransports) response.transports = r.getTransports();
    } else {
      response.authenticatorData = encode(r.authenticatorData);
      response.signature = encode(r.signature);
      if (r.userHandle) response.userHandle = encode(r.userHandle);
    }
    var json = { id: credential.id, rawId: encode(credential.rawId), type: credential.type, response: response, clientExtensionResults: {} };
    if (credential.authenticatorAttachment) json.authenticatorAttachment = credential.authenticatorAttachment;
    return json;
  }
  function optionsFor(kind, form, url) {
    var body = new URLSearchParams();
    if (kind === 'register') {
      new FormData(form).forEach(function (value, name) { if (name !== 'response') body.append(name, value); });
      return fetch(url, { method: 'POST', credentials: 'same-origin', body: body });
    }
    var json = kind === 'second-step' ? { mfa_token: form.elements.mfa_token.value } : {};
    return fetch(url, { method: 'POST', credentials: 'same-origin', headers: { 'content-type': 'application/json' }, body: JSON.stringify(json) });
  }
  // What says passkeys need a script goes; what leads to them comes.
  Array.prototype.forEach.call(document.querySelectorAll('[data-without-script]'), function (element) { element.hidden = true; });
  Array.prototype.forEach.call(document.querySelectorAll('[data-with-script]'), function (element) { element.hidden = false; });
  Array.prototype.forEach.call(document.querySelectorAll('[data-passkey]'), function (button) {
    var form = document.getElementById(button.getAttribute('data-form'));
    var status = document.getElementById(button.getAttribute('data-status'));
    if (!form) return;
    button.hidden = false;
    button.addEventListener('click', function () {
      var kind = button.getAttribute('data-passkey');
      if (status) { status.hidden = true; status.textContent = ''; }
      optionsFor(kind, form, button.getAttribute('data-options'))
        .then(function (answer) {
          return answer.json().then(function (body) {
            if (!answer.ok) throw new Error(body && body.message ? body.message : 'refused');
            return body;
          });
        })
        .then(function (o) {
          if (kind === 'register') {
            var user = Object.assign({}, o.user, { id: decode(o.user.id) });
            return navigator.credentials.create({ publicKey: Object.assign({}, o, { challenge: decode(o.challenge), user: user, excludeCredentials: credentials(o.excludeCredentials) }) });
          }
          return navigator.credentials.get({ publicKey: Object.assign({}, o, { challenge: decode(o.challenge), allowCredentials: credentials(o.allowCredentials) }) });
        })
        .then(function (credential) {
          form.elements.response.value = JSON.stringify(asJson(credential));
          form.submit();
        })
        .catch(function (error) {
          if (status) { status.textContent = button.getAttribute('data-error') + ' (' + (error && error.message ? error.message : error) + ')'; status.hidden = false; }
        });
    });
  });
})();
`;
