import type { FastifyRequest } from 'fastify';
import { Type, type Static, type TStringOptions } from 'typebox';
import { ROW_ID_PATTERN, USER_ID_PATTERN } from '../model.js';
import { USERNAME_MAX_LENGTH, USERNAME_MIN_LENGTH } from '../usernames.js';
import { errorSpec, type ErrorCode } from '../errors.js';

/** Every error answer, whatever the status. */
export const ErrorBody = Type.Object(
  {
    error: Type.String({ description: 'Stable machine-readable code, e.g. `username_taken`' }),
    message: Type.String({ description: 'Human-readable explanation' }),
  },
  { $id: 'ErrorBody' },
);
export type ErrorBody = Static<typeof ErrorBody>;

/**
 * The one identity every example uses (the OpenAPI document's, the README's quick start, the guides'): "Try it
 * out" on /docs then works on a service where the quick start was followed.
 */
export const EXAMPLE_USERNAME = 'alice';
export const EXAMPLE_PASSWORD = 'correct horse battery';

/** The groups the OpenAPI document sorts the routes into. */
export const TAGS = {
  accounts: 'Register, sign in, change and delete an account',
  sessions: 'Refresh tokens, logout and the sessions of an account',
  tokens: 'What other services use to verify access tokens',
  'second factor': 'Authenticator apps (TOTP), recovery codes, and the second step of a sign-in',
  passkeys: 'Passkeys (WebAuthn): adding them, and signing in with one',
  email: "The account's email address, password resets and sign-in codes by email (with EMAIL_ENABLED)",
  administration: 'The admin API: accounts, locks, roles, recovery codes, the audit trail (an admin key; on ADMIN_PORT when set)',
  webhooks: 'The admin API: webhook endpoints, their secrets and deliveries (an admin key; on ADMIN_PORT when set)',
  activity: "The account's recent security events: sign-ins, changes, second factors",
  operations: 'Health, readiness and what load balancers probe',
  'single sign-on': 'The OpenID provider: its discovery document, and the apps registered to sign users in (an admin key)',
} as const;
export type Tag = keyof typeof TAGS;

/** What any route with a JSON body can answer before its handler runs. */
export const BODY_ERRORS = ['invalid_request', 'invalid_json', 'payload_too_large', 'unsupported_media_type'] as const satisfies ErrorCode[];

/** What a rate-limited route can answer: over its limit, or (fail-closed) with the limits' store down. */
export const LIMIT_ERRORS = ['too_many_attempts', 'rate_limiter_unavailable'] as const satisfies ErrorCode[];

/**
 * A route's error answers by status, each listing the codes it can carry (and `internal_error`, which any route
 * may answer): what the OpenAPI document shows a client. The statuses come from the error table, so the
 * document cannot give a code another status than the one it is answered with.
 */
export function errorResponses(...codes: ErrorCode[]) {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of new Set<ErrorCode>([...codes, 'internal_error'])) {
    const { status } = errorSpec(code);
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  return Object.fromEntries(
    [...byStatus].map(([status, list]) => [
      status,
      Type.Object(
        {
          error: Type.Unsafe<ErrorCode>({ type: 'string', enum: list, description: 'Stable machine-readable code' }),
          message: Type.String({ description: 'Human-readable explanation' }),
        },
        { description: list.map((code) => `\`${code}\``).join(', ') },
      ),
    ]),
  );
}

/** A username as registration and renaming accept it (login takes any string: older accounts may break the rule). */
// Control characters: C0 (NUL above all, which PostgreSQL's text cannot hold), DEL and C1; and halves of a UTF-16
// pair without the other half, which a database's UTF-8 cannot hold either (the drivers would store U+FFFD instead).
const CONTROLS = '\\u0000-\\u001F\\u007F-\\u009F';
const LONE_SURROGATES = '\\uD800-\\uDFFF';
/** No control character at all. */
export const SINGLE_LINE_PATTERN = `^[^${CONTROLS}${LONE_SURROGATES}]*$`;
/** Tabs and line breaks, and no other control character. */
export const TEXT_PATTERN = `^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F${LONE_SURROGATES}]*$`;

/**
 * A one-line string that is stored or looked up (a name, a search, a filter, a transport): no control character.
 * Every such string goes through this or `Text`, so that what the database would refuse is a 400 before it is
 * sent there. Secrets that are only hashed (passwords, tokens, codes) are not stored as text and take any string.
 */
export function SingleLine(options: TStringOptions = {}) {
  return Type.String({ ...options, pattern: SINGLE_LINE_PATTERN });
}

