import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type AuthenticationResponseJSON,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
} from '@simplewebauthn/server';
import { isUniqueViolation, type Database, type Queryable } from '../../kernel/db/database.js';
import {
  consumeChallenge,
  deletePasskey,
  findPasskeyForSignIn,
  insertChallenge,
  insertPasskey,
  keepNewestChallenges,
  listPasskeys,
  purgeExpiredChallenges,
  recordPasskeyUse,
  renamePasskey,
  type ChallengePurpose,
  type StoredPasskey,
} from './passkey-queries.js';
import { ServiceError } from '../../kernel/errors.js';
import { SESSION_ENDED, type Assurance, type Authenticated, type ClientInfo, type User } from '../../kernel/model.js';
import type { Proof, Reauthentication } from '../mfa/reauthentication.js';
import type { RateLimits } from '../rate-limits/rate-limits.js';
import { sha256 } from '../../kernel/digest.js';
import type { Events } from '../../kernel/events.js';
import { invalidPasskey } from './passkey-errors.js';

export interface PasskeySettings {
  rpId: string;
  rpName: string;
  /** Origins whose pages may use the passkeys; a response made on any other is refused. */
  origins: string[];
}

export type PasskeySummary = Omit<StoredPasskey, 'userId' | 'credentialId' | 'publicKey' | 'counter'>;

/** A verified passkey sign-in: whose, and how much it proves. */
export interface PasskeySignIn {
  passkeyId: string;
  user: User;
  passwordHash: string;
  hasSecondFactor: boolean;
  locked: boolean;
  assurance: Assurance;
}

const CHALLENGE_TTL_SECONDS = 5 * 60;
/**
 * Live challenges one owner (a user's registrations, one mfa_token's second steps) may hold; one more replaces
 * the oldest. Replacing rather than refusing keeps the owner in: the options just asked for always work, so
 * nobody can use up an owner's quota, and a second step's challenges belong to its mfa_token alone, so whoever
 * else holds the password cannot push the owner's out either.
 */
export const MAX_LIVE_CHALLENGES = 5;
const NAME_MAX_LENGTH = 64;

/** What a summary shows of a stored passkey: nothing that verifies or identifies it to an authenticator. */
function summary(p: StoredPasskey): PasskeySummary {
  return { id: p.id, name: p.name, transports: p.transports, deviceType: p.deviceType, backedUp: p.backedUp, createdAt: p.createdAt, lastUsedAt: p.lastUsedAt };
}

/**
 * RFC 8176's words for what a passkey proved: `swk`, possession of a key, and `user` when the authenticator
 * verified the user (PIN, fingerprint, face), which makes it two factors at once, level 2. Never `hwk`: passkeys
 * are registered without attestation (`none`), which proves nothing about the hardware that holds the key, and a
 * synced passkey is a key in software by design.
 */
export function passkeyAssurance(userVerified: boolean): Assurance {
  return userVerified ? { amr: ['swk', 'user'], aal: 2 } : { amr: ['swk'], aal: 1 };
}

/** WebAuthn credentials: registering them, listing and removing them, and checking what they sign. */
export class Passkeys {
  constructor(
    private readonly db: Database,
    private readonly reauth: Reauthentication,
    private readonly settings: PasskeySettings,
    private readonly limits: RateLimits,
    private readonly events: Events,
  ) {}

  async registrationOptions(auth: Authenticated, proof: Proof, client: ClientInfo): Promise<PublicKeyCredentialCreationOptionsJSON> {
    await this.limits.passkeyOptions(client.ip, auth.user.id);
    await this.reauth.confirm(auth, proof, client);
    const existing = await listPasskeys(this.db, auth.user.id);
    const options = await generateRegistrationOptions({
      rpName: this.settings.rpName,
      rpID: this.settings.rpId,
      userName: auth.user.username,
      userID: new TextEncoder().encode(auth.user.id),
      attestationType: 'none',
      excludeCredentials: existing.map((p) => ({ id: p.credentialId, transports: p.transports })),
      authenticatorSelection: { residentKey: 'required', userVerification: 'preferred' },
      timeout: CHALLENGE_TTL_SECONDS * 1000,
    });
    if (!(await this.remember(options.challenge, 'register', { userId: auth.user.id }))) throw accountGone();
    return options;
  }

