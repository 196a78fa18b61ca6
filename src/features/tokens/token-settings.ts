import { GENERATE_SECRET_COMMAND, secretWeakness } from '../../kernel/secret-strength.js';
import { integer, oneOf, refuse, text, type SettingType } from '../../kernel/settings/setting-kinds.js';
import type { ServiceValues } from '../../kernel/settings/service-settings.js';
import { settingsTable, type SliceOf } from '../../kernel/settings/settings-table.js';
import {
  ASYMMETRIC_ALGORITHMS,
  OperatorKeyError,
  parseOperatorKey,
  readOperatorKeyFile,
  type OperatorKey,
  type SigningAlgorithm,
} from './jwt-private-key.js';

const MIN_SECRET_BYTES = 32;
const GENERATE_SECRET_HINT = `${GENERATE_SECRET_COMMAND} (or node -e "console.log(require('crypto').randomBytes(32).toString('base64url'))")`;

/** A PEM or JWK private key (jwt-private-key.ts); written back as its JWK. */
const privateKey: SettingType<OperatorKey> = {
  parse(value) {
    try {
      return parseOperatorKey(value);
    } catch (error) {
      if (error instanceof OperatorKeyError) refuse(error.message);
      throw error;
    }
  },
  format: (key) => JSON.stringify(key.privateJwk),
};

function keyFromFile(path: string): OperatorKey {
  try {
    return readOperatorKeyFile(path);
  } catch (error) {
    if (error instanceof OperatorKeyError) refuse(error.message);
    throw error;
  }
}

