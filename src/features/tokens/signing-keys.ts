import {
  calculateJwkThumbprint,
  createLocalJWKSet,
  errors as joseErrors,
  exportJWK,
  generateKeyPair,
  importJWK,
  type CryptoKey,
  type JSONWebKeySet,
  type JWK,
  type JWTVerifyGetKey,
} from 'jose';
import { ASYMMETRIC_ALGORITHMS, type AsymmetricAlgorithm } from './jwt-private-key.js';
import type { JwtConfig } from './token-settings.js';
import type { Logger } from 'pino';
import type { Database, Queryable } from '../../kernel/db/database.js';
import { ServiceError } from '../../kernel/errors.js';
import {
  listAllKeys,
  listVerifyingKeys,
  lockSigningKeys,
  retireKeyNow,
  supersedeOtherKeys,
  upsertSigningKey,
  type StoredSigningKey,
} from './signing-key-queries.js';
import './token-errors.js';

/** How often every instance re-reads the keys, so a rotation or retirement reaches them all without a restart. */
export const KEY_RELOAD_INTERVAL_SECONDS = 60;
// A token naming a kid we do not know triggers a reload (another instance may have rotated), at most this often.
const UNKNOWN_KID_RELOAD_COOLDOWN_MS = 10_000;

interface Signing {
  alg: string;
  kid: string | undefined;
  key: CryptoKey | Uint8Array;
}

interface RingState {
  signing: Signing;
  jwks: JSONWebKeySet;
  verify: JWTVerifyGetKey;
  /** The keys' private halves that are at hand, the signing key's first: none with a shared secret. */
  privateJwks: JWK[];
}

/**
 * How long a superseded key keeps verifying: every token it signed must expire first, including those signed by
 * instances that have not reloaded yet.
 */
export function retirementDelaySeconds(jwt: JwtConfig): number {
  return jwt.accessTokenTtlSeconds + 2 * KEY_RELOAD_INTERVAL_SECONDS;
}

/**
 * What tokens.ts signs and verifies with. The keys live in the database, shared by every instance: the newest
 * current key signs, and every key not yet retired verifies and is published in the JWKS.
 */
export class KeyRing {
  private lastUnknownKidReload = 0;
  private pendingReload: Promise<void> | undefined;

  private constructor(
    private state: RingState,
    private readonly source: { db: Database; jwt: JwtConfig; log: Logger } | undefined,
  ) {}

  /** Loads the keys, first generating or registering the configured one as current if it is not already. */
  static async load(db: Database, jwt: JwtConfig, log: Logger): Promise<KeyRing> {
    if (jwt.algorithm === 'HS256') {
      const secret = new TextEncoder().encode(jwt.secret);
      return new KeyRing({ signing: { alg: 'HS256', kid: undefined, key: secret }, jwks: { keys: [] }, verify: () => secret, privateJwks: [] }, undefined);
    }
    await db.transaction((tx) => ensureCurrentKey(tx, jwt));
    return new KeyRing(await readState(db, jwt), { db, jwt, log });
  }

  /** The only algorithms a token may use: `alg: none` or a symmetric algorithm never verifies against public keys. */
  get algorithms(): string[] {
    return this.source ? [...ASYMMETRIC_ALGORITHMS] : ['HS256'];
  }

  get signing(): Signing {
    return this.state.signing;
  }

  /**
   * The private keys, the one that signs first, each with its kid, alg and use: for a signer of its own (the
   * OpenID provider) that must sign with the same keys as the access tokens. A superseded key of the operator's
   * is not among them (its private half was never stored); with a shared secret there are none.
   */
  get privateJwks(): JWK[] {
    return this.state.privateJwks;
  }

  /** Public keys for /.well-known/jwks.json: empty with a shared secret. */
  get jwks(): JSONWebKeySet {
    return this.state.jwks;
  }

  /** For jose's jwtVerify: picks the key by the token's kid and alg, and refuses a token that names neither. */
  readonly verificationKey: JWTVerifyGetKey = async (header, token) => {
    try {
      return await this.state.verify(header, token);
    } catch (error) {
      if (!(error instanceof joseErrors.JWKSNoMatchingKey) || !this.source) throw error;
      if (Date.now() - this.lastUnknownKidReload < UNKNOWN_KID_RELOAD_COOLDOWN_MS) throw error;
      this.lastUnknownKidReload = Date.now();
      await this.reload().catch(() => {}); // reload() logs; the token is refused either way
      return this.state.verify(header, token);
    }
  };

  /** Re-reads the keys; on failure (database down) keeps the ones it has and logs. */
  async reload(): Promise<void> {
    if (!this.source) return;
    const { db, jwt, log } = this.source;
    this.pendingReload ??= (async () => {
      try {
        const next = await readState(db, jwt);
        if (next.signing.kid !== this.state.signing.kid) log.info({ kid: next.signing.kid, alg: next.signing.alg }, 'signing key changed');
        this.state = next;
      } catch (error) {
        log.warn({ err: error }, 'could not reload the signing keys; keeping the current ones');
        throw error;
      } finally {
        this.pendingReload = undefined;
      }
    })();
    return this.pendingReload;
  }
}

