import { randomBytes, randomUUID } from 'node:crypto';
import { isIP } from 'node:net';
import { Counter, Histogram } from 'prom-client';
import type { Logger } from 'pino';
import { Webhook } from 'standardwebhooks';
import { afterCommit, type Database, type Queryable } from '../../kernel/db/database.js';
import { ServiceError } from '../../kernel/errors.js';
import { isEventType, type DomainEvent, type Events } from '../../kernel/events.js';
import { isNonPublicAddress } from '../../kernel/ip-addresses.js';
import type { Metrics } from '../../kernel/metrics.js';
import { DeliveryError, retrySchedule, type Outbox, type OutboxRow } from '../../kernel/outbox/outbox.js';
import { abandonPendingRows, findOutboxRow, recentOutboxRows, releaseWaiting, requeueRow } from '../../kernel/outbox/outbox-queries.js';
import { SecretBox, type SecretKey } from '../../kernel/secret-box.js';
import { listGeneratedSecretsKeys } from '../mfa/mfa-queries.js';
import { OutboundError, post } from './outbound-http.js';
import {
  deleteEndpoint,
  findEndpoint,
  findEndpointsNotUnderKey,
  findSubscribedEndpointIds,
  insertEndpoint,
  listEndpoints,
  resealEndpoint,
  rotateEndpointSecret,
  updateEndpoint,
  type SealedSecret,
  type StoredEndpoint,
} from './webhook-queries.js';
import { SECRET_PREFIX, type WebhookConfig } from './webhook-settings.js';
import './webhook-errors.js';

/** The outbox topic of webhook deliveries: one row per endpoint and event, its subject the endpoint's id. */
export const WEBHOOK_TOPIC = 'webhook';
/** After a rotation, the old secret signs beside the new one this long, for receivers to switch over. */
export const SECRET_OVERLAP_SECONDS = 24 * 3600;
const SECRET_BYTES = 32;
/** What is read of a receiver's answer: its status is all that counts. */
const MAX_ANSWER_BYTES = 1024;
export const RECENT_DELIVERIES = 20;
export const URL_MAX_LENGTH = 2048;
export const ALL_EVENTS = '*';
const USER_AGENT = 'user-auth-service-webhooks';

/** What an outbox row of the topic holds: the exact bytes to send, so that every attempt sends the same ones. */
interface DeliveryPayload {
  /** Standard Webhooks' `webhook-id`: the event's, the same on every attempt. */
  webhook_id: string;
  type: string;
  /** `{type, timestamp, data}` as JSON. */
  body: string;
}

export type EndpointSummary = Omit<StoredEndpoint, 'secret' | 'previous'> & {
  /** Until when the secret before the last rotation still signs, if it does. */
  previousSecretUntil: Date | undefined;
};

export interface Delivery {
  id: string;
  webhookId: string;
  eventType: string;
  state: OutboxRow['state'];
  attempts: number;
  lastError: string | null;
  createdAt: Date;
  lastAttemptAt: Date | null;
  /** When a pending delivery is tried next (or, while it is being tried, when its sender's claim ends). */
  nextAttemptAt: Date | null;
  finishedAt: Date | null;
}

export interface EndpointInput {
  url: string;
  events: string[];
  description?: string | undefined;
}

function summary(endpoint: StoredEndpoint): EndpointSummary {
  const { secret: _secret, previous, ...rest } = endpoint;
  return { ...rest, previousSecretUntil: previous?.until };
}

function delivery(row: OutboxRow): Delivery {
  const payload = row.payload as Partial<DeliveryPayload>;
  return {
    id: row.id,
    webhookId: payload.webhook_id ?? '',
    eventType: payload.type ?? '',
    state: row.state,
    attempts: row.attempts,
    lastError: row.last_error,
    createdAt: row.created_at,
    lastAttemptAt: row.last_attempt_at,
    nextAttemptAt: row.state === 'pending' ? row.available_at : null,
    finishedAt: row.finished_at,
  };
}

function notFound(): ServiceError {
  return new ServiceError('not_found', 'No webhook endpoint has this id');
}

