import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterCommit, isTransaction, isUniqueViolation, type Database, type Queryable } from '../../kernel/db/database.js';
import { lockUser } from '../../kernel/db/user-queries.js';
import { sha256 } from '../../kernel/digest.js';
import { parseEmailAddress, type EmailAddress } from '../../kernel/email-addresses.js';
import { DatabaseQueryError, ServiceError } from '../../kernel/errors.js';
import type { Events } from '../../kernel/events.js';
import type { AccountMail, Authenticated, ClientInfo, User, UserEmail } from '../../kernel/model.js';
import type { Outbox } from '../../kernel/outbox/outbox.js';
import type { SecretBox } from '../../kernel/secret-box.js';
import type { Proof, Reauthentication } from '../mfa/reauthentication.js';
import type { RateLimits } from '../rate-limits/rate-limits.js';
import type { Sessions } from '../sessions/sessions.js';
import {
  deleteEmailTokens,
  findAccountAddress,
  findLiveLink,
  insertEmailToken,
  isAddressVerifiedElsewhere,
  markAddressVerified,
  purgeEndedEmailTokens,
  setAccountAddress,
  useEmailToken,
} from './email-queries.js';
import type { EmailConfig } from './email-settings.js';
import { humanDuration, type EmailKind } from './email-templates.js';
import './email-errors.js';

export const EMAIL_TOPIC = 'email';

// 256 bits, base64url: far beyond guessing in a link's life, so SHA-256 alone is enough to store it.
const LINK_TOKEN_BYTES = 32;
const LINK_TOKEN_FORMAT = /^[A-Za-z0-9_-]{43}$/;

/**
 * The answers that must not tell whether an address (or a name) has an account take at least this long, so that
 * the work done for a real one (a token, a message, a transaction) does not show in their timing.
 */
export const EVEN_ANSWER_MS = 200;

export function newLinkToken(): { token: string; hash: Buffer } {
  const token = randomBytes(LINK_TOKEN_BYTES).toString('base64url');
  return { token, hash: sha256(token) };
}

/** A link's token as stored, or undefined for text that cannot be one (no query for it). */
export function linkTokenHash(token: string): Buffer | undefined {
  return LINK_TOKEN_FORMAT.test(token) ? sha256(token) : undefined;
}

/** Runs `work` and ends no sooner than `EVEN_ANSWER_MS` after it began, whatever it found or threw. */
export async function evenly<T>(work: () => Promise<T>): Promise<T> {
  const started = performance.now();
  try {
    return await work();
  } finally {
    const left = EVEN_ANSWER_MS - (performance.now() - started);
    if (left > 0) await sleep(left);
  }
}

export function invalidEmailToken(): ServiceError {
  return new ServiceError('invalid_email_token', 'The link is invalid, expired or already used: ask for a new one');
}

function emailTaken(): ServiceError {
  return new ServiceError('email_taken', 'This address is already verified on another account');
}

/** The unique index on proven addresses refused a second account. */
function isAddressTaken(error: unknown): boolean {
  return isUniqueViolation(error) && error instanceof DatabaseQueryError && (error.constraint === 'users_verified_email_key' || error.message.includes('users_verified_email_key'));
}

/** The payload of an `email` outbox row. */
export interface EmailPayload {
  kind: EmailKind;
  to: string;
  user_id: string;
  /** What the message shows that may outlive it: the username, the address, how long a link lasts. */
  fields: Record<string, string>;
  /** The link or the code, sealed with the service's SecretBox while the message waits; gone once it is sent. */
  sealed?: { key_id: string; data: string };
  /** The same, unsealed, on a service without a SecretBox (production without SECRETS_ENCRYPTION_KEY); gone once sent. */
  secret?: Record<string, string>;
}

export interface QueuedEmail {
  kind: EmailKind;
  to: string;
  userId: string;
  fields: Record<string, string>;
  /** The link or the code: never kept once the message is sent. */
  secret?: Record<string, string>;
}

const sealingContext = (payload: Pick<EmailPayload, 'kind' | 'to' | 'user_id'>) => `email ${payload.kind} ${payload.user_id} ${payload.to}`;

/**
 * Writes messages into the outbox, in the transaction of the change they tell of (the sender is woken once it
 * commits), and reads them back for the sender. The link or code in a message is sealed while it waits, and
 * dropped from the row once it is sent.
 */
export class EmailMessages {
  constructor(
    private readonly outbox: Outbox,
    private readonly box: SecretBox | undefined,
  ) {}

  async queue(tx: Queryable, message: QueuedEmail): Promise<void> {
    const payload: EmailPayload = { kind: message.kind, to: message.to, user_id: message.userId, fields: message.fields };
    if (message.secret) {
      if (this.box) {
        const { sealed, keyId } = this.box.seal(Buffer.from(JSON.stringify(message.secret), 'utf8'), sealingContext(payload));
        payload.sealed = { key_id: keyId, data: sealed.toString('base64') };
      } else {
        payload.secret = message.secret;
      }
    }
    await this.outbox.enqueue(tx, { topic: EMAIL_TOPIC, payload });
    // The sender looks for it as soon as it can be seen, rather than at its next poll.
    if (isTransaction(tx)) afterCommit(tx, () => this.outbox.wake());
    else this.outbox.wake();
  }

