import type { Logger } from 'pino';
import type { Redis } from 'ioredis';

/** A connection to the shared Redis that never makes a request wait for it. */
export interface RedisConnection {
  client: Redis;
  close(): Promise<void>;
}

// A command that Redis does not answer this fast is treated as Redis being down (the limiter's fallback decides).
const COMMAND_TIMEOUT_MS = 500;
const CONNECT_TIMEOUT_MS = 2000;
const MAX_RECONNECT_DELAY_MS = 5000;

/** ioredis is loaded only here: a single instance without REDIS_URL never carries it. */
export async function openRedis(url: string, log: Logger): Promise<RedisConnection> {
  const { Redis } = await import('ioredis');
  const client = new Redis(url, {
    // Fail at once while disconnected instead of queueing: a login must not hang on Redis.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: COMMAND_TIMEOUT_MS,
    connectTimeout: CONNECT_TIMEOUT_MS,
    // Reconnect forever, backing off to one attempt every 5 s.
    retryStrategy: (attempt) => Math.min(attempt * 250, MAX_RECONNECT_DELAY_MS),
  });
  // Log changes of state only: a Redis that stays down would otherwise log every reconnect attempt.
  let up: boolean | undefined;
  client.on('ready', () => {
    if (up === false) log.info('Redis is reachable again: rate-limit counters are shared again');
    up = true;
  });
  client.on('error', (error: Error) => {
    if (up !== false) log.warn({ reason: error.message }, 'Redis is unreachable: rate limits fall back (RATE_LIMIT_ON_REDIS_FAILURE); reconnecting');
    up = false;
  });
  return {
    client,
    close: async () => {
      client.disconnect();
    },
  };
}
