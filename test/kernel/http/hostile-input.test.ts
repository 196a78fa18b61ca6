import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { decodeJwt } from 'jose';
import { afterAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../../src/app.js';
import { RATE_LIMIT_SETTINGS } from '../../../src/features/rate-limits/rate-limit-settings.js';
import { limit } from '../../../src/kernel/settings/setting-kinds.js';
import { json, login, me, register, startTestApp, uniqueName } from '../../helpers/app.js';
import { recordingLog } from '../../helpers/database.js';
import { awaitSteadyStep, codeAt } from '../../helpers/totp.js';
import { Receiver } from '../../helpers/webhook-receiver.js';
import { SoftAuthenticator } from '../../helpers/webauthn.js';

/**
 * Property-based, over every route the app serves, found in the app itself: whatever a client puts in a route's
 * path, query string and body, with or without credentials, the answer is a success or a 4xx JSON error, never
 * a 5xx, and a refused request changes nothing in the database.
 */

// A receiver for the webhook endpoint the requests may act on: every event of the run is delivered to it.
const receiver = await Receiver.start();

// REAUTH_WINDOW_SECONDS=0: a password change or a deletion needs current_password, which random input seldom has,
// so the account these requests act as survives most of them (when one does delete, lock or rename it,
// `credentials()` signs up another). The rate limits count (in Redis with TEST_REDIS_URL), with budgets no run
// reaches: hostile names and tokens become counters' keys, and the routes, not the limits, answer. The WebAuthn
// site is the one the software authenticator signs for.
const ORIGIN = 'https://app.example.com';
const TEST_REDIS_URL = process.env['TEST_REDIS_URL'];
const t = await startTestApp({
  REAUTH_WINDOW_SECONDS: '0',
  HASH_QUEUE_LIMIT: '1000',
  RATE_LIMIT_ENABLED: 'true',
  ...Object.fromEntries(RATE_LIMIT_SETTINGS.rows.filter((row) => row.kind === limit).map((row) => [row.name, '1000000/1m'])),
  ...(TEST_REDIS_URL ? { REDIS_URL: TEST_REDIS_URL, REDIS_KEY_PREFIX: `hostile-${randomBytes(6).toString('hex')}:` } : {}),
  WEBAUTHN_RP_ID: 'example.com',
  WEBAUTHN_ORIGINS: ORIGIN,
  PUBLIC_URL: 'https://auth.example.com',
  // The webhook endpoint below is a receiver on loopback.
  WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true',
});

/** Object.prototype as it was before any request. */
const PROTOTYPE_MEMBERS = Object.getOwnPropertyNames(Object.prototype).sort();

/** What a route declares about its input: the JSON schemas of its parts, and the credential it asks for. */
interface RouteShape {
  params?: JsonSchema;
  querystring?: JsonSchema;
  body?: JsonSchema;
  auth?: 'user' | 'admin';
}
interface Route extends RouteShape {
  method: string;
  url: string;
}
type JsonSchema = Record<string, any>;

// A second app on the same services, watched from before its plugins load: onRoute shows each route's schemas. Its
// log is kept: a fault is logged as one, and so is a value that only the database refused.
const { log, lines: logLines } = recordingLog();
const app: FastifyInstance = buildApp(t.config, t.services, { logger: log });
const shapes = new Map<string, RouteShape>();
app.addHook('onRoute', (route) => {
  const schema = (route.schema ?? {}) as Record<string, JsonSchema | undefined>;
  for (const method of [route.method].flat()) {
    shapes.set(`${method} ${route.url}`, {
      ...(schema['params'] ? { params: schema['params'] } : {}),
      ...(schema['querystring'] ? { querystring: schema['querystring'] } : {}),
      ...(schema['body'] ? { body: schema['body'] } : {}),
      ...(route.config?.auth ? { auth: route.config.auth } : {}),
    });
  }
});
await app.ready();

/** Every method and path in the router's printed tree (which can print a wildcard without the path before it). */
function printedRoutes(): { method: string; url: string }[] {
  const routes: { method: string; url: string }[] = [];
  const paths: string[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const match = /^((?:[│ ] {3})*)[├└]── (.+?)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (!match) continue;
    const depth = match[1]!.length / 4;
    paths.length = depth;
    const url = (paths[depth - 1] ?? '') + match[2]!;
    paths.push(url);
    for (const method of match[3]?.split(', ') ?? []) routes.push({ method, url });
  }
  return routes;
}
const PRINTED = printedRoutes();

/**
 * Every route, with what it declares: those onRoute showed, and those it never shows (added before the hook, or a
 * prefix's trailing-slash twin), found in the router's tree and confirmed by the router itself.
 */
const ROUTES: Route[] = [...shapes].map(([key, shape]) => {
  const [method, url] = key.split(' ') as [string, string];
  return { method, url, ...shape };
});
for (const { method, url } of PRINTED) {
  if (!shapes.has(`${method} ${url}`) && app.hasRoute({ method: method as 'GET', url })) ROUTES.push({ method, url });
}

/**
 * An account for the credentialed requests to act as, with something for its routes to act on: a passkey, and an
 * authenticator app that awaits its first code (confirmed, it would make every sign-in need one).
 */
async function newAccount() {
  const registered = await register(app);
  // Signed in as a client would be after registering: its own login, its own session.
  const signIn = await login(app, registered.username, registered.password);
  expect(signIn.statusCode, signIn.body).toBe(200);
  const account = { ...registered, token: json(signIn)['access_token'] as string };
  const bearer = { authorization: `Bearer ${account.token}` };
  const proof = { current_password: account.password };
  const options = await app.inject({ method: 'POST', url: '/api/auth/passkeys/register/options', headers: bearer, payload: proof });
  const response = new SoftAuthenticator(ORIGIN, 'example.com').register(json(options) as { challenge: string });
  const passkey = await app.inject({ method: 'POST', url: '/api/auth/passkeys/register', headers: bearer, payload: { response, name: 'laptop' } });
  const totp = await app.inject({ method: 'POST', url: '/api/auth/mfa/totp', headers: bearer, payload: proof });
  expect([passkey.statusCode, totp.statusCode], `${passkey.body} ${totp.body}`).toEqual([201, 201]);
  return { ...account, passkeyId: json(passkey)['passkey'].id as string, credentialId: response.id, factorId: json(totp)['id'] as string };
}

/** An account whose authenticator app is on: its password sign-ins stop at the second step, with an mfa_token. */
async function newSecondFactorAccount() {
  const account = await register(app);
  const bearer = { authorization: `Bearer ${account.token}` };
  const started = await app.inject({ method: 'POST', url: '/api/auth/mfa/totp', headers: bearer, payload: { current_password: account.password } });
  const { id, secret } = json(started) as { id: string; secret: string };
  await awaitSteadyStep();
  // The step before now: the code of this one stays unused for the second steps to come.
  const confirmed = await app.inject({ method: 'POST', url: `/api/auth/mfa/totp/${id}/verify`, headers: bearer, payload: { code: await codeAt(secret, -1) } });
  expect(confirmed.statusCode, confirmed.body).toBe(200);
  return { ...account, secret };
}

/** A second step's token of that account, new for each request that uses one (or of a new such account, if an operator's route took it away). */
async function freshMfaToken(): Promise<string> {
  for (let attempt = 0; attempt < 2; attempt += 1) {
    const response = await login(app, withSecondFactor.username, withSecondFactor.password);
    if (response.statusCode === 200 && json(response)['mfa_token']) return json(response)['mfa_token'] as string;
    withSecondFactor = await newSecondFactorAccount();
  }
  throw new Error('no second step to be had');
}

let signedInAs = await newAccount();
let staleUser = false;
/** An operator's key, and another account for the admin routes to find. */
let adminKeyName = uniqueName('hostile-input');
let adminKey = (await t.services.adminKeys.create(adminKeyName)).key;
let staleAdminKey = false;
const victim = await register(app);
let withSecondFactor = await newSecondFactorAccount();
/** A webhook endpoint for the admin routes to find (again after one deletes it), and one of its deliveries. */
const WEBHOOK_URL = `${receiver.url}/hook`;
let webhookId = (await t.services.webhooks.create({ url: WEBHOOK_URL, events: ['*'] })).endpoint.id;
async function liveWebhook(): Promise<{ id: string; deliveryId: string }> {
  const found = await t.services.webhooks.get(webhookId).catch(() => undefined);
  if (!found) webhookId = (await t.services.webhooks.create({ url: WEBHOOK_URL, events: ['*'] })).endpoint.id;
  return { id: webhookId, deliveryId: found?.deliveries[0]?.id ?? '1' };
}

afterAll(async () => {
  await app.close();
  await t.close();
  await receiver.close();
});

/**
 * A random request may well be a valid logout, rename or lock, or delete the account by its id (successes, not
 * attacks): after one, this follows the rename, signs in again, or signs up a new account, so that the next
 * credentialed request is still past authentication.
 */
async function credentials(auth: 'user' | 'admin'): Promise<string> {
  if (auth === 'admin') {
    if (staleAdminKey) {
      const keys = await t.services.adminKeys.list();
      if (keys.find((k) => k.name === adminKeyName)?.revokedAt !== null) {
        adminKeyName = uniqueName('hostile-input');
        adminKey = (await t.services.adminKeys.create(adminKeyName)).key;
      }
      staleAdminKey = false;
    }
    return adminKey;
  }
  if (staleUser) {
    const current = await me(app, signedInAs.token);
    if (current.statusCode === 200) {
      signedInAs.username = json(current)['username'];
    } else {
      const response = await login(app, signedInAs.username, signedInAs.password);
      signedInAs = response.statusCode === 200 && json(response)['access_token']
        ? { ...signedInAs, token: json(response)['access_token'] }
        : await newAccount();
    }
    staleUser = false;
  }
  return signedInAs.token;
}

/** The last fingerprint taken, and the WAL position read just before it. */
let lastFingerprint: { lsn: string; fingerprint: string } | undefined;

/**
 * A fingerprint of what a refused request must leave as it was: accounts (locks, roles, metadata), sessions, refresh
 * tokens, admin keys, factors, passkeys, webhook endpoints. A change to any row writes WAL: while the WAL position is
 * the one read before the last fingerprint, nothing has changed since, and that fingerprint still holds (the one after
 * a refused request is then the one before the next, most of the time, without reading every table twice).
 */
async function snapshot(): Promise<string> {
  const [position] = await t.db.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
  if (lastFingerprint !== undefined && lastFingerprint.lsn === position!.lsn) return lastFingerprint.fingerprint;
  const fingerprint = await fingerprintNow();
  lastFingerprint = { lsn: position!.lsn, fingerprint };
  return fingerprint;
}

async function fingerprintNow(): Promise<string> {
  const [row] = await t.db.query<Record<string, string>>(
    `SELECT (SELECT md5(coalesce(string_agg(id || ':' || username || ':' || password_hash || ':' || array_to_string(roles, ',') || ':' || coalesce(locked_at::text, '-') || ':' || has_second_factor || ':' || user_metadata::text || ':' || app_metadata::text, ',' ORDER BY id), '')) FROM users) AS users,
            (SELECT md5(coalesce(string_agg(id || ':' || coalesce(revoked_at::text, '-') || ':' || last_used_at, ',' ORDER BY id), '')) FROM sessions) AS sessions,
            (SELECT md5(coalesce(string_agg(encode(token_hash, 'hex') || ':' || coalesce(rotated_at::text, '-'), ',' ORDER BY id), '')) FROM refresh_tokens) AS tokens,
            (SELECT md5(coalesce(string_agg(name || ':' || coalesce(revoked_at::text, '-'), ',' ORDER BY name), '')) FROM admin_keys) AS keys,
            (SELECT md5(coalesce(string_agg(id || ':' || name, ',' ORDER BY id), '')) FROM passkeys) AS passkeys,
            (SELECT md5(coalesce(string_agg(id || ':' || coalesce(verified_at::text, '-'), ',' ORDER BY id), '')) FROM mfa_factors) AS factors,
            (SELECT md5(coalesce(string_agg(id || ':' || url || ':' || description || ':' || array_to_string(events, ',') || ':' || enabled || ':' || encode(secret_sealed, 'hex'), ',' ORDER BY id), '')) FROM webhook_endpoints) AS webhooks`,
  );
  return JSON.stringify(row);
}

// ---------------------------------------------------------------------------------------------------------------
// Values

/** JSON text that JSON.stringify cannot write: numbers out of any range, -0, duplicate keys, `__proto__` as a key. */
class Raw {
  constructor(readonly text: string) {}
}
/** An object as a list of members: keys may repeat, and `__proto__` is a member like any other. */
class Members {
  constructor(readonly entries: [string, unknown][]) {}
}

function jsonText(value: unknown): string {
  if (value instanceof Raw) return value.text;
  if (value instanceof Members) return `{${value.entries.map(([key, member]) => `${JSON.stringify(key)}:${jsonText(member)}`).join(',')}}`;
  if (Array.isArray(value)) return `[${value.map(jsonText).join(',')}]`;
  if (value !== null && typeof value === 'object') return jsonText(new Members(Object.entries(value).filter(([, member]) => member !== undefined)));
  return JSON.stringify(value) ?? 'null';
}

const NASTY_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', '$where', '', '\u0000'];

const hostileString: fc.Arbitrary<string> = fc.oneof(
  fc.string(),
  fc.string({ unit: 'grapheme', maxLength: 80 }),
  fc.string({ unit: 'binary', maxLength: 80 }), // lone surrogates included
  fc.string({ unit: fc.integer({ min: 0, max: 0x9f }).map((c) => String.fromCharCode(c)), maxLength: 40 }), // controls
  fc.constantFrom(
    '',
    ' ',
    '\u0000',
    'admin\u0000',
    '\u0007\u001b[31m\u007f\u0085',
    'line\nbreak\r\n',
    '\u2028\u2029\ufeff\u200b',
    '\ud800',
    '\udfff',
    'a\ud83dz',
    '\udc00\ud800',
    '%00',
    '%ff',
    "' OR '1'='1",
    "'; DROP TABLE users; --",
    '../../etc/passwd',
    '${jndi:ldap://x}',
    '<script>alert(1)</script>',
    'Ａｄｍｉｎ',
    'NaN',
    'Infinity',
    '-Infinity',
    '-0',
    '1e400',
    '-1e400',
    '0x10',
    '1.5',
    '-1',
    '0',
    '00',
    '01',
    ' 1',
    '1 ',
    '+1',
    '9223372036854775807',
    '9223372036854775808',
    '99999999999999999999999999999',
    'true',
    'null',
    'undefined',
    '[object Object]',
    'urn:uuid:123e4567-e89b-12d3-a456-426614174000',
    '{123e4567-e89b-12d3-a456-426614174000}',
    '123e4567e89b12d3a456426614174000',
    '00000000-0000-0000-0000-000000000000',
    'ffffffff-ffff-ffff-ffff-fffffffffffg',
    '2030-02-30T00:00:00Z',
    '2030-01-01T24:00:00Z',
    '10000-01-01T00:00:00Z',
    '9999-12-31T23:59:59-23:59',
    '0000-01-01T00:00:00Z',
    '1969-12-31T23:59:59Z',
    '2030-01-01T00:00:60Z',
    'Bearer x',
    'a'.repeat(65),
    'a'.repeat(257),
    'a'.repeat(1025),
    '\u0000'.repeat(300),
    'é'.repeat(3000),
    '😀'.repeat(2000),
  ),
  fc.string({ minLength: 2_000, maxLength: 20_000 }), // past the 16 KiB body limit once written, sometimes
);

/** Numbers JSON can write and JavaScript cannot hold, or holds as something else. */
const hostileNumber = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.bigInt().map((n) => new Raw(String(n))),
  fc.constantFrom(0, -1, 1.5, 2 ** 31, 2 ** 53, 2 ** 63, Number.MAX_VALUE, Number.MIN_VALUE),
  fc.constantFrom('1e400', '-1e400', '1e-400', '-0', '-0.0', '0e0', '9007199254740993', '123456789012345678901234567890', '1E+2').map((text) => new Raw(text)),
);

