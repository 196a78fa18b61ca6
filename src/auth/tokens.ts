import { randomUUID } from 'node:crypto';
import { errors as joseErrors, jwtVerify, SignJWT, type JWTPayload } from 'jose';
import { ServiceError } from '../errors.js';
import { USER_ID_PATTERN } from './model.js';
import type { KeyRing } from './signing-keys.js';

export interface TokenSettings {
  issuer: string;
  audience: string;
  ttlSeconds: number;
}

export interface AccessTokenSubject {
  userId: string;
  username: string;
  sessionId: string;
  authTime: Date;
}

export interface VerifiedAccessToken {
  userId: string;
  sessionId: string;
  /** Every claim, as signed: for introspection. */
  claims: JWTPayload;
}

// Tolerated clock difference between this service's instances and the verifiers.
const CLOCK_TOLERANCE_SECONDS = 5;
const USER_ID = new RegExp(USER_ID_PATTERN);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Signs and checks access tokens (JWT). Whether the session behind a token is still live is sessions.ts's job. */
export class AccessTokens {
  constructor(
    private readonly keys: KeyRing,
    private readonly settings: TokenSettings,
  ) {}

  get ttlSeconds(): number {
    return this.settings.ttlSeconds;
  }

  async issue(subject: AccessTokenSubject): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({
      // The original service's consumers read these two.
      user_id: Number(subject.userId),
      username: subject.username,
      sid: subject.sessionId,
      auth_time: Math.floor(subject.authTime.getTime() / 1000),
    })
      .setProtectedHeader({ alg: this.keys.signing.alg, typ: 'JWT', ...(this.keys.signing.kid ? { kid: this.keys.signing.kid } : {}) })
      .setSubject(subject.userId)
      .setIssuer(this.settings.issuer)
      .setAudience(this.settings.audience)
      .setIssuedAt(now)
      .setExpirationTime(now + this.settings.ttlSeconds)
      .setJti(randomUUID())
      .sign(this.keys.signing.key);
  }

  /** The token's user and session, or ServiceError('invalid_token'). */
  async verify(token: string): Promise<VerifiedAccessToken> {
    let payload;
    try {
      ({ payload } = await jwtVerify(token, this.keys.verificationKey, {
        algorithms: this.keys.algorithms,
        issuer: this.settings.issuer,
        audience: this.settings.audience,
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
        requiredClaims: ['sub', 'sid', 'jti', 'iat', 'exp'],
      }));
    } catch (error) {
      if (error instanceof joseErrors.JWTExpired) throw new ServiceError('invalid_token', 'The access token has expired');
      throw new ServiceError('invalid_token', 'The access token is invalid');
    }
    const { sub, sid } = payload;
    if (typeof sub !== 'string' || !USER_ID.test(sub) || typeof sid !== 'string' || !UUID.test(sid)) {
      throw new ServiceError('invalid_token', 'The access token is invalid');
    }
    return { userId: sub, sessionId: sid, claims: payload };
  }
}
