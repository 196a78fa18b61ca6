import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import type { Options } from '@node-rs/argon2';

import { ServiceError } from '../../kernel/errors.js';

/**
 * Every hashing thread is busy and the work already waiting would keep a new job waiting too long: answered
 * 503 at once, with the time the queue needs to drain as Retry-After (at least 1 s).
 */
export function overloaded(retryAfterSeconds: number): ServiceError {
  // Under a flood this is made thousands of times a second, and its stack would say nothing: skip capturing it.
  const stackTraceLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new ServiceError('overloaded', 'The service is busy; try again in a moment', { retryAfterSeconds });
  } finally {
    Error.stackTraceLimit = stackTraceLimit;
  }
}

export type HashJob = { op: 'hash'; password: string; options: Options } | { op: 'verify'; hash: string; password: string };

interface Pending {
  job: HashJob;
  resolve(result: string | boolean): void;
  reject(error: Error): void;
}

interface Handed extends Pending {
  id: number;
  /** performance.now() when its thread began it, as far as can be told here; NaN while it waits behind another. */
  startedAt: number;
}

interface Thread {
  worker: Worker;
  /** Handed over and not yet answered, in order: the first is running, the others wait in the thread's port. */
  jobs: Handed[];
  /** Whether it has finished a job: only the later ones are timed. */
  warm: boolean;
}

export interface HashPoolSettings {
  threads: number;
  /**
   * Jobs that may wait for a thread, whatever their expected wait: a bound on memory, far above what the
   * expected wait lets in. Beyond, ServiceError('overloaded').
   */
  queueLimit: number;
  /**
   * A job that finds every thread busy is admitted only while its expected wait (the work ahead of it, at the
   * average job time, spread over the threads) is under this; beyond, ServiceError('overloaded'). Unset: only
   * `queueLimit` bounds the queue.
   */
  maxWaitMs?: number | undefined;
  /** Nice value of the hashing threads (Linux): higher yields to the event loop. */
  niceness: number;
}

const WORKER_FILE = new URL('./hash-worker.cjs', import.meta.url);
const ARGON2_PATH = createRequire(import.meta.url).resolve('@node-rs/argon2');
// Weight of the newest job in the average job time: some ten jobs follow a lasting change of load, while the
// first jobs of a burst, slowed down by the burst's own work on the event loop, barely move it.
const AVERAGE_WEIGHT = 0.1;
// How many of each thread's first jobs seed the average by their fastest (see recordJobTime).
const SEED_JOBS_PER_THREAD = 2;
// Each busy thread also holds its next job: it starts it as soon as it is done, even while the event loop is
// busy (a burst of requests, a garbage collection) and cannot hand it over yet.
const JOBS_PER_THREAD = 2;
/**
 * A hashing thread runs a few lines of JavaScript around argon2's native call, whose memory is not on the heap: a
 * small heap of its own, instead of V8's defaults for a thread, keeps each thread's memory to what it uses.
 */
const HASH_THREAD_HEAP = { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 16 };

/**
 * A few threads that do nothing but argon2, at a lower priority than the event loop's thread. Jobs wait in one
 * FIFO queue and go to an idle thread first, then one more to each busy thread; never round-robin onto busy ones.
 *
 * The queue is bounded by time, not by count: the pool keeps a moving average of a job's time on its thread, and
 * refuses a job at once when the work ahead of it would keep it waiting `maxWaitMs` or longer. A burst that the
 * threads clear within that time is served whole, whatever its size; a sustained overload is shed as soon as it
 * has built up that much work.
 */
export class HashPool {
  private readonly threads: Thread[] = [];
  private readonly queue: Pending[] = [];
  private nextId = 0;
  private closed = false;
  /** Moving average of a job's time on its thread, in ms; undefined until one has finished. */
  private averageMs: number | undefined;

  private constructor(private readonly settings: HashPoolSettings) {}

  static async start(settings: HashPoolSettings): Promise<HashPool> {
    const pool = new HashPool(settings);
    await Promise.all(Array.from({ length: settings.threads }, () => pool.spawn()));
    return pool;
  }

  /** The nice value each thread reported it runs at (0 where lowering it was not allowed). */
  readonly niceness: number[] = [];

  /** Jobs waiting for a thread to begin them. */
  get queueLength(): number {
    let waiting = this.queue.length;
    for (const thread of this.threads) waiting += Math.max(0, thread.jobs.length - 1);
    return waiting;
  }

  /**
   * How long a job submitted now would wait for a thread, in ms: the time left of the running jobs and the
   * whole time of the waiting ones, at the average job time, shared among the threads. 0 with a thread idle.
   */
  get expectedWaitMs(): number {
    if (this.hasIdleThread() || this.averageMs === undefined) return 0;
    const average = this.averageMs;
    const now = performance.now();
    let work = this.queue.length * average;
    for (const { jobs } of this.threads) {
      jobs.forEach((job, index) => {
        work += index === 0 && !Number.isNaN(job.startedAt) ? Math.max(0, average - (now - job.startedAt)) : average;
      });
    }
    return work / this.settings.threads;
  }

