import type { Transporter } from 'nodemailer';
import type { Logger } from 'pino';
import { Counter } from 'prom-client';
import type { Database } from '../../kernel/db/database.js';
import type { Metrics } from '../../kernel/metrics.js';
import { DeliveryError, retrySchedule, type Outbox, type OutboxRow, type OutboxTopic } from '../../kernel/outbox/outbox.js';
import { releaseWaiting } from '../../kernel/outbox/outbox-queries.js';
import { withoutCredentials } from '../../kernel/settings/service-settings.js';
import { EMAIL_TOPIC, EmailMessages, type EmailPayload } from './email.js';
import type { EmailConfig } from './email-settings.js';
import type { EmailTemplates, RenderedEmail } from './email-templates.js';

/** One message, ready to go. */
export interface OutgoingEmail extends RenderedEmail {
  from: { name: string | undefined; address: string };
  to: string;
}

/** Where messages go: an SMTP server, or (in development, without SMTP_URL) the log. */
export interface EmailTransport {
  /** What the metrics and the log call a message that got there: `sent`, or `logged`. */
  readonly outcome: 'sent' | 'logged';
  /** What /readyz calls this transport. */
  readonly name: string;
  send(message: OutgoingEmail, context: { kind: string; outboxId: string }): Promise<void>;
  /** Connects and greets (and authenticates) without sending anything: whether the server answers. */
  verify(): Promise<void>;
  close(): void;
}

// An SMTP conversation that takes longer than this is given up and tried again later.
const CONNECTION_TIMEOUT_MS = 10_000;
const SOCKET_TIMEOUT_MS = 30_000;
/** The longest one message may take: the outbox's claim on its row lasts longer. */
const DELIVERY_TIMEOUT_MS = 60_000;

/** nodemailer's error fields that say what failed, never the message itself. */
interface SmtpError {
  code?: string;
  responseCode?: number;
  command?: string;
  response?: string;
}

/**
 * Why a delivery failed, safe to store and log: the SMTP status and the server's words, cut short and without line
 * breaks, and the command it answered; never the message, which holds the link or the code.
 */
function describeFailure(error: unknown): string {
  const e = (typeof error === 'object' && error !== null ? error : {}) as SmtpError;
  const response = typeof e.response === 'string' ? e.response.replace(/\s+/g, ' ').slice(0, 200) : undefined;
  const parts = [e.code ?? 'ERROR', e.command && `after ${e.command}`, response ?? (error instanceof Error && e.code !== undefined ? error.message.replace(/\s+/g, ' ').slice(0, 200) : undefined)];
  return parts.filter(Boolean).join(': ');
}

/** The server refused the recipient for good (5xx to RCPT TO): trying again changes nothing. */
function refusedForGood(error: unknown): boolean {
  const e = (typeof error === 'object' && error !== null ? error : {}) as SmtpError;
  return e.code === 'EENVELOPE' && typeof e.responseCode === 'number' && e.responseCode >= 500;
}

/** The server itself is unreachable or refuses us (not one recipient): SMTP is down, as /readyz says. */
function serverFailure(error: unknown): boolean {
  const e = (typeof error === 'object' && error !== null ? error : {}) as SmtpError;
  return e.code !== 'EENVELOPE' && e.code !== 'EMESSAGE';
}

/** nodemailer on SMTP_URL: STARTTLS when `smtp://` and the server offers it, TLS from the start with `smtps://`. */
export class SmtpTransport implements EmailTransport {
  readonly outcome = 'sent';
  readonly name: string;
  private constructor(
    url: string,
    private readonly transporter: Transporter,
  ) {
    this.name = withoutCredentials(url);
  }

  /** nodemailer is loaded only here: a service that sends no mail through SMTP never carries it. */
  static async open(url: string): Promise<SmtpTransport> {
    const { default: nodemailer } = await import('nodemailer');
    const transporter = nodemailer.createTransport({
      // Host, port, TLS and credentials from the URL; what the URL says wins over the options below.
      url,
      // A few connections kept open and shared by the messages sent side by side.
      pool: true,
      maxConnections: 5,
      connectionTimeout: CONNECTION_TIMEOUT_MS,
      greetingTimeout: CONNECTION_TIMEOUT_MS,
      socketTimeout: SOCKET_TIMEOUT_MS,
      // nodemailer's own log would write whole SMTP conversations, bodies included.
      logger: false,
      debug: false,
    });
    return new SmtpTransport(url, transporter);
  }

  async send(message: OutgoingEmail): Promise<void> {
    await this.transporter.sendMail({
      from: message.from.name ? { name: message.from.name, address: message.from.address } : message.from.address,
      to: message.to,
      subject: message.subject,
      text: message.text,
      html: message.html,
    });
  }

  async verify(): Promise<void> {
    await this.transporter.verify();
  }

  close(): void {
    this.transporter.close();
  }
}

/**
 * Development without SMTP_URL: each message is written to the log as a readable block, link or code included,
 * and counts as delivered. Never in production, where the log is kept and read by others: refused there.
 */
export class LogMailbox implements EmailTransport {
  readonly outcome = 'logged';
  readonly name = 'development log mailbox';

  constructor(
    private readonly log: Logger,
    environment: string,
  ) {
    if (environment === 'production') throw new Error('the development log mailbox writes links and codes to the log: never in production (set SMTP_URL)');
  }

