import { createPrivateKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { JWK } from 'jose';

export const ASYMMETRIC_ALGORITHMS = ['ES256', 'RS256', 'EdDSA'] as const;
export type AsymmetricAlgorithm = (typeof ASYMMETRIC_ALGORITHMS)[number];
export type SigningAlgorithm = AsymmetricAlgorithm | 'HS256';

/** A private key the operator provides (JWT_PRIVATE_KEY or JWT_PRIVATE_KEY_FILE), parsed and checked at start. */
export interface OperatorKey {
  alg: AsymmetricAlgorithm;
  privateJwk: JWK;
}

/** The key cannot be used; the message says what to provide instead. */
export class OperatorKeyError extends Error {
  override name = 'OperatorKeyError';
}

const KEY_HELP =
  'JWT_PRIVATE_KEY must be a private key as PEM (-----BEGIN PRIVATE KEY-----, EC PRIVATE KEY or RSA PRIVATE KEY) or as a JWK (JSON with "d")';

/** The key in the file at `path` (a mounted secret), as `parseOperatorKey` takes it. */
export function readOperatorKeyFile(path: string): OperatorKey {
  let text: string;
  try {
    text = readFileSync(path, 'utf8').trim();
  } catch (error) {
    throw new OperatorKeyError(`JWT_PRIVATE_KEY_FILE=${path} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  return parseOperatorKey(text);
}

/** Parsed by Node's crypto (PEM in PKCS#8, SEC1 or PKCS#1, or JWK) and checked for a type a supported JWT algorithm signs with. */
export function parseOperatorKey(text: string): OperatorKey {
  let key: KeyObject;
  try {
    // A PEM pasted into a one-line variable often arrives with literal "\n" for its line breaks.
    key = text.startsWith('{')
      ? createPrivateKey({ key: JSON.parse(text) as JsonWebKey, format: 'jwk' })
      : createPrivateKey(text.replace(/\\n/g, '\n'));
  } catch {
    throw new OperatorKeyError(KEY_HELP);
  }
  const details = key.asymmetricKeyDetails ?? {};
  let alg: AsymmetricAlgorithm | undefined;
  if (key.asymmetricKeyType === 'ec' && details.namedCurve === 'prime256v1') alg = 'ES256';
  else if (key.asymmetricKeyType === 'ed25519') alg = 'EdDSA';
  else if (key.asymmetricKeyType === 'rsa' && (details.modulusLength ?? 0) >= 2048) alg = 'RS256';
  if (alg === undefined) {
    throw new OperatorKeyError(
      `JWT_PRIVATE_KEY is a ${key.asymmetricKeyType} key${details.namedCurve ? ` on ${details.namedCurve}` : ''}${details.modulusLength ? ` of ${details.modulusLength} bits` : ''}: ` +
        'use a P-256 (ES256), Ed25519 (EdDSA) or RSA key of at least 2048 bits (RS256)',
    );
  }
  return { alg, privateJwk: key.export({ format: 'jwk' }) as JWK };
}
