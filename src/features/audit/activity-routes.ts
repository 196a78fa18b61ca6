import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { RECENT_EVENTS, type Audit } from './audit.js';
import { callerOf } from '../../kernel/http/authentication.js';
import { errorResponses } from '../../kernel/http/schemas.js';

const EventBody = Type.Object({
  type: Type.String({ description: 'What happened: `register`, `login_succeeded`, `login_failed`, `password_changed`, `mfa_enrolled`, …' }),
  time: Type.String({ format: 'date-time' }),
  ip: Type.Union([Type.String(), Type.Null()]),
  user_agent: Type.Union([Type.String(), Type.Null()]),
  details: Type.Optional(
    Type.Record(Type.String(), Type.Union([Type.String(), Type.Number(), Type.Boolean()]), {
      description: 'Short facts of the event, e.g. `reason` of a failed login or `method` of a sign-in',
    }),
  ),
});

/** The signed-in user's own audit trail. */
export const eventRoutes: FastifyPluginAsyncTypebox<{ audit: Audit }> = async (app, { audit }) => {
  app.get(
    '/events',
    {
      config: { errors: [], auth: 'user' },
      schema: {
        summary: `The token's user's last ${RECENT_EVENTS} security events, newest first`,
        description:
          'Sign-ins (and failed ones with the right username), password and username changes, second factors and passkeys added or ' +
          'removed, sessions ended, and what operators did to the account.',
        tags: ['activity'],
        response: { 200: Type.Object({ events: Type.Array(EventBody) }) },
      },
    },
    async (request) => {
      const events = await audit.recent(callerOf(request).user.id, RECENT_EVENTS);
      return {
        events: events.map((event) => ({
          type: event.type,
          time: event.time.toISOString(),
          ip: event.ip,
          user_agent: event.userAgent,
          ...(Object.keys(event.details).length > 0 ? { details: event.details } : {}),
        })),
      };
    },
  );
};
