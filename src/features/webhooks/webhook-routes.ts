import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { absentBodyIsEmpty, NumericId, SingleLine, Text, UuidId } from '../../kernel/http/schemas.js';
import { adminAction, type AuditRule } from '../audit/audit-hook.js';
import { ALL_EVENTS, RECENT_DELIVERIES, URL_MAX_LENGTH, type Delivery, type EndpointSummary, type Webhooks } from './webhooks.js';

const ADMIN = { auth: 'admin' } as const;
const EndpointId = Type.Object({ id: UuidId });

const Url = SingleLine({ minLength: 1, maxLength: URL_MAX_LENGTH, description: 'http:// or https://; where each event is POSTed' });
const EventTypes = Type.Array(SingleLine({ minLength: 1, maxLength: 64 }), {
  minItems: 1,
  maxItems: 50,
  description: `Event types (\`user.created\`, \`session.revoked\`, …), or \`["${ALL_EVENTS}"]\` for every one`,
});
const Description = Text({ maxLength: 500 });

const EndpointBody = Type.Object({
  id: Type.String({ format: 'uuid' }),
  url: Type.String(),
  description: Type.String(),
  events: Type.Array(Type.String()),
  enabled: Type.Boolean(),
  created_at: Type.String({ format: 'date-time' }),
  updated_at: Type.String({ format: 'date-time' }),
  previous_secret_until: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], {
    description: 'After a rotation: until when the old secret still signs beside the new one',
  }),
});

const DeliveryBody = Type.Object({
  id: Type.String({ description: 'For POST /admin/webhooks/deliveries/{id}/retry' }),
  webhook_id: Type.String({ description: 'The `webhook-id` header: the event\'s, the same on every attempt' }),
  event_type: Type.String(),
  state: Type.Union([Type.Literal('pending'), Type.Literal('sent'), Type.Literal('failed')], {
    description: '`pending` (waiting for an attempt, or being tried), `sent` (answered 2xx), `failed` (given up)',
  }),
  attempts: Type.Integer(),
  last_error: Type.Union([Type.String(), Type.Null()], { description: 'Why the last attempt failed' }),
  created_at: Type.String({ format: 'date-time' }),
  last_attempt_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  next_attempt_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  finished_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
});

function endpointBody(endpoint: EndpointSummary) {
  return {
    id: endpoint.id,
    url: endpoint.url,
    description: endpoint.description,
    events: endpoint.events,
    enabled: endpoint.enabled,
    created_at: endpoint.createdAt.toISOString(),
    updated_at: endpoint.updatedAt.toISOString(),
    previous_secret_until: endpoint.previousSecretUntil?.toISOString() ?? null,
  };
}

function deliveryBody(d: Delivery) {
  return {
    id: d.id,
    webhook_id: d.webhookId,
    event_type: d.eventType,
    state: d.state,
    attempts: d.attempts,
    last_error: d.lastError,
    created_at: d.createdAt.toISOString(),
    last_attempt_at: d.lastAttemptAt?.toISOString() ?? null,
    next_attempt_at: d.nextAttemptAt?.toISOString() ?? null,
    finished_at: d.finishedAt?.toISOString() ?? null,
  };
}

/** An operator's action on an endpoint: in the audit trail with the endpoint (or delivery) as a detail, and no user. */
function webhookAction(action: string, status = 200): AuditRule {
  const rule = adminAction(action, status);
  return (outcome) => rule({ ...outcome, params: {} });
}

const Secret = Type.String({ description: '`whsec_…`: verify the signatures with it (Standard Webhooks). Shown this once.' });

/**
 * The admin API's webhook endpoints: what events go where, their secrets, and their deliveries. Served under
 * /admin/webhooks (registered under /admin), with an admin key, beside the rest of the admin API.
 */
