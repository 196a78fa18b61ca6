import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { checkReadiness, type ReadinessParts, type ReadinessPolicy } from './health.js';

const Checks = Type.Record(Type.String(), Type.String(), { description: 'Each part: `ok`, or why not' });

/** For orchestrators: liveness (the process answers) and readiness (it can do its job). */
export const healthRoutes: FastifyPluginAsyncTypebox<{ services: ReadinessParts; readiness: ReadinessPolicy }> = async (app, { services, readiness }) => {
  app.addHook('onSend', async (_request, reply) => {
    reply.header('cache-control', 'no-store');
  });

  app.get(
    '/healthz',
    {
      schema: {
        summary: 'Liveness: the process is up and its event loop answers (touches no dependency)',
        tags: ['operations'],
        response: { 200: Type.Object({ status: Type.Literal('ok') }) },
      },
    },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/readyz',
    {
      schema: {
        summary: 'Readiness: database reachable and migrated, signing key loaded, Redis reachable when configured (SMTP reported, never required)',
        tags: ['operations'],
        response: {
          200: Type.Object({
            status: Type.Union([Type.Literal('ready'), Type.Literal('degraded')], {
              description: '`degraded`: serving, but a part it can do without for now is down (Redis in fail-open mode, SMTP: messages wait)',
            }),
            checks: Checks,
          }),
          503: Type.Object({ error: Type.Literal('not_ready'), message: Type.String(), checks: Checks }),
        },
      },
    },
    async (_request, reply) => {
      const { ready, degraded, checks } = await checkReadiness(services, readiness);
      if (ready) return { status: degraded ? ('degraded' as const) : ('ready' as const), checks };
      const failing = Object.entries(checks).filter(([, result]) => result !== 'ok' && !result.startsWith('degraded'));
      return reply.code(503).send({
        error: 'not_ready' as const,
        message: `Not ready: ${failing.map(([name, result]) => `${name} ${result}`).join('; ')}`,
        checks,
      });
    },
  );
};
