import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { Options } from '@node-rs/argon2';

import { ServiceError } from '../errors.js';

// Shed at once: a client retrying in a second does better than one waiting behind a queue that only grows.
const OVERLOADED_RETRY_AFTER_SECONDS = 1;

/** Every hashing thread is busy and the queue is full: answered 503 at once rather than after a long wait. */
export function overloaded(): ServiceError {
  return new ServiceError('overloaded', 'The service is busy; try again in a moment', { retryAfterSeconds: OVERLOADED_RETRY_AFTER_SECONDS });
}

export type HashJob = { op: 'hash'; password: string; options: Options } | { op: 'verify'; hash: string; password: string };

interface Pending {
  job: HashJob;
  resolve(result: string | boolean): void;
  reject(error: Error): void;
}

export interface HashPoolSettings {
  threads: number;
  /** Jobs that may wait for a thread; beyond, ServiceError('overloaded'). */
  queueLimit: number;
  /** Nice value of the hashing threads (Linux): higher yields to the event loop. */
  niceness: number;
}

const WORKER_FILE = new URL('./hash-worker.cjs', import.meta.url);
const ARGON2_PATH = createRequire(import.meta.url).resolve('@node-rs/argon2');

/**
 * A few threads that do nothing but argon2, at a lower priority than the event loop's thread. Each job goes to
 * an idle thread or waits in one bounded FIFO queue (never round-robin onto a busy thread).
 */
export class HashPool {
  private readonly idle: Worker[] = [];
  private readonly running = new Map<Worker, Pending & { id: number }>();
  private readonly queue: Pending[] = [];
  private nextId = 0;
  private closed = false;

  private constructor(private readonly settings: HashPoolSettings) {}

  static async start(settings: HashPoolSettings): Promise<HashPool> {
    const pool = new HashPool(settings);
    await Promise.all(Array.from({ length: settings.threads }, () => pool.spawn()));
    return pool;
  }

  /** The nice value each thread reported it runs at (0 where lowering it was not allowed). */
  readonly niceness: number[] = [];

  /** Jobs waiting for a thread. */
  get queueLength(): number {
    return this.queue.length;
  }

  /** Every thread busy and the queue full: a new job would be refused. */
  get saturated(): boolean {
    return this.idle.length === 0 && this.queue.length >= this.settings.queueLimit;
  }

  run(job: HashJob): Promise<string | boolean> {
    if (this.closed) return Promise.reject(new Error('the hash pool is closed'));
    return new Promise((resolve, reject) => {
      const pending = { job, resolve, reject };
      const worker = this.idle.pop();
      if (worker) this.dispatch(worker, pending);
      else if (this.queue.length < this.settings.queueLimit) this.queue.push(pending);
      else reject(overloaded());
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const pending of this.queue.splice(0)) pending.reject(new Error('the hash pool is closed'));
    const workers = [...this.idle, ...this.running.keys()];
    this.idle.length = 0;
    await Promise.all(workers.map((worker) => worker.terminate()));
  }

  private spawn(): Promise<void> {
    const worker = new Worker(WORKER_FILE, { workerData: { argon2Path: ARGON2_PATH, niceness: this.settings.niceness } });
    // The threads never keep the process alive on their own: close() or the process's exit ends them.
    worker.unref();
    return new Promise((resolve, reject) => {
      worker.once('error', reject);
      worker.once('message', (ready: { niceness: number }) => {
        this.niceness.push(ready.niceness);
        worker.off('error', reject);
        worker.on('message', (message: { id: number; result?: string | boolean; error?: string }) => this.finished(worker, message));
        worker.on('error', (error) => this.crashed(worker, error));
        this.release(worker);
        resolve();
      });
    });
  }

  private dispatch(worker: Worker, pending: Pending): void {
    const id = this.nextId++;
    this.running.set(worker, { ...pending, id });
    worker.postMessage({ id, ...pending.job });
  }

  private finished(worker: Worker, message: { id: number; result?: string | boolean; error?: string }): void {
    const pending = this.running.get(worker);
    this.running.delete(worker);
    if (pending?.id === message.id) {
      // argon2 refused the input (a malformed stored hash).
      if (message.error !== undefined) pending.reject(new Error(message.error));
      else pending.resolve(message.result!);
    }
    this.release(worker);
  }

  /** A thread died (it should not): its job fails, a new thread takes its place. */
  private crashed(worker: Worker, error: Error): void {
    const pending = this.running.get(worker);
    this.running.delete(worker);
    pending?.reject(error);
    if (!this.closed) this.spawn().catch(() => {});
  }

  private release(worker: Worker): void {
    if (this.closed) {
      void worker.terminate();
      return;
    }
    const next = this.queue.shift();
    if (next) this.dispatch(worker, next);
    else this.idle.push(worker);
  }
}