/** Deep enough to be a stack or a CPU problem for a recursive reader, small enough for the body limit. */
const deeplyNested = fc.constantFrom(
  new Raw(`${'['.repeat(5000)}${']'.repeat(5000)}`),
  new Raw(`${'{"a":'.repeat(2500)}1${'}'.repeat(2500)}`),
  new Raw(`${'{"__proto__":'.repeat(1000)}{}${'}'.repeat(1000)}`),
  new Raw(`[${'{},'.repeat(3000)}{}]`),
);

const hostileValue: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    { weight: 4, arbitrary: hostileString },
    hostileNumber,
    fc.constantFrom(true, false, null, [], {}),
    deeplyNested,
    fc.array(tie('value'), { maxLength: 4 }),
    fc
      .array(fc.tuple(fc.oneof(fc.string({ maxLength: 10 }), fc.constantFrom(...NASTY_KEYS)), tie('value')), { maxLength: 4 })
      .map((entries) => new Members(entries)),
  ),
})).value;

/** Any JSON document at all, and some that are barely JSON. */
const hostileDocument = fc.oneof(
  hostileValue,
  fc.jsonValue(),
  fc.constantFrom(
    new Raw('{"__proto__": {"isAdmin": true, "roles": ["admin"]}}'),
    new Raw('{"constructor": {"prototype": {"isAdmin": true}}}'),
    new Raw('{"a": 1, "a": 2}'),
  ),
);

