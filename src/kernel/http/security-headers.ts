import type { FastifyInstance } from 'fastify';
import helmet from 'helmet';

/**
 * helmet's security headers on every answer, with its defaults. Its middleware is built once here: the Fastify
 * plugin builds it again for each request, which costs more than the rest of an answer to a refused request.
 */
export function registerSecurityHeaders(app: FastifyInstance): void {
  const setHeaders = helmet();
  app.addHook('onRequest', (request, reply, done) => {
    setHeaders(request.raw, reply.raw, (error?: unknown) => done(error as Error | undefined));
  });
}
