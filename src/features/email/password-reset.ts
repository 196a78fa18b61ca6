import type { Database } from '../../kernel/db/database.js';
import { findUserForLogin, lockUser, updateUser } from '../../kernel/db/user-queries.js';
import { parseEmailAddress } from '../../kernel/email-addresses.js';
import { ServiceError } from '../../kernel/errors.js';
import type { ClientInfo, User } from '../../kernel/model.js';
import { usernameLookupKey } from '../../kernel/usernames.js';
import type { PasswordPolicy } from '../passwords/password-policy.js';
import { normalizePassword, type PasswordHasher } from '../passwords/passwords.js';
import type { RateLimits } from '../rate-limits/rate-limits.js';
import type { DeviceTokens } from '../sessions/device-tokens.js';
import { endUserSessions } from '../sessions/sessions.js';
import type { Events } from '../../kernel/events.js';
import { evenly, invalidEmailToken, linkTokenHash, newLinkToken, type EmailMessages } from './email.js';
import { deleteEmailTokens, findAccountAddress, findAccountByVerifiedAddress, findLiveLink, insertEmailToken, useEmailToken } from './email-queries.js';
import type { EmailConfig } from './email-settings.js';
import { humanDuration } from './email-templates.js';

/**
 * A forgotten password: a link sent to the account's proven address, redeemed once for a new password. Asking
 * answers the same, in about the same time, whether or not the address (or name) has an account.
 */
export class PasswordReset {
  constructor(
    private readonly db: Database,
    private readonly messages: EmailMessages,
    private readonly events: Events,
    private readonly limits: RateLimits,
    private readonly devices: DeviceTokens,
    private readonly hasher: PasswordHasher,
    private readonly policy: PasswordPolicy,
    private readonly config: Pick<EmailConfig, 'publicUrl' | 'resetTtlSeconds'>,
  ) {}

  /**
   * Sends a reset link to the proven address of the account with this address or username, if there is one; a
   * newer link ends the older ones. Counted against the limits on messages by what was typed, account or not.
   * Returns the account's id when a link went out: for the audit trail, never for the answer.
   */
  async forgot(
    input: { email?: string | undefined; username?: string | undefined; deviceToken?: string | undefined },
    client: ClientInfo,
  ): Promise<{ userId: string | undefined }> {
    if ((input.email === undefined) === (input.username === undefined)) throw new ServiceError('invalid_request', 'Send either email or username');
    const address = input.email === undefined ? undefined : parseEmailAddress(input.email);
    // The account a link went to, for the audit trail; whoever asked must never be told.
    let sentTo: string | undefined;
    await evenly(async () => {
      const account = address ? await findAccountByVerifiedAddress(this.db, address.normalized) : await this.findByName(input.username!);
      const device = await this.devices.find(input.deviceToken);
      const trusted = account !== undefined && device?.userId === account.id ? device.id : undefined;
      const typed = address?.normalized ?? `name:${usernameLookupKey(input.username!) ?? input.username!.trim().toLowerCase()}`;
      await this.limits.emailSend(client.ip, typed, trusted);
      if (!account?.email?.verified) return;
      const to = account.email.address;
      const { token, hash } = newLinkToken();
      const ttlSeconds = this.config.resetTtlSeconds;
      await this.db.transaction(async (tx) => {
        await deleteEmailTokens(tx, account.id, ['reset']);
        // Deleted meanwhile: as for an address nobody has.
        if (!(await insertEmailToken(tx, { userId: account.id, purpose: 'reset', tokenHash: hash, normalized: to.toLowerCase(), ttlSeconds }))) return;
        await this.messages.queue(tx, {
          kind: 'password_reset',
          to,
          userId: account.id,
          fields: { username: account.username, expires: humanDuration(ttlSeconds) },
          secret: { link: `${this.config.publicUrl}/reset-password?token=${token}` },
        });
        sentTo = account.id;
      });
    });
    return { userId: sentTo };
  }

  private async findByName(username: string): Promise<User | undefined> {
    const key = usernameLookupKey(username);
    return key === undefined ? undefined : findUserForLogin(this.db, key);
  }

  /**
   * Redeems a reset link for a new password (the policy applies): every session ends, the account's guess counters
   * clear, every outstanding reset link ends, and the proven address is told. No sign-in: the new password (and
   * the second factor, if the account has one) does that. A wrong token counts in the login limits.
   */
  async reset(input: { token: string; newPassword: string; newPasswordConfirm: string }, client: ClientInfo): Promise<{ userId: string }> {
    if (normalizePassword(input.newPassword) !== normalizePassword(input.newPasswordConfirm)) {
      throw new ServiceError('password_mismatch', 'New passwords do not match!');
    }
    this.hasher.assertCapacity();
    const attempt = await this.limits.passwordAttempt(client.ip);
    const hash = linkTokenHash(input.token);
    const found = await attempt.judging(async () => {
      const link = hash && (await findLiveLink(this.db, 'reset', hash, false));
      return link ? { link, account: await findAccountAddress(this.db, link.userId) } : undefined;
    });
    if (!found?.account) throw invalidEmailToken();
    await attempt.accepted();
    const { link, account } = found;
    this.policy.check(input.newPassword, account.username);
    const passwordHash = await this.hasher.hash(input.newPassword);
    await this.db.transaction(async (tx) => {
      // Used by a simultaneous request, ended by a newer one, or its account deleted, since it was checked above.
      if (!(await lockUser(tx, link.userId, 'update'))) throw invalidEmailToken();
      const live = await findLiveLink(tx, 'reset', hash!, true);
      if (!live) throw invalidEmailToken();
      await useEmailToken(tx, live.id);
      await updateUser(tx, live.userId, { passwordHash });
      // Its listeners end the other reset links and tell the verified address (the email feature's own among them).
      await this.events.emit(tx, 'password.reset', { user_id: live.userId, method: 'email' });
      await endUserSessions(this.events, tx, live.userId, 'password_reset');
    });
    await this.limits.clearAccount(link.userId);
    return { userId: link.userId };
  }
}
