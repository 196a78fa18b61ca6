import type { FastifyInstance, onRequestHookHandler, onResponseHookHandler } from 'fastify';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Every request hashes or verifies a password: refused before its body is read while hashing is overloaded. */
    hashesPassword?: boolean;
  }
}

// A request held for its connection's Retry-After is held no longer than this, so that a long Retry-After (a
// large HASH_QUEUE_MAX_WAIT_MS) cannot hold a request past a graceful shutdown's timeout.
const MAX_HOLD_MS = 5000;
// Connections refused together were given the same Retry-After: up to this much more each, at random, so that
// they do not all come back in the same instant, which would stall the event loop (and with it the handing of
// the next hashes to their threads) while it refuses most of them again.
const HOLD_SPREAD_MS = 1000;

/**
 * Refusals that cost the event loop next to nothing, so that under a flood the CPU goes to the logins admitted:
 *
 * - A login or registration is refused before its body is read, parsed and validated. The domain checks again
 *   before its own work, since the queue may have grown meanwhile.
 * - A client that was told to retry after N seconds and sends its next login or registration on the same
 *   connection sooner has it considered only once those N seconds are over (the connection's other requests
 *   are not held). A client that honours Retry-After never notices; one that resends at once would otherwise
 *   get a refusal, and resend, as fast as the event loop can refuse, and take the CPU from the hashing threads.
 *
 * Registered on the root instance before any route, as onRoute sees only routes added after it.
 */
/** Whatever can tell, before a request's body is read, that its work would not be admitted (the password hashing). */
export interface Capacity {
  /** Throws ServiceError('overloaded') when a new job would wait too long. */
  assertCapacity(): void;
}

export function registerLoadShedding(app: FastifyInstance, hasher: Capacity): void {
  // When each connection may be heard again (performance.now() ms); kept no longer than its socket.
  const notBefore = new WeakMap<object, number>();

  const admit = (done: (error?: Error) => void) => {
    try {
      hasher.assertCapacity();
    } catch (error) {
      done(error as Error);
      return;
    }
    done();
  };

  const refuseWhileOverloaded: onRequestHookHandler = (request, _reply, done) => {
    const socket = request.raw.socket as object | null;
    const early = (socket ? (notBefore.get(socket) ?? 0) : 0) - performance.now();
    if (early > 0) setTimeout(admit, Math.min(early, MAX_HOLD_MS), done);
    else admit(done);
  };

  // Both the refusal above and the domain's (the queue grew during the database lookup) answer `overloaded`.
  const rememberRetryAfter: onResponseHookHandler = (request, reply, done) => {
    const retryAfterSeconds = Number(reply.getHeader('retry-after'));
    const socket = request.raw.socket as object | null;
    if (request.errorCode === 'overloaded' && socket && retryAfterSeconds > 0) {
      notBefore.set(socket, performance.now() + retryAfterSeconds * 1000 + Math.random() * HOLD_SPREAD_MS);
    }
    done();
  };

  app.addHook('onRoute', (route) => {
    if (route.config?.hashesPassword !== true) return;
    route.onRequest = [refuseWhileOverloaded, ...asArray(route.onRequest)];
    route.onResponse = [...asArray(route.onResponse), rememberRetryAfter];
  });
}

function asArray<T>(value: T | T[] | undefined): T[] {
  return value === undefined ? [] : Array.isArray(value) ? value : [value];
}