/** A destination an operator may name: http(s), no credentials in it, not a non-public address written out. */
function checkUrl(text: string, allowPrivateNetworks: boolean): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ServiceError('invalid_request', 'url must be an absolute http:// or https:// URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ServiceError('invalid_request', 'url must be an http:// or https:// URL');
  // It is shown in every listing: a password there would be too.
  if (url.username !== '' || url.password !== '') throw new ServiceError('invalid_request', 'url must not hold a user name or password');
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  // A name is checked at each send, against what it resolves to then; an address written out can be refused now.
  if (!allowPrivateNetworks && isIP(host) !== 0 && isNonPublicAddress(host)) {
    throw new ServiceError('invalid_request', `${host} is a loopback, private or link-local address: refused unless WEBHOOK_ALLOW_PRIVATE_NETWORKS=true`);
  }
  return url.toString();
}

/** `["*"]`, or known event types, each once. */
function checkEvents(events: string[]): string[] {
  const unique = [...new Set(events)];
  if (unique.length === 0) throw new ServiceError('invalid_request', 'events must name at least one event type, or be ["*"]');
  if (unique.includes(ALL_EVENTS)) {
    if (unique.length > 1) throw new ServiceError('invalid_request', 'events is ["*"] alone, or a list of event types');
    return unique;
  }
  const unknown = unique.filter((type) => !isEventType(type));
  if (unknown.length > 0) throw new ServiceError('invalid_request', `unknown event types: ${unknown.join(', ')}`);
  return unique;
}

/**
 * Writes a delivery per endpoint that wants the event, in the event's own transaction: every instance and the CLI
 * listen with this, and whichever instance's sender is free delivers.
 */
export function listenForWebhooks(events: Events, outbox: Outbox): void {
  events.listen(async (tx: Queryable, event: DomainEvent) => {
    const endpoints = await findSubscribedEndpointIds(tx, event.type);
    if (endpoints.length === 0) return;
    const body = JSON.stringify({ type: event.type, timestamp: event.timestamp, data: event.data });
    const payload: DeliveryPayload = { webhook_id: event.id, type: event.type, body };
    for (const endpoint of endpoints) await outbox.enqueue(tx, { topic: WEBHOOK_TOPIC, subject: endpoint, payload });
    afterCommit(tx, () => outbox.wake());
  });
}

/**
 * Webhook endpoints (managed through the admin API and the CLI), and the delivery of each event to them: signed as
 * Standard Webhooks sign (`webhook-id`, `webhook-timestamp`, `webhook-signature`), from the outbox, retried with
 * growing delays, never in a request's path.
 */
export class Webhooks {
  private readonly deliveries: Counter<'result'> | undefined;
  private readonly latency: Histogram<'result'> | undefined;

  constructor(
    private readonly db: Database,
    private readonly outbox: Outbox,
    /** SECRETS_ENCRYPTION_KEY's key ring: without one, no endpoint can be made. */
    private readonly box: SecretBox | undefined,
    private readonly settings: WebhookConfig,
    private readonly log: Logger,
    metrics?: Metrics,
  ) {
    if (metrics) {
      this.deliveries = new Counter({
        name: 'webhook_deliveries_total',
        help: 'Webhook delivery attempts by result: sent (a 2xx answer), retry (failed, tried again later), failed (given up after WEBHOOK_RETRY_FOR_SECONDS)',
        labelNames: ['result'] as const,
        registers: [metrics.registry],
      });
      this.latency = new Histogram({
        name: 'webhook_delivery_duration_seconds',
        help: 'Time for one webhook delivery attempt, from resolving the name to the answer, by result',
        labelNames: ['result'] as const,
        buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
        registers: [metrics.registry],
      });
    }
  }

