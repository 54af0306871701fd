// A rate-limited work queue keyed by string, with client-go's guarantees:
// - a key is queued at most once, however often it is added before a worker takes it;
// - a key a worker holds is never handed to another worker: adds while it is processed are
//   remembered and the key is queued again when the worker calls done();
// - failures back off per key (exponential) and overall (token bucket), forget() resets a key;
// - a key added with low priority (controller-runtime's priority queue: an object's first add, at
//   start-up or on creation) waits behind every other key, so that work under way finishes before
//   new work starts; any other add of it lifts it.

import type { WorkqueueMetrics } from './metrics.js';

export interface RateLimiter {
  /** How long to wait before the key is retried; counts one more failure. */
  when(key: string): number;
  forget(key: string): void;
  failures(key: string): number;
}

/** Per key: baseMs·2^failures, capped (client-go's ItemExponentialFailureRateLimiter). */
export class ExponentialBackoffRateLimiter implements RateLimiter {
  private readonly counts = new Map<string, number>();

  constructor(
    private readonly baseMs = 5,
    private readonly maxMs = 5 * 60_000,
  ) {}

  when(key: string): number {
    const failures = this.counts.get(key) ?? 0;
    this.counts.set(key, failures + 1);
    // 2^failures overflows to Infinity long after the cap; min() keeps the result finite.
    return Math.min(this.baseMs * 2 ** failures, this.maxMs);
  }

  forget(key: string): void {
    this.counts.delete(key);
  }

  failures(key: string): number {
    return this.counts.get(key) ?? 0;
  }
}

/**
 * An overall token bucket (client-go's BucketRateLimiter): bursts of failures across many keys
 * are spread at `qps`. A reservation always succeeds and tells how long to wait for its token.
 */
export class TokenBucketRateLimiter implements RateLimiter {
  private tokens: number;
  private updatedAt: number;

  constructor(
    private readonly qps = 10,
    private readonly burst = 100,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = burst;
    this.updatedAt = now();
  }

  when(): number {
    const now = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.updatedAt) / 1000) * this.qps);
    this.updatedAt = now;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : (-this.tokens / this.qps) * 1000;
  }

  forget(): void {
    // The bucket is shared by all keys: one key succeeding returns no tokens.
  }

  failures(): number {
    return 0;
  }
}

/** The longest delay of several limiters (client-go's MaxOfRateLimiter). */
export class MaxOfRateLimiter implements RateLimiter {
  private readonly limiters: RateLimiter[];

  constructor(...limiters: RateLimiter[]) {
    this.limiters = limiters;
  }

  when(key: string): number {
    return Math.max(0, ...this.limiters.map((limiter) => limiter.when(key)));
  }

  forget(key: string): void {
    for (const limiter of this.limiters) limiter.forget(key);
  }

  failures(key: string): number {
    return Math.max(0, ...this.limiters.map((limiter) => limiter.failures(key)));
  }
}

/** client-go's DefaultControllerRateLimiter, with the per-key cap at 5 minutes. */
export function defaultRateLimiter(): RateLimiter {
  return new MaxOfRateLimiter(
    new ExponentialBackoffRateLimiter(5, 5 * 60_000),
    new TokenBucketRateLimiter(10, 100),
  );
}

export interface WorkQueueOptions {
  /** The `name` label of the queue's metrics. */
  name: string;
  rateLimiter?: RateLimiter;
  metrics?: WorkqueueMetrics;
}

/**
 * First in, first out, with O(1) take: Array.prototype.shift copies the whole array once it is
 * large (0.4 s for 100k keys queued at start-up, growing with the square of the count).
 */
class Fifo {
  private items: string[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(key: string): void {
    this.items.push(key);
  }

  shift(): string | undefined {
    if (this.head === this.items.length) return undefined;
    const key = this.items[this.head];
    this.head += 1;
    // Drop the taken part once it is most of the array: amortised O(1) per key.
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return key;
  }
}

/** Low: behind every normal key (an object's first add); normal: everything else. */
export type Priority = 'normal' | 'low';

export class WorkQueue {
  /** Keys ready for a worker, in order, by priority. An entry whose key was lifted or taken since is skipped. */
  private readonly queue = new Fifo();
  private readonly lowQueue = new Fifo();
  /** Keys ready for a worker (in either queue). */
  private readonly waiting = new Set<string>();
  /** Dirty keys added with low priority only. */
  private readonly low = new Set<string>();
  /** Keys that need processing: queued, or re-added while a worker holds them. */
  private readonly dirty = new Set<string>();
  /** Keys held by workers, with when the worker took them. */
  private readonly processing = new Map<string, number>();
  /** When each dirty key was added, for the queue latency. */
  private readonly addedAt = new Map<string, number>();
  /** How long each key being processed waited in the queue, in ms. */
  private readonly waited = new Map<string, number>();
  /** Delayed adds: when each becomes due and its timer. */
  private readonly delayed = new Map<string, { dueAt: number; timer: NodeJS.Timeout }>();
  private readonly waiters: ((key: string | undefined) => void)[] = [];
  private readonly drainWaiters: (() => void)[] = [];
  private readonly rateLimiter: RateLimiter;
  private shuttingDown = false;