// ---------------------------------------------------------------------------------------------------------------
// Well-formed values, from a route's own schema: with every other part well-formed, a hostile one reaches as far
// into the route as it can.

/**
 * Stand-ins for what the service knows (the account's name, password, access token, its session, passkey and
 * pending authenticator app; another account; an mfa_token and a code of an account with an authenticator app; a
 * recovery code; a webhook endpoint, one of its deliveries, its receiver's URL), put in at sending time, so that
 * a well-formed request can also be a right one: a sign-in, its second step, a rename of a passkey that exists, an
 * operator's lock. Each has the shape its field wants (digits for an id, a UUID for a session), and
 * percent-encoding leaves it as it is.
 */
const KNOWN = {
  username: 'known_username_4711',
  password: 'known-password-4711',
  token: 'known.token.4711',
  userId: '4711471147110',
  victimId: '4711471147111',
  sessionId: '47114711-0000-4000-8000-000000000001',
  passkeyId: '47114711-0000-4000-8000-000000000002',
  factorId: '47114711-0000-4000-8000-000000000003',
  credentialId: 'known_credential_4711',
  mfaToken: 'known-mfa-token-4711',
  totpCode: 'known-totp-4711',
  recoveryCode: 'known-recovery-4711',
  webhookId: '47114711-0000-4000-8000-000000000004',
  deliveryId: '4711471147112',
  url: 'known-url-4711',
};
const KNOWN_MARKER = new RegExp(Object.values(KNOWN).map((marker) => marker.replace(/\./g, '\\.')).join('|'), 'g');

/** The stand-ins (or plain values) a field of this name most likely wants; any stand-in that fits its schema is tried too. */
function knownForField(name: string | undefined): string[] {
  if (name === undefined) return [];
  if (/username/.test(name)) return [KNOWN.username];
  if (/password/.test(name)) return [KNOWN.password];
  if (name === 'mfa_token') return [KNOWN.mfaToken];
  if (/token/.test(name)) return [KNOWN.token];
  if (name === 'recovery_code') return [KNOWN.recoveryCode];
  if (name === 'code') return [KNOWN.totpCode, KNOWN.recoveryCode];
  if (/user_?id/i.test(name)) return [KNOWN.userId, KNOWN.victimId];
  if (name === 'id' || name === 'rawId') return [KNOWN.credentialId];
  if (name === 'url') return [KNOWN.url];
  // Events this run seldom causes: each endpoint it creates gets a delivery of each.
  if (name === 'events') return ['mfa.enabled', 'user.unlocked'];
  return [];
}

