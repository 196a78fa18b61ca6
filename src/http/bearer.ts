import type { FastifyRequest } from 'fastify';
import type { Authenticated, Sessions } from '../auth/sessions.js';
import { AuthError } from '../auth/errors.js';

/** The request's `Authorization: Bearer <token>`, proven live by the domain; AuthError('invalid_token') otherwise. */
export async function authenticate(sessions: Sessions, request: FastifyRequest): Promise<Authenticated> {
  const match = /^Bearer +([A-Za-z0-9._~+/-]+=*) *$/i.exec(request.headers.authorization ?? '');
  if (!match) throw new AuthError('invalid_token', 'An access token is required: send Authorization: Bearer <access_token>');
  const auth = await sessions.authenticate(match[1]!);
  request.userId = auth.user.id;
  return auth;
}
