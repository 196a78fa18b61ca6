import {
  calculateJwkThumbprint,
  createLocalJWKSet,
  exportJWK,
  generateKeyPair,
  importJWK,
  type CryptoKey,
  type JSONWebKeySet,
  type JWK,
  type JWTVerifyGetKey,
} from 'jose';
import type { AsymmetricAlgorithm, Config } from '../config.js';
import type { Database } from '../db/database.js';
import { insertSigningKey, listActiveSigningKeys, lockSigningKeys } from '../db/signing-keys.js';

/** What tokens.ts signs and verifies with. */
export interface KeyRing {
  /** The only algorithms a token may use: pinned, so `alg: none` or a swapped algorithm never verifies. */
  algorithms: string[];
  signing: { alg: string; kid: string | undefined; key: CryptoKey | Uint8Array };
  verificationKey: JWTVerifyGetKey;
  /** Public keys for /.well-known/jwks.json: empty with a shared secret. */
  jwks: JSONWebKeySet;
}

export async function loadKeyRing(db: Database, jwt: Config['jwt']): Promise<KeyRing> {
  if (jwt.algorithm === 'HS256') {
    const secret = new TextEncoder().encode(jwt.secret);
    return { algorithms: ['HS256'], signing: { alg: 'HS256', kid: undefined, key: secret }, verificationKey: () => secret, jwks: { keys: [] } };
  }
  const keys = await ensureSigningKey(db, jwt.algorithm);
  const current = keys.find((key) => key.alg === jwt.algorithm)!;
  const jwks: JSONWebKeySet = { keys: keys.map((key) => ({ ...key.publicJwk, kid: key.kid, alg: key.alg, use: 'sig' })) };
  return {
    algorithms: [...new Set(keys.map((key) => key.alg))],
    signing: { alg: current.alg, kid: current.kid, key: (await importJWK(current.privateJwk, current.alg)) as CryptoKey },
    // jose picks the key by the token's kid and alg and refuses a token that names neither.
    verificationKey: createLocalJWKSet(jwks),
    jwks,
  };
}

/** The unretired keys, newest first, after generating one of `alg` if there is none. */
async function ensureSigningKey(db: Database, alg: AsymmetricAlgorithm) {
  return db.transaction(async (tx) => {
    await lockSigningKeys(tx);
    const keys = await listActiveSigningKeys(tx);
    if (keys.some((key) => key.alg === alg)) return keys;
    const generated = await generateKey(alg);
    await insertSigningKey(tx, generated);
    return listActiveSigningKeys(tx);
  });
}

async function generateKey(alg: AsymmetricAlgorithm): Promise<{ kid: string; alg: string; publicJwk: JWK; privateJwk: JWK }> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = await exportJWK(publicKey);
  return { kid: await calculateJwkThumbprint(publicJwk), alg, publicJwk, privateJwk: await exportJWK(privateKey) };
}