export const webhookRoutes: FastifyPluginAsyncTypebox<{ webhooks: Webhooks }> = async (app, { webhooks }) => {
  app.addHook('onSend', async (_request, reply) => {
    reply.header('cache-control', 'no-store');
  });

  app.post(
    '/webhooks',
    {
      config: { ...ADMIN, audit: webhookAction('webhook_created', 201), errors: ['webhooks_unavailable'] },
      schema: {
        summary: 'Create a webhook endpoint: its signing secret is shown this once',
        description:
          'Each event of `events` is POSTed to `url` as `{type, timestamp, data}`, signed as Standard Webhooks sign ' +
          '(`webhook-id`, `webhook-timestamp`, `webhook-signature`), and retried with growing delays until it is answered 2xx.',
        tags: ['webhooks'],
        body: Type.Object(
          { url: Url, events: EventTypes, description: Type.Optional(Description) },
          { examples: [{ url: 'https://hooks.example.com/auth', events: ['user.created', 'user.deleted'], description: 'provisioning' }] },
        ),
        response: { 201: Type.Object({ ...EndpointBody.properties, secret: Secret }) },
      },
    },
    async (request, reply) => {
      const { url, events, description } = request.body;
      const { endpoint, secret } = await webhooks.create({ url, events, description });
      request.auditDetails = { webhook_id: endpoint.id };
      return reply.code(201).send({ ...endpointBody(endpoint), secret });
    },
  );

  app.get(
    '/webhooks',
    {
      config: { ...ADMIN, errors: [] },
      schema: {
        summary: 'The webhook endpoints (never their secrets)',
        tags: ['webhooks'],
        response: { 200: Type.Object({ webhooks: Type.Array(EndpointBody) }) },
      },
    },
    async () => ({ webhooks: (await webhooks.list()).map(endpointBody) }),
  );

  app.get(
    '/webhooks/:id',
    {
      config: { ...ADMIN, errors: ['invalid_request', 'not_found'] },
      schema: {
        summary: `A webhook endpoint and its ${RECENT_DELIVERIES} latest deliveries, newest first`,
        tags: ['webhooks'],
        params: EndpointId,
        response: { 200: Type.Object({ ...EndpointBody.properties, deliveries: Type.Array(DeliveryBody) }) },
      },
    },
    async (request) => {
      const { endpoint, deliveries } = await webhooks.get(request.params.id);
      return { ...endpointBody(endpoint), deliveries: deliveries.map(deliveryBody) };
    },
  );

  app.patch(
    '/webhooks/:id',
    {
      config: { ...ADMIN, audit: webhookAction('webhook_updated'), errors: ['not_found'] },
      schema: {
        summary: 'Change where a webhook endpoint is, what it gets, or whether it is enabled',
        description: 'A disabled endpoint gets no new deliveries; those already waiting are tried again as soon as it is enabled.',
        tags: ['webhooks'],
        params: EndpointId,
        body: Type.Object(
          { url: Type.Optional(Url), events: Type.Optional(EventTypes), enabled: Type.Optional(Type.Boolean()), description: Type.Optional(Description) },
          { examples: [{ enabled: false }] },
        ),
        response: { 200: EndpointBody },
      },
    },
    async (request) => {
      const { url, events, enabled, description } = request.body;
      const endpoint = await webhooks.update(request.params.id, { url, events, enabled, description });
      const changes = [url !== undefined && 'url', events !== undefined && 'events', enabled === true && 'enabled', enabled === false && 'disabled', description !== undefined && 'description'];
      request.auditDetails = { webhook_id: endpoint.id, changes: changes.filter(Boolean).join(',') };
      return endpointBody(endpoint);
    },
  );

  app.delete(
    '/webhooks/:id',
    {
      config: { ...ADMIN, audit: webhookAction('webhook_deleted'), errors: ['invalid_request', 'not_found'] },
      schema: {
        summary: 'Delete a webhook endpoint; its deliveries not yet made are given up',
        tags: ['webhooks'],
        params: EndpointId,
        response: { 200: Type.Object({ message: Type.String() }) },
      },
    },
    async (request) => {
      await webhooks.delete(request.params.id);
      request.auditDetails = { webhook_id: request.params.id };
      return { message: 'Webhook endpoint deleted' };
    },
  );

  app.post(
    '/webhooks/:id/rotate-secret',
    {
      config: { ...ADMIN, audit: webhookAction('webhook_secret_rotated'), errors: ['invalid_request', 'not_found', 'webhooks_unavailable'] },
      preValidation: absentBodyIsEmpty,
      schema: {
        summary: 'A new signing secret, shown this once; the old one signs beside it for 24 hours',
        description: 'Each delivery carries a signature by each secret (`v1,… v1,…`) until then: a receiver holding either one verifies it.',
        tags: ['webhooks'],
        params: EndpointId,
        response: { 200: Type.Object({ ...EndpointBody.properties, secret: Secret }) },
      },
    },
    async (request) => {
      const { endpoint, secret } = await webhooks.rotateSecret(request.params.id);
      request.auditDetails = { webhook_id: endpoint.id };
      return { ...endpointBody(endpoint), secret };
    },
  );

  app.post(
    '/webhooks/deliveries/:id/retry',
    {
      config: { ...ADMIN, audit: webhookAction('webhook_delivery_retried'), errors: ['invalid_request', 'not_found'] },
      preValidation: absentBodyIsEmpty,
      schema: {
        summary: 'Try a delivery again now (a failed one, or one waiting for its next attempt), with the same webhook-id',
        description: 'It gets a new series of attempts, retried for WEBHOOK_RETRY_FOR_SECONDS from now.',
        tags: ['webhooks'],
        params: Type.Object({ id: NumericId }),
        response: { 200: DeliveryBody },
      },
    },
    async (request) => {
      const retried = await webhooks.retry(request.params.id);
      request.auditDetails = { delivery_id: retried.id };
      return deliveryBody(retried);
    },
  );
};