  /**
   * The refusal a job submitted now would get, or undefined if it would be admitted. Callers check before any
   * other work (a database lookup), so that shedding load costs as little as possible.
   */
  refusal(): ServiceError | undefined {
    if (this.hasIdleThread()) return undefined;
    const wait = this.expectedWaitMs;
    const { queueLimit, maxWaitMs } = this.settings;
    if (this.queueLength < queueLimit && (maxWaitMs === undefined || wait < maxWaitMs)) return undefined;
    return overloaded(Math.max(1, Math.ceil(wait / 1000)));
  }

  run(job: HashJob): Promise<string | boolean> {
    if (this.closed) return Promise.reject(new Error('the hash pool is closed'));
    const refused = this.refusal();
    if (refused) return Promise.reject(refused);
    return new Promise((resolve, reject) => {
      this.queue.push({ job, resolve, reject });
      this.handOver();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const closed = () => new Error('the hash pool is closed');
    for (const pending of this.queue.splice(0)) pending.reject(closed());
    const threads = this.threads.splice(0);
    for (const thread of threads) for (const job of thread.jobs.splice(0)) job.reject(closed());
    await Promise.all(threads.map((thread) => thread.worker.terminate()));
  }

  private hasIdleThread(): boolean {
    return this.threads.some((thread) => thread.jobs.length === 0);
  }

  private spawn(): Promise<void> {
    const worker = new Worker(WORKER_FILE, { workerData: { argon2Path: ARGON2_PATH, niceness: this.settings.niceness }, resourceLimits: HASH_THREAD_HEAP });
    // The threads never keep the process alive on their own: close() or the process's exit ends them.
    worker.unref();
    return new Promise((resolve, reject) => {
      worker.once('error', reject);
      worker.once('message', (ready: { niceness: number }) => {
        this.niceness.push(ready.niceness);
        worker.off('error', reject);
        if (this.closed) {
          void worker.terminate();
          resolve();
          return;
        }
        const thread: Thread = { worker, jobs: [], warm: false };
        this.threads.push(thread);
        worker.on('message', (message: Answer) => this.finished(thread, message));
        worker.on('error', (error) => this.crashed(thread, error));
        this.handOver();
        resolve();
      });
    });
  }

  /** Queued jobs to idle threads first, then one more to each busy thread. */
  private handOver(): void {
    for (let load = 0; load < JOBS_PER_THREAD && this.queue.length > 0; load++) {
      for (const thread of this.threads) {
        if (this.queue.length === 0) return;
        if (thread.jobs.length === load) this.hand(thread, this.queue.shift()!);
      }
    }
  }

  private hand(thread: Thread, pending: Pending): void {
    const id = this.nextId++;
    thread.jobs.push({ ...pending, id, startedAt: thread.jobs.length === 0 ? performance.now() : NaN });
    thread.worker.postMessage({ id, ...pending.job });
  }

  /** Jobs timed so far (up to SEED_JOBS_PER_THREAD per thread: the seeding phase). */
  private timedJobs = 0;

  /**
   * The first timed jobs often run as a burst begins, beside the event loop's work for it, and take several times
   * the steady cost. The fastest of them is the closest to what a job costs, so the average starts from that, and
   * moves by its weight after.
   */
  private recordJobTime(ms: number): void {
    this.timedJobs += 1;
    if (this.averageMs === undefined) this.averageMs = ms;
    else if (this.timedJobs <= SEED_JOBS_PER_THREAD * this.settings.threads) this.averageMs = Math.min(this.averageMs, ms);
    else this.averageMs += AVERAGE_WEIGHT * (ms - this.averageMs);
  }

  private finished(thread: Thread, message: Answer): void {
    if (thread.jobs[0]?.id !== message.id) return;
    const done = thread.jobs.shift()!;
    // The next one began when this one ended, which is now as far as can be told here.
    if (thread.jobs[0]) thread.jobs[0].startedAt = performance.now();
    // A thread's first job also touches argon2's memory for the first time, and runs while the process starts.
    if (thread.warm) this.recordJobTime(message.ms);
    thread.warm = true;
    // argon2 refused the input (a malformed stored hash).
    if (message.error !== undefined) done.reject(new Error(message.error));
    else done.resolve(message.result!);
    this.handOver();
  }

  /** A thread died (it should not): its jobs fail, a new thread takes its place. */
  private crashed(thread: Thread, error: Error): void {
    const index = this.threads.indexOf(thread);
    if (index >= 0) this.threads.splice(index, 1);
    for (const job of thread.jobs.splice(0)) job.reject(error);
    if (!this.closed) this.spawn().catch(() => {});
  }
}

interface Answer {
  id: number;
  result?: string | boolean;
  error?: string;
  /** How long the job took on its thread. */
  ms: number;
}