  async register(auth: Authenticated, response: RegistrationResponseJSON, name: string | undefined): Promise<PasskeySummary> {
    let verified;
    try {
      verified = await verifyRegistrationResponse({
        response,
        expectedChallenge: (challenge) => consumeChallenge(this.db, sha256(challenge), 'register', auth.user.id),
        expectedOrigin: this.settings.origins,
        expectedRPID: this.settings.rpId,
        requireUserVerification: false,
      });
    } catch (error) {
      throw this.refused(error, 'registration');
    }
    if (!verified.verified || !verified.registrationInfo) throw invalidPasskey();
    const { credential, credentialDeviceType, credentialBackedUp } = verified.registrationInfo;
    const label = (name?.trim() || `Passkey ${new Date().toISOString().slice(0, 10)}`).slice(0, NAME_MAX_LENGTH);
    const stored = await this.db
      .transaction(async (tx) => {
        const inserted = await insertPasskey(tx, {
          userId: auth.user.id,
          credentialId: credential.id,
          publicKey: credential.publicKey,
          counter: credential.counter,
          transports: credential.transports ?? [],
          deviceType: credentialDeviceType,
          backedUp: credentialBackedUp,
          name: label,
        });
        if (inserted) await this.events.emit(tx, 'passkey.added', { user_id: auth.user.id, passkey_id: inserted.id });
        return inserted;
      })
      .catch((error: unknown) => {
        throw isUniqueViolation(error) ? new ServiceError('passkey_exists', 'This passkey is already registered') : error;
      });
    if (!stored) throw accountGone();
    return summary(stored);
  }

  async list(auth: Authenticated): Promise<PasskeySummary[]> {
    return this.listOf(auth.user.id);
  }

  /** Any user's, for an operator. */
  async listOf(userId: string): Promise<PasskeySummary[]> {
    return (await listPasskeys(this.db, userId)).map(summary);
  }

  async rename(auth: Authenticated, id: string, name: string): Promise<PasskeySummary> {
    const renamed = await renamePasskey(this.db, auth.user.id, id, name.trim().slice(0, NAME_MAX_LENGTH));
    if (!renamed) throw notFound();
    return summary(renamed);
  }

  /** Needs what removing any factor needs (see `Reauthentication.confirmFactorChange`); another user's id is not found. */
  async remove(auth: Authenticated, id: string, proof: Proof, client: ClientInfo): Promise<void> {
    if (!(await listPasskeys(this.db, auth.user.id)).some((p) => p.id === id)) throw notFound();
    await this.reauth.confirmFactorChange(auth, proof, client);
    await this.removeOf(auth.user.id, id);
  }

  /** Any user's, for an operator. */
  async removeOf(userId: string, id: string): Promise<void> {
    await this.db.transaction(async (tx) => {
      if (!(await deletePasskey(tx, userId, id))) throw notFound();
      await this.events.emit(tx, 'passkey.removed', { user_id: userId, passkey_id: id });
    });
  }

  /** For a sign-in with no username typed: the authenticator offers whichever of its passkeys is for this site. */
  async loginOptions(): Promise<PublicKeyCredentialRequestOptionsJSON> {
    const options = await generateAuthenticationOptions({
      rpID: this.settings.rpId,
      userVerification: 'preferred',
      timeout: CHALLENGE_TTL_SECONDS * 1000,
    });
    await this.remember(options.challenge, 'login', {});
    return options;
  }

  /** For the second step of a sign-in (`mfaChallengeId`: its mfa_token's row): this user's passkeys only. Undefined if the user is gone. */
  async secondStepOptions(userId: string, mfaChallengeId: string): Promise<PublicKeyCredentialRequestOptionsJSON | undefined> {
    const options = await generateAuthenticationOptions({
      rpID: this.settings.rpId,
      userVerification: 'preferred',
      allowCredentials: (await listPasskeys(this.db, userId)).map((p) => ({ id: p.credentialId, transports: p.transports as never })),
      timeout: CHALLENGE_TTL_SECONDS * 1000,
    });
    return (await this.remember(options.challenge, 'second_step', { userId, mfaChallengeId })) ? options : undefined;
  }

  /** A passkey sign-in's response: whose it is and what it proved, or ServiceError('invalid_passkey'). */
  async verifySignIn(response: AuthenticationResponseJSON): Promise<PasskeySignIn> {
    const found = typeof response?.id === 'string' ? await findPasskeyForSignIn(this.db, response.id) : undefined;
    if (!found) throw invalidPasskey();
    const userVerified = await this.verifyAssertion(this.db, response, found.passkey, 'login', undefined);
    return {
      passkeyId: found.passkey.id,
      user: found.user,
      passwordHash: found.passwordHash,
      hasSecondFactor: found.hasSecondFactor,
      locked: found.locked,
      assurance: passkeyAssurance(userVerified),
    };
  }