/** What each stand-in in `text` is now (an mfa_token and a recovery code are made for the occasion), encoded. */
async function withKnownValues(text: string, encode: (value: string) => string): Promise<string> {
  const found = new Set(text.match(KNOWN_MARKER));
  if (found.size === 0) return text;
  const values: Record<string, string> = {
    [KNOWN.username]: signedInAs.username,
    [KNOWN.password]: signedInAs.password,
    [KNOWN.token]: signedInAs.token,
    [KNOWN.userId]: String(signedInAs.id),
    [KNOWN.victimId]: String(victim.id),
    [KNOWN.sessionId]: decodeJwt(signedInAs.token)['sid'] as string,
    [KNOWN.passkeyId]: signedInAs.passkeyId,
    [KNOWN.factorId]: signedInAs.factorId,
    [KNOWN.credentialId]: signedInAs.credentialId,
    [KNOWN.mfaToken]: found.has(KNOWN.mfaToken) ? await freshMfaToken() : '',
    [KNOWN.totpCode]: found.has(KNOWN.totpCode) ? await codeAt(withSecondFactor.secret) : '',
    [KNOWN.url]: WEBHOOK_URL,
    ...(found.has(KNOWN.webhookId) || found.has(KNOWN.deliveryId)
      ? await liveWebhook().then(({ id, deliveryId }) => ({ [KNOWN.webhookId]: id, [KNOWN.deliveryId]: deliveryId }))
      : {}),
    [KNOWN.recoveryCode]: found.has(KNOWN.recoveryCode)
      ? await t.services.administration.issueRecoveryCode(String(signedInAs.id)).then((issued) => issued.code, () => 'gone')
      : '',
  };
  return text.replace(KNOWN_MARKER, (marker) => encode(values[marker]!));
}

/** Strings a person would type: a name, a passphrase. */
const plainString = fc.oneof(
  fc.stringMatching(/^[a-z][a-z0-9_]{2,20}$/),
  fc.array(fc.stringMatching(/^[a-z]{3,9}$/), { minLength: 4, maxLength: 5 }).map((words) => words.join(' ')),
);

/** The client's own keys in an object of them (metadata). */
const clientKey = fc.stringMatching(/^[a-z_]{1,12}$/);

/** A value the schema takes; `name`, the field's, says which stand-ins it most likely wants. */
function wellFormed(schema: JsonSchema | undefined, name?: string): fc.Arbitrary<unknown> {
  if (schema === undefined) return fc.string({ maxLength: 20 });
  if ('const' in schema) return fc.constant(schema['const']);
  if (Array.isArray(schema['enum'])) return fc.constantFrom(...(schema['enum'] as unknown[]));
  if (Array.isArray(schema['anyOf'])) return fc.oneof(...(schema['anyOf'] as JsonSchema[]).map((branch) => wellFormed(branch, name)));
  switch (schema['type']) {
    case 'string':
      return wellFormedString(schema, name);
    case 'integer':
      return fc.oneof(
        fc.integer({ min: schema['minimum'] ?? -1000, max: schema['maximum'] ?? 1_000_000 }),
        ...(schema['minimum'] === 1 ? [fc.constant(new Raw(KNOWN.userId))] : []),
      );
    case 'number':
      return fc.double({ noNaN: true, noDefaultInfinity: true });
    case 'boolean':
      return fc.boolean();
    case 'null':
      return fc.constant(null);
    case 'array':
      return fc.array(wellFormed(schema['items'], name), { minLength: Math.min(schema['minItems'] ?? 0, 3), maxLength: Math.min(schema['maxItems'] ?? 3, 3) });
    case 'object': {
      const properties = Object.entries((schema['properties'] ?? {}) as Record<string, JsonSchema>);
      const required = new Set<string>(schema['required'] ?? []);
      // An object of the client's own keys (metadata).
      if (properties.length === 0 && schema['additionalProperties'] === true) {
        return fc.dictionary(clientKey, fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 });
      }
      return fc
        .tuple(...properties.map(([key, property]) => (required.has(key) ? wellFormed(property, key) : fc.option(wellFormed(property, key), { nil: undefined }))))
        .map((values) => Object.fromEntries(properties.map(([key], i) => [key, values[i]]).filter(([, value]) => value !== undefined)));
    }
    default:
      return fc.jsonValue();
  }
}

/**
 * Made once per schema and field name: making a string arbitrary (fc.string, fc.stringMatching) costs far more than
 * drawing from it, and the parts of a request are chosen anew for each one (the chains below).
 */
const wellFormedStrings = new WeakMap<JsonSchema, Map<string | undefined, fc.Arbitrary<string>>>();

function wellFormedString(schema: JsonSchema, name?: string): fc.Arbitrary<string> {
  const made = wellFormedStrings.get(schema) ?? new Map<string | undefined, fc.Arbitrary<string>>();
  wellFormedStrings.set(schema, made);
  if (!made.has(name)) made.set(name, newWellFormedString(schema, name));
  return made.get(name)!;
}

function newWellFormedString(schema: JsonSchema, name?: string): fc.Arbitrary<string> {
  if (schema['format'] === 'date-time') {
    return fc.date({ min: new Date('1970-01-02T00:00:00Z'), max: new Date('9999-12-30T00:00:00Z'), noInvalidDate: true }).map((d) => d.toISOString());
  }
  if (schema['format'] === 'uuid') return fc.uuid();
  const min: number = schema['minLength'] ?? 0;
  const max: number = schema['maxLength'] ?? min + 40;
  const pattern = schema['pattern'] === undefined ? undefined : new RegExp(schema['pattern'] as string);
  const fits = (s: string) => s.length >= min && s.length <= max && (pattern === undefined || pattern.test(s));
  const likely = knownForField(name).filter(fits);
  const anyKnown = Object.values(KNOWN).filter(fits);
  return fc.oneof(
    { weight: 2, arbitrary: fc.oneof(pattern ? fc.stringMatching(pattern) : fc.string({ minLength: min, maxLength: max }), plainString).filter(fits) },
    ...(anyKnown.length ? [{ weight: 1, arbitrary: fc.constantFrom(...anyKnown) }] : []),
    ...(likely.length ? [{ weight: 3, arbitrary: fc.constantFrom(...likely) }] : []),
  );
}

// ---------------------------------------------------------------------------------------------------------------
// The parts of a request. `hostile` says whether this part is under attack: the others are well-formed, so that the
// one that is reaches as far as the route lets it.

/** Percent-encoded as a client's URL library would, lone surrogates as the bytes of their (invalid) UTF-8. */
function percentEncoded(value: string): string {
  let out = '';
  for (const char of value) {
    const unit = char.charCodeAt(0);
    if (char.length === 1 && unit >= 0xd800 && unit <= 0xdfff) {
      out += [0xe0 | (unit >> 12), 0x80 | ((unit >> 6) & 0x3f), 0x80 | (unit & 0x3f)].map((b) => `%${b.toString(16).toUpperCase()}`).join('');
    } else {
      out += encodeURIComponent(char);
    }
  }
  return out;
}

