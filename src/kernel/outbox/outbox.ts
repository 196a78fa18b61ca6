import { Gauge } from 'prom-client';
import type { Logger } from 'pino';
import type { Database, Queryable } from '../db/database.js';
import type { Metrics } from '../metrics.js';
import {
  claimDueRows,
  countOutboxByState,
  deleteFinishedRows,
  insertOutboxRow,
  markFailed,
  markRetry,
  markSent,
  releaseWaiting,
  type OutboxRow,
} from './outbox-queries.js';

export type { OutboxRow } from './outbox-queries.js';

/** What a feature registers to have its rows delivered. */
export interface OutboxTopic {
  readonly topic: string;
  /** Delivers one row; throws (a DeliveryError to say why) to have it tried again later. */
  deliver(row: OutboxRow): Promise<void>;
  /** Seconds to wait after the `attempts`-th failed attempt of a row first written `ageSeconds` ago; undefined gives up. */
  retryDelaySeconds(attempts: number, ageSeconds: number): number | undefined;
  /** The longest one delivery may take; a sender's claim on a row lasts longer than this. */
  readonly timeoutMs: number;
  /** The payload to keep once a row is finished, without what must not outlive its delivery (a link's token). */
  redact?(payload: unknown): unknown;
  /** Told of every attempt's outcome, for the metrics and the log. */
  observe?(result: 'sent' | 'retry' | 'failed', row: OutboxRow, seconds: number, error?: string): void;
}

/**
 * A failed delivery, with a reason that is safe to store and show (no secret, no message body). `permanent`: the
 * destination refused it for good (a mail server that knows no such mailbox), so it is given up at once.
 */
export class DeliveryError extends Error {
  override readonly name = 'DeliveryError';

  constructor(
    message: string,
    readonly permanent = false,
  ) {
    super(message);
  }
}

/**
 * Growing delays: `firstSeconds`, doubling, never more than `capSeconds(age)`, with a fifth of jitter so that rows
 * failed together do not come back together; past `giveUpAfterSeconds` from the row's writing, none (failed).
 */
export function retrySchedule(options: {
  firstSeconds: number;
  capSeconds: (ageSeconds: number) => number;
  giveUpAfterSeconds: number;
}): OutboxTopic['retryDelaySeconds'] {
  return (attempts, ageSeconds) => {
    if (ageSeconds >= options.giveUpAfterSeconds) return undefined;
    const grown = options.firstSeconds * 2 ** Math.min(Math.max(attempts - 1, 0), 30);
    const delay = Math.min(grown, options.capSeconds(ageSeconds));
    return Math.max(1, delay * (0.8 + Math.random() * 0.4));
  };
}

export interface OutboxOptions {
  /** How often an idle sender looks for due rows written by another instance or left by a dead one. */
  pollIntervalMs: number;
  /** Rows taken at once; their deliveries run side by side. */
  batchSize: number;
  /** Finished rows are deleted this long after they finished. */
  retentionDays: number;
}

const DEFAULT_OPTIONS: OutboxOptions = { pollIntervalMs: 1000, batchSize: 20, retentionDays: 7 };
// A claim outlives the delivery's own timeout by this much, so a slow but live sender keeps its row.
const LEASE_MARGIN_SECONDS = 30;

/**
 * The outbox: features write rows in their change's transaction (`enqueue`), and this sender delivers them, in the
 * background, never in a request's path. Rows are claimed with FOR UPDATE SKIP LOCKED and a lease, so several
 * instances share the work and never deliver one row at once; rows survive restarts and outages.
 */
export class Outbox {
  private readonly topics = new Map<string, OutboxTopic>();
  private readonly options: OutboxOptions;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private started = false;
  private stopped = false;
  private again = false;
  /** Topic and subject pairs whose last delivery failed: their first success releases the others waiting. */
  private readonly failing = new Set<string>();

  constructor(
    private readonly db: Database,
    private readonly log: Logger,
    options: Partial<OutboxOptions> = {},
  ) {
    this.options = { ...DEFAULT_OPTIONS, ...options };
  }

  register(topic: OutboxTopic): void {
    if (this.topics.has(topic.topic)) throw new Error(`outbox topic ${topic.topic} registered twice`);
    this.topics.set(topic.topic, topic);
  }