  constructor(private readonly options: WorkQueueOptions) {
    this.rateLimiter = options.rateLimiter ?? defaultRateLimiter();
  }

  /** Keys waiting for a worker (not delayed ones, not ones being processed). */
  get length(): number {
    return this.waiting.size;
  }

  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  add(key: string, priority: Priority = 'normal'): void {
    if (this.shuttingDown) return;
    if (this.dirty.has(key)) {
      if (priority === 'low' || !this.low.delete(key)) return;
      // Lifted: it waits with the normal keys (its low entry is skipped), or is queued with them
      // when its worker is done.
      if (this.waiting.has(key)) this.push(key);
      return;
    }
    this.options.metrics?.adds.inc({ name: this.options.name });
    this.dirty.add(key);
    if (priority === 'low') this.low.add(key);
    this.addedAt.set(key, performance.now());
    if (this.processing.has(key)) return;
    this.push(key);
  }

  private push(key: string): void {
    (this.low.has(key) ? this.lowQueue : this.queue).push(key);
    this.waiting.add(key);
    this.handOut();
  }

  /** Adds the key after `ms`; if it is already scheduled, the earlier time wins. */
  addAfter(key: string, ms: number): void {
    if (this.shuttingDown) return;
    if (ms <= 0) {
      this.add(key);
      return;
    }
    const dueAt = performance.now() + ms;
    const scheduled = this.delayed.get(key);
    if (scheduled !== undefined) {
      if (scheduled.dueAt <= dueAt) return;
      clearTimeout(scheduled.timer);
    }
    const timer = setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, ms);
    // A pending retry must not keep the process alive on shutdown.
    timer.unref();
    this.delayed.set(key, { dueAt, timer });
  }

  /** Adds the key once the rate limiters allow it: after a failure. */
  addRateLimited(key: string): void {
    if (this.shuttingDown) return;
    this.options.metrics?.retries.inc({ name: this.options.name });
    this.addAfter(key, this.rateLimiter.when(key));
  }

  /** Resets the key's backoff; call after it was processed successfully. */
  forget(key: string): void {
    this.rateLimiter.forget(key);
  }

  /** How many times the key failed since it was last forgotten. */
  failures(key: string): number {
    return this.rateLimiter.failures(key);
  }

  /**
   * The next key, once there is one. The caller owns it until done(key). Resolves undefined
   * once the queue is shut down and no key is left in it.
   */
  get(): Promise<string | undefined> {
    const key = this.take();
    if (key !== undefined || this.shuttingDown) return Promise.resolve(key);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** How long a key a worker holds waited in the queue before it was taken, in ms. */
  waitedMs(key: string): number {
    return this.waited.get(key) ?? 0;
  }

  /** Releases a key taken with get(); if it was added meanwhile it is queued again. */
  done(key: string): void {
    const takenAt = this.processing.get(key);
    if (takenAt === undefined) return;
    this.processing.delete(key);
    this.waited.delete(key);
    this.options.metrics?.workDuration.observe(
      { name: this.options.name },
      (performance.now() - takenAt) / 1000,
    );
    if (this.dirty.has(key)) this.push(key);
    this.settleDrain();
  }

  /** Stops accepting keys and drops delayed ones; get() hands out what is queued, then undefined. */
  shutDown(): void {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    for (const { timer } of this.delayed.values()) clearTimeout(timer);
    this.delayed.clear();
    // Waiters exist only while the queue is empty, so each of them is done.
    for (const waiter of this.waiters.splice(0)) waiter(undefined);
    this.settleDrain();
  }

  /** shutDown(), then resolves once every queued key was handed out and marked done. */
  async shutDownWithDrain(): Promise<void> {
    this.shutDown();
    if (this.drained()) return;
    await new Promise<void>((resolve) => this.drainWaiters.push(resolve));
  }

  private drained(): boolean {
    return this.waiting.size === 0 && this.processing.size === 0;
  }

  private settleDrain(): void {
    if (this.shuttingDown && this.drained()) {
      for (const resolve of this.drainWaiters.splice(0)) resolve();
    }
  }

  private take(): string | undefined {
    let key: string | undefined;
    do {
      key = this.queue.length > 0 ? this.queue.shift() : this.lowQueue.shift();
      if (key === undefined) return undefined;
      // A lifted key's low entry, or an entry of a key taken through its other one.
    } while (!this.waiting.delete(key));
    const now = performance.now();
    this.processing.set(key, now);
    this.dirty.delete(key);
    this.low.delete(key);
    const addedAt = this.addedAt.get(key);
    this.addedAt.delete(key);
    if (addedAt !== undefined) {
      this.waited.set(key, now - addedAt);
      this.options.metrics?.queueDuration.observe({ name: this.options.name }, (now - addedAt) / 1000);
    }
    this.updateDepth();
    return key;
  }

  private handOut(): void {
    while (this.waiters.length > 0 && this.waiting.size > 0) {
      const waiter = this.waiters.shift();
      waiter?.(this.take());
    }
    this.updateDepth();
  }

  private updateDepth(): void {
    this.options.metrics?.depth.set({ name: this.options.name }, this.waiting.size);
  }
}
