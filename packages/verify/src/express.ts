import type { IncomingMessage, ServerResponse } from 'node:http';
import { errorAnswer, VerifyError } from './errors.js';
import { policiesOf, type AccessClaims, type AccessRequirement } from './policies.js';
import type { Verifier } from './verifier.js';

/** What the middleware reads and writes of Express's (or Connect's) request: no Express types needed. */
type RequestLike = IncomingMessage & { user?: AccessClaims; originalUrl?: string };
type Next = (error?: unknown) => void;

/** Where refusals are told: `console`, pino, winston, bunyan and the like all fit. Each call gets one line. */
export interface AccessLogger {
  info(message: string): void;
  warn(message: string): void;
}

export interface ExpressAccessOptions {
  /**
   * Where each refusal's reason goes: `info` for a refused token (401, 403), `warn` when tokens cannot be checked
   * at all (503). Default `console`. The token itself is never logged.
   */
  logger?: AccessLogger;
}

/** The request's method and path, without the query (which may carry anything). */
function requestLine(req: RequestLike): string {
  const url = req.originalUrl ?? req.url ?? '';
  const query = url.indexOf('?');
  return `${req.method ?? ''} ${query === -1 ? url : url.slice(0, query)}`;
}

/**
 * Express/Connect middleware that admits only callers whose bearer token verifies and meets `requirement`, with
 * their claims in `req.user` (read them typed with `userOf(req)`), and answers the others itself: 401/403 with
 * WWW-Authenticate and `{"error", "message"}`, 503 if the keys cannot be fetched, each with its reason to
 * `options.logger`. Anything else (a bug in a policy of yours) goes to `next(error)`.
 */
export function requireAccess(verifier: Verifier, requirement?: AccessRequirement, options: ExpressAccessOptions = {}) {
  const policies = policiesOf(requirement);
  const logger = options.logger ?? console;
  return function checkAccess(req: IncomingMessage, res: ServerResponse, next: Next): void {
    verifier.authenticate(req.headers.authorization, policies).then(
      (claims) => {
        (req as RequestLike).user = claims;
        next();
      },
      (error: unknown) => {
        if (!(error instanceof VerifyError)) {
          next(error);
          return;
        }
        const where = requestLine(req as RequestLike);
        if (error.code === 'verifier_unavailable') logger.warn(`${where}: access tokens cannot be verified (503): ${error.reason}`);
        else logger.info(`${where}: access refused (${error.status} ${error.code}): ${error.reason}`);
        const answer = errorAnswer(error);
        res.statusCode = answer.status;
        for (const [name, value] of Object.entries(answer.headers)) res.setHeader(name, value);
        res.setHeader('content-type', 'application/json; charset=utf-8');
        res.end(JSON.stringify(answer.body));
      },
    );
  };
}

/** The claims `requireAccess` put on the request; throws if it did not run for this route. */
export function userOf(req: IncomingMessage): AccessClaims {
  const user = (req as RequestLike).user;
  if (!user) throw new Error('no verified caller on this request: is requireAccess(...) in front of this route?');
  return user;
}