  /** Writes a row in `tx`, the transaction of the change; call `wake()` once it has committed. */
  enqueue(tx: Queryable, message: { topic: string; subject?: string | null; payload: unknown }): Promise<string> {
    return insertOutboxRow(tx, message);
  }

  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    this.schedule(0);
  }

  /** Looks for due rows now rather than at the next poll: a request has just committed one. */
  wake(): void {
    if (!this.started || this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.schedule(0);
  }

  /** Stops looking for rows and waits for the deliveries under way. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  /** Deletes finished rows past the retention. */
  purge(): Promise<number> {
    return deleteFinishedRows(this.db, new Date(Date.now() - this.options.retentionDays * 86_400_000));
  }

  /** Rows by topic and state, read from the database at each scrape. */
  watchDepth(metrics: Metrics): void {
    const db = this.db;
    const log = this.log;
    new Gauge({
      name: 'outbox_messages',
      help: 'Outbox rows (mail, webhook deliveries) by topic and state: pending (waiting or being delivered), sent, failed (given up)',
      labelNames: ['topic', 'state'] as const,
      registers: [metrics.registry],
      async collect() {
        this.reset();
        try {
          for (const row of await countOutboxByState(db)) this.set({ topic: row.topic, state: row.state }, row.count);
        } catch (error) {
          log.warn({ err: error }, 'outbox depth unavailable');
        }
      },
    });
  }

  private schedule(delayMs: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.poll().finally(() => {
        this.running = undefined;
        if (this.stopped) return;
        const more = this.again;
        this.again = false;
        this.schedule(more ? 0 : this.options.pollIntervalMs);
      });
    }, delayMs);
    this.timer.unref();
  }

  private async poll(): Promise<void> {
    if (this.topics.size === 0) return;
    // Each topic's rows under a lease of its own: a row a dead sender held comes back as soon as its own topic's
    // delivery would have timed out, not after the slowest topic's (a mail server's minute).
    const settled = await Promise.allSettled(
      [...this.topics.values()].map((topic) =>
        claimDueRows(this.db, [topic.topic], this.options.batchSize, Math.ceil(topic.timeoutMs / 1000) + LEASE_MARGIN_SECONDS),
      ),
    );
    const claimed: OutboxRow[][] = [];
    for (const result of settled) {
      if (result.status === 'fulfilled') claimed.push(result.value);
      // The database is down or busy: the rows wait there, and the next poll tries again.
      else this.log.warn({ err: result.reason }, 'outbox: could not claim rows');
    }
    await Promise.all(claimed.flat().map((row) => this.deliver(row)));
    if (claimed.some((rows) => rows.length === this.options.batchSize)) this.again = true;
  }

  private async deliver(row: OutboxRow): Promise<void> {
    const topic = this.topics.get(row.topic)!;
    const started = process.hrtime.bigint();
    const seconds = () => Number(process.hrtime.bigint() - started) / 1e9;
    const key = `${row.topic}\u0000${row.subject ?? ''}`;
    try {
      await topic.deliver(row);
    } catch (error) {
      const reason = error instanceof DeliveryError ? error.message : 'delivery failed';
      if (!(error instanceof DeliveryError)) this.log.warn({ err: error, topic: row.topic, outboxId: row.id }, 'outbox: delivery threw');
      this.failing.add(key);
      const age = (Date.now() - new Date(row.created_at).getTime()) / 1000;
      const delay = error instanceof DeliveryError && error.permanent ? undefined : topic.retryDelaySeconds(row.attempts, age);
      try {
        if (delay === undefined) await markFailed(this.db, row.id, reason, topic.redact?.(row.payload));
        else await markRetry(this.db, row.id, reason, delay);
      } catch (markError) {
        // The lease ends and the row is taken again: at least once.
        this.log.warn({ err: markError, outboxId: row.id }, 'outbox: could not record a failed delivery');
      }
      topic.observe?.(delay === undefined ? 'failed' : 'retry', row, seconds(), reason);
      return;
    }
    topic.observe?.('sent', row, seconds());
    try {
      await markSent(this.db, row.id, topic.redact?.(row.payload));
      if (this.failing.delete(key)) {
        const released = await releaseWaiting(this.db, row.topic, row.subject);
        if (released > 0) this.again = true;
      }
    } catch (error) {
      // Delivered but not recorded: the row will be delivered again when its lease ends (at least once).
      this.log.warn({ err: error, outboxId: row.id }, 'outbox: could not record a delivery');
    }
  }
}