  /** Listens for the features' events and delivers what they write; before the outbox starts. */
  start(events: Events): void {
    listenForWebhooks(events, this.outbox);
    const retry = this.settings.retry;
    this.outbox.register({
      topic: WEBHOOK_TOPIC,
      timeoutMs: this.settings.timeoutMs,
      retryDelaySeconds: retrySchedule({
        firstSeconds: retry.firstSeconds,
        capSeconds: () => retry.maxSeconds,
        giveUpAfterSeconds: retry.forSeconds,
      }),
      deliver: (row) => this.deliver(row),
      observe: (result, row, seconds, error) => {
        this.deliveries?.inc({ result });
        this.latency?.observe({ result }, seconds);
        if (result === 'sent') return;
        const line = { endpointId: row.subject, deliveryId: row.id, attempts: row.attempts, reason: error };
        if (result === 'failed') this.log.warn(line, 'webhook delivery given up (WEBHOOK_RETRY_FOR_SECONDS): marked failed');
        else this.log.info(line, 'webhook delivery failed: it will be tried again');
      },
    });
  }

  /** A new endpoint and its secret (`whsec_…`), shown this once. */
  async create(input: EndpointInput): Promise<{ endpoint: EndpointSummary; secret: string }> {
    const box = this.requireBox();
    const url = checkUrl(input.url, this.settings.allowPrivateNetworks);
    const events = checkEvents(input.events);
    const id = randomUUID();
    const raw = randomBytes(SECRET_BYTES);
    const endpoint = await insertEndpoint(this.db, { id, url, events, description: input.description ?? '', secret: this.seal(box, raw, id) });
    return { endpoint: summary(endpoint), secret: SECRET_PREFIX + raw.toString('base64') };
  }

  async list(): Promise<EndpointSummary[]> {
    return (await listEndpoints(this.db)).map(summary);
  }

  /** An endpoint with its latest deliveries, newest first. */
  async get(id: string): Promise<{ endpoint: EndpointSummary; deliveries: Delivery[] }> {
    const endpoint = await findEndpoint(this.db, id);
    if (!endpoint) throw notFound();
    const rows = await recentOutboxRows(this.db, WEBHOOK_TOPIC, { subject: id, limit: RECENT_DELIVERIES });
    return { endpoint: summary(endpoint), deliveries: rows.map(delivery) };
  }

  /** A disabled endpoint gets no new deliveries; those already waiting are tried again as soon as it is enabled. */
  async update(id: string, changes: { url?: string | undefined; events?: string[] | undefined; enabled?: boolean | undefined; description?: string | undefined }): Promise<EndpointSummary> {
    const updated = await updateEndpoint(this.db, id, {
      url: changes.url === undefined ? undefined : checkUrl(changes.url, this.settings.allowPrivateNetworks),
      events: changes.events === undefined ? undefined : checkEvents(changes.events),
      enabled: changes.enabled,
      description: changes.description,
    });
    if (!updated) throw notFound();
    if (changes.enabled === true && (await releaseWaiting(this.db, WEBHOOK_TOPIC, id)) > 0) this.outbox.wake();
    return summary(updated);
  }

  /** Deletes the endpoint; its deliveries not yet made are given up. */
  async delete(id: string): Promise<void> {
    await this.db.transaction(async (tx) => {
      if (!(await deleteEndpoint(tx, id))) throw notFound();
      await abandonPendingRows(tx, WEBHOOK_TOPIC, id, 'the endpoint was deleted');
    });
  }

  /** A new secret, shown this once; the old one signs beside it for SECRET_OVERLAP_SECONDS. */
  async rotateSecret(id: string): Promise<{ endpoint: EndpointSummary; secret: string }> {
    const box = this.requireBox();
    const raw = randomBytes(SECRET_BYTES);
    const rotated = await rotateEndpointSecret(this.db, id, this.seal(box, raw, id), SECRET_OVERLAP_SECONDS);
    if (!rotated) throw notFound();
    return { endpoint: summary(rotated), secret: SECRET_PREFIX + raw.toString('base64') };
  }