  /** The message's link or code; throws if it was sealed under a key the service no longer has. */
  open(payload: EmailPayload): Record<string, string> {
    if (payload.sealed) {
      if (!this.box) throw new Error('the message is sealed and SECRETS_ENCRYPTION_KEY is not set');
      const opened = this.box.open(Buffer.from(payload.sealed.data, 'base64'), payload.sealed.key_id, sealingContext(payload));
      return JSON.parse(opened.toString('utf8')) as Record<string, string>;
    }
    return payload.secret ?? {};
  }

  /** What an `email` row keeps once it is finished: who got what, never the link or the code. */
  static redact(payload: unknown): unknown {
    const { sealed: _sealed, secret: _secret, ...kept } = payload as EmailPayload;
    return kept;
  }

}

/** What an owner's change of address led to. */
export interface AddressChange {
  email: UserEmail | undefined;
  /** A verification link went out to the new address. */
  verificationSent: boolean;
}

/**
 * An account's address as written in a change's transaction, with the messages and the event that go with it: what
 * the owner's API, an operator's API and the CLI share. The caller's transaction holds the user's row.
 */
export class AddressBook {
  constructor(
    private readonly messages: EmailMessages,
    private readonly events: Events,
    private readonly config: Pick<EmailConfig, 'publicUrl' | 'verifyTtlSeconds'>,
  ) {}

  /**
   * Tells the verified address of every password change (`password.changed`, `password.reset`, whoever made it),
   * in the change's transaction, and ends the account's reset links.
   */
  listen(events: Events): void {
    events.listen(async (tx, event) => {
      if (event.type === 'password.changed' || event.type === 'password.reset') await this.passwordChanged(tx, event.data.user_id);
    });
  }

  /** The password changed: its reset links end, and its proven address is told. */
  async passwordChanged(tx: Queryable, userId: string): Promise<void> {
    await deleteEmailTokens(tx, userId, ['reset']);
    const account = await findAccountAddress(tx, userId);
    if (account?.verified && account.address) {
      await this.messages.queue(tx, { kind: 'password_changed', to: account.address, userId, fields: { username: account.username } });
    }
  }

  /**
   * An operator's change: `email` sets (or with null, removes) the address, pending unless `verified`; `verified`
   * alone proves or unproves the current one. A pending address gets a verification link.
   */
  async operatorChange(tx: Queryable, userId: string, change: { email?: string | null | undefined; verified?: boolean | undefined }): Promise<AddressChange | undefined> {
    if (change.email !== undefined) {
      const address = change.email === null ? null : parseEmailAddress(change.email);
      return this.replace(tx, userId, address, change.verified === true, { operator: true });
    }
    if (change.verified === undefined) return undefined;
    const account = await findAccountAddress(tx, userId);
    if (!account?.address || !account.normalized) throw new ServiceError('invalid_request', 'The account has no email address to verify or unverify');
    if (change.verified === account.verified) return { email: { address: account.address, verified: account.verified }, verificationSent: false };
    return this.replace(tx, userId, { address: account.address, normalized: account.normalized }, change.verified, { operator: true });
  }

  /**
   * Gives the account `address` (or none): every link and code sent to the address it had ends, a proven address
   * that is going is told, and a pending new one gets a verification link. The same pending address again sends a
   * new link (the older one ends); the same proven one changes nothing.
   */
  async replace(tx: Queryable, userId: string, address: EmailAddress | null, verified: boolean, by: { operator: boolean } = { operator: false }): Promise<AddressChange> {
    const before = await findAccountAddress(tx, userId);
    if (!before) throw new ServiceError('invalid_token', 'The access token is no longer valid: its user was deleted');
    const same = address !== null && before.normalized === address.normalized;
    if (same && before.verified && (verified || !by.operator)) {
      return { email: { address: before.address!, verified: true }, verificationSent: false };
    }
    if (verified && address && (await isAddressVerifiedElsewhere(tx, address.normalized, userId))) throw emailTaken();
    await setAccountAddress(tx, userId, address, verified).catch((error: unknown) => {
      throw isAddressTaken(error) ? emailTaken() : error;
    });
    await deleteEmailTokens(tx, userId, ['verify', 'reset', 'login']);
    await this.addressChanged(tx, userId, address?.address ?? null, verified, !same);
    if (before.verified && before.address && !same) {
      await this.messages.queue(tx, { kind: 'email_changed', to: before.address, userId, fields: { username: before.username } });
    }
    if (address && !verified) await this.sendVerification(tx, userId, before.username, address);
    return { email: address ? { address: address.address, verified } : undefined, verificationSent: address !== null && !verified };
  }

