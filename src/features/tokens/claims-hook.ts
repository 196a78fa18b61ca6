import type { Queryable } from '../../kernel/db/database.js';

/** What the hook is told of a token about to be issued. */
export interface ClaimsHookRequest {
  user: { id: string; username: string; roles: string[] };
  session: { id: string; aal: number; amr: string[] };
  /** The token's claims as the service sets them. */
  claims: Record<string, unknown>;
}

/**
 * Claims another service adds to access tokens (a tenant, a plan), asked before each token is issued. The tokens
 * feature only calls it; what it is (TOKEN_HOOK_URL) is handed in when the service is put together.
 */
export interface ClaimsHook {
  /**
   * The claims to add. `db` is the issuer's connection or transaction (for reading the account within it).
   * Throws ServiceError('hook_unavailable') when no token may be issued without them.
   */
  claims(db: Queryable, request: ClaimsHookRequest): Promise<Record<string, unknown>>;
}

/**
 * Claims a hook may never set: the ones verifiers rely on to know who, for whom, until when and how proven. The
 * claims the service sets itself (`user_id`, `username`, `auth_time`) are kept as the service set them too.
 */
export const RESERVED_CLAIMS: ReadonlySet<string> = new Set(['iss', 'sub', 'aud', 'exp', 'iat', 'nbf', 'jti', 'sid', 'typ', 'aal', 'amr', 'roles']);
