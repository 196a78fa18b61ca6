import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { checkReadiness } from '../health.js';
import type { Services } from '../services.js';

const Checks = Type.Record(Type.String(), Type.String(), { description: 'Each part: `ok`, or why not' });

/** For orchestrators: liveness (the process answers) and readiness (it can do its job). */
export const healthRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services }) => {
  app.addHook('onSend', async (_request, reply) => {
    reply.header('cache-control', 'no-store');
  });

  app.get(
    '/healthz',
    {
      schema: {
        summary: 'Liveness: the process is up and its event loop answers (touches no dependency)',
        response: { 200: Type.Object({ status: Type.Literal('ok') }) },
      },
    },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/readyz',
    {
      schema: {
        summary: 'Readiness: database reachable and migrated, signing key loaded, Redis reachable when configured',
        response: {
          200: Type.Object({ status: Type.Literal('ready'), checks: Checks }),
          503: Type.Object({ error: Type.Literal('not_ready'), message: Type.String(), checks: Checks }),
        },
      },
    },
    async (_request, reply) => {
      const { ready, checks } = await checkReadiness(services);
      if (ready) return { status: 'ready' as const, checks };
      const failing = Object.entries(checks).filter(([, result]) => result !== 'ok');
      return reply.code(503).send({
        error: 'not_ready' as const,
        message: `Not ready: ${failing.map(([name, result]) => `${name} ${result}`).join('; ')}`,
        checks,
      });
    },
  );
};
