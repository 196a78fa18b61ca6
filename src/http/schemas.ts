import type { FastifyRequest } from 'fastify';
import { Type, type Static } from 'typebox';
import { USER_ID_PATTERN } from '../auth/model.js';

/** Every error answer, whatever the status. */
export const ErrorBody = Type.Object(
  {
    error: Type.String({ description: 'Stable machine-readable code, e.g. `username_taken`' }),
    message: Type.String({ description: 'Human-readable explanation' }),
  },
  { $id: 'ErrorBody' },
);
export type ErrorBody = Static<typeof ErrorBody>;

export const errorResponses = { '4xx': ErrorBody, '5xx': ErrorBody } as const;

export const PublicUser = Type.Object({
  id: Type.Integer({ description: 'bigint identity; safe as a JSON number' }),
  username: Type.String(),
});

export const Message = Type.Object({ message: Type.String() });

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

/** A session id (UUID) in a path. */
export const SessionId = Type.String({ pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$' });

/** The original service's clients send user_id as a number; a decimal string is accepted too. */
export const UserId = Type.Union([Type.Integer({ minimum: 1 }), Type.String({ pattern: USER_ID_PATTERN })]);

/** An optional field that the original service's clients may also send as null. */
export const OptionalText = Type.Optional(Type.Union([Type.String(), Type.Null()]));

/** preValidation for routes whose body is optional: most clients send DELETE or a logout without one. */
export async function absentBodyIsEmpty(request: FastifyRequest): Promise<void> {
  request.body ??= {};
}
