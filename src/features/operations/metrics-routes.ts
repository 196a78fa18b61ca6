import type { FastifyPluginAsync } from 'fastify';
import type { Metrics } from '../../kernel/metrics.js';

/** GET /metrics in Prometheus's text format: on the main port, or alone on METRICS_PORT. */
export const metricsRoutes: FastifyPluginAsync<{ metrics: Metrics }> = async (app, { metrics }) => {
  app.get('/metrics', { schema: { summary: 'Prometheus metrics', hide: true } }, async (_request, reply) => {
    reply.header('cache-control', 'no-store');
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
};
