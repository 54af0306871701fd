import { describe, expect, it } from '@jest/globals';
import { Registry } from 'prom-client';
import { createMetrics } from '../../../src/observability/metrics.js';
import {
  ExponentialBackoffRateLimiter,
  MaxOfRateLimiter,
  TokenBucketRateLimiter,
  WorkQueue,
  type RateLimiter,
} from '../../../src/runtime/workqueue.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const NOTHING = Symbol('nothing');

/** Resolves with what get() yields within `ms`, else NOTHING. */
async function getWithin(queue: WorkQueue, ms: number): Promise<string | undefined | typeof NOTHING> {
  return Promise.race([queue.get(), sleep(ms).then((): typeof NOTHING => NOTHING)]);
}

/** A limiter with fixed delays per failure count, to test the queue without the real figures. */
function fixedLimiter(delays: number[]): RateLimiter {
  const counts = new Map<string, number>();
  return {
    when: (key) => {
      const failures = counts.get(key) ?? 0;
      counts.set(key, failures + 1);
      return delays[Math.min(failures, delays.length - 1)] ?? 0;
    },
    forget: (key) => {
      counts.delete(key);
    },
    failures: (key) => counts.get(key) ?? 0,
  };
}

describe('WorkQueue', () => {
  it('holds a key once however often it is added', async () => {
    const queue = new WorkQueue({ name: 'dedupe' });
    queue.add('a');
    queue.add('b');
    queue.add('a');
    queue.add('a');
    expect(queue.length).toBe(2);
    expect(await queue.get()).toBe('a');
    expect(await queue.get()).toBe('b');
    expect(await getWithin(queue, 20)).toBe(NOTHING);
  });

  it('never hands a key being processed to a second worker; a re-add waits for done()', async () => {
    const queue = new WorkQueue({ name: 'exclusive' });
    queue.add('a');
    const first = await queue.get();
    expect(first).toBe('a');
    queue.add('a');
    queue.add('a');
    expect(queue.length).toBe(0);
    // A second worker waits although the key was added again.
    const second = queue.get();
    expect(await Promise.race([second, sleep(20).then((): typeof NOTHING => NOTHING)])).toBe(NOTHING);
    queue.done('a');
    expect(await second).toBe('a');
    queue.done('a');
    expect(queue.length).toBe(0);
  });

  it('hands out low-priority keys after every normal one, each in the order added', async () => {
    const queue = new WorkQueue({ name: 'priority' });
    queue.add('new-1', 'low');
    queue.add('a');
    queue.add('new-2', 'low');
    queue.add('b');
    expect(queue.length).toBe(4);
    const order = [];
    for (let i = 0; i < 4; i++) order.push(await queue.get());
    expect(order).toEqual(['a', 'b', 'new-1', 'new-2']);
    expect(queue.length).toBe(0);
  });

  it('lifts a low-priority key that is added again with normal priority, handing it out once', async () => {
    const queue = new WorkQueue({ name: 'lift' });
    queue.add('x', 'low');
    queue.add('y', 'low');
    queue.add('a');
    queue.add('y');
    // Another low add neither lowers it nor queues it twice.
    queue.add('y', 'low');
    expect(queue.length).toBe(3);
    const order = [];
    for (let i = 0; i < 3; i++) order.push(await queue.get());
    expect(order).toEqual(['a', 'y', 'x']);
    for (const key of order) queue.done(key ?? '');
    expect(queue.length).toBe(0);
    expect(await getWithin(queue, 20)).toBe(NOTHING);
  });

  it('queues a key lifted while a worker holds it with the normal keys once it is done', async () => {
    const queue = new WorkQueue({ name: 'lift-held' });
    queue.add('a', 'low');
    expect(await queue.get()).toBe('a');
    queue.add('a', 'low');
    queue.add('a');
    queue.add('later', 'low');
    queue.add('b');
    queue.done('a');
    const order = [];
    for (let i = 0; i < 3; i++) order.push(await queue.get());
    expect(order).toEqual(['b', 'a', 'later']);
  });

  it('hands each added key to exactly one of many waiting workers', async () => {
    const queue = new WorkQueue({ name: 'fanout' });
    const workers = [queue.get(), queue.get(), queue.get()];
    queue.add('x');
    queue.add('y');
    queue.add('x');
    const first = await Promise.race(workers.map((w, i) => w.then((key) => ({ key, i }))));
    expect(first.key).toBe('x');
    const remaining = workers.filter((_, i) => i !== first.i);
    const second = await Promise.race(remaining);
    expect(second).toBe('y');
    expect(queue.length).toBe(0);
  });

  it('backs off per key exponentially and forget() resets it', () => {
    const limiter = new ExponentialBackoffRateLimiter(5, 5 * 60_000);
    expect([1, 2, 3, 4, 5].map(() => limiter.when('k'))).toEqual([5, 10, 20, 40, 80]);
    expect(limiter.failures('k')).toBe(5);
    expect(limiter.when('other')).toBe(5);
    limiter.forget('k');
    expect(limiter.failures('k')).toBe(0);
    expect(limiter.when('k')).toBe(5);
  });

  it('caps the per-key backoff at five minutes, even after many failures', () => {
    const limiter = new ExponentialBackoffRateLimiter(5, 5 * 60_000);
    let last = 0;
    for (let i = 0; i < 2000; i += 1) last = limiter.when('k');
    expect(last).toBe(300_000);
  });

  it('spreads bursts of failures with the token bucket once the burst is used', () => {
    let now = 0;
    const bucket = new TokenBucketRateLimiter(10, 3, () => now);
    expect([bucket.when(), bucket.when(), bucket.when()]).toEqual([0, 0, 0]);
    expect(bucket.when()).toBeCloseTo(100);
    expect(bucket.when()).toBeCloseTo(200);
    now = 1000;
    // 1 s refills 10 tokens, capped at the burst of 3, after the 2 borrowed.
    expect(bucket.when()).toBe(0);
  });

  it('takes the longest delay of its limiters', () => {
    let now = 0;
    const limiter = new MaxOfRateLimiter(
      new ExponentialBackoffRateLimiter(5, 1000),
      new TokenBucketRateLimiter(1, 1, () => now),
    );
    expect(limiter.when('a')).toBe(5);
    expect(limiter.when('b')).toBeCloseTo(1000);
    now = 10_000;
    expect(limiter.when('a')).toBe(10);
  });

  it('re-adds a failed key after its backoff', async () => {
    const queue = new WorkQueue({ name: 'retry', rateLimiter: fixedLimiter([30, 60]) });
    queue.add('k');
    await queue.get();
    queue.addRateLimited('k');
    queue.done('k');
    const started = performance.now();
    expect(await queue.get()).toBe('k');
    const waited = performance.now() - started;
    expect(waited).toBeGreaterThanOrEqual(25);
    expect(queue.failures('k')).toBe(1);
    queue.forget('k');
    expect(queue.failures('k')).toBe(0);
    queue.done('k');
  });

  it('addAfter keeps the earliest time when a key is scheduled twice', async () => {
    const queue = new WorkQueue({ name: 'delay' });
    queue.addAfter('k', 400);
    queue.addAfter('k', 30);
    queue.addAfter('k', 200);
    expect(queue.length).toBe(0);
    const started = performance.now();
    expect(await queue.get()).toBe('k');
    const waited = performance.now() - started;
    expect(waited).toBeGreaterThanOrEqual(25);
    expect(waited).toBeLessThan(180);
    queue.done('k');
    // The later schedules were folded into the first: nothing else arrives.
    expect(await getWithin(queue, 300)).toBe(NOTHING);
  });

  it('addAfter with no delay adds at once', async () => {
    const queue = new WorkQueue({ name: 'now' });
    queue.addAfter('k', 0);
    expect(queue.length).toBe(1);
    expect(await queue.get()).toBe('k');
  });

  it('shutDown hands out what is queued, then undefined, and ignores new and delayed adds', async () => {
    const queue = new WorkQueue({ name: 'shutdown' });
    const idle = queue.get();
    queue.add('a');
    expect(await idle).toBe('a');
    queue.add('b');
    queue.addAfter('late', 10);
    const waiting = queue.get();
    expect(await waiting).toBe('b');
    const blocked = queue.get();
    queue.shutDown();
    expect(await blocked).toBeUndefined();
    queue.add('c');
    await sleep(30);
    expect(queue.length).toBe(0);
    expect(await queue.get()).toBeUndefined();
    expect(queue.isShuttingDown).toBe(true);
  });

  it('shutDownWithDrain waits for keys in flight to be done', async () => {
    const queue = new WorkQueue({ name: 'drain' });
    queue.add('a');
    queue.add('b');
    const a = await queue.get();
    let drained = false;
    const draining = queue.shutDownWithDrain().then(() => {
      drained = true;
    });
    expect(await queue.get()).toBe('b');
    expect(await queue.get()).toBeUndefined();
    queue.done('b');
    await sleep(10);
    expect(drained).toBe(false);
    queue.done(a ?? '');
    await draining;
    expect(drained).toBe(true);
  });

  it('reports depth, adds, retries and durations', async () => {
    const metrics = createMetrics(new Registry());
    const queue = new WorkQueue({
      name: 'measured',
      metrics: metrics.workqueue,
      rateLimiter: fixedLimiter([1]),
    });
    queue.add('a');
    queue.add('b');
    queue.add('a');
    expect((await metrics.workqueue.depth.get()).values[0]?.value).toBe(2);
    await queue.get();
    queue.addRateLimited('a');
    queue.done('a');
    const adds = (await metrics.workqueue.adds.get()).values[0]?.value;
    const retries = (await metrics.workqueue.retries.get()).values[0]?.value;
    const work = (await metrics.workqueue.workDuration.get()).values.find((v) =>
      v.metricName?.endsWith('_count'),
    );
    const latency = (await metrics.workqueue.queueDuration.get()).values.find((v) =>
      v.metricName?.endsWith('_count'),
    );
    expect(adds).toBe(2);
    expect(retries).toBe(1);
    expect(work?.value).toBe(1);
    expect(latency?.value).toBe(1);
    expect((await metrics.workqueue.depth.get()).values[0]?.value).toBe(1);
  });
});