/** A path segment or query value as sent: encoded, or raw escapes that decode to nothing valid. */
const hostileUrlPart = fc.oneof(
  { weight: 4, arbitrary: hostileString.map(percentEncoded) },
  fc.constantFrom('%', '%z', '%zz', '%00', '%0a', '%C0%AF', '%C0%80', '%ED%A0%80', '%FF%FE', '%E0%A4%A', '..', '.', '%2e%2e', '%2F', '%252F', '+', '%20', '%u0000', '%%', ';', 'a;b=c', '*'),
  fc.integer({ min: 100, max: 8000 }).map((n) => 'a'.repeat(n)),
);

/**
 * What a path parameter may name that exists, by the word before it (`/passkeys/:id`, a passkey): a well-formed
 * request then reaches the route's work, not only its "not found".
 */
function knownIn(url: string, parameter: string): string[] {
  const word = url.slice(0, url.indexOf(parameter)).split('/').at(-2);
  const byWord: Record<string, string[]> = {
    users: [KNOWN.userId, KNOWN.victimId],
    passkeys: [KNOWN.passkeyId],
    totp: [KNOWN.factorId],
    sessions: [KNOWN.sessionId],
    webhooks: [KNOWN.webhookId],
    deliveries: [KNOWN.deliveryId],
  };
  return byWord[word ?? ''] ?? [];
}

/** A path under a wildcard, as a client's link would have it. */
const plainPath = fc.stringMatching(/^[a-z0-9._-]{1,20}(\/[a-z0-9._-]{1,20}){0,2}$/);

/** The path with each parameter well-formed or hostile, and a wildcard as any path at all. */
function urlArbitrary(route: Route, hostile: boolean): fc.Arbitrary<string> {
  const segments = route.url.split(/(:\w+|\*)/).filter(Boolean);
  return fc
    .tuple(
      ...segments.map((segment) => {
        if (segment === '*') {
          return fc.oneof(
            plainPath,
            ...(hostile
              ? [
                  fc.array(hostileUrlPart, { minLength: 1, maxLength: 4 }).map((parts) => parts.join('/')),
                  fc.constantFrom('../../../../etc/passwd', '..%2f..%2f..%2fetc%2fpasswd', '%2e%2e/%2e%2e/package.json', 'index.html%00.js', '', '/'),
                ]
              : []),
          );
        }
        if (!segment.startsWith(':')) return fc.constant(segment);
        const schema = route.params?.['properties']?.[segment.slice(1)] as JsonSchema | undefined;
        const known = knownIn(route.url, segment);
        const valid = fc.oneof(
          { weight: 1, arbitrary: wellFormed(schema).map((value) => percentEncoded(String(value))) },
          ...(known.length ? [{ weight: 3, arbitrary: fc.constantFrom(...known) }] : []),
        );
        return hostile ? fc.oneof({ weight: 1, arbitrary: valid }, { weight: 3, arbitrary: hostileUrlPart }) : valid;
      }),
    )
    .map((parts) => {
      const url = parts.join('');
      // The router's catch-all for OPTIONS: its `*` is the whole path.
      return url.startsWith('/') ? url : `/${url}`;
    });
}

/** A query string with the route's own parameters (well-formed or hostile), repeated ones, and keys of its own. */
function queryArbitrary(route: Route, hostile: boolean): fc.Arbitrary<string> {
  const properties = (route.querystring?.['properties'] ?? {}) as Record<string, JsonSchema>;
  const names = Object.keys(properties);
  const valid = (name: string) => wellFormed(properties[name], name).map((v) => `${percentEncoded(name)}=${percentEncoded(String(v))}`);
  const wellFormedQuery = names.length
    ? fc.subarray(names).chain((chosen) => fc.tuple(...chosen.map(valid))).map((pairs) => (pairs.length ? `?${pairs.join('&')}` : ''))
    : fc.constant('');
  if (!hostile) return wellFormedQuery;
  const key = fc.oneof(
    ...(names.length ? [{ weight: 4, arbitrary: fc.constantFrom(...names) }] : []),
    { weight: 1, arbitrary: fc.constantFrom(...NASTY_KEYS, '__proto__[isAdmin]', 'constructor[prototype][x]', 'a[b][c]', 'a[]', '=') },
    { weight: 1, arbitrary: hostileString },
  );
  const pair = key.chain((k) =>
    fc.oneof(
      hostileUrlPart.map((v) => `${percentEncoded(k)}=${v}`),
      names.includes(k) ? valid(k) : fc.constant(`${percentEncoded(k)}=1`),
      fc.constant(percentEncoded(k)),
      fc.constant(`${percentEncoded(k)}=`),
    ),
  );
  return fc.oneof(
    { weight: 5, arbitrary: fc.tuple(wellFormedQuery, fc.array(pair, { minLength: 1, maxLength: 5 })).map(([q, pairs]) => `${q || '?'}${q ? '&' : ''}${pairs.join('&')}`) },
    // Every parameter the route reads, twice: a parser may make it an array.
    { weight: 1, arbitrary: fc.constant(names.length ? `?${names.flatMap((n) => [`${n}=1`, `${n}=2`]).join('&')}` : '?a=1&a=2') },
    { weight: 1, arbitrary: fc.constantFrom('?', '??', '?&&&', '?=', '?=&=', '?%', '?a=%', '?%00=%00', `?${'a=1&'.repeat(2000)}`, `?${'x'.repeat(9000)}`) },
  );
}

interface Body {
  contentType?: string;
  payload?: string | Buffer;
}
interface Request {
  url: string;
  body: Body;
  headers: Record<string, string>;
}

/** Characters a database, a log line or a terminal may not take, by how often they are worth trying. */
const nastyCharacter = fc.oneof(
  { weight: 3, arbitrary: fc.constant('\u0000') },
  { weight: 2, arbitrary: fc.constantFrom('\ud800', '\udfff', '\udbff\udbff') },
  { weight: 2, arbitrary: fc.constantFrom('\u0001', '\u0007', '\b', '\t', '\n', '\r', '\u001b', '\u007f', '\u0085', '\u009f', '\u2028', '\ufeff', '\uffff', '%00') },
);

/**
 * A value of the schema but for one part: a string with such a character in it or a length just out of bounds,
 * an array with one item too many or one item hostile, an object with one member hostile at any depth (the rest
 * well-formed), so that a field deep in a body is tried as a top-level one is.
 */
