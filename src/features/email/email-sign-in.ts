import { createHmac, randomInt, timingSafeEqual } from 'node:crypto';
import type { Database } from '../../kernel/db/database.js';
import { parseEmailAddress } from '../../kernel/email-addresses.js';
import { ServiceError } from '../../kernel/errors.js';
import type { AuthMethod, ClientInfo, SignedIn } from '../../kernel/model.js';
import type { RateLimits } from '../rate-limits/rate-limits.js';
import type { DeviceTokens } from '../sessions/device-tokens.js';
import type { SecondFactorRequired, SignIn } from '../sign-in/sign-in.js';
import { evenly, type EmailMessages } from './email.js';
import { countCodeFailure, findAccountByVerifiedAddress, insertEmailToken, lockLiveCodes, useEmailToken } from './email-queries.js';
import { humanDuration } from './email-templates.js';

/** A code works for ten minutes... */
export const LOGIN_CODE_TTL_SECONDS = 10 * 60;
/** ...and for five wrong guesses from clients without a device token of the account, whatever the limits say. */
export const LOGIN_CODE_MAX_FAILURES = 5;
const CODE_FORMAT = /^[0-9]{6}$/;

/** RFC 8176 has no method for a code sent by email; `email` says what it was, and it is one factor, as a password is. */
const EMAILED_CODE: { amr: string[]; method: AuthMethod } = { amr: ['email'], method: 'email' };

function invalidEmailCode(userId?: string): ServiceError {
  return new ServiceError('invalid_email_code', 'The email address or code is wrong, or the code has expired', userId ? { context: { userId } } : {});
}

/**
 * Signing in with a six-digit code sent to the account's proven address. Asking answers the same, in about the
 * same time, whether or not the address has an account. A new code leaves the earlier ones working, so that
 * someone else asking cannot take the owner's code away; each counts the wrong guesses of clients without a
 * device token of the account and dies at five, while the owner's device is held only by its own limit.
 */
export class EmailSignIn {
  constructor(
    private readonly db: Database,
    private readonly messages: EmailMessages,
    private readonly limits: RateLimits,
    private readonly devices: DeviceTokens,
    private readonly signIn: SignIn,
    /** The HMAC key codes are kept under (derived from SECRETS_ENCRYPTION_KEY): the database alone cannot be searched for them. */
    private readonly codeKey: Buffer,
  ) {}

  private codeHash(userId: string, code: string): Buffer {
    return createHmac('sha256', this.codeKey).update(`${userId}:${code}`).digest();
  }

  async requestCode(input: { email: string; deviceToken?: string | undefined }, client: ClientInfo): Promise<void> {
    const address = parseEmailAddress(input.email);
    await evenly(async () => {
      const account = await findAccountByVerifiedAddress(this.db, address.normalized);
      const device = await this.devices.find(input.deviceToken);
      await this.limits.emailSend(client.ip, address.normalized, account !== undefined && device?.userId === account.id ? device.id : undefined);
      if (!account?.email) return;
      const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
      const to = account.email.address;
      await this.db.transaction(async (tx) => {
        const tokenHash = this.codeHash(account.id, code);
        // Deleted meanwhile: as for an address nobody has.
        if (!(await insertEmailToken(tx, { userId: account.id, purpose: 'login', tokenHash, normalized: address.normalized, ttlSeconds: LOGIN_CODE_TTL_SECONDS }))) return;
        await this.messages.queue(tx, {
          kind: 'login_code',
          to,
          userId: account.id,
          fields: { username: account.username, expires: humanDuration(LOGIN_CODE_TTL_SECONDS) },
          secret: { code },
        });
      });
    });
  }

  /**
   * Redeems a code, once: the answer is what a login answers (a session, or the second step of an account with a
   * second factor). Every guess counts in the login limits as a password would (the address's, the account's from
   * this address and from everywhere, or the device token's), and a right one gives back what its client spent.
   */
  async verifyCode(input: { email: string; code: string; deviceToken?: string | undefined }, client: ClientInfo): Promise<SignedIn | SecondFactorRequired> {
    const address = parseEmailAddress(input.email);
    const attempt = await this.limits.passwordAttempt(client.ip);
    const [account, device] = await Promise.all([findAccountByVerifiedAddress(this.db, address.normalized), this.devices.find(input.deviceToken)]);
    const trusted = account !== undefined && device?.userId === account.id ? device : undefined;
    await attempt.forAccount(account ? { userId: account.id } : { email: address.normalized }, trusted?.id);
    const code = input.code.replace(/[\s-]/g, '');
    // The same statements for an address nobody has (user 0 has no codes), so that the answer takes as long.
    const userId = account?.id ?? '0';
    const matched = await attempt.judging(() =>
      this.db.transaction(async (tx) => {
        const codes = await lockLiveCodes(tx, userId, address.normalized, trusted ? undefined : LOGIN_CODE_MAX_FAILURES);
        const presented = this.codeHash(userId, CODE_FORMAT.test(code) ? code : '');
        let match: string | undefined;
        for (const candidate of codes) if (timingSafeEqual(candidate.tokenHash, presented)) match ??= candidate.id;
        if (match === undefined) {
          if (!trusted) await countCodeFailure(tx, codes.map((candidate) => candidate.id));
          return false;
        }
        await useEmailToken(tx, match);
        return true;
      }),
    );
    if (!account || !matched) throw invalidEmailCode(account?.id);
    await attempt.accepted();
    return this.signIn.completeFirstStep(account, EMAILED_CODE, client, trusted && input.deviceToken);
  }
}
