import {
  createLocalJWKSet,
  decodeProtectedHeader,
  errors,
  jwtVerify,
  type FlattenedJWSInput,
  type JSONWebKeySet,
  type JWSHeaderParameters,
  type JWTPayload,
  type JWTVerifyGetKey,
  type ProtectedHeaderParameters,
} from 'jose';
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
  /**
   * No fetch of the key set sooner than this after a successful one, in seconds (default 30): a token naming an
   * unknown key waits for it. After a failed fetch the wait is 1 s, doubling with each failure in a row up to 30 s.
   */
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
  /**
   * Fetches what verifying needs now (the discovery document, the key set) rather than with the first token, and
   * resolves if tokens can be verified with it; else rejects with a `verifier_unavailable` VerifyError whose
   * `reason` says what is wrong: a discovery document naming another issuer, a service that cannot be reached, a
   * key set without a key of an accepted algorithm. For a check at start (the Fastify plugin makes it when the app
   * is ready); the fetches it makes count for the schedule like any other.
   */
  check(): Promise<void>;
}

interface Discovery {
  jwks_uri: string;
  introspection_endpoint?: string;
}

const DEFAULT_CLOCK_TOLERANCE_SECONDS = 5;
const DEFAULT_TIMEOUT_SECONDS = 5;
const DEFAULT_JWKS_CACHE_SECONDS = 600;
const DEFAULT_JWKS_COOLDOWN_SECONDS = 30;
/** After failed fetches in a row, the wait before the next one: 1 s, 2 s, 4 s … up to 30 s. */
const FIRST_RETRY_MS = 1_000;
const MAX_RETRY_MS = 30_000;
const DEFAULT_INTROSPECTION_CACHE_SECONDS = 5;
const DEFAULT_INTROSPECTION_MAX_ENTRIES = 10_000;
// Far larger than any token the service issues; a header this long is refused before any parsing.
const MAX_TOKEN_LENGTH = 8192;
const BEARER = /^Bearer +([A-Za-z0-9._~+/-]+=*) *$/i;
const BEARER_REQUIRED = 'An access token is required: send Authorization: Bearer <access_token>';

/**
 * A value from a token or from the service, as a reason shows it: quoted and escaped (a forger cannot start a
 * line of the log) and cut short.
 */
