import { simpleParser, type ParsedMail } from 'mailparser';
import { domainToUnicode } from 'node:url';
import { SMTPServer, type SMTPServerAddress } from 'smtp-server';

/** smtp-server gives an envelope's IDNA domain back in Unicode: addresses are compared that way, without case. */
function comparable(address: string): string {
  const at = address.lastIndexOf('@');
  return `${address.slice(0, at)}@${domainToUnicode(address.slice(at + 1))}`.toLowerCase();
}

/** A message as the mail server received it: parsed by mailparser, with the envelope's recipients. */
export interface ReceivedMail {
  to: string[];
  from: string | undefined;
  subject: string;
  text: string;
  html: string;
  parsed: ParsedMail;
}

export interface MailServerOptions {
  /** Credentials the server asks for (AUTH PLAIN or LOGIN, without TLS: it is on 127.0.0.1). */
  auth?: { user: string; pass: string };
  /** Recipients refused for good, as a real server refuses a mailbox it does not have (550 to RCPT TO). */
  refuse?: RegExp;
}

/**
 * A real SMTP server (smtp-server) on 127.0.0.1, keeping every message it accepts, parsed by mailparser. It can be
 * stopped and started again on the same port, as a mail server that goes down and comes back.
 */
export class MailServer {
  readonly received: ReceivedMail[] = [];
  private server: SMTPServer | undefined;
  private port = 0;
  /** Successful authentications: a test can see that the credentials of SMTP_URL were used. */
  authenticated = 0;

  constructor(private readonly options: MailServerOptions = {}) {}

  get url(): string {
    const credentials = this.options.auth ? `${encodeURIComponent(this.options.auth.user)}:${encodeURIComponent(this.options.auth.pass)}@` : '';
    return `smtp://${credentials}127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    const { auth, refuse } = this.options;
    const server = new SMTPServer({
      logger: false,
      // Plain SMTP on the loopback: no certificate to trust, and AUTH allowed without TLS.
      disabledCommands: auth ? ['STARTTLS'] : ['STARTTLS', 'AUTH'],
      allowInsecureAuth: true,
      authOptional: !auth,
      // Connections a client keeps open (nodemailer's pool) do not hold up a stop.
      closeTimeout: 50,
      onAuth: (attempt, _session, callback) => {
        if (auth && attempt.username === auth.user && attempt.password === auth.pass) {
          this.authenticated += 1;
          callback(null, { user: attempt.username });
        } else {
          callback(new Error('Invalid username or password'));
        }
      },
      onRcptTo: (address: SMTPServerAddress, _session, callback) => {
        if (refuse?.test(address.address)) {
          const error = new Error('5.1.1 No such mailbox here') as Error & { responseCode: number };
          error.responseCode = 550;
          callback(error);
          return;
        }
        callback();
      },
      onData: (stream, session, callback) => {
        simpleParser(stream).then(
          (parsed) => {
            this.received.push({
              to: session.envelope.rcptTo.map((r) => r.address),
              from: session.envelope.mailFrom ? session.envelope.mailFrom.address : undefined,
              subject: parsed.subject ?? '',
              text: parsed.text ?? '',
              html: typeof parsed.html === 'string' ? parsed.html : '',
              parsed,
            });
            callback();
          },
          (error: Error) => callback(error),
        );
      },
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', () => {
      // A client that went away mid-conversation: nothing for the test.
    });
    this.port = (server.server.address() as { port: number }).port;
    this.server = server;
    return this;
  }

  /** Stops listening and drops the connections open: the port refuses connections until `start`. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** The messages to `address` so far. */
  to(address: string): ReceivedMail[] {
    return this.received.filter((mail) => mail.to.some((to) => comparable(to) === comparable(address)));
  }

  /** Waits for the `count`-th message to `address` (1 = the first) and returns it. */
  async nth(address: string, count: number): Promise<ReceivedMail> {
    return eventually(() => this.to(address)[count - 1], `message ${count} to ${address}`);
  }

}

/** The token of the link to `path` in a message's text (`…/verify-email?token=…`). */
export function linkToken(mail: ReceivedMail, path: '/verify-email' | '/reset-password'): string {
  const match = new RegExp(`${path}\\?token=([A-Za-z0-9_-]+)`).exec(mail.text);
  if (!match) throw new Error(`no ${path} link in: ${mail.text}`);
  return match[1]!;
}

/** The six-digit code of a sign-in code message. */
export function signInCode(mail: ReceivedMail): string {
  const match = /^\s+(\d{6})\s*$/m.exec(mail.text);
  if (!match) throw new Error(`no code in: ${mail.text}`);
  return match[1]!;
}

/** Polls `check` until it gives a value (every 50 ms, for up to a minute): what happens in the background. */
export async function eventually<T>(check: () => Promise<T | undefined | false> | T | undefined | false, what = 'condition'): Promise<T> {
  for (let i = 0; ; i++) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (i > 1200) throw new Error(`${what} not reached`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