  /**
   * At the second step of a password sign-in: what one of `userId`'s passkeys proved, or undefined if the
   * response is not such a passkey's. `db` may be a transaction.
   */
  async verifySecondStep(db: Queryable, userId: string, response: AuthenticationResponseJSON): Promise<Assurance | undefined> {
    const found = typeof response?.id === 'string' ? await findPasskeyForSignIn(db, response.id) : undefined;
    if (!found || found.user.id !== userId) return undefined;
    try {
      const userVerified = await this.verifyAssertion(db, response, found.passkey, 'second_step', userId);
      return passkeyAssurance(userVerified);
    } catch (error) {
      if (error instanceof ServiceError && error.code === 'invalid_passkey') return undefined;
      throw error;
    }
  }

  async purgeExpired(): Promise<number> {
    return purgeExpiredChallenges(this.db);
  }

  /**
   * Checks the signature, origin, RP ID and challenge, then records the new counter. The challenge is used up
   * as soon as a response names it, verified or not: a challenge answers one response.
   */
  private async verifyAssertion(
    db: Queryable,
    response: AuthenticationResponseJSON,
    passkey: StoredPasskey,
    purpose: ChallengePurpose,
    userId: string | undefined,
  ): Promise<boolean> {
    let verified;
    try {
      verified = await verifyAuthenticationResponse({
        response,
        expectedChallenge: (challenge) => consumeChallenge(db, sha256(challenge), purpose, userId),
        expectedOrigin: this.settings.origins,
        expectedRPID: this.settings.rpId,
        credential: { id: passkey.credentialId, publicKey: passkey.publicKey as never, counter: passkey.counter, transports: passkey.transports as never },
        requireUserVerification: false,
      });
    } catch (error) {
      throw this.refused(error, 'sign-in', passkey);
    }
    if (!verified.verified) throw invalidPasskey();
    const { newCounter, userVerified } = verified.authenticationInfo;
    // A use at the same moment moved the counter first: this response's counter is no longer ahead of it.
    if (!(await recordPasskeyUse(db, passkey.id, passkey.counter, newCounter))) throw invalidPasskey();
    return userVerified;
  }

  /** Whether the challenge was stored (not if its user is gone); one with an owner is kept with its owner's newest few only (see MAX_LIVE_CHALLENGES). */
  private async remember(challenge: string, purpose: ChallengePurpose, owner: { userId?: string; mfaChallengeId?: string }): Promise<boolean> {
    const stored = await insertChallenge(this.db, { hash: sha256(challenge), purpose, ...owner, ttlSeconds: CHALLENGE_TTL_SECONDS });
    if (stored && owner.userId !== undefined) await keepNewestChallenges(this.db, purpose, owner, MAX_LIVE_CHALLENGES);
    return stored;
  }

  /**
   * A response the library refused (wrong origin or RP ID, a challenge unknown or used, a bad signature, a
   * malformed structure): 401, never 500. A signature counter that went backwards means two authenticators hold
   * one key: a security event.
   */
  private refused(error: unknown, what: string, passkey?: StoredPasskey): ServiceError {
    if (error instanceof ServiceError) return error;
    const reason = error instanceof Error ? error.message : String(error);
    if (passkey && /counter value/i.test(reason)) {
      return new ServiceError('invalid_passkey', 'This passkey reported a signature counter lower than before, as a copied authenticator would: refused', {
        context: { event: 'passkey_counter_regression', userId: passkey.userId, passkeyId: passkey.id },
        // Two authenticators signing with one key is a security event.
        log: { level: 'warn', message: 'a passkey signed with a counter that went backwards (a cloned authenticator?): refused' },
      });
    }
    return invalidPasskey(undefined, { event: 'passkey_refused', what, reason: reason.slice(0, 200) });
  }
}

function notFound(): ServiceError {
  return new ServiceError('not_found', 'No passkey with this id is yours');
}

/** The account was deleted while a request of its own was on its way: its token no longer speaks for anyone. */
function accountGone(): ServiceError {
  return new ServiceError('invalid_token', SESSION_ENDED);
}
