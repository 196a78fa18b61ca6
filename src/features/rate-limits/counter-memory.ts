import { LRUCache } from 'lru-cache';
import { RateLimiterCompatibleAbstract, RateLimiterRes } from 'rate-limiter-flexible';

/** One counter: points used in its window, and when the window ends (ms since the epoch; 0: never). */
interface Counter {
  points: number;
  endsAt: number;
}

/** What `_upsert` and `_get` hand to `_getRateLimiterRes`. */
interface StoreResult {
  points: number;
  msBeforeNext: number;
  created: boolean;
}

/**
 * The counters of every in-memory limiter of one process, in one map with a bound: rate-limiter-flexible's
 * RateLimiterMemory keeps a key (and a timer) for every key it ever saw until its window ends, so a flood of
 * fresh keys would take the whole heap. Past the bound the least recently used counter is forgotten, which
 * costs the limit of whoever used it least recently, never the process.
 */
export class CounterMemory {
  private readonly cache: LRUCache<string, Counter>;

  constructor(maxKeys: number, onEvicted: () => void = () => {}) {
    this.cache = new LRUCache<string, Counter>({
      max: maxKeys,
      dispose: (_counter, _key, reason) => {
        if (reason === 'evict') onEvicted();
      },
    });
  }

  /** Live counters (expired ones are dropped first). */
  get size(): number {
    this.cache.purgeStale();
    return this.cache.size;
  }

  /** Adds `points` (negative: gives them back) and answers the counter as it is now. */
  add(key: string, points: number, windowMs: number, restart: boolean): StoreResult {
    const now = Date.now();
    const counter = this.cache.get(key);
    if (restart || counter === undefined || (counter.endsAt !== 0 && counter.endsAt <= now)) {
      // A counter at zero or below holds nothing worth a key: refunds never create one.
      if (points <= 0) {
        this.cache.delete(key);
        return { points, msBeforeNext: windowMs > 0 ? windowMs : -1, created: true };
      }
      this.cache.set(key, { points, endsAt: windowMs > 0 ? now + windowMs : 0 }, { ttl: windowMs > 0 ? windowMs : 0 });
      return { points, msBeforeNext: windowMs > 0 ? windowMs : -1, created: true };
    }
    counter.points += points;
    if (counter.points <= 0) this.cache.delete(key);
    return { points: counter.points, msBeforeNext: counter.endsAt === 0 ? -1 : counter.endsAt - now, created: false };
  }

  get(key: string): StoreResult | null {
    const counter = this.cache.get(key);
    if (counter === undefined || (counter.endsAt !== 0 && counter.endsAt <= Date.now())) return null;
    return { points: counter.points, msBeforeNext: counter.endsAt === 0 ? -1 : counter.endsAt - Date.now(), created: false };
  }

  delete(key: string): boolean {
    return this.cache.delete(key);
  }
}

/**
 * A rate-limiter-flexible limiter over a CounterMemory. It implements the library's public interface for
 * outside limiters (RateLimiterCompatibleAbstract), so it behaves as RateLimiterMemory does and can stand in
 * as RateLimiterRedis's insurance, within the memory's bound.
 */
export class BoundedMemoryLimiter extends RateLimiterCompatibleAbstract {
  override readonly keyPrefix: string;
  // Part of the interface (RateLimiterRedis copies its own onto its insurance); these limits neither block nor spread.
  override blockDuration = 0;
  override execEvenly = false;
  private readonly points: number;
  private readonly windowMs: number;

  constructor(
    options: { points: number; duration: number; keyPrefix: string },
    private readonly memory: CounterMemory,
  ) {
    super();
    this.keyPrefix = options.keyPrefix;
    this.points = options.points;
    this.windowMs = options.duration * 1000;
  }

  override async consume(key: string | number, points = 1): Promise<RateLimiterRes> {
    const res = this.answer(this.memory.add(this.keyOf(key), points, this.windowMs, false), points);
    // The library's contract: a refusal rejects with the counter's state.
    if (res.consumedPoints > this.points) throw res;
    return res;
  }

  override async penalty(key: string | number, points = 1): Promise<RateLimiterRes> {
    return this.answer(this.memory.add(this.keyOf(key), points, this.windowMs, false), points);
  }

  override async reward(key: string | number, points = 1): Promise<RateLimiterRes> {
    return this.answer(this.memory.add(this.keyOf(key), -points, this.windowMs, false), -points);
  }

  override async get(key: string | number): Promise<RateLimiterRes | null> {
    const result = this.memory.get(this.keyOf(key));
    return result && this.answer(result, 0);
  }

  override async set(key: string | number, points: number, secDuration: number): Promise<RateLimiterRes> {
    const windowMs = secDuration >= 0 ? secDuration * 1000 : this.windowMs;
    return this.answer(this.memory.add(this.keyOf(key), points, windowMs, true), points);
  }

  override async block(key: string | number, secDuration: number): Promise<RateLimiterRes> {
    return this.set(key, this.points + 1, secDuration);
  }

  override async delete(key: string | number): Promise<boolean> {
    return this.memory.delete(this.keyOf(key));
  }

  private keyOf(key: string | number): string {
    return `${this.keyPrefix}:${key}`;
  }

  private answer(result: StoreResult, changedPoints: number): RateLimiterRes {
    return new RateLimiterRes(
      Math.max(this.points - result.points, 0),
      result.msBeforeNext,
      result.points,
      result.created && result.points === changedPoints,
    );
  }
}
