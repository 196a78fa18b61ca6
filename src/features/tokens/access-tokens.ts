import { createHmac, KeyObject, randomUUID, sign, type webcrypto } from 'node:crypto';
import { errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import type { Queryable } from '../../kernel/db/database.js';
import { ServiceError } from '../../kernel/errors.js';
import { USER_ID_PATTERN, type Assurance } from '../../kernel/model.js';
import { RESERVED_CLAIMS, type ClaimsHook } from './claims-hook.js';
import type { KeyRing } from './signing-keys.js';
import './token-errors.js';

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
  /** RFC 8176 `amr` and the assurance level `aal` of the session's sign-in. */
  assurance: Assurance;
  /** The user's roles, as operators set them; read again at every refresh. */
  roles: string[];
  /** The session's absolute end: the token expires then at the latest. */
  notAfter: Date;
}

export interface IssuedAccessToken {
  token: string;
  /** Seconds from now until its `exp`: the token's lifetime, or less near the end of its session. */
  expiresIn: number;
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

type Signing = KeyRing['signing'];

/** A signing key made ready for many signatures: its encoded JWS header, and a synchronous signature. */
interface Signer {
  signing: Signing;
  /** base64url of the protected header, the same for every token of this key. */
  header: string;
  sign(input: Buffer): Buffer;
}

function base64url(json: unknown): string {
  return Buffer.from(JSON.stringify(json), 'utf8').toString('base64url');
}

/**
 * node:crypto signs a JWT in tens of microseconds on the calling thread, where WebCrypto (which jose's SignJWT
 * uses) costs several times that in promises, copies and a round trip through libuv's threads: a login's
 * biggest cost after its hash. The bytes are those jose would produce: the same header and claims in the same
 * order, and each algorithm's JWS signature format (RFC 7518: ECDSA as r‖s, RSASSA-PKCS1-v1_5, Ed25519).
 */
function signerFor(signing: Signing): Signer {
  const header = base64url({ alg: signing.alg, typ: 'JWT', ...(signing.kid ? { kid: signing.kid } : {}) });
  if (signing.key instanceof Uint8Array) {
    const secret = signing.key;
    return { signing, header, sign: (input) => createHmac('sha256', secret).update(input).digest() };
  }
  const key = KeyObject.from(signing.key as webcrypto.CryptoKey);
  switch (signing.alg) {
    case 'ES256':
      return { signing, header, sign: (input) => sign('sha256', input, { key, dsaEncoding: 'ieee-p1363' }) };
    case 'RS256':
      return { signing, header, sign: (input) => sign('sha256', input, key) };
    case 'EdDSA':
      return { signing, header, sign: (input) => sign(null, input, key) };
    default:
      throw new Error(`cannot sign with ${signing.alg}`);
  }
}

/** Signs and checks access tokens (JWT). Whether the session behind a token is still live is sessions.ts's job. */
export class AccessTokens {
  /** For the key ring's current signing key; made again when a reload brings another. */
  private signer: Signer | undefined;

  constructor(
    private readonly keys: KeyRing,
    private readonly settings: TokenSettings,
    /** TOKEN_HOOK_URL's: asked for claims to add before each token. Without one, nothing is asked. */
    private readonly hook?: ClaimsHook,
  ) {}

  get ttlSeconds(): number {
    return this.settings.ttlSeconds;
  }

  /**
   * Signs a token for `subject`. With a claims hook, asks it first (`db`: the caller's connection or transaction,
   * through which the hook reads the account) and adds what it answers to the claims the service sets, which
   * it can never replace.
   */
  async issue(subject: AccessTokenSubject, db: Queryable): Promise<IssuedAccessToken> {
    const now = Math.floor(Date.now() / 1000);
    // Services that verify tokens on their own never learn that a session ran out: its tokens end with it.
    const exp = Math.min(now + this.settings.ttlSeconds, Math.max(now, Math.floor(subject.notAfter.getTime() / 1000)));
    const claims: Record<string, unknown> = {
      // The original service's consumers read these two.
      user_id: Number(subject.userId),
      username: subject.username,
      sid: subject.sessionId,
      auth_time: Math.floor(subject.authTime.getTime() / 1000),
      amr: subject.assurance.amr,
      aal: subject.assurance.aal,
      roles: subject.roles,
      sub: subject.userId,
      iss: this.settings.issuer,
      aud: this.settings.audience,
      iat: now,
      exp,
      jti: randomUUID(),
    };
    if (this.hook) {
      const added = await this.hook.claims(db, {
        user: { id: subject.userId, username: subject.username, roles: subject.roles },
        session: { id: subject.sessionId, aal: subject.assurance.aal, amr: subject.assurance.amr },
        claims: { ...claims },
      });
      for (const [name, value] of Object.entries(added)) {
        if (!Object.hasOwn(claims, name) && !RESERVED_CLAIMS.has(name) && name !== '__proto__') claims[name] = value;
      }
    }
    const signing = this.keys.signing;
    if (this.signer?.signing !== signing) this.signer = signerFor(signing);
    const payload = base64url(claims);
    const input = `${this.signer.header}.${payload}`;
    return { token: `${input}.${this.signer.sign(Buffer.from(input, 'ascii')).toString('base64url')}`, expiresIn: exp - now };
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
