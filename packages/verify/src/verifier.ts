import { createRemoteJWKSet, decodeProtectedHeader, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { VerifyError } from './errors.js';
import type { AccessClaims, Policy } from './policies.js';

/** Every JWS algorithm with a public key. `none` and the HMAC ones (HS256…) are never accepted. */
export const ASYMMETRIC_ALGORITHMS = ['ES256', 'ES384', 'ES512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'EdDSA', 'Ed25519'] as const;

export interface IntrospectionOptions {
  /** How long an answer is reused for the same token, in seconds (default 5; 0 asks every time). */
  cacheSeconds?: number;
  /** The endpoint; default: the discovery document's `introspection_endpoint`. */
  endpoint?: string | URL;
  /** Most answers kept (default 10,000); the oldest go first. */
  maxEntries?: number;
}

export interface VerifierOptions {
  /** The service's `iss` (its `JWT_ISSUER`, by default its `PUBLIC_URL`); its discovery document is found under it. */
  issuer: string;
  /** The `aud` tokens must carry (the service's `JWT_AUDIENCE`, by default `user-auth-service`); any of several. */
  audience: string | string[];
  /** The key set's URL; default: the `jwks_uri` of `<issuer>/.well-known/openid-configuration`. */
  jwksUrl?: string | URL;
  /** Accept only these algorithms (asymmetric ones only); in any case only those the key set's keys name. */
  algorithms?: string[];
  /** Clock difference tolerated when checking `exp`, `nbf` and `iat`, in seconds (default 5). */
  clockToleranceSeconds?: number;
  /** The `typ` header a token may carry (default `JWT`, what the service sets); a token without one passes. */
  typ?: string;
  /** Also ask the service whether the token's session is still live: `true`, or options. Default: off. */
  introspect?: boolean | IntrospectionOptions;
  /** How long the key set is used before it is fetched again, in seconds (default 600). */
  jwksCacheSeconds?: number;
  /** After a fetch of the key set, a token naming an unknown key fetches it again only after this, in seconds (default 30). */
  jwksCooldownSeconds?: number;
  /** How long each request to the service (discovery, keys, introspection) may take, in seconds (default 5). */
  timeoutSeconds?: number;
}

export interface Verifier {
  /** The token's claims, once its signature, issuer, audience, times and (in online mode) session check out. */
  verify(token: string): Promise<AccessClaims>;
  /**
   * The claims of the bearer token in an `Authorization` header, checked against `policies` in order: what the
   * Fastify plugin and the Express middleware call. No header is `invalid_token` with a challenge without error.
   */
  authenticate(authorization: string | string[] | undefined, policies?: readonly Policy[]): Promise<AccessClaims>;
}

interface Discovery {
  jwks_uri: string;
  introspection_endpoint?: string;
}

const DEFAULT_CLOCK_TOLERANCE_SECONDS = 5;
const DEFAULT_TIMEOUT_SECONDS = 5;
const DEFAULT_INTROSPECTION_CACHE_SECONDS = 5;
const DEFAULT_INTROSPECTION_MAX_ENTRIES = 10_000;
// Far larger than any token the service issues; a header this long is refused before any parsing.
const MAX_TOKEN_LENGTH = 8192;
const BEARER = /^Bearer +([A-Za-z0-9._~+/-]+=*) *$/i;

const invalid = (message = 'The access token is invalid') => new VerifyError('invalid_token', message);

/** Not the client's doing: the detail (which URL, what happened) is in `cause`, for logs; the client gets none. */
function unavailable(detail: string, cause?: unknown): VerifyError {
  return new VerifyError('verifier_unavailable', 'The access token cannot be checked right now; try again shortly', {
    cause: new Error(detail, cause === undefined ? undefined : { cause }),
  });
}

async function fetchJson(url: string, init: RequestInit, timeoutSeconds: number, what: string): Promise<unknown> {
  let response: Response;
  try {
    response = await fetch(url, { ...init, redirect: 'error', signal: AbortSignal.timeout(timeoutSeconds * 1000) });
  } catch (cause) {
    throw unavailable(`${what} (${url}) cannot be reached`, cause);
  }
  if (response.status !== 200) {
    await response.body?.cancel();
    throw unavailable(`${what} (${url}) answered ${response.status}`);
  }
  try {
    return await response.json();
  } catch (cause) {
    throw unavailable(`${what} (${url}) is not JSON`, cause);
  }
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** `application/JWT` and `jwt` are the same type (RFC 7515 §4.1.9). */
const mediaType = (typ: string) => typ.toLowerCase().replace(/^application\//, '');

const OPTIONAL_CLAIM_TYPES = { user_id: 'number', username: 'string', sid: 'string', aal: 'number', auth_time: 'number', jti: 'string' } as const;

/** The claims the service defines, refused if of another type than it gives them: nobody downstream must guess. */
function typedClaims(payload: JWTPayload): AccessClaims {
  if (typeof payload.sub !== 'string' || payload.sub === '' || typeof payload.iat !== 'number' || typeof payload.exp !== 'number') throw invalid();
  for (const [claim, type] of Object.entries(OPTIONAL_CLAIM_TYPES)) {
    if (payload[claim] !== undefined && typeof payload[claim] !== type) throw invalid();
  }
  for (const claim of ['roles', 'amr']) {
    const value = payload[claim];
    if (value !== undefined && !(Array.isArray(value) && value.every((item) => typeof item === 'string'))) throw invalid();
  }
  return { ...payload } as AccessClaims;
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value < 0) throw new TypeError(`${name} must be a number of seconds, 0 or more`);
  return value;
}

/** RFC 7662 answers, kept briefly per token so that a busy route asks the service once per token and period. */
class Introspection {
  private readonly answers = new Map<string, { until: number; active: Promise<boolean> }>();

  constructor(
    private readonly endpoint: () => Promise<string>,
    private readonly cacheMs: number,
    private readonly maxEntries: number,
    private readonly timeoutSeconds: number,
  ) {}

  active(token: string, claims: AccessClaims): Promise<boolean> {
    // The claims are verified by now, so a jti names one token of the issuer's; a forged one never gets here.
    const key = claims.jti ?? token;
    const now = Date.now();
    const known = this.answers.get(key);
    if (known && known.until > now) return known.active;
    this.answers.delete(key);
    const active = this.ask(token);
    if (this.cacheMs > 0) {
      if (this.answers.size >= this.maxEntries) this.answers.delete(this.answers.keys().next().value!);
      // Counted from the question, not the answer: a logout is seen at most `cacheMs` after it happened.
      this.answers.set(key, { until: now + this.cacheMs, active });
      active.catch(() => {
        if (this.answers.get(key)?.active === active) this.answers.delete(key);
      });
    }
    return active;
  }

  private async ask(token: string): Promise<boolean> {
    const url = await this.endpoint();
    const answer = await fetchJson(
      url,
      { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' }, body: new URLSearchParams({ token, token_type_hint: 'access_token' }).toString() },
      this.timeoutSeconds,
      'the introspection endpoint',
    );
    if (!isObject(answer) || typeof answer['active'] !== 'boolean') throw unavailable(`the introspection endpoint (${url}) answered no "active"`);
    return answer['active'];
  }
}

/**
 * A verifier of one issuer's access tokens. Nothing is fetched until the first token: the discovery document
 * once, the key set then as jose's remote key set does (cached, fetched again for a key it does not know, at
 * most once per cool-down).
 */
export function createVerifier(options: VerifierOptions): Verifier {
  if (typeof options.issuer !== 'string' || options.issuer === '') throw new TypeError('issuer is required');
  const audiences = [options.audience].flat();
  if (audiences.length === 0 || audiences.some((a) => typeof a !== 'string' || a === '')) throw new TypeError('audience is required');
  const refused = (options.algorithms ?? []).filter((alg) => !(ASYMMETRIC_ALGORITHMS as readonly string[]).includes(alg));
  if (refused.length > 0) throw new TypeError(`algorithms: only asymmetric JWS algorithms can be verified with public keys (not ${refused.join(', ')})`);
  const algorithms: string[] = options.algorithms ? [...options.algorithms] : [...ASYMMETRIC_ALGORITHMS];
  if (algorithms.length === 0) throw new TypeError('algorithms: at least one');
  const tolerance = positive(options.clockToleranceSeconds, DEFAULT_CLOCK_TOLERANCE_SECONDS, 'clockToleranceSeconds');
  const timeoutSeconds = positive(options.timeoutSeconds, DEFAULT_TIMEOUT_SECONDS, 'timeoutSeconds');
  const typ = mediaType(options.typ ?? 'JWT');
  const keySetOptions = {
    timeoutDuration: Math.round(timeoutSeconds * 1000),
    cacheMaxAge: positive(options.jwksCacheSeconds, 600, 'jwksCacheSeconds') * 1000,
    cooldownDuration: positive(options.jwksCooldownSeconds, 30, 'jwksCooldownSeconds') * 1000,
  };

  let discovery: Promise<Discovery> | undefined;
  const discover = (): Promise<Discovery> => {
    discovery ??= (async () => {
      const url = `${options.issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
      const document = await fetchJson(url, { headers: { accept: 'application/json' } }, timeoutSeconds, 'the discovery document');
      if (!isObject(document) || typeof document['jwks_uri'] !== 'string') throw unavailable(`the discovery document (${url}) has no jwks_uri`);
      // OpenID Connect Discovery §4.3: a document about another issuer is not to be trusted for this one.
      if (document['issuer'] !== options.issuer) throw unavailable(`the discovery document (${url}) is for issuer ${String(document['issuer'])}`);
      const introspection = document['introspection_endpoint'];
      return { jwks_uri: document['jwks_uri'], ...(typeof introspection === 'string' ? { introspection_endpoint: introspection } : {}) };
    })().catch((error: unknown) => {
      discovery = undefined; // the next token tries again
      throw error;
    });
    return discovery;
  };

  let keySet: ReturnType<typeof createRemoteJWKSet> | undefined =
    options.jwksUrl === undefined ? undefined : createRemoteJWKSet(new URL(options.jwksUrl), keySetOptions);
  const keys = async () => {
    if (keySet) return keySet;
    const { jwks_uri } = await discover();
    return (keySet ??= createRemoteJWKSet(new URL(jwks_uri), keySetOptions));
  };

  const introspectOptions = options.introspect === true ? {} : options.introspect || undefined;
  const introspection =
    introspectOptions &&
    new Introspection(
      async () => {
        if (introspectOptions.endpoint !== undefined) return String(introspectOptions.endpoint);
        const found = (await discover()).introspection_endpoint;
        if (found === undefined) throw unavailable('the discovery document names no introspection_endpoint');
        return found;
      },
      positive(introspectOptions.cacheSeconds, DEFAULT_INTROSPECTION_CACHE_SECONDS, 'introspect.cacheSeconds') * 1000,
      introspectOptions.maxEntries ?? DEFAULT_INTROSPECTION_MAX_ENTRIES,
      timeoutSeconds,
    );

  /** Only the algorithms the key set's own keys name: a key published for ES256 never verifies anything else. */
  function pinned(alg: string | undefined, remote: NonNullable<typeof keySet>): void {
    const published = new Set((remote.jwks()?.keys ?? []).map((key) => key.alg));
    if (alg === undefined || !published.has(alg)) throw invalid();
  }

  const getKey: JWTVerifyGetKey = async (header, token) => {
    const remote = await keys();
    try {
      const key = await remote(header, token);
      pinned(header.alg, remote);
      return key;
    } catch (error) {
      if (error instanceof errors.JWKSMultipleMatchingKeys) pinned(header.alg, remote);
      if (error instanceof VerifyError || error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys || error instanceof errors.JOSENotSupported) {
        throw error;
      }
      throw unavailable('the key set cannot be fetched or used', error);
    }
  };

  async function verify(token: string): Promise<AccessClaims> {
    if (typeof token !== 'string' || token === '' || token.length > MAX_TOKEN_LENGTH) throw invalid();
    let header;
    try {
      header = decodeProtectedHeader(token);
    } catch {
      throw invalid();
    }
    if (typeof header.alg !== 'string' || !algorithms.includes(header.alg)) throw invalid();
    if (header.typ !== undefined && (typeof header.typ !== 'string' || mediaType(header.typ) !== typ)) throw invalid();
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, getKey, {
        issuer: options.issuer,
        audience: audiences,
        algorithms,
        clockTolerance: tolerance,
        requiredClaims: ['sub', 'iat', 'exp'],
      }));
    } catch (error) {
      if (error instanceof VerifyError) throw error;
      if (error instanceof errors.JWTExpired) throw new VerifyError('token_expired', 'The access token has expired');
      throw invalid();
    }
    const claims = typedClaims(payload);
    // jose checks iat only against a maximum age; a token from the future is a forgery or a broken clock.
    if (claims.iat > Math.floor(Date.now() / 1000) + tolerance) throw invalid();
    if (introspection && !(await introspection.active(token, claims))) {
      throw invalid('The access token is no longer valid: its session has ended');
    }
    return claims;
  }

  return {
    verify,
    async authenticate(authorization, policies = []) {
      if (authorization === undefined) {
        throw new VerifyError('invalid_token', 'An access token is required: send Authorization: Bearer <access_token>', { challenge: null });
      }
      const match = typeof authorization === 'string' ? BEARER.exec(authorization) : null;
      if (!match) throw invalid('An access token is required: send Authorization: Bearer <access_token>');
      const claims = await verify(match[1]!);
      for (const policy of policies) policy(claims);
      return claims;
    },
  };
}