  /** A new verification link for the account's pending address (older ones end). */
  async sendVerification(tx: Queryable, userId: string, username: string, address: EmailAddress): Promise<void> {
    await deleteEmailTokens(tx, userId, ['verify']);
    const { token, hash } = newLinkToken();
    const ttlSeconds = this.config.verifyTtlSeconds;
    if (!(await insertEmailToken(tx, { userId, purpose: 'verify', tokenHash: hash, normalized: address.normalized, ttlSeconds }))) {
      throw new ServiceError('invalid_token', 'The access token is no longer valid: its user was deleted');
    }
    await this.messages.queue(tx, {
      kind: 'verify_email',
      to: address.address,
      userId,
      fields: { username, address: address.address, expires: humanDuration(ttlSeconds) },
      secret: { link: `${this.config.publicUrl}/verify-email?token=${token}` },
    });
  }

  /** The `user.updated` event of an address set, removed, proven or unproven. */
  async addressChanged(tx: Queryable, userId: string, address: string | null, verified: boolean, newAddress = true): Promise<void> {
    await this.events.emit(tx, 'user.updated', {
      user_id: userId,
      changes: newAddress ? ['email', 'email_verified'] : ['email_verified'],
      email: address,
      email_verified: verified,
    });
  }
}

/**
 * The account's address: set by its owner (with the proof a password change needs) or an operator, proven by
 * following a link sent to it, removed. A proven address is one account's only, and every answer here is the same
 * whether or not another account has it: only a link sent to the mailbox (or an operator) can say so.
 */
export class EmailAddresses implements AccountMail {
  constructor(
    private readonly db: Database,
    readonly book: AddressBook,
    private readonly limits: RateLimits,
    private readonly sessions: Sessions,
    private readonly reauth: Reauthentication,
  ) {}

  async acceptAddress(input: string, client: ClientInfo): Promise<EmailAddress> {
    const address = parseEmailAddress(input);
    await this.limits.emailSend(client.ip, address.normalized);
    return address;
  }

  async addressGiven(tx: Queryable, user: User, address: EmailAddress): Promise<void> {
    await setAccountAddress(tx, user.id, address, false);
    await this.book.addressChanged(tx, user.id, address.address, false);
    await this.book.sendVerification(tx, user.id, user.username, address);
  }

  /** The owner sets or changes the account's address: pending until proven, with a link sent to it; a proven old address is told. */
  async change(auth: Authenticated, input: { email: string } & Proof, client: ClientInfo): Promise<AddressChange> {
    const address = parseEmailAddress(input.email);
    await this.reauth.confirm(auth, input, client);
    // Only a caller who has proven who they are spends the allowance of messages to the address.
    await this.limits.emailSend(client.ip, address.normalized);
    const change = await this.db.transaction(async (tx) => {
      await this.sessions.holdLive(tx, auth);
      return this.book.replace(tx, auth.user.id, address, false);
    });
    return change;
  }

  /** The owner removes the account's address; a proven one is told. */
  async remove(auth: Authenticated, proof: Proof, client: ClientInfo): Promise<void> {
    await this.reauth.confirm(auth, proof, client);
    await this.db.transaction(async (tx) => {
      await this.sessions.holdLive(tx, auth);
      await this.book.replace(tx, auth.user.id, null, false);
    });
  }

  /**
   * Redeems a verification link: the address it was sent to becomes the account's proven address, if it still is
   * the account's. A wrong token counts in the login limits; an address proven on another account meanwhile is
   * told to whoever followed the link, who reads its mailbox.
   */
  async verify(token: string, client: ClientInfo): Promise<{ userId: string; email: UserEmail }> {
    const attempt = await this.limits.passwordAttempt(client.ip);
    const hash = linkTokenHash(token);
    const outcome = await attempt.judging(async () => {
      const found = hash && (await findLiveLink(this.db, 'verify', hash, false));
      if (!found) return undefined;
      return this.db
        .transaction(async (tx) => {
          // The user's row first, then the token's: the order every writer of both takes them in.
          if (!(await lockUser(tx, found.userId, 'update'))) return undefined;
          const link = await findLiveLink(tx, 'verify', hash, true);
          if (!link) return undefined;
          // The link's address is the account's now (findLiveLink), though an operator may have proven it already.
          const account = (await findAccountAddress(tx, link.userId))!;
          if (!account.verified) {
            if (await isAddressVerifiedElsewhere(tx, link.normalized, link.userId)) return 'taken' as const;
            await markAddressVerified(tx, link.userId, link.normalized);
            await this.book.addressChanged(tx, link.userId, account.address, true, false);
          }
          await useEmailToken(tx, link.id);
          await deleteEmailTokens(tx, link.userId, ['verify']);
          return { userId: link.userId, email: { address: account.address!, verified: true } };
        })
        .catch((error: unknown) => {
          if (isAddressTaken(error)) return 'taken' as const;
          throw error;
        });
    });
    if (outcome === undefined) throw invalidEmailToken();
    await attempt.accepted();
    if (outcome === 'taken') throw emailTaken();
    return outcome;
  }

  async purgeEnded(): Promise<number> {
    return purgeEndedEmailTokens(this.db);
  }
}