/** How access tokens are signed, and what they say. */
export const TOKEN_SETTINGS = settingsTable<ServiceValues>()
  .add('JWT_SECRET_KEY', {
    kind: text,
    unset: '(unset)',
    description:
      "Set: tokens are HS256 with this shared secret (the original service's setting). In production it must be 32 random bytes or more, in base64 or hex (`openssl rand -base64 32`). Unset: an asymmetric key is generated and kept in the database.",
    group: 'Signing keys and tokens',
    production: { example: '', why: 'Set only to sign with HS256 and a shared secret: the output of openssl rand -base64 32.' },
    secret: true,
  })
  .add('JWT_PRIVATE_KEY_FILE', {
    kind: text,
    unset: '(unset)',
    description: 'Path of a file holding `JWT_PRIVATE_KEY` (e.g. a mounted secret).',
    group: 'Signing keys and tokens',
    production: { example: '/run/secrets/jwt.pem', why: 'Your own signing key; unset, keys are generated and kept in the database.' },
  })
  .add('JWT_PRIVATE_KEY', {
    kind: privateKey,
    // The same key may come from a file instead (a mounted secret); naming both is refused below.
    default: (s) => (s.JWT_PRIVATE_KEY_FILE === undefined ? undefined : keyFromFile(s.JWT_PRIVATE_KEY_FILE)),
    unset: '(unset)',
    description:
      'The signing key, from your secret manager: a PEM (PKCS#8, SEC1 or PKCS#1) or a JWK, of type P-256 (ES256), Ed25519 (EdDSA) or RSA ≥ 2048 bits (RS256). Unset: keys are generated and kept in the database.',
    group: 'Signing keys and tokens',
    secret: (key) => `(set: ${key.alg})`,
  })
  .add('JWT_ALGORITHM', {
    kind: oneOf<SigningAlgorithm>([...ASYMMETRIC_ALGORITHMS, 'HS256']),
    default: (s) => s.JWT_PRIVATE_KEY?.alg ?? (s.JWT_SECRET_KEY === undefined ? 'ES256' : 'HS256'),
    shown: "`ES256`; `HS256` with `JWT_SECRET_KEY`; the key's own with `JWT_PRIVATE_KEY`",
    description: '`ES256`, `RS256` or `EdDSA` (generated key, published in the JWKS), or `HS256` (needs `JWT_SECRET_KEY`).',
    group: 'Signing keys and tokens',
  })
  .add('JWT_ISSUER', {
    kind: text,
    default: (s) => s.PUBLIC_URL,
    shown: '`PUBLIC_URL`',
    description: 'The `iss` claim; verifiers must expect it.',
    group: 'Signing keys and tokens',
  })
  .add('JWT_AUDIENCE', {
    kind: text,
    default: 'user-auth-service',
    description: 'The `aud` claim; verifiers must expect it.',
    group: 'Signing keys and tokens',
  })
  .add('ACCESS_TOKEN_TTL_SECONDS', {
    kind: integer(30, 86_400),
    default: 900,
    description: 'Access-token lifetime (15 minutes).',
    group: 'Signing keys and tokens',
  })
  .validate(({ values: s, given }) => {
    const problems: string[] = [];
    const { JWT_PRIVATE_KEY: key, JWT_SECRET_KEY: secret, JWT_ALGORITHM: algorithm } = s;
    if (given.has('JWT_PRIVATE_KEY') && given.has('JWT_PRIVATE_KEY_FILE')) {
      problems.push('JWT_PRIVATE_KEY and JWT_PRIVATE_KEY_FILE are both set: keep one');
    }
    if (key && secret !== undefined) {
      problems.push('JWT_PRIVATE_KEY and JWT_SECRET_KEY are both set: keep the one you sign with');
    } else if (key && algorithm !== key.alg) {
      problems.push(`JWT_ALGORITHM=${algorithm} does not fit JWT_PRIVATE_KEY, which is a ${key.alg} key: unset JWT_ALGORITHM or set it to ${key.alg}`);
    }
    if (algorithm === 'HS256' && secret === undefined && !key) {
      problems.push(`JWT_ALGORITHM=HS256 needs JWT_SECRET_KEY: set it to at least ${MIN_SECRET_BYTES} random bytes, e.g. the output of ${GENERATE_SECRET_HINT}`);
    }
    if (algorithm !== 'HS256' && secret !== undefined && !key) {
      problems.push(`JWT_SECRET_KEY is set but JWT_ALGORITHM=${algorithm} signs with a generated key: unset one of them`);
    }
    const weakness = algorithm === 'HS256' && secret !== undefined && s.NODE_ENV === 'production' ? secretWeakness(secret) : undefined;
    if (weakness !== undefined) {
      problems.push(
        `JWT_SECRET_KEY is too weak for production: ${weakness}. It must be at least ${MIN_SECRET_BYTES} random bytes, written in base64 or hex. ` +
          `Generate one with ${GENERATE_SECRET_HINT}, or unset JWT_SECRET_KEY to sign with an ES256 key kept in the database.`,
      );
    }
    return problems;
  })
  // The issuer is PUBLIC_URL unless JWT_ISSUER says otherwise; the discovery document's addresses come from it too.
  .validate(({ values: s, given }) =>
    s.NODE_ENV === 'production' && !given.has('PUBLIC_URL') && !given.has('JWT_ISSUER')
      ? [
          'PUBLIC_URL is not set. In production the token issuer and the addresses in the discovery document come from it: ' +
            'set PUBLIC_URL to the URL clients reach the service at, e.g. PUBLIC_URL=https://auth.example.com',
        ]
      : [],
  )
  .config((s) => ({
    jwt: {
      algorithm: s.JWT_ALGORITHM,
      /** Only with HS256. */
      secret: s.JWT_SECRET_KEY,
      /** The operator's key; unset, keys are generated and kept in the database. */
      privateKey: s.JWT_PRIVATE_KEY,
      issuer: s.JWT_ISSUER,
      audience: s.JWT_AUDIENCE,
      accessTokenTtlSeconds: s.ACCESS_TOKEN_TTL_SECONDS,
    },
  }));

export type JwtConfig = SliceOf<typeof TOKEN_SETTINGS>['jwt'];