function nearlyWellFormed(schema: JsonSchema | undefined, name?: string): fc.Arbitrary<unknown> {
  if (schema === undefined) return hostileValue;
  if (Array.isArray(schema['anyOf'])) return fc.oneof(...(schema['anyOf'] as JsonSchema[]).map((branch) => nearlyWellFormed(branch, name)));
  switch (schema['type']) {
    case 'string': {
      const lengths = [schema['minLength'] > 0 ? schema['minLength'] - 1 : undefined, schema['maxLength'] === undefined ? undefined : schema['maxLength'] + 1].filter((n) => n !== undefined);
      return fc.oneof(
        { weight: 3, arbitrary: fc.tuple(wellFormed(schema, name), nastyCharacter, fc.nat(100)).map(([value, character, at]) => {
          const text = String(value);
          const i = at % (text.length + 1);
          return text.slice(0, i) + character + text.slice(i);
        }) },
        ...(lengths.length ? [{ weight: 1, arbitrary: fc.constantFrom(...lengths).map((n) => 'a'.repeat(n)) }] : []),
      );
    }
    case 'array':
      return fc.oneof(
        fc.tuple(fc.array(wellFormed(schema['items']), { maxLength: 2 }), nearlyWellFormed(schema['items'])).map(([items, odd]) => [...items, odd]),
        fc.array(wellFormed(schema['items']), { minLength: (schema['maxItems'] ?? 50) + 1, maxLength: (schema['maxItems'] ?? 50) + 1 }),
      );
    case 'object': {
      const properties = Object.keys(schema['properties'] ?? {});
      if (properties.length === 0 && schema['additionalProperties'] === true) {
        // The client's own keys: one that is odd (a control character, too long, a prototype's name), or one whose
        // value is (a string a database cannot hold, a number out of range, nesting too deep).
        const odd = fc.oneof(
          fc.tuple(fc.tuple(fc.string({ maxLength: 8 }), nastyCharacter).map(([key, character]) => key + character), fc.jsonValue({ maxDepth: 1 })),
          fc.tuple(fc.constantFrom(...NASTY_KEYS, 'a'.repeat(65)), fc.jsonValue({ maxDepth: 1 })),
          fc.tuple(
            fc.constant('key'),
            fc.oneof(hostileValue, nearlyWellFormed({ type: 'string' }), hostileNumber, fc.constant(new Raw('{"a":{"a":{"a":{"a":{"a":{"a":1}}}}}}'))),
          ),
        );
        return fc.tuple(wellFormed(schema), odd).map(([value, member]) => new Members([...Object.entries(value as object), member]));
      }
      if (properties.length === 0) return hostileValue;
      return fc.tuple(wellFormed(schema), fc.constantFrom(...properties)).chain(([value, key]) =>
        fc
          .oneof(hostileValue, nearlyWellFormed(schema['properties'][key], key), fc.constant(undefined))
          .map((odd) => ({ ...(value as object), [key]: odd })),
      );
    }
    default:
      return hostileValue;
  }
}

/**
 * The route's body as its schema wants it, but for one field (hostile, or twice: well-formed then hostile, which
 * a parser takes last), a confirmation that often equals what it confirms, and keys nobody asked for: its members,
 * in order.
 */
function shapedMembers(schema: JsonSchema, hostile: boolean): fc.Arbitrary<[string, unknown][]> {
  const properties = Object.entries((schema['properties'] ?? {}) as Record<string, JsonSchema>);
  const required = new Set<string>(schema['required'] ?? []);
  const target = hostile && properties.length ? fc.nat({ max: properties.length - 1 }) : fc.constant(-1);
  return target.chain((index) =>
    fc
      .tuple(
        fc.tuple(
          ...properties.map(([key, property], i): fc.Arbitrary<[string, unknown][]> => {
            if (i !== index) {
              const value = wellFormed(property, key).map((v): [string, unknown][] => [[key, v]]);
              return required.has(key) ? value : fc.oneof(value, fc.constant<[string, unknown][]>([]));
            }
            return fc.oneof(
              { weight: 3, arbitrary: hostileValue.map((v): [string, unknown][] => [[key, v]]) },
              { weight: 3, arbitrary: nearlyWellFormed(property, key).map((v): [string, unknown][] => [[key, v]]) },
              { weight: 1, arbitrary: fc.tuple(wellFormed(property, key), hostileValue).map(([a, b]): [string, unknown][] => [[key, a], [key, b]]) },
              { weight: 1, arbitrary: fc.constant<[string, unknown][]>([]) },
            );
          }),
        ),
        hostile ? fc.array(fc.tuple(fc.constantFrom(...NASTY_KEYS), hostileValue), { maxLength: 2 }) : fc.constant([]),
        fc.boolean(),
      )
      .map(([members, extra, confirm]) => {
        const entries = members.flat().filter(([, value]) => value !== undefined);
        if (confirm) {
          // `password_confirm` after `password`, `new_password_confirm` after `new_password`.
          for (const entry of entries) {
            const confirmed = entries.find(([key]) => key === `${entry[0]}_confirm`);
            if (confirmed) confirmed[1] = entry[1];
          }
        }
        return [...entries, ...extra];
      }),
  );
}

function shapedBody(schema: JsonSchema, hostile: boolean): fc.Arbitrary<Body> {
  return shapedMembers(schema, hostile).map((members) => ({ contentType: 'application/json', payload: jsonText(new Members(members)) }));
}

/** The same members as a form, which some routes take (RFC 7662 and RFC 7009 clients post one). */
function formBody(schema: JsonSchema): fc.Arbitrary<Body> {
  return shapedMembers(schema, true).map((members) => ({
    contentType: 'application/x-www-form-urlencoded',
    payload: members.map(([key, value]) => `${percentEncoded(key)}=${percentEncoded(typeof value === 'string' ? value : jsonText(value))}`).join('&'),
  }));
}

const CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'application/json; charset=utf-16',
  'application/json; charset=latin1',
  'APPLICATION/JSON',
  'application/json;;',
  'application/vnd.api+json',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'text/plain',
  'text/html',
  'application/xml',
  'application/octet-stream',
  '*/*',
  'json',
  '',
];

