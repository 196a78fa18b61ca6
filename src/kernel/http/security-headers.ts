import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import helmet from 'helmet';

/**
 * helmet's security headers, with its defaults, as the header values they always are: its middleware is run once,
 * here, and what it set is added to every answer. Running it per request (the Fastify plugin even builds it per
 * request) costs a dozen validated `setHeader` calls, a measurable share of a token check's answer.
 */
export function registerSecurityHeaders(app: FastifyInstance): void {
  const headers = helmetHeaders();
  app.addHook('onRequest', (_request, reply, done) => {
    reply.headers(headers);
    done();
  });
}

/** What helmet's middleware sets on an answer. Its defaults depend on nothing in the request. */
function helmetHeaders(): Record<string, string> {
  const set: Record<string, string> = {};
  const response = {
    setHeader: (name: string, value: string | number | readonly string[]) => void (set[name.toLowerCase()] = String(value)),
    removeHeader: (name: string) => void delete set[name.toLowerCase()],
  };
  let called = false;
  helmet()({} as IncomingMessage, response as unknown as ServerResponse, (error?: unknown) => {
    if (error) throw error;
    called = true;
  });
  if (!called || Object.keys(set).length === 0) throw new Error('helmet set no headers at once: its middleware is no longer synchronous');
  return set;
}
