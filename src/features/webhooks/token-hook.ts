import { randomBytes } from 'node:crypto';
import { Counter, Histogram } from 'prom-client';
import type { Logger } from 'pino';
import { Webhook } from 'standardwebhooks';
import type { Queryable } from '../../kernel/db/database.js';
import { findUserMetadata } from '../../kernel/db/user-queries.js';
import { isServiceError, ServiceError } from '../../kernel/errors.js';
import type { Metrics } from '../../kernel/metrics.js';
import { RESERVED_CLAIMS, type ClaimsHook, type ClaimsHookRequest } from '../tokens/claims-hook.js';
import '../tokens/token-errors.js';
import { OutboundError, post } from './outbound-http.js';
import type { TokenHookConfig } from './webhook-settings.js';

/** What the hook's answer may add to a token, as JSON in UTF-8. */
export const MAX_ADDED_CLAIMS_BYTES = 2048;
/** What is read of the hook's answer: room for the claims and the JSON around them. */
const MAX_ANSWER_BYTES = 16 * 1024;
const RETRY_AFTER_SECONDS = 5;

export type HookFailure = 'timeout' | 'network' | 'status' | 'answer' | 'too_large';

class HookFailed extends Error {
  constructor(
    readonly reason: HookFailure,
    message: string,
  ) {
    super(message);
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The claims hook at TOKEN_HOOK_URL: before each access token, it is sent the user (with both metadata), the
 * session and the token's claims, signed as a webhook is (Standard Webhooks, TOKEN_HOOK_SECRET), and answers
 * `{"claims": {...}}`. Reserved claims in the answer are ignored and logged; more than MAX_ADDED_CLAIMS_BYTES is
 * a failure. A failure (no answer within TOKEN_HOOK_TIMEOUT_MS, a status other than 2xx, another answer)
 * refuses the token (`deny`) or issues it without the added claims (`allow`), as TOKEN_HOOK_FAILURE says.
 */
export class TokenHook implements ClaimsHook {
  private readonly signer: Webhook;
  private readonly latency: Histogram<'result'> | undefined;
  private readonly failures: Counter<'reason'> | undefined;

  constructor(
    private readonly config: TokenHookConfig,
    private readonly log: Logger,
    metrics?: Metrics,
  ) {
    this.signer = new Webhook(config.secret);
    if (metrics) {
      this.latency = new Histogram({
        name: 'token_hook_duration_seconds',
        help: 'Time for one call of the token hook (TOKEN_HOOK_URL), by result: ok or failed',
        labelNames: ['result'] as const,
        buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
        registers: [metrics.registry],
      });
      this.failures = new Counter({
        name: 'token_hook_failures_total',
        help: 'Failed calls of the token hook, by reason: timeout, network, status (not 2xx), answer (not {"claims": {...}}), too_large',
        labelNames: ['reason'] as const,
        registers: [metrics.registry],
      });
    }
  }

  async claims(db: Queryable, request: ClaimsHookRequest): Promise<Record<string, unknown>> {
    // The account as it is in the caller's transaction (a registration's new row included).
    const metadata = await findUserMetadata(db, request.user.id);
    const body = JSON.stringify({
      user: { ...request.user, app_metadata: metadata?.appMetadata ?? {}, user_metadata: metadata?.userMetadata ?? {} },
      session: request.session,
      claims: request.claims,
    });
    const started = process.hrtime.bigint();
    const seconds = () => Number(process.hrtime.bigint() - started) / 1e9;
    try {
      const added = await this.call(body, request.claims);
      this.latency?.observe({ result: 'ok' }, seconds());
      return added;
    } catch (error) {
      if (!(error instanceof HookFailed)) throw error;
      this.latency?.observe({ result: 'failed' }, seconds());
      this.failures?.inc({ reason: error.reason });
      if (this.config.failure === 'deny') {
        throw new ServiceError('hook_unavailable', 'The token hook did not give its claims: no token was issued. Try again shortly', {
          retryAfterSeconds: RETRY_AFTER_SECONDS,
          context: { reason: error.reason, detail: error.message },
        });
      }
      this.log.warn({ reason: error.reason, detail: error.message }, 'token hook failed: the token is issued without its claims (TOKEN_HOOK_FAILURE=allow)');
      return {};
    }
  }

  /** The claims to add, from the hook's answer to `body`; `own`: the token's claims, which stay as they are. */
  private async call(body: string, own: Record<string, unknown>): Promise<Record<string, unknown>> {
    const id = `msg_${randomBytes(16).toString('base64url')}`;
    const timestamp = new Date();
    let answer;
    try {
      answer = await post(
        this.config.url,
        body,
        {
          'content-type': 'application/json',
          'user-agent': 'user-auth-service-token-hook',
          'webhook-id': id,
          'webhook-timestamp': String(Math.floor(timestamp.getTime() / 1000)),
          'webhook-signature': this.signer.sign(id, timestamp, body),
        },
        // The operator's own service, named in a setting: a private address is expected, not a risk.
        { timeoutMs: this.config.timeoutMs, allowPrivateNetworks: true, maxAnswerBytes: MAX_ANSWER_BYTES },
      );
    } catch (error) {
      if (error instanceof OutboundError) throw new HookFailed(error.kind === 'timeout' ? 'timeout' : 'network', error.message);
      if (isServiceError(error)) throw error;
      throw new HookFailed('network', error instanceof Error ? error.message : String(error));
    }
    if (answer.status < 200 || answer.status > 299) throw new HookFailed('status', `the hook answered ${answer.status}`);
    if (answer.truncated) throw new HookFailed('too_large', `the answer is larger than ${MAX_ANSWER_BYTES} bytes`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(answer.body);
    } catch {
      throw new HookFailed('answer', 'the answer is not JSON');
    }
    if (!isPlainObject(parsed) || !isPlainObject(parsed['claims'])) throw new HookFailed('answer', 'the answer is not {"claims": {...}}');
    const added: Record<string, unknown> = {};
    const ignored: string[] = [];
    for (const [name, value] of Object.entries(parsed['claims'])) {
      if (RESERVED_CLAIMS.has(name) || Object.hasOwn(own, name) || name === '__proto__') ignored.push(name);
      else added[name] = value;
    }
    if (ignored.length > 0) this.log.warn({ claims: ignored.slice(0, 20).map((name) => name.slice(0, 64)) }, 'the token hook set reserved claims: ignored');
    if (Buffer.byteLength(JSON.stringify(added), 'utf8') > MAX_ADDED_CLAIMS_BYTES) {
      throw new HookFailed('too_large', `the added claims are larger than ${MAX_ADDED_CLAIMS_BYTES} bytes`);
    }
    return added;
  }
}