/** Bytes that are not JSON, or not UTF-8, or nothing, under any Content-Type (or none). */
const rawBody: fc.Arbitrary<Body> = fc.tuple(
  fc.oneof(
    fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes)),
    fc.string({ maxLength: 200 }).map((s) => Buffer.from(s)),
    fc.constantFrom(
      Buffer.alloc(0),
      Buffer.from(' '),
      Buffer.from('{'),
      Buffer.from('{"username": "a"'),
      Buffer.from('{"a":1}garbage'),
      Buffer.from('{"a":1}{"a":2}'),
      Buffer.from("{'a': 1}"),
      Buffer.from('{a: 1}'),
      Buffer.from('[1,]'),
      Buffer.from('NaN'),
      Buffer.from('undefined'),
      Buffer.from('null'),
      Buffer.from('"a string"'),
      Buffer.from('123'),
      Buffer.from('1e400'),
      Buffer.from('true'),
      Buffer.from('[]'),
      Buffer.from('\ufeff{}'),
      Buffer.from([0xff, 0xfe, 0x7b, 0x00, 0x7d, 0x00]),
      Buffer.from('{"username": "\xff\xfe"}', 'latin1'),
      Buffer.from('{"a": "\\ud800"}'),
      Buffer.from('{"a": "\\u0000"}'),
      Buffer.from('{"a": "\\x00"}'),
      Buffer.from('token=a&token=b&__proto__[isAdmin]=1&constructor[prototype][x]=1'),
      Buffer.from('token=%ff%fe&token_type_hint=%00'),
      Buffer.from('--x\r\nContent-Disposition: form-data; name="token"\r\n\r\nabc\r\n--x--\r\n'),
      Buffer.from('<?xml version="1.0"?><!DOCTYPE a [<!ENTITY e SYSTEM "file:///etc/passwd">]><a>&e;</a>'),
      Buffer.alloc(20_000, 0x61),
      Buffer.from(`{"a":"${'b'.repeat(17_000)}"}`),
    ),
  ),
  fc.constantFrom(...CONTENT_TYPES, undefined),
).map(([payload, contentType]) => ({ payload, ...(contentType === undefined ? {} : { contentType }) }));

function bodyArbitrary(route: Route, hostile: boolean): fc.Arbitrary<Body> {
  if (!hostile) return route.body ? shapedBody(route.body, false) : fc.constant({});
  return fc.oneof(
    { weight: 1, arbitrary: fc.constant({}) }, // no body at all
    { weight: 1, arbitrary: fc.constant({ contentType: 'application/json' }) }, // JSON said, nothing sent
    ...(route.body ? [{ weight: 8, arbitrary: shapedBody(route.body, true) }, { weight: 2, arbitrary: formBody(route.body) }] : []),
    { weight: 3, arbitrary: hostileDocument.map((document) => ({ contentType: 'application/json', payload: jsonText(document) })) },
    { weight: 3, arbitrary: rawBody },
  );
}

/** A header value as Node's HTTP parser lets it through: tabs, printable ASCII, and bytes read as Latin-1. */
const headerValue = fc.oneof(
  fc.string({ unit: fc.oneof(fc.constant('\t'), fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), fc.integer({ min: 0x80, max: 0xff }).map((c) => String.fromCharCode(c))), maxLength: 300 }),
  fc.constantFrom('', ' ', '\u00ff\u00fe', 'Ã©', '../../etc/passwd', "' OR 1=1 --", 'null', '-1', '1e400', 'a'.repeat(8000)),
);

/**
 * Headers the service reads or echoes (the client's software and address, the request id, CORS, cookies), and a
 * Content-Length that is not the body's.
 */