/** Free text that is stored (an operator's reason): it may run over several lines, with no other control character. */
export function Text(options: TStringOptions = {}) {
  return Type.String({ ...options, pattern: TEXT_PATTERN });
}

/**
 * Ids, in paths and query strings. A UUID only as 8-4-4-4-12 hex digits: the `uuid` format also takes
 * `urn:uuid:…`, which PostgreSQL refuses.
 */
export const UuidId = Type.String({
  pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$',
  description: 'A UUID: 8-4-4-4-12 hexadecimal digits',
});

/** A row's id (a user's, say) as decimal digits, within what a bigint holds. */
export const NumericId = Type.String({ pattern: ROW_ID_PATTERN, description: 'Decimal digits, no leading zero' });

// Years 1970 to 9999; `T`, and `Z` or an offset, as Date reads them; seconds 00 to 59.
const INSTANT_PATTERN = '^(?:19[7-9][0-9]|[2-9][0-9]{3})-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-5][0-9](?:\\.[0-9]{1,9})?(?:Z|[+-][0-9]{2}:[0-9]{2})$';

/**
 * A time a client sends, as RFC 3339 (`2030-01-31T12:00:00Z`, `2030-01-31T13:00:00+01:00`). The format checks the
 * calendar (no 30 February); the pattern refuses the leap second `:60`, which RFC 3339 allows and neither Date
 * nor PostgreSQL keeps, the lower-case and space-separated forms, and years outside 1970 to 9999.
 */
export function Instant(options: TStringOptions = {}) {
  return Type.String({ ...options, format: 'date-time', pattern: INSTANT_PATTERN });
}

export const NewUsername = Type.String({
  pattern: SINGLE_LINE_PATTERN,
  minLength: USERNAME_MIN_LENGTH,
  maxLength: USERNAME_MAX_LENGTH,
  description:
    `${USERNAME_MIN_LENGTH} to ${USERNAME_MAX_LENGTH} characters (after Unicode NFKC normalisation and trimming): letters, digits, ` +
    "'.', '_' and '-', in one script in common use. Unique regardless of case and of letters that look alike.",
  examples: [EXAMPLE_USERNAME],
});

export const PublicUser = Type.Object({
  id: Type.Integer({ description: 'bigint identity; safe as a JSON number' }),
  username: Type.String(),
});

export const Message = Type.Object({ message: Type.String() });

/** An account's address, in the answers that show one; absent for an account without (see `emailFields`). */
export const EmailFields = {
  email: Type.Optional(Type.String({ description: 'The account\'s email address; absent when it has none' })),
  email_verified: Type.Optional(Type.Boolean({ description: 'Whether its owner proved the address theirs; absent without an address' })),
};

/** Registration, login and refresh: the original's message and access_token, plus the session's refresh token. */
export const SignedInBody = Type.Object({
  message: Type.String(),
  access_token: Type.String(),
  token_type: Type.Literal('Bearer'),
  expires_in: Type.Integer({ description: 'Seconds until access_token expires' }),
  refresh_token: Type.String({ description: 'Opaque; exchange it at /api/auth/refresh. Each one works once.' }),
  user: PublicUser,
  device_token: Type.Optional(
    Type.String({
      description:
        'Registration and login only. Opaque; keep it on this device and send it with its next login: while attackers hold the account at its limit, a login with it still gets through.',
    }),
  ),
});

/** A right password (or a passkey without user verification) on an account with a second factor: no tokens yet. */
export const SecondFactorRequiredBody = Type.Object({
  message: Type.String(),
  mfa_required: Type.Literal(true),
  mfa_token: Type.String({ description: 'Opaque; send it with a code (or a passkey) to /api/auth/login/mfa within 5 minutes. Works once, for at most 5 wrong codes.' }),
  factors: Type.Array(Type.Object({ id: Type.String({ format: 'uuid' }), type: Type.Union([Type.Literal('totp'), Type.Literal('passkey')]) })),
});

/** The original service's clients send user_id as a number; a decimal string is accepted too. */
export const UserId = Type.Union([Type.Integer({ minimum: 1 }), Type.String({ pattern: USER_ID_PATTERN })]);

/** An optional field that the original service's clients may also send as null: a password or a code, never stored as text. */
export const OptionalText = Type.Optional(Type.Union([Type.String(), Type.Null()]));

/** preValidation for routes whose body is optional: most clients send DELETE or a logout without one. */
export async function absentBodyIsEmpty(request: FastifyRequest): Promise<void> {
  request.body ??= {};
}