  /** Puts a delivery (failed, or waiting for its next attempt) back in line now, with the same webhook-id. */
  async retry(deliveryId: string): Promise<Delivery> {
    const found = await findOutboxRow(this.db, WEBHOOK_TOPIC, deliveryId);
    if (!found) throw new ServiceError('not_found', 'No webhook delivery has this id');
    if (found.subject === null || !(await findEndpoint(this.db, found.subject))) {
      throw new ServiceError('not_found', 'The endpoint of this delivery was deleted');
    }
    const requeued = await requeueRow(this.db, WEBHOOK_TOPIC, deliveryId);
    if (!requeued) throw new ServiceError('not_found', 'No webhook delivery has this id');
    this.outbox.wake();
    return delivery(requeued);
  }

  private requireBox(): SecretBox {
    if (!this.box) throw new ServiceError('webhooks_unavailable', 'Webhook endpoints need SECRETS_ENCRYPTION_KEY to keep their signing secrets');
    return this.box;
  }

  private seal(box: SecretBox, raw: Buffer, endpointId: string): SealedSecret {
    return box.seal(raw, endpointId);
  }

  private open(endpoint: StoredEndpoint, secret: SealedSecret): Buffer {
    if (!this.box) throw new DeliveryError('the signing secret cannot be read: SECRETS_ENCRYPTION_KEY is not set');
    try {
      return this.box.open(secret.sealed, secret.keyId, endpoint.id);
    } catch {
      throw new DeliveryError(`the signing secret cannot be read: SECRETS_ENCRYPTION_KEY has no key ${secret.keyId}`);
    }
  }

  private async deliver(row: OutboxRow): Promise<void> {
    const endpoint = row.subject === null ? undefined : await findEndpoint(this.db, row.subject);
    if (!endpoint) throw new DeliveryError('the endpoint was deleted');
    if (!endpoint.enabled) throw new DeliveryError('the endpoint is disabled');
    const payload = row.payload as DeliveryPayload;
    const keys = [this.open(endpoint, endpoint.secret), ...(endpoint.previous ? [this.open(endpoint, endpoint.previous)] : [])];
    const timestamp = new Date();
    // Each secret that signs gives one `v1,<signature>`: a receiver holding either verifies.
    const signature = keys.map((key) => new Webhook(key, { format: 'raw' }).sign(payload.webhook_id, timestamp, payload.body)).join(' ');
    let answer;
    try {
      answer = await post(
        endpoint.url,
        payload.body,
        {
          'content-type': 'application/json',
          'user-agent': USER_AGENT,
          'webhook-id': payload.webhook_id,
          'webhook-timestamp': String(Math.floor(timestamp.getTime() / 1000)),
          'webhook-signature': signature,
        },
        { timeoutMs: this.settings.timeoutMs, allowPrivateNetworks: this.settings.allowPrivateNetworks, maxAnswerBytes: MAX_ANSWER_BYTES },
      );
    } catch (error) {
      if (error instanceof OutboundError) throw new DeliveryError(error.message);
      throw error;
    }
    if (answer.status < 200 || answer.status > 299) throw new DeliveryError(`the receiver answered ${answer.status}`);
  }
}

/**
 * Re-encrypts every endpoint secret not yet under the first of `keys` (with `secrets:reencrypt`): the keys
 * generated for development open what they sealed too.
 */
export async function resealEndpointSecrets(db: Database, keys: readonly SecretKey[]): Promise<{ resealed: number; unreadable: number }> {
  const box = new SecretBox([...keys, ...(await listGeneratedSecretsKeys(db))]);
  let resealed = 0;
  let unreadable = 0;
  for (const endpoint of await findEndpointsNotUnderKey(db, box.currentKeyId)) {
    let current: Buffer;
    let previous: Buffer | undefined;
    try {
      current = box.open(endpoint.secret.sealed, endpoint.secret.keyId, endpoint.id);
      previous = endpoint.previous && box.open(endpoint.previous.sealed, endpoint.previous.keyId, endpoint.id);
    } catch {
      unreadable += 1;
      continue;
    }
    if (await resealEndpoint(db, endpoint, box.seal(current, endpoint.id), previous && box.seal(previous, endpoint.id))) resealed += 1;
  }
  return { resealed, unreadable };
}