const hostileHeaders = fc.tuple(
  fc.dictionary(
    fc.constantFrom('user-agent', 'x-request-id', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded', 'origin', 'referer', 'cookie', 'accept', 'accept-language', 'content-encoding', 'content-language', 'if-none-match', 'range'),
    headerValue,
    { minKeys: 1, maxKeys: 4 },
  ),
  fc.option(fc.constantFrom('0', '1', '7', '16385', '999999999'), { nil: undefined }),
).map(([headers, length]) => (length === undefined ? headers : { ...headers, 'content-length': length }));

/** Without credentials: none, or any Authorization header but the right one. */
const wrongAuthorization = fc.oneof(
  { weight: 2, arbitrary: fc.constant(undefined) },
  fc.string({ maxLength: 300 }).map((s) => s.replace(/[^\x20-\x7e]/g, '')),
  fc.string({ maxLength: 300 }).map((s) => `Bearer ${s.replace(/[^\x20-\x7e]/g, '')}`),
  fc.constantFrom('Bearer', 'Bearer ', 'bearer', 'Basic YWRtaW46YWRtaW4=', 'Bearer a.b.c', 'Bearer uas_admin_x', `Bearer ${'a.'.repeat(4000)}a`, 'Bearer ====', 'Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.'),
);

/**
 * One request to the route: one part under attack (its path, its query string, its body, its headers), all of
 * them, or none (a well-formed request, to reach the route's successes and its deeper refusals).
 */
function requestArbitrary(route: Route): fc.Arbitrary<Request> {
  const parts: { weight: number; arbitrary: fc.Arbitrary<string> }[] = [
    { weight: route.params || route.url.includes('*') ? 3 : 0, arbitrary: fc.constant('path') },
    { weight: route.querystring ? 2 : 1, arbitrary: fc.constant('query') },
    { weight: route.body ? 5 : 2, arbitrary: fc.constant('body') },
    { weight: 1, arbitrary: fc.constant('headers') },
    { weight: 1, arbitrary: fc.constant('all') },
    { weight: 1, arbitrary: fc.constant('none') },
  ];
  // Each part, well-formed and hostile, made once for the route rather than for each request.
  const both = <T>(make: (route: Route, hostile: boolean) => fc.Arbitrary<T>) => ({ wellFormed: make(route, false), hostile: make(route, true) });
  const [url, query, body] = [both(urlArbitrary), both(queryArbitrary), both(bodyArbitrary)] as const;
  const as = (part: string, attacked: string) => (part === attacked || part === 'all' ? 'hostile' : 'wellFormed');
  return fc
    .oneof(...parts.filter((part) => part.weight > 0))
    .chain((part) =>
      fc.tuple(
        url[as(part, 'path')],
        query[as(part, 'query')],
        body[as(part, 'body')],
        part === 'headers' || part === 'all' ? hostileHeaders : fc.constant({}),
      ),
    )
    .map(([path, query, body, headers]) => ({ url: path + query, body, headers }));
}

// ---------------------------------------------------------------------------------------------------------------
// Sending and judging

function expectWellFormed(response: LightMyRequestResponse, method: string, what: string): void {
  const label = `${what} -> ${response.statusCode} ${response.body.slice(0, 300)}`;
  expect(response.statusCode, label).toBeLessThan(500);
  if (response.statusCode < 400) return;
  const type = String(response.headers['content-type'] ?? '');
  // The pages answer people, in HTML; the OpenID provider answers apps as OAuth says ({error, error_description}).
  if (type.startsWith('text/html') || (method === 'HEAD' && response.body === '')) return;
  expect(type, label).toContain('application/json');
  if (method !== 'HEAD' && /^\/oidc\//.test(what.split(' ')[1] ?? '')) {
    const oauth = JSON.parse(response.body) as Record<string, unknown>;
    expect(typeof oauth['error'], label).toBe('string');
    return;
  }
  if (method === 'HEAD') return; // a HEAD answer has the headers of the GET one, and no body
  const body = JSON.parse(response.body) as Record<string, unknown>;
  expect(Object.keys(body).sort(), label).toEqual(['error', 'message']);
  expect(typeof body['error'], label).toBe('string');
  expect(typeof body['message'], label).toBe('string');
  expect(body['message'], label).not.toMatch(/ at .*\.(js|ts):\d+|node_modules|SELECT |INSERT |relation "/); // no stack, no SQL
}

const UNSAFE = new Set(['POST', 'PATCH', 'PUT', 'DELETE']);

async function send(route: Route, request: Request, authorization: string | undefined): Promise<void> {
  const url = await withKnownValues(request.url, percentEncoded);
  const form = request.body.contentType === 'application/x-www-form-urlencoded';
  const inJson = (value: string) => JSON.stringify(value).slice(1, -1);
  const body =
    typeof request.body.payload === 'string' ? { ...request.body, payload: await withKnownValues(request.body.payload, form ? percentEncoded : inJson) } : request.body;
  const injected: InjectOptions = {
    method: route.method as InjectOptions['method'],
    url,
    headers: {
      ...request.headers,
      ...(authorization === undefined ? {} : { authorization }),
      ...(body.contentType === undefined ? {} : { 'content-type': body.contentType }),
      // What a browser's preflight sends, for the CORS catch-all.
      ...(route.method === 'OPTIONS' ? { origin: 'https://evil.example', 'access-control-request-method': 'POST' } : {}),
    },
    ...(body.payload === undefined ? {} : { payload: body.payload }),
  };
  const what = `${route.method} ${url.slice(0, 200)} ${JSON.stringify(request.headers).slice(0, 200)} [${body.contentType ?? 'no type'}] ${String(body.payload ?? '(no body)').slice(0, 200)}`;
  const before = await snapshot();
  logLines.length = 0;
  const response = await app.inject(injected);
  const logged = logLines.splice(0);
  expectWellFormed(response, route.method, what);
  // A fault is logged at `error` even when its answer is not a 5xx; a value only the database refused is a rule
  // missing from the route's schema (it answers 400, from the net under the schemas).
  expect(logged.filter((line) => Number(line['level']) >= 50), what).toEqual([]);
  expect(logged.filter((line) => String(line['msg']).includes('refused by the database')), what).toEqual([]);
  if (response.statusCode >= 400) {
    expect(await snapshot(), `${what} was refused but changed the database`).toBe(before);
  } else if (UNSAFE.has(route.method)) {
    // A success may have ended the session, renamed or removed the account, or revoked the key.
    staleUser = true;
    staleAdminKey = true;
  }
}

/**
 * Runs per route and credential, ~85 routes x 2: more where the route reads a path parameter, a query string or a
 * body, fewer where only the headers and the parts it ignores can vary; a couple of minutes in all.
 * HOSTILE_INPUT_FACTOR=10 runs ten times as many, for a deeper search.
 */
const FACTOR = Number(process.env['HOSTILE_INPUT_FACTOR'] ?? 1);
const runsFor = (route: Route) => (route.params || route.querystring || route.body ? 40 : 10) * FACTOR;

const cases = ROUTES.map((route) => [`${route.method} ${route.url}`, route] as const);

describe('every route is enumerated from the app', () => {
  it('finds every route, with the schemas and credential each declares', () => {
    // One route for each method and path the router holds, and each of them one it routes.
    // Every route the router prints is among them (the provider's wildcard may print in a form the reader skips).
    const known = new Set(ROUTES.map(({ method, url }) => `${method} ${url}`));
    for (const { method, url } of PRINTED) {
      if (app.hasRoute({ method: method as 'GET', url })) expect(known.has(`${method} ${url}`), `${method} ${url}`).toBe(true);
    }
    for (const { method, url } of ROUTES) expect(app.hasRoute({ method: method as 'GET', url: url === '*' ? '/*' : url }), `${method} ${url}`).toBe(true);
    expect(ROUTES.length).toBeGreaterThan(60);
    expect(ROUTES.filter((r) => r.auth === 'admin').length).toBeGreaterThan(10);
    expect(ROUTES.filter((r) => r.auth === 'user').length).toBeGreaterThan(10);
    expect(ROUTES.filter((r) => r.params).length).toBeGreaterThan(8);
    expect(ROUTES.filter((r) => r.querystring).length).toBeGreaterThan(1);
    expect(ROUTES.filter((r) => r.body).length).toBeGreaterThan(15);
  });
});

describe.each(cases)('%s under hostile input', (_name, route) => {
  it('without credentials (none, or a wrong Authorization header): a success or a 4xx JSON error, and refused requests change nothing', async () => {
    await fc.assert(
      fc.asyncProperty(requestArbitrary(route), wrongAuthorization, async (request, authorization) => {
        await send(route, request, authorization);
      }),
      { numRuns: runsFor(route) },
    );
  });

  it(`with ${route.auth === 'admin' ? 'an admin key' : "a signed-in user's access token"}: past authentication, the same`, async () => {
    await fc.assert(
      fc.asyncProperty(requestArbitrary(route), async (request) => {
        await send(route, request, `Bearer ${await credentials(route.auth ?? 'user')}`);
      }),
      { numRuns: runsFor(route) },
    );
  });
});

describe('beside the routes', () => {
  it('answers any method on any path beside the routes with a success or a 4xx JSON error', async () => {
    const prefixes = [...new Set(ROUTES.map((route) => route.url.replace(/[:*].*$/, '')))];
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'TRACE', 'SEARCH'),
        fc.constantFrom(...prefixes),
        fc.array(hostileUrlPart, { maxLength: 3 }),
        bodyArbitrary({ method: 'POST', url: '/' }, true),
        async (method, prefix, rest, body) => {
          await send({ method, url: '/' }, { url: `${prefix}${rest.join('/')}`.replace(/^(?!\/)/, '/'), body, headers: {} }, undefined);
        },
      ),
      { numRuns: 100 * FACTOR },
    );
  });
});

describe('after all of it', () => {
  it('the process is healthy: live, ready, no prototype polluted, and the account in use signs in with its password', async () => {
    expect((await app.inject('/healthz')).statusCode).toBe(200);
    const ready = await app.inject('/readyz');
    expect(ready.statusCode, ready.body).toBe(200);
    expect(json(ready)['status']).toBe('ready');
    // `__proto__` and `constructor.prototype` members went into every parser: none reached a shared prototype.
    expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(PROTOTYPE_MEMBERS);
    expect(({} as Record<string, unknown>)['isAdmin']).toBeUndefined();
    staleUser = true;
    expect((await me(app, await credentials('user'))).statusCode).toBe(200);
    expect((await login(app, signedInAs.username, signedInAs.password)).statusCode).toBe(200);
  });
});