  async send(message: OutgoingEmail, context: { kind: string; outboxId: string }): Promise<void> {
    const from = message.from.name ? `${message.from.name} <${message.from.address}>` : message.from.address;
    const block = [
      'email not sent: SMTP_URL is not set, so here it is (development log mailbox)',
      `From: ${from}`,
      `To: ${message.to}`,
      `Subject: ${message.subject}`,
      '',
      ...message.text.trimEnd().split('\n').map((line) => `    ${line}`),
    ].join('\n');
    this.log.info({ email: { outboxId: context.outboxId, kind: context.kind, to: message.to } }, block);
  }

  async verify(): Promise<void> {}

  close(): void {}
}

// While SMTP is down, it is asked this often whether it is back: the messages waiting then go at once.
const PROBE_INTERVAL_MS = 10_000;

/**
 * The outbox's `email` topic: renders each message (its link or code unsealed only now) and hands it to the
 * transport. Failures are retried with growing delays, capped at a minute for the first hour and at 15 minutes
 * after it, and given up after a day; a recipient the server refuses for good is given up at once. While the
 * server is down it is probed, and the messages waiting go out as soon as it answers again.
 */
export class EmailSender implements OutboxTopic {
  readonly topic = EMAIL_TOPIC;
  readonly timeoutMs = DELIVERY_TIMEOUT_MS;
  readonly retryDelaySeconds = retrySchedule({ firstSeconds: 2, capSeconds: (age) => (age < 3600 ? 60 : 900), giveUpAfterSeconds: 86_400 });
  readonly redact = EmailMessages.redact;
  private readonly counter: Counter<'kind' | 'result'>;
  /** Undefined while all is well (or nothing was tried yet); otherwise since when and why the server fails. */
  private down: { since: Date; reason: string } | undefined;
  private probe: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly db: Database,
    private readonly outbox: Outbox,
    private readonly transport: EmailTransport,
    private readonly messages: EmailMessages,
    private readonly templates: EmailTemplates,
    private readonly config: Pick<EmailConfig, 'from' | 'productName'>,
    metrics: Metrics,
    private readonly log: Logger,
  ) {
    this.counter = new Counter({
      name: 'auth_emails_total',
      help: 'Messages by kind (verify_email, password_reset, login_code, email_changed, password_changed) and result: sent, logged (development log mailbox), retry (failed, tried again later), failed (given up)',
      labelNames: ['kind', 'result'] as const,
      registers: [metrics.registry],
    });
  }

  async deliver(row: OutboxRow): Promise<void> {
    const payload = row.payload as EmailPayload;
    const rendered = this.templates.render(payload.kind, { product: this.config.productName, ...payload.fields, ...this.messages.open(payload) });
    try {
      await this.transport.send({ from: this.config.from, to: payload.to, ...rendered }, { kind: payload.kind, outboxId: row.id });
    } catch (error) {
      const reason = describeFailure(error);
      if (serverFailure(error)) this.serverDown(reason);
      throw new DeliveryError(reason, refusedForGood(error));
    }
    this.serverUp();
  }

  observe(result: 'sent' | 'retry' | 'failed', row: OutboxRow, _seconds: number, error?: string): void {
    const { kind, user_id: userId } = row.payload as EmailPayload;
    const outcome = result === 'sent' ? this.transport.outcome : result;
    this.counter.inc({ kind, result: outcome });
    // Ids and the reason only: never the address's mailbox contents, the link or the code.
    if (result === 'failed') this.log.warn({ outboxId: row.id, kind, userId, attempts: row.attempts, reason: error }, 'email given up');
    else if (result === 'retry') this.log.info({ outboxId: row.id, kind, userId, attempts: row.attempts, reason: error }, 'email not sent, will retry');
  }

  /** Asks the server once at start, so that /readyz knows before the first message. */
  start(): void {
    this.checkServer();
  }

  stop(): void {
    this.stopped = true;
    if (this.probe) clearTimeout(this.probe);
    this.transport.close();
  }

  /** For /readyz: `ok`, or since when and why the server does not answer (a degraded part: the messages wait). */
  status(): string {
    return this.down ? `unreachable since ${this.down.since.toISOString()}: ${this.down.reason}` : 'ok';
  }

  get transportName(): string {
    return this.transport.name;
  }

  /** Whether messages go to an SMTP server (not the development log mailbox): /readyz then reports it. */
  get usesSmtp(): boolean {
    return this.transport instanceof SmtpTransport;
  }

  private serverDown(reason: string): void {
    if (!this.down) {
      this.down = { since: new Date(), reason };
      this.log.warn({ smtp: this.transport.name, reason }, 'SMTP server unavailable: messages wait in the outbox');
    } else {
      this.down.reason = reason;
    }
    this.scheduleProbe();
  }

  private serverUp(): void {
    if (!this.down) return;
    this.down = undefined;
    this.log.info({ smtp: this.transport.name }, 'SMTP server available again: sending the messages that waited');
    // The ones waiting for their next attempt go now, not when their delay runs out (up to 15 minutes).
    releaseWaiting(this.db, EMAIL_TOPIC, null)
      .then(() => this.outbox.wake())
      .catch((error: unknown) => this.log.warn({ err: error }, 'could not release the messages waiting for SMTP'));
  }

  private scheduleProbe(): void {
    if (this.probe || this.stopped) return;
    this.probe = setTimeout(() => {
      this.probe = undefined;
      this.checkServer();
    }, PROBE_INTERVAL_MS);
    this.probe.unref();
  }

  private checkServer(): void {
    if (this.stopped) return;
    this.transport.verify().then(
      () => this.serverUp(),
      (error: unknown) => this.serverDown(describeFailure(error)),
    );
  }
}
