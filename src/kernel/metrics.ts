import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** What the password hashing reports of its jobs, for the metrics. */
export interface HashObserver {
  started(): void;
  finished(operation: 'hash' | 'verify', seconds: number): void;
  /** A started job was refused at once: every thread busy and its expected wait over the limit. */
  rejected(): void;
}
import type { Database } from './db/database.js';

/** Everything /metrics reports (Prometheus text format), in one registry per app so tests and instances never share counts. */
export class Metrics {
  readonly registry = new Registry();

  readonly httpRequests = new Counter({
    name: 'http_requests_total',
    help: 'HTTP requests answered, by route pattern and status',
    labelNames: ['method', 'route', 'status_code'] as const,
    registers: [this.registry],
  });

  readonly httpDuration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'Time to answer an HTTP request, by route pattern and status',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });

  readonly logins = new Counter({
    name: 'auth_logins_total',
    help: 'Login attempts by result: success, failure (wrong credentials), rate_limited, overloaded, error',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly dependencyUp = new Gauge({
    name: 'dependency_up',
    help: 'Whether a dependency answered the last readiness check (1) or not (0), by dependency: database, redis, smtp',
    labelNames: ['dependency'] as const,
    registers: [this.registry],
  });

  readonly rateLimitRejections = new Counter({
    name: 'auth_rate_limit_rejections_total',
    help: 'Requests refused with 429, by the limit that refused them',
    labelNames: ['rule'] as const,
    registers: [this.registry],
  });

  readonly rateLimitMemoryEvictions = new Counter({
    name: 'auth_rate_limit_memory_evictions_total',
    help: 'Rate-limit counters forgotten, least recently used first, to stay within RATE_LIMIT_MEMORY_MAX_KEYS',
    registers: [this.registry],
  });

  readonly passwordHashDuration = new Histogram({
    name: 'password_hash_duration_seconds',
    help: 'Time for one password hash or verification (argon2id or a legacy format), waiting included',
    labelNames: ['operation'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });

  readonly passwordHashRejections = new Counter({
    name: 'password_hash_rejections_total',
    help: 'Hashes refused at once with 503 overloaded: every thread busy and the expected wait at HASH_QUEUE_MAX_WAIT_MS or more (or HASH_QUEUE_LIMIT hashes waiting)',
    registers: [this.registry],
  });

  readonly passwordHashesInFlight = new Gauge({
    name: 'password_hashes_in_flight',
    help: 'Password hashes and verifications running or waiting for a thread',
    registers: [this.registry],
  });

  readonly auditEvents = new Counter({
    name: 'auth_audit_events_total',
    help: 'Security events recorded in the audit trail, by type (failed logins counted on an aggregate row included)',
    labelNames: ['type'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  /** What the password hasher reports to. */
  readonly hashObserver: HashObserver = {
    started: () => this.passwordHashesInFlight.inc(),
    finished: (operation, seconds) => {
      this.passwordHashesInFlight.dec();
      this.passwordHashDuration.observe({ operation }, seconds);
    },
    rejected: () => {
      this.passwordHashesInFlight.dec();
      this.passwordHashRejections.inc();
    },
  };

  /** The hashes waiting for a thread and how long a new one would wait, read at each scrape. */
  watchHashQueue(length: () => number, expectedWaitMs?: () => number): void {
    new Gauge({
      name: 'password_hash_queue_length',
      help: 'Password hashes waiting for a hashing thread (admitted while their expected wait is under HASH_QUEUE_MAX_WAIT_MS)',
      registers: [this.registry],
      collect() {
        this.set(length());
      },
    });
    if (!expectedWaitMs) return;
    new Gauge({
      name: 'password_hash_expected_wait_seconds',
      help: 'How long a password hash submitted now would wait for a hashing thread; at HASH_QUEUE_MAX_WAIT_MS logins and registrations are refused with 503',
      registers: [this.registry],
      collect() {
        this.set(expectedWaitMs() / 1000);
      },
    });
  }

  /** The number of rate-limit counters held in memory, read at each scrape. */
  watchRateLimitMemory(entries: () => number): void {
    new Gauge({
      name: 'auth_rate_limit_memory_entries',
      help: 'Rate-limit counters held in memory (all of them without REDIS_URL), at most RATE_LIMIT_MEMORY_MAX_KEYS',
      registers: [this.registry],
      collect() {
        this.set(entries());
      },
    });
  }

  /** Reads the pool's state at each scrape (PostgreSQL only: the embedded database has no pool). */
  watchDatabasePool(db: Database): void {
    const stats = db.poolStats?.bind(db);
    if (!stats) return;
    new Gauge({
      name: 'db_pool_connections',
      help: 'PostgreSQL pool: connections in use and idle, and requests waiting for one',
      labelNames: ['state'] as const,
      registers: [this.registry],
      collect() {
        const { total, idle, waiting } = stats();
        this.set({ state: 'in_use' }, total - idle);
        this.set({ state: 'idle' }, idle);
        this.set({ state: 'waiting' }, waiting);
      },
    });
  }
}
