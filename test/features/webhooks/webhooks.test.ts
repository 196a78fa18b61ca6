import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { InjectOptions } from 'fastify';
import { declaredEventTypes } from '../../../src/kernel/events.js';
import { change, deleteAccount, json, login, logout, PASSWORD, post, register, startTestApp, uniqueName, type TestApp } from '../../helpers/app.js';
import { awaitSteadyStep, codeAt } from '../../helpers/totp.js';
import { SoftAuthenticator } from '../../helpers/webauthn.js';
import { eventually, Receiver, verified, type Answer, type Received } from '../../helpers/webhook-receiver.js';

/**
 * Webhooks through the real app, to real HTTP receivers on loopback that verify every signature with the
 * `standardwebhooks` package, as a receiving service would. Loopback is a private destination, so these apps allow
 * private networks (one test shows the refusal without it), and retry after a second instead of five.
 */
const FAST_RETRIES = { WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true', WEBHOOK_RETRY_FIRST_SECONDS: '1', WEBHOOK_RETRY_MAX_SECONDS: '1' };

const receivers: Receiver[] = [];
async function receiver(answer?: (request: Received, index: number) => Answer): Promise<Receiver> {
  const started = await Receiver.start(answer);
  receivers.push(started);
  return started;
}
/** Endpoints of the shared app made by a test: deleted after it, so that no later event goes to its closed receiver. */
const endpoints: string[] = [];
afterEach(async () => {
  for (const id of endpoints.splice(0)) await admin(t, adminKey, { method: 'DELETE', url: `/admin/webhooks/${id}` });
  for (const r of receivers.splice(0)) await r.close();
});

let t: TestApp;
let adminKey: string;
beforeAll(async () => {
  t = await startTestApp(FAST_RETRIES);
  adminKey = (await t.services.adminKeys.create('webhooks-test')).key;
});
afterAll(() => t.close());

function admin(app: TestApp, key: string, request: InjectOptions) {
  return app.app.inject({ ...request, headers: { ...request.headers, authorization: `Bearer ${key}` } });
}

async function createEndpoint(app: TestApp, key: string, body: Record<string, unknown>): Promise<{ id: string; secret: string }> {
  const response = await admin(app, key, { method: 'POST', url: '/admin/webhooks', payload: body });
  expect(response.statusCode, response.body).toBe(201);
  const created = json(response) as { id: string; secret: string };
  if (app === t) endpoints.push(created.id);
  return created;
}

async function endpointView(app: TestApp, key: string, id: string): Promise<Record<string, any>> {
  const response = await admin(app, key, { url: `/admin/webhooks/${id}` });
  expect(response.statusCode, response.body).toBe(200);
  return json(response);
}

/** Waits for a delivery of the endpoint to reach a state, and returns it. */
function deliveryIn(app: TestApp, key: string, endpointId: string, state: string, match: (d: Record<string, any>) => boolean = () => true) {
  return eventually(async () => {
    const { deliveries } = await endpointView(app, key, endpointId);
    return (deliveries as Record<string, any>[]).find((d) => d['state'] === state && match(d));
  }, `a delivery ${state}`);
}

describe('webhook deliveries', () => {
  it('POSTs each event to the endpoints that want it, signed as Standard Webhooks sign, with no secret in it', async () => {
    const all = await receiver();
    const deletions = await receiver();
    const everything = await createEndpoint(t, adminKey, { url: `${all.url}/all`, events: ['*'], description: 'everything' });
    const deletesOnly = await createEndpoint(t, adminKey, { url: deletions.url, events: ['user.deleted'] });
    expect(everything.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);

    const user = await register(t.app);
    const renamed = uniqueName('renamed');
    expect((await change(t.app, { new_username: renamed }, user.token)).statusCode).toBe(200);
    expect((await deleteAccount(t.app, { current_password: PASSWORD }, user.token)).statusCode).toBe(200);

    const received = await eventually(() => all.received.length >= 3 && deletions.received.length >= 1 && all.received);
    // Every request carries a signature the receiver's secret verifies; another endpoint's secret does not.
    const events = received.map((request) => verified(everything.secret, request));
    expect(() => verified(deletesOnly.secret, received[0]!)).toThrow();
    const byType = Object.fromEntries(events.map((event) => [event.type, event]));
    expect(Object.keys(byType).sort()).toEqual(['user.created', 'user.deleted', 'user.updated']);
    expect(byType['user.created']!.data).toEqual({ user_id: String(user.id), username: user.username });
    expect(byType['user.updated']!.data).toEqual({ user_id: String(user.id), changes: ['username'], username: renamed });
    expect(byType['user.deleted']!.data).toEqual({ user_id: String(user.id) });
    for (const event of events) expect(new Date(event.timestamp).toISOString()).toBe(event.timestamp);
    for (const request of received) {
      expect(request.path).toBe('/all');
      expect(request.headers['content-type']).toBe('application/json');
      expect(request.headers['webhook-id']).toMatch(/^msg_[A-Za-z0-9_-]{22}$/);
      expect(request.headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
      expect(Object.keys(JSON.parse(request.body)).sort()).toEqual(['data', 'timestamp', 'type']);
      expect(request.body).not.toContain(PASSWORD);
      expect(request.body).not.toContain(user.token);
      expect(request.body).not.toContain(user.refreshToken);
    }

    // The other endpoint got the deletion alone: one event, one webhook-id, the same for both endpoints.
    expect(deletions.received.map((request) => verified(deletesOnly.secret, request).type)).toEqual(['user.deleted']);
    const deletionId = deletions.received[0]!.headers['webhook-id']!;
    expect(all.withId(deletionId)).toHaveLength(1);
    const view = await endpointView(t, adminKey, deletesOnly.id);
    expect(view).toMatchObject({ id: deletesOnly.id, url: `${deletions.url}/`, events: ['user.deleted'], enabled: true, previous_secret_until: null });
    expect(view['secret']).toBeUndefined();
    await deliveryIn(t, adminKey, deletesOnly.id, 'sent');
    expect((await endpointView(t, adminKey, deletesOnly.id))['deliveries']).toMatchObject([
      { webhook_id: deletionId, event_type: 'user.deleted', state: 'sent', attempts: 1, last_error: null, next_attempt_at: null },
    ]);
  });

  it('tells of every kind of change, each in its own event with what changed', async () => {
    const all = await receiver();
    const endpoint = await createEndpoint(t, adminKey, { url: all.url, events: ['*'] });
    const username = uniqueName('every');
    const expectOk = async (response: Promise<{ statusCode: number; body: string }>, status = 200) => {
      const answered = await response;
      expect(answered.statusCode, answered.body).toBe(status);
      return JSON.parse(answered.body) as Record<string, any>;
    };
    const created = await expectOk(admin(t, adminKey, { method: 'POST', url: '/admin/users', payload: { username, password: PASSWORD } }), 201);
    const id = String(created['id']);
    await expectOk(admin(t, adminKey, { method: 'PATCH', url: `/admin/users/${id}`, payload: { roles: ['support'], app_metadata: { plan: 'pro' } } }));
    const first = await expectOk(login(t.app, username));
    await expectOk(t.app.inject({ method: 'PATCH', url: '/api/auth/me', headers: { authorization: `Bearer ${first['access_token']}` }, payload: { user_metadata: { theme: 'dark' } } }));
    await expectOk(admin(t, adminKey, { method: 'PATCH', url: `/admin/users/${id}`, payload: { locked: true, reason: 'investigation' } }));
    await expectOk(admin(t, adminKey, { method: 'PATCH', url: `/admin/users/${id}`, payload: { locked: false } }));
    await expectOk(login(t.app, username));
    const session = await expectOk(login(t.app, username));
    await expectOk(change(t.app, { new_password: 'another fine passphrase', new_password_confirm: 'another fine passphrase' }, session['access_token']));
    const code = (await expectOk(admin(t, adminKey, { method: 'POST', url: `/admin/users/${id}/recovery-code` }), 201))['code'];
    const recovered = await expectOk(
      post(t.app, '/api/auth/recover', { username, code, new_password: PASSWORD, new_password_confirm: PASSWORD }),
    );
    const token = recovered['access_token'] as string;
    const bearer = { authorization: `Bearer ${token}` };
    // An authenticator app, added and removed.
    const enrolment = await expectOk(t.app.inject({ method: 'POST', url: '/api/auth/mfa/totp', headers: bearer, payload: {} }), 201);
    await awaitSteadyStep();
    const confirmed = await expectOk(
      t.app.inject({ method: 'POST', url: `/api/auth/mfa/totp/${enrolment['id']}/verify`, headers: bearer, payload: { code: await codeAt(enrolment['secret']) } }),
    );
    const twoFactor = { authorization: `Bearer ${confirmed['access_token']}` };
    await expectOk(t.app.inject({ method: 'DELETE', url: `/api/auth/mfa/totp/${enrolment['id']}`, headers: twoFactor, payload: {} }));
    // A passkey, added and removed.
    const authenticator = new SoftAuthenticator(new URL(t.config.publicUrl).origin, t.config.passkeys!.rpId);
    const options = await expectOk(t.app.inject({ method: 'POST', url: '/api/auth/passkeys/register/options', headers: twoFactor, payload: {} }));
    const { passkey } = await expectOk(
      t.app.inject({ method: 'POST', url: '/api/auth/passkeys/register', headers: twoFactor, payload: { response: authenticator.register(options as { challenge: string }) } }),
      201,
    );
    await expectOk(admin(t, adminKey, { method: 'DELETE', url: `/admin/users/${id}/passkeys/${passkey['id']}` }));
    await expectOk(logout(t.app, confirmed['access_token'] as string));
    await expectOk(login(t.app, username));
    await expectOk(admin(t, adminKey, { method: 'POST', url: `/admin/users/${id}/logout` }));
    await expectOk(admin(t, adminKey, { method: 'DELETE', url: `/admin/users/${id}` }));

    const events = await eventually(() => {
      const found = all.received.map((request) => verified(endpoint.secret, request));
      return found.some((event) => event.type === 'user.deleted') && found;
    });
    expect(new Set(events.map((event) => event.type))).toEqual(new Set(declaredEventTypes().map(([type]) => type)));
    for (const event of events) expect(event.data['user_id']).toBe(id);
    const ofType = (type: string) => events.filter((event) => event.type === type).map((event) => event.data);
    expect(ofType('user.updated')).toEqual(
      expect.arrayContaining([
        { user_id: id, changes: ['roles', 'app_metadata'], roles: ['support'], app_metadata: { plan: 'pro' } },
        { user_id: id, changes: ['user_metadata'], user_metadata: { theme: 'dark' } },
      ]),
    );
    expect(ofType('user.locked')).toEqual([{ user_id: id, reason: 'investigation', until: null }]);
    expect(ofType('password.reset')).toEqual([{ user_id: id, method: 'recovery_code' }]);
    expect(ofType('mfa.enabled')).toEqual([{ user_id: id, factor_id: enrolment['id'], type: 'totp' }]);
    expect(ofType('passkey.removed')).toEqual([{ user_id: id, passkey_id: passkey['id'] }]);
    const reasons = ofType('session.revoked').map((data) => data['reason']).sort();
    expect(reasons).toEqual(['account_recovered', 'admin_logout', 'locked', 'logout', 'password_change']);
    for (const data of ofType('session.revoked')) expect(data['session_ids'].length).toBeGreaterThan(0);
  });

  it('writes no event for a change that was refused or rolled back', async () => {
    const all = await receiver();
    const endpoint = await createEndpoint(t, adminKey, { url: all.url, events: ['user.updated', 'user.created'] });
    const taken = await register(t.app);
    const user = await register(t.app);
    expect((await change(t.app, { new_username: taken.username }, user.token)).statusCode).toBe(409);
    expect((await register(t.app, { username: user.username }).catch((error: Error) => error)).toString()).toContain('409');
    const ids = new Set([String(taken.id), String(user.id)]);
    await eventually(() => all.received.length >= 2);
    // The rows are written with their change: what is there now is all there will be.
    const deliveries = (await endpointView(t, adminKey, endpoint.id))['deliveries'] as Record<string, any>[];
    expect(deliveries.map((d) => d['event_type'])).toEqual(['user.created', 'user.created']);
    expect(new Set(all.received.map((r) => verified(endpoint.secret, r).data['user_id']))).toEqual(ids);
  });

  it('retries a failing receiver with growing delays and the same webhook-id until it answers 2xx', async () => {
    const flaky = await receiver((_request, index) => (index < 3 ? 500 : 200));
    const endpoint = await createEndpoint(t, adminKey, { url: flaky.url, events: ['user.created'] });
    await register(t.app);
    const sent = await deliveryIn(t, adminKey, endpoint.id, 'sent');
    expect(sent).toMatchObject({ attempts: 4, last_error: null });
    expect(flaky.received).toHaveLength(4);
    expect(new Set(flaky.received.map((r) => r.headers['webhook-id']))).toEqual(new Set([sent['webhook_id']]));
    // Each attempt is signed anew, and each verifies.
    for (const request of flaky.received) expect(verified(endpoint.secret, request).type).toBe('user.created');
    const metrics = await t.app.inject('/metrics');
    expect(metrics.body).toMatch(/webhook_deliveries_total\{result="retry"\} [1-9]/);
    expect(metrics.body).toMatch(/webhook_deliveries_total\{result="sent"\} [1-9]/);
    expect(metrics.body).toContain('webhook_delivery_duration_seconds_count{result="sent"}');
    expect(metrics.body).toMatch(/outbox_messages\{topic="webhook",state="sent"\} [1-9]/);
  });

  it('counts a redirect, a timeout and an error status as failures, and reads no more than 1 KB of an answer', async () => {
    const target = await receiver();
    const redirecting = await receiver(() => ({ status: 302, headers: { location: `${target.url}/moved` } }));
    const endless = await receiver(() => ({ status: 200, endless: true }));
    const slow = await receiver(() => 'hang');
    const app = await startTestApp({ ...FAST_RETRIES, WEBHOOK_TIMEOUT_MS: '300', WEBHOOK_RETRY_FIRST_SECONDS: '3600', WEBHOOK_RETRY_MAX_SECONDS: '3600' });
    try {
      const key = (await app.services.adminKeys.create('limits')).key;
      const redirect = await createEndpoint(app, key, { url: redirecting.url, events: ['user.created'] });
      const stream = await createEndpoint(app, key, { url: endless.url, events: ['user.created'] });
      const hanging = await createEndpoint(app, key, { url: slow.url, events: ['user.created'] });
      await register(app.app);
      expect(await deliveryIn(app, key, redirect.id, 'pending', (d) => d['last_error'] !== null)).toMatchObject({ last_error: 'the receiver answered 302' });
      expect(await deliveryIn(app, key, hanging.id, 'pending', (d) => d['last_error'] !== null)).toMatchObject({ last_error: 'no answer within 300 ms' });
      // An answer that never ends is a 200 all the same: the sender stops reading and moves on.
      await deliveryIn(app, key, stream.id, 'sent');
      expect(target.received).toEqual([]);
    } finally {
      await app.close();
    }
  });

  it('refuses a private destination by default: at creation when it is an address, at each send when a name resolves to one', async () => {
    const local = await receiver();
    const app = await startTestApp({});
    try {
      const key = (await app.services.adminKeys.create('private')).key;
      const literal = await admin(app, key, { method: 'POST', url: '/admin/webhooks', payload: { url: local.url, events: ['*'] } });
      expect(literal.statusCode).toBe(400);
      expect(json(literal)).toMatchObject({ error: 'invalid_request', message: expect.stringContaining('WEBHOOK_ALLOW_PRIVATE_NETWORKS') });
      for (const url of ['ftp://example.com/x', 'http://user:secret@example.com/', 'not a url']) {
        expect((await admin(app, key, { method: 'POST', url: '/admin/webhooks', payload: { url, events: ['*'] } })).statusCode).toBe(400);
      }
      // A name is checked when sending, against the address it resolves to then.
      const named = await createEndpoint(app, key, { url: `http://localhost:${local.port}/hook`, events: ['user.created'] });
      await register(app.app);
      const refused = await deliveryIn(app, key, named.id, 'pending', (d) => d['last_error'] !== null);
      expect(refused['last_error']).toMatch(/^localhost resolves to (127\.0\.0\.1|::1), a loopback, private or link-local address: refused \(WEBHOOK_ALLOW_PRIVATE_NETWORKS\)$/);
      expect(local.received).toEqual([]);
    } finally {
      await app.close();
    }
  });

  it('signs with the old secret beside the new one for a day after a rotation', async () => {
    const all = await receiver();
    const endpoint = await createEndpoint(t, adminKey, { url: all.url, events: ['user.created'] });
    const rotated = await admin(t, adminKey, { method: 'POST', url: `/admin/webhooks/${endpoint.id}/rotate-secret` });
    expect(rotated.statusCode).toBe(200);
    const { secret, previous_secret_until: until } = json(rotated);
    expect(secret).not.toBe(endpoint.secret);
    expect(new Date(until).getTime() - Date.now()).toBeGreaterThan(23 * 3600 * 1000);
    const user = await register(t.app);
    const [request] = await eventually(() => all.received.length >= 1 && all.received);
    expect(request!.headers['webhook-signature']!.split(' ')).toHaveLength(2);
    expect(verified(secret, request!).data['user_id']).toBe(String(user.id));
    expect(verified(endpoint.secret, request!).data['user_id']).toBe(String(user.id));
  });

  it('gives up after WEBHOOK_RETRY_FOR_SECONDS, and the admin retry sends a failed delivery again with its webhook-id', async () => {
    let up = false;
    const flaky = await receiver(() => (up ? 204 : 503));
    const app = await startTestApp({ ...FAST_RETRIES, WEBHOOK_RETRY_FOR_SECONDS: '1' });
    try {
      const key = (await app.services.adminKeys.create('retry')).key;
      const endpoint = await createEndpoint(app, key, { url: flaky.url, events: ['user.created'] });
      await register(app.app);
      const failed = await deliveryIn(app, key, endpoint.id, 'failed');
      expect(failed).toMatchObject({ last_error: 'the receiver answered 503', next_attempt_at: null, finished_at: expect.any(String) });
      expect((await app.app.inject('/metrics')).body).toMatch(/webhook_deliveries_total\{result="failed"\} 1/);
      up = true;
      const retried = await admin(app, key, { method: 'POST', url: `/admin/webhooks/deliveries/${failed['id']}/retry` });
      expect(retried.statusCode, retried.body).toBe(200);
      expect(json(retried)).toMatchObject({ id: failed['id'], webhook_id: failed['webhook_id'], state: 'pending', attempts: 0 });
      await deliveryIn(app, key, endpoint.id, 'sent');
      const answered = flaky.received.at(-1)!;
      expect(answered.headers['webhook-id']).toBe(failed['webhook_id']);
      expect(verified(endpoint.secret, answered).type).toBe('user.created');
      expect((await admin(app, key, { method: 'POST', url: '/admin/webhooks/deliveries/987654321/retry' })).statusCode).toBe(404);
    } finally {
      await app.close();
    }
  });

  it('sends nothing to a disabled endpoint, and gives up the waiting deliveries of a deleted one', async () => {
    const all = await receiver(() => 500);
    const endpoint = await createEndpoint(t, adminKey, { url: all.url, events: ['user.created'] });
    const disabled = await admin(t, adminKey, { method: 'PATCH', url: `/admin/webhooks/${endpoint.id}`, payload: { enabled: false } });
    expect(json(disabled)).toMatchObject({ enabled: false });
    await register(t.app);
    expect((await endpointView(t, adminKey, endpoint.id))['deliveries']).toEqual([]);
    await admin(t, adminKey, { method: 'PATCH', url: `/admin/webhooks/${endpoint.id}`, payload: { enabled: true, events: ['user.created', 'user.deleted'] } });
    await register(t.app);
    await deliveryIn(t, adminKey, endpoint.id, 'pending', (d) => d['attempts'] > 0);
    expect((await admin(t, adminKey, { method: 'DELETE', url: `/admin/webhooks/${endpoint.id}` })).statusCode).toBe(200);
    expect((await admin(t, adminKey, { url: `/admin/webhooks/${endpoint.id}` })).statusCode).toBe(404);
    const [row] = await t.db.query<{ state: string; last_error: string }>(`SELECT state, last_error FROM outbox WHERE topic = 'webhook' AND subject = $1`, [endpoint.id]);
    expect(row).toEqual({ state: 'failed', last_error: 'the endpoint was deleted' });
    const list = json(await admin(t, adminKey, { url: '/admin/webhooks' }))['webhooks'] as { id: string }[];
    expect(list.map((w) => w.id)).not.toContain(endpoint.id);
  });

  it('checks what the admin API is given, and answers 404 for what is not there', async () => {
    const refused = (payload: unknown) => admin(t, adminKey, { method: 'POST', url: '/admin/webhooks', payload: payload as object });
    expect(json(await refused({ url: 'https://example.com/x', events: ['user.renamed'] }))).toMatchObject({ error: 'invalid_request', message: 'unknown event types: user.renamed' });
    expect((await refused({ url: 'https://example.com/x', events: ['*', 'user.created'] })).statusCode).toBe(400);
    expect((await refused({ url: 'https://example.com/x', events: [] })).statusCode).toBe(400);
    expect((await refused({ events: ['*'] })).statusCode).toBe(400);
    expect((await t.app.inject({ method: 'POST', url: '/admin/webhooks', payload: { url: 'https://example.com', events: ['*'] } })).statusCode).toBe(401);
    const missing = '00000000-0000-4000-8000-000000000000';
    for (const request of [
      { url: `/admin/webhooks/${missing}` },
      { method: 'PATCH' as const, url: `/admin/webhooks/${missing}`, payload: { enabled: false } },
      { method: 'DELETE' as const, url: `/admin/webhooks/${missing}` },
      { method: 'POST' as const, url: `/admin/webhooks/${missing}/rotate-secret` },
    ]) {
      expect((await admin(t, adminKey, request)).statusCode).toBe(404);
    }
    expect((await admin(t, adminKey, { url: '/admin/webhooks/not-a-uuid' })).statusCode).toBe(400);
    await t.services.audit.settled();
    const audit = json(await admin(t, adminKey, { url: '/admin/audit?type=admin_action&limit=200' }))['events'] as { details: Record<string, unknown>; user_id: unknown }[];
    const created = audit.find((e) => e.details['action'] === 'webhook_created');
    expect(created).toMatchObject({ user_id: null, details: { webhook_id: expect.any(String) } });
  });
});

describe('two instances on one database', () => {
  it('deliver each event once', async () => {
    const all = await receiver();
    // On PostgreSQL a pool of its own, as another process would have; the embedded database has one connection.
    const second = await startTestApp(FAST_RETRIES, { testDatabase: t.testDatabase, db: t.testDatabase.openAnother?.() ?? t.testDatabase.db });
    try {
      const endpoint = await createEndpoint(t, adminKey, { url: all.url, events: ['user.created'] });
      const apps = [t, second];
      const users = await Promise.all(Array.from({ length: 20 }, (_, i) => register(apps[i % 2]!.app)));
      await eventually(() => all.received.length >= users.length);
      // Both senders have had time to deliver a row twice, had they both taken one.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      const ids = all.received.map((request) => request.headers['webhook-id']);
      expect(ids).toHaveLength(users.length);
      expect(new Set(ids).size).toBe(users.length);
      expect(new Set(all.received.map((r) => verified(endpoint.secret, r).data['user_id']))).toEqual(new Set(users.map((u) => String(u.id))));
    } finally {
      await second.close();
    }
  });
});