async function readState(db: Queryable, jwt: JwtConfig): Promise<RingState> {
  const keys = await listVerifyingKeys(db);
  const signing = jwt.privateKey ? await operatorSigning(jwt.privateKey) : await currentStoredSigning(keys);
  const published = keys.map((key) => ({ ...key.publicJwk, kid: key.kid, alg: key.alg, use: 'sig' }));
  const jwks: JSONWebKeySet = { keys: published };
  const current = jwt.privateKey ? [{ ...jwt.privateKey.privateJwk, kid: signing.kid, alg: signing.alg, use: 'sig' }] : [];
  const stored = keys
    .filter((key) => key.privateJwk !== null && !current.some((own) => own.kid === key.kid))
    .map((key) => ({ ...key.privateJwk!, kid: key.kid, alg: key.alg, use: 'sig' }))
    // Newest first, and the one that signs before every other.
    .sort((a, b) => Number(b.kid === signing.kid) - Number(a.kid === signing.kid));
  return { signing, jwks, verify: createLocalJWKSet(jwks), privateJwks: [...current, ...stored] };
}

async function operatorSigning(privateKey: NonNullable<JwtConfig['privateKey']>): Promise<Signing> {
  const { kid } = await describeOperatorKey(privateKey);
  return { alg: privateKey.alg, kid, key: (await importJWK(privateKey.privateJwk, privateKey.alg)) as CryptoKey };
}

async function currentStoredSigning(keys: StoredSigningKey[]): Promise<Signing> {
  const current = keys.find((key) => key.retiredAt === null && key.privateJwk !== null);
  if (!current) throw new Error('no current signing key in the database: restart an instance or run `npm run keys:rotate`');
  return { alg: current.alg, kid: current.kid, key: (await importJWK(current.privateJwk!, current.alg)) as CryptoKey };
}

/** The kid (RFC 7638 thumbprint) and public half of an operator's key. */
async function describeOperatorKey(privateKey: NonNullable<JwtConfig['privateKey']>): Promise<{ kid: string; publicJwk: JWK }> {
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...publicJwk } = privateKey.privateJwk;
  return { kid: await calculateJwkThumbprint(publicJwk), publicJwk };
}

/**
 * Makes the configured key current at start: the operator's key, or else a generated key of the configured
 * algorithm (generated only if the current one is of another algorithm or there is none).
 */
async function ensureCurrentKey(tx: Queryable, jwt: JwtConfig): Promise<void> {
  await lockSigningKeys(tx);
  if (jwt.privateKey) {
    const { kid, publicJwk } = await describeOperatorKey(jwt.privateKey);
    await upsertSigningKey(tx, { kid, alg: jwt.privateKey.alg, publicJwk, privateJwk: null });
    await supersedeOtherKeys(tx, kid, retirementDelaySeconds(jwt));
    return;
  }
  const keys = await listVerifyingKeys(tx);
  const current = keys.find((key) => key.retiredAt === null && key.privateJwk !== null);
  if (current?.alg === jwt.algorithm) return;
  await addGeneratedKey(tx, jwt.algorithm as AsymmetricAlgorithm, retirementDelaySeconds(jwt));
}

async function addGeneratedKey(tx: Queryable, alg: AsymmetricAlgorithm, retireOthersAfterSeconds: number): Promise<{ kid: string; superseded: string[] }> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  await upsertSigningKey(tx, { kid, alg, publicJwk, privateJwk: await exportJWK(privateKey) });
  return { kid, superseded: await supersedeOtherKeys(tx, kid, retireOthersAfterSeconds) };
}

/** `keys:rotate`: a new generated key signs from now on; the previous ones verify until their tokens have expired. */
export async function rotateSigningKey(
  db: Database,
  jwt: JwtConfig,
): Promise<{ kid: string; alg: string; superseded: string[]; retireAfterSeconds: number }> {
  if (jwt.algorithm === 'HS256') throw new ServiceError('key_conflict', 'JWT_SECRET_KEY is set: tokens are HS256 with a shared secret, which has no key to rotate. Rotate by changing JWT_SECRET_KEY everywhere at once.');
  if (jwt.privateKey) throw new ServiceError('key_conflict', 'JWT_PRIVATE_KEY is set: the operator provides the key. Rotate by replacing JWT_PRIVATE_KEY; the previous key stays in the JWKS until its tokens expire.');
  const alg = jwt.algorithm;
  const retireAfterSeconds = retirementDelaySeconds(jwt);
  const result = await db.transaction(async (tx) => {
    await lockSigningKeys(tx);
    return addGeneratedKey(tx, alg, retireAfterSeconds);
  });
  return { ...result, alg, retireAfterSeconds };
}

/** `keys:retire <kid>`: stop trusting a key at once (a leaked key); its tokens are refused within a reload interval. */
export async function retireSigningKey(db: Database, kid: string): Promise<void> {
  await db.transaction(async (tx) => {
    await lockSigningKeys(tx);
    const keys = await listVerifyingKeys(tx);
    const key = keys.find((k) => k.kid === kid);
    if (!key) throw new ServiceError('not_found', `no key with kid ${kid} is in use (see keys:list)`);
    if (key.retiredAt === null) throw new ServiceError('key_conflict', `${kid} is the current signing key: run keys:rotate first, then retire it`);
    await retireKeyNow(tx, kid);
  });
}

export async function listSigningKeys(db: Database): Promise<StoredSigningKey[]> {
  return listAllKeys(db);
}