function shown(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

const instant = (seconds: unknown) => (typeof seconds === 'number' && Number.isFinite(seconds) ? new Date(seconds * 1000).toISOString() : shown(seconds));

/** The client learns only that the token is refused; `reason` says why, for the refusing service's logs. */
const invalid = (reason: string, message = 'The access token is invalid') => new VerifyError('invalid_token', message, { reason });

/** Not the client's doing: the detail (which URL, what happened) is the reason, and in `cause`, for logs; the client gets none. */
function unavailable(detail: string, cause?: unknown): VerifyError {
  return new VerifyError('verifier_unavailable', 'The access token cannot be checked right now; try again shortly', {
    reason: detail,
    cause: new Error(detail, cause === undefined ? undefined : { cause }),
  });
}

async function fetchJson(url: string, init: RequestInit, timeoutSeconds: number, what: string): Promise<unknown> {
  let response: Response;
  try {
    response = await fetch(url, { ...init, redirect: 'error', signal: AbortSignal.timeout(timeoutSeconds * 1000) });
  } catch (cause) {
    throw unavailable(`${what} (${url}) cannot be reached: ${cause instanceof Error ? (cause.cause instanceof Error ? cause.cause.message : cause.message) : String(cause)}`, cause);
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
  if (typeof payload.sub !== 'string' || payload.sub === '') throw invalid('the "sub" claim is not a non-empty string');
  for (const claim of ['iat', 'exp'] as const) {
    if (typeof payload[claim] !== 'number') throw invalid(`the "${claim}" claim is not a number`);
  }
  for (const [claim, type] of Object.entries(OPTIONAL_CLAIM_TYPES)) {
    if (payload[claim] !== undefined && typeof payload[claim] !== type) throw invalid(`the "${claim}" claim is not a ${type}`);
  }
  for (const claim of ['roles', 'amr']) {
    const value = payload[claim];
    if (value !== undefined && !(Array.isArray(value) && value.every((item) => typeof item === 'string'))) {
      throw invalid(`the "${claim}" claim is not an array of strings`);
    }
  }
  return { ...payload } as AccessClaims;
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value < 0) throw new TypeError(`${name} must be a number of seconds, 0 or more`);
  return value;
}

/**
 * When something is fetched from the service again: not sooner than `afterSuccessMs` after a success, nor than
 * 1 s, 2 s, 4 s … (up to 30 s) after failures in a row. However many tokens arrive, and whatever kids they name,
 * that is at most one request per wait; and while a failing service is waited for, tokens are answered at once
 * instead of each waiting for a timeout. A clock set back ends the wait rather than making it long.
 */
class Schedule {
  private attemptAt = -Infinity;
  private nextAt = -Infinity;
  private failures = 0;
  private failure: VerifyError | undefined;

  constructor(private readonly afterSuccessMs: number) {}

  get open(): boolean {
    const now = Date.now();
    return now >= this.nextAt || now < this.attemptAt;
  }

  succeeded(): void {
    this.attemptAt = Date.now();
    this.nextAt = this.attemptAt + this.afterSuccessMs;
    this.failures = 0;
    this.failure = undefined;
  }

  failed(error: VerifyError): VerifyError {
    this.attemptAt = Date.now();
    this.failures += 1;
    this.nextAt = this.attemptAt + Math.min(FIRST_RETRY_MS * 2 ** (this.failures - 1), MAX_RETRY_MS);
    this.failure = error;
    return error;
  }

  /** While the wait after a failure lasts: that failure again, saying how long until the next try. */
  waiting(): VerifyError | undefined {
    if (this.failure === undefined || this.open) return undefined;
    const seconds = Math.ceil((this.nextAt - Date.now()) / 1000);
    return new VerifyError('verifier_unavailable', this.failure.message, {
      reason: `${this.failure.reason}; not fetched again for ${seconds} s (${this.failures} failure${this.failures > 1 ? 's' : ''} in a row)`,
      cause: this.failure.cause,
    });
  }
}

type LocalKeySet = ReturnType<typeof createLocalJWKSet>;

/**
 * The service's public keys: jose's key set over what was last fetched, fetched again when older than the cache
 * time or for a kid it does not hold, each time only as the schedule allows. (jose's own remote key set spaces
 * out fetches only after a success: with a failing endpoint, every token would fetch.)
 */
class KeySet {
  private local: LocalKeySet | undefined;
  private fetchedAt = -Infinity;
  private pending: Promise<LocalKeySet> | undefined;
  private readonly schedule: Schedule;
  /** Where the keys were last fetched from, for reasons. */
  url: string | undefined;
  /** The algorithms the keys name (`alg`): only these are accepted. */
  named = new Set<string>();
  size = 0;

  constructor(
    private readonly locate: () => Promise<string>,
    private readonly cacheMs: number,
    cooldownMs: number,
    private readonly timeoutSeconds: number,
  ) {
    this.schedule = new Schedule(cooldownMs);
  }

  /** Seconds since the keys were fetched. */
  get age(): number {
    return Math.max(0, Math.floor((Date.now() - this.fetchedAt) / 1000));
  }

  /** The keys to verify with now: fetched first when there are none yet, or they are older than the cache time. */
  async current(): Promise<LocalKeySet> {
    const now = Date.now();
    if (this.local && now >= this.fetchedAt && now < this.fetchedAt + this.cacheMs) return this.local;
    if (this.pending || this.schedule.open || !this.local) {
      const waiting = this.pending ? undefined : this.schedule.waiting();
      if (waiting) throw waiting;
      return this.fetch();
    }
    const waiting = this.schedule.waiting();
    if (waiting) throw waiting;
    // Older than the cache time, but fetched within the cool-down (a cache time shorter than it): the cool-down wins.
    return this.local;
  }

  /** The key for a token: one the set does not hold fetches the set again, if the schedule allows. */
  async key(header: JWSHeaderParameters, token: FlattenedJWSInput) {
    const local = await this.current();
    try {
      return await local(header, token);
    } catch (error) {
      if (!(error instanceof errors.JWKSNoMatchingKey)) throw error;
      if (this.pending || this.schedule.open) return (await this.fetch())(header, token);
      // While the set cannot be fetched, a key added since cannot be told from a made-up kid.
      throw this.schedule.waiting() ?? error;
    }
  }

  private fetch(): Promise<LocalKeySet> {
    this.pending ??= (async () => {
      const url = await this.locate();
      this.url = url;
      let local: LocalKeySet;
      try {
        const set = await fetchJson(url, { headers: { accept: 'application/json, application/jwk-set+json' } }, this.timeoutSeconds, 'the key set');
        try {
          local = createLocalJWKSet(set as JSONWebKeySet);
        } catch (cause) {
          throw unavailable(`the key set (${url}) is not a JWK set`, cause);
        }
      } catch (error) {
        throw this.schedule.failed(error as VerifyError);
      }
      this.schedule.succeeded();
      const keys = local.jwks()?.keys ?? [];
      this.named = new Set(keys.map((key) => key.alg).filter((alg): alg is string => typeof alg === 'string'));
      this.size = keys.length;
      this.fetchedAt = Date.now();
      this.local = local;
      return local;
    })().finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }
}

/** RFC 7662 answers, kept briefly per token so that a busy route asks the service once per token and period. */
class Introspection {
  private readonly answers = new Map<string, { until: number; active: Promise<boolean> }>();

  constructor(
    readonly endpoint: () => Promise<string>,
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
 * A verifier of one issuer's access tokens. Nothing is fetched until the first token (or `check()`): the
 * discovery document once, the key set then when older than the cache time or for a kid it does not hold, each
 * as a schedule allows (see Schedule).
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
  const cacheSeconds = positive(options.jwksCacheSeconds, DEFAULT_JWKS_CACHE_SECONDS, 'jwksCacheSeconds');
  const cooldownSeconds = positive(options.jwksCooldownSeconds, DEFAULT_JWKS_COOLDOWN_SECONDS, 'jwksCooldownSeconds');
  const typ = mediaType(options.typ ?? 'JWT');
  const jwksUrl = options.jwksUrl === undefined ? undefined : new URL(options.jwksUrl).href;

  const discoveryUrl = `${options.issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
  async function fetchDiscovery(): Promise<Discovery> {
    const document = await fetchJson(discoveryUrl, { headers: { accept: 'application/json' } }, timeoutSeconds, 'the discovery document');
    if (!isObject(document)) throw unavailable(`the discovery document (${discoveryUrl}) is not a JSON object`);
    // OpenID Connect Discovery §4.3: a document about another issuer is not to be trusted for this one.
    if (document['issuer'] !== options.issuer) {
      throw unavailable(
        `configured issuer ${JSON.stringify(options.issuer)} but the discovery document at ${discoveryUrl} says ${shown(document['issuer'])}: ` +
          "set issuer to exactly the service's JWT_ISSUER (its PUBLIC_URL unless set)",
      );
    }
    if (typeof document['jwks_uri'] !== 'string') throw unavailable(`the discovery document (${discoveryUrl}) has no jwks_uri`);
    const introspection = document['introspection_endpoint'];
    return { jwks_uri: document['jwks_uri'], ...(typeof introspection === 'string' ? { introspection_endpoint: introspection } : {}) };
  }

  // Kept once found; until then each try waits for the schedule, as the key set's do.
  let discovered: Discovery | undefined;
  let discovering: Promise<Discovery> | undefined;
  const discoverySchedule = new Schedule(0);
  const discover = async (): Promise<Discovery> => {
    if (discovered) return discovered;
    if (!discovering) {
      const waiting = discoverySchedule.waiting();
      if (waiting) throw waiting;
      discovering = fetchDiscovery()
        .then(
          (found) => {
            discoverySchedule.succeeded();
            return (discovered = found);
          },
          (error: unknown) => {
            throw discoverySchedule.failed(error as VerifyError);
          },
        )
        .finally(() => {
          discovering = undefined;
        });
    }
    return discovering;
  };

  const keySet = new KeySet(async () => jwksUrl ?? (await discover()).jwks_uri, cacheSeconds * 1000, cooldownSeconds * 1000, timeoutSeconds);

  const introspectOptions = options.introspect === true ? {} : options.introspect || undefined;
  const introspection =
    introspectOptions &&
    new Introspection(
      async () => {
        if (introspectOptions.endpoint !== undefined) return String(introspectOptions.endpoint);
        const found = (await discover()).introspection_endpoint;
        if (found === undefined) throw unavailable(`the discovery document (${discoveryUrl}) names no introspection_endpoint`);
        return found;
      },
      positive(introspectOptions.cacheSeconds, DEFAULT_INTROSPECTION_CACHE_SECONDS, 'introspect.cacheSeconds') * 1000,
      introspectOptions.maxEntries ?? DEFAULT_INTROSPECTION_MAX_ENTRIES,
      timeoutSeconds,
    );

  /** Only the algorithms the key set's own keys name: a key published for ES256 never verifies anything else. */
  function pinned(alg: string | undefined): void {
    if (alg === undefined || !keySet.named.has(alg)) {
      throw invalid(`algorithm not published: no key of the key set names alg ${shown(alg)} (it names ${[...keySet.named].join(', ') || 'none'})`);
    }
  }

  const getKey: JWTVerifyGetKey = async (header, token) => {
    try {
      const key = await keySet.key(header, token);
      pinned(header.alg);
      return key;
    } catch (error) {
      if (error instanceof errors.JWKSMultipleMatchingKeys) pinned(header.alg);
      if (error instanceof VerifyError || error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys || error instanceof errors.JOSENotSupported) {
        throw error;
      }
      throw unavailable(`the key set (${keySet.url ?? jwksUrl ?? 'from discovery'}) cannot be used: ${error instanceof Error ? error.message : String(error)}`, error);
    }
  };

  /** What jose's refusal means, said for the logs: what was expected, and what the token has. */
  function refusal(error: unknown, header: ProtectedHeaderParameters): VerifyError {
    if (error instanceof VerifyError) return error;
    const key = `${String(header.alg)} key with ${header.kid === undefined ? 'no kid' : `kid ${shown(header.kid)}`}`;
    if (error instanceof errors.JWTExpired) {
      const exp = error.payload['exp'];
      const ago = typeof exp === 'number' ? `, ${Math.floor(Date.now() / 1000) - exp} s ago` : '';
      return new VerifyError('token_expired', 'The access token has expired', { reason: `expired: exp is ${instant(exp)}${ago} (tolerance ${tolerance} s)` });
    }
    if (error instanceof errors.JWTClaimValidationFailed) {
      const { claim, payload } = error;
      if (claim === 'iss') return invalid(`wrong issuer: expected ${shown(options.issuer)}, the token has ${shown(payload['iss'])}`);
      if (claim === 'aud') return invalid(`wrong audience: expected ${audiences.map((a) => shown(a)).join(' or ')}, the token has ${shown(payload['aud'])}`);
      if (claim === 'nbf' && typeof payload['nbf'] === 'number') {
        return invalid(`not valid yet: nbf is ${instant(payload['nbf'])}, ${payload['nbf'] - Math.floor(Date.now() / 1000)} s ahead of this clock (tolerance ${tolerance} s)`);
      }
      return invalid(`claims: ${error.message}`);
    }
    if (error instanceof errors.JWSSignatureVerificationFailed) return invalid(`bad signature: it does not verify with the key set's ${key}`);
    if (error instanceof errors.JWKSNoMatchingKey) {
      return invalid(`unknown key: the key set has no ${key} (fetched ${keySet.age} s ago; again for an unknown kid at most every ${cooldownSeconds} s)`);
    }
    if (error instanceof errors.JWKSMultipleMatchingKeys) return invalid(`ambiguous key: the token names no kid, and several ${String(header.alg)} keys of the key set fit`);
    if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid) return invalid(`malformed: ${error.message}`);
    return invalid(`cannot be verified: ${error instanceof Error ? error.message : String(error)}`);
  }

  async function verify(token: string): Promise<AccessClaims> {
    if (typeof token !== 'string' || token === '') throw invalid('no token');
    if (token.length > MAX_TOKEN_LENGTH) throw invalid(`the token is ${token.length} characters long, more than the ${MAX_TOKEN_LENGTH} accepted`);
    let header;
    try {
      header = decodeProtectedHeader(token);
    } catch {
      throw invalid('malformed: not a JWS in compact form (its header cannot be read)');
    }
    if (typeof header.alg !== 'string' || !algorithms.includes(header.alg)) {
      throw invalid(`algorithm not accepted: the token's alg is ${shown(header.alg)}, accepted are ${algorithms.join(', ')}`);
    }
    if (header.typ !== undefined && (typeof header.typ !== 'string' || mediaType(header.typ) !== typ)) {
      throw invalid(`wrong type: the token's typ is ${shown(header.typ)}, expected ${shown(options.typ ?? 'JWT')}`);
    }
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
      throw refusal(error, header);
    }
    const claims = typedClaims(payload);
    // jose checks iat only against a maximum age; a token from the future is a forgery or a broken clock.
    const now = Math.floor(Date.now() / 1000);
    if (claims.iat > now + tolerance) throw invalid(`issued in the future: iat is ${instant(claims.iat)}, ${claims.iat - now} s ahead of this clock (tolerance ${tolerance} s)`);
    if (introspection && !(await introspection.active(token, claims))) {
      throw invalid('the service says the token is no longer active: its session has ended (introspection)', 'The access token is no longer valid: its session has ended');
    }
    return claims;
  }

  return {
    verify,
    async authenticate(authorization, policies = []) {
      if (authorization === undefined) throw new VerifyError('invalid_token', BEARER_REQUIRED, { challenge: null, reason: 'no Authorization header' });
      const match = typeof authorization === 'string' ? BEARER.exec(authorization) : null;
      if (!match) {
        throw invalid(typeof authorization === 'string' ? 'the Authorization header is not "Bearer <token>"' : 'several Authorization headers', BEARER_REQUIRED);
      }
      const claims = await verify(match[1]!);
      for (const policy of policies) policy(claims);
      return claims;
    },
    async check() {
      await keySet.current();
      const usable = algorithms.filter((alg) => keySet.named.has(alg));
      if (usable.length === 0) {
        throw unavailable(
          keySet.size === 0
            ? `the key set (${keySet.url}) has no keys: a service that signs with JWT_SECRET_KEY (HS256) publishes none, and its tokens cannot be verified with public keys`
            : `no key of the key set (${keySet.url}) names an algorithm this verifier accepts: it names ${[...keySet.named].join(', ') || 'none'}, accepted are ${algorithms.join(', ')}`,
        );
      }
      if (introspection) await introspection.endpoint();
    },
  };
}
