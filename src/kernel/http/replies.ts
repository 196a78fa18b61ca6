import type { FastifyRequest } from 'fastify';
import { canonicalIp } from '../ip-addresses.js';
import type { ClientInfo, SignedIn, User } from '../model.js';

/** Ids are bigint in the database and JSON numbers on the wire, as in the original service. */
export function publicUser(user: User) {
  return { id: Number(user.id), username: user.username };
}

/**
 * `email` and `email_verified` for an account that has an address; nothing at all for one without, whose answers
 * stay what they were before accounts had addresses.
 */
export function emailFields(user: User): { email?: string; email_verified?: boolean } {
  return user.email ? { email: user.email.address, email_verified: user.email.verified } : {};
}

/** The answer of register, login and refresh; notes the user for the request's log line. */
export function signedIn(request: FastifyRequest, message: string, result: SignedIn) {
  request.userId = result.user.id;
  return {
    message,
    access_token: result.accessToken,
    token_type: 'Bearer' as const,
    expires_in: result.expiresIn,
    refresh_token: result.refreshToken,
    user: publicUser(result.user),
    ...(result.deviceToken === undefined ? {} : { device_token: result.deviceToken }),
  };
}

/**
 * Where a request came from, for rate limits and the session list. `request.ip` honours TRUST_PROXY, so behind
 * a trusted proxy it is whatever X-Forwarded-For says: text that is no IP address stands for nothing, and the
 * peer that sent it (the proxy) is taken instead.
 */
export function clientInfo(request: FastifyRequest): ClientInfo {
  return { userAgent: request.headers['user-agent'], ip: canonicalIp(request.ip) ?? canonicalIp(request.socket.remoteAddress) };
}
