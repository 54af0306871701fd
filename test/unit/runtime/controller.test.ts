// The controller's handling of outcomes and its account of time. A reconcile that throws a
// TerminalError is not retried: the step has recorded the failure in status and only a change
// brings the object back. It is counted apart from errors that are retried with backoff, which
// this checks against the other outcomes. A reconcile that moves its object into a new phase is
// broken down into the key's wait in the queue, the reconcile and its API calls.

import { afterEach, describe, expect, it } from '@jest/globals';
import { Registry } from 'prom-client';
import winston from 'winston';
import type { KubeObject } from '../../../src/api/kubernetes.js';
import { createMetrics, type Metrics } from '../../../src/observability/metrics.js';
import { Controller, type Reconcile } from '../../../src/runtime/controller.js';
import { TerminalError } from '../../../src/runtime/errors.js';
import { currentTrace } from '../../../src/runtime/trace.js';
import type { EventHandler, EventSource } from '../../../src/runtime/informer.js';
import { ExponentialBackoffRateLimiter } from '../../../src/runtime/workqueue.js';
import { apiError, connectionReset } from '../../support/fake-client.js';
import { counterValue } from '../../support/metrics.js';

const logger = winston.createLogger({ silent: true });
/** The first retry comes after this long; the tests wait several times as long. */
const BACKOFF_MS = 40;
const KEY = 'ns/app';

/** An informer's subscription side, driven by the test. */
class FakeSource implements EventSource<KubeObject> {
  private readonly handlers = new Set<EventHandler<KubeObject>>();

  on(handler: EventHandler<KubeObject>): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  add(obj: KubeObject): void {
    for (const handler of this.handlers) handler.add?.(obj);
  }

  update(obj: KubeObject): void {
    for (const handler of this.handlers) handler.update?.(obj, obj);
  }
}

const object: KubeObject = { metadata: { name: 'app', namespace: 'ns' } };
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function until(what: string, test: () => boolean, timeoutMs = 2_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!test()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

interface Harness {
  source: FakeSource;
  metrics: Metrics;
  calls: string[];
}

const running: Controller[] = [];

function start(reconcile: Reconcile): Harness {
  const source = new FakeSource();
  const metrics = createMetrics(new Registry());
  const calls: string[] = [];
  const controller = new Controller({
    name: 'test',
    reconcile: (key) => {
      calls.push(key);
      return reconcile(key);
    },
    primary: source,
    logger,
    metrics,
    rateLimiter: new ExponentialBackoffRateLimiter(BACKOFF_MS, 1_000),
  });
  controller.start();
  running.push(controller);
  return { source, metrics, calls };
}

async function outcomes(metrics: Metrics): Promise<Record<string, number>> {
  const c = metrics.controller;
  return {
    success: await counterValue(c.reconciles, { controller: 'test', result: 'success' }),
    error: await counterValue(c.reconciles, { controller: 'test', result: 'error' }),
    terminal: await counterValue(c.reconciles, { controller: 'test', result: 'terminal' }),
    requeue: await counterValue(c.reconciles, { controller: 'test', result: 'requeue' }),
    reconcileErrors: await counterValue(c.reconcileErrors, { controller: 'test' }),
    terminalErrors: await counterValue(c.terminalErrors, { controller: 'test' }),
  };
}

afterEach(async () => {
  for (const controller of running.splice(0)) await controller.stop();
});

describe('Controller and TerminalError', () => {
  it('reconciles a key whose reconcile throws a TerminalError once, and counts it as terminal', async () => {
    const { source, metrics, calls } = start(() =>
      Promise.reject(new TerminalError('403 Forbidden: no', { cause: apiError(403) })),
    );
    source.add(object);
    await until('the first reconcile', () => calls.length === 1);
    // Well past the first backoff (and the second): a retry would have come by now.
    await sleep(BACKOFF_MS * 6);
    expect(calls).toEqual([KEY]);
    expect(await outcomes(metrics)).toEqual({
      success: 0,
      error: 0,
      terminal: 1,
      requeue: 0,
      reconcileErrors: 0,
      terminalErrors: 1,
    });
  });

  it('reconciles it again when the object changes', async () => {
    const { source, metrics, calls } = start(() => Promise.reject(new TerminalError('refused')));
    source.add(object);
    await until('the first reconcile', () => calls.length === 1);
    source.update(object);
    await until('the reconcile after the change', () => calls.length === 2);
    await sleep(BACKOFF_MS * 4);
    expect(calls).toHaveLength(2);
    expect((await outcomes(metrics)).terminalErrors).toBe(2);
  });

  it('retries a transient error with backoff until it succeeds, counting each failure as an error', async () => {
    let failures = 2;
    const { source, metrics, calls } = start(() => {
      if (failures > 0) {
        failures -= 1;
        return Promise.reject(connectionReset());
      }
      return Promise.resolve(undefined);
    });
    const started = performance.now();
    source.add(object);
    await until('three reconciles', () => calls.length === 3);
    // Two backoffs: BACKOFF_MS, then twice that.
    expect(performance.now() - started).toBeGreaterThanOrEqual(BACKOFF_MS * 3 - 5);
    await sleep(BACKOFF_MS * 6);
    expect(calls).toEqual([KEY, KEY, KEY]);
    expect(await outcomes(metrics)).toEqual({
      success: 1,
      error: 2,
      terminal: 0,
      requeue: 0,
      reconcileErrors: 2,
      terminalErrors: 0,
    });
  });

  it('retries a conflict quietly: a requeue, not an error', async () => {
    let conflicts = 1;
    const { source, metrics, calls } = start(() => {
      if (conflicts > 0) {
        conflicts -= 1;
        return Promise.reject(apiError(409, 'Conflict', 'the object has been modified'));
      }
      return Promise.resolve(undefined);
    });
    source.add(object);
    await until('two reconciles', () => calls.length === 2);
    await sleep(BACKOFF_MS * 2);
    expect(await outcomes(metrics)).toMatchObject({ requeue: 1, success: 1, error: 0, reconcileErrors: 0 });
  });

  it('does not retry a TerminalError that follows transient failures', async () => {
    const errors: Error[] = [connectionReset(), new TerminalError('gave up')];
    const { source, metrics, calls } = start(() => {
      const next = errors.shift();
      return next === undefined ? Promise.resolve(undefined) : Promise.reject(next);
    });
    source.add(object);
    await until('two reconciles', () => calls.length === 2);
    await sleep(BACKOFF_MS * 6);
    expect(calls).toHaveLength(2);
    expect(await outcomes(metrics)).toMatchObject({ error: 1, terminal: 1, terminalErrors: 1 });
  });
});

describe('Controller transition breakdown', () => {
  /** Observations of snapback_transition_seconds by part: [count, sum in seconds]. */
  async function parts(metrics: Metrics): Promise<Record<string, [number, number]>> {
    const { values } = await metrics.controller.transitionSeconds.get();
    const found: Record<string, [number, number]> = {};
    for (const value of values) {
      const labels = value.labels as Record<string, string>;
      const key = `${labels.transition ?? ''}/${labels.part ?? ''}`;
      const entry = found[key] ?? [0, 0];
      if (value.metricName?.endsWith('_count') === true) entry[0] = value.value;
      if (value.metricName?.endsWith('_sum') === true) entry[1] = value.value;
      found[key] = entry;
    }
    return found;
  }

  it('observes the queue wait, the reconcile and its API time of a reconcile that enters a phase', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const { source, metrics, calls } = start(async (key) => {
      // The first reconcile holds the only worker, so the second key waits in the queue.
      if (key === KEY) await gate;
      const trace = currentTrace();
      if (trace === undefined) throw new Error('no trace around the reconcile');
      // What the API client adds for each request it makes within the reconcile.
      trace.apiMs += 30;
      await sleep(40);
      if (key !== KEY) trace.transition = 'Next';
      return undefined;
    });
    source.add(object);
    source.add({ metadata: { name: 'other', namespace: 'ns' } });
    await sleep(60);
    release();
    await until('both reconciles', () => calls.length === 2);
    let observed = await parts(metrics);
    for (let tries = 0; Object.keys(observed).length === 0 && tries < 100; tries++) {
      await sleep(10);
      observed = await parts(metrics);
    }
    // Only the reconcile that named a transition is observed, once per part.
    expect(Object.keys(observed).sort()).toEqual(['Next/api', 'Next/queue', 'Next/reconcile']);
    expect(observed['Next/api']).toEqual([1, 0.03]);
    // It waited behind the first key (held about 60 + 40 ms), then ran for about 40 ms (timers fire
    // up to a few ms early or late).
    expect(observed['Next/queue']?.[1]).toBeGreaterThanOrEqual(0.085);
    expect(observed['Next/reconcile']?.[1]).toBeGreaterThanOrEqual(0.035);
    expect(observed['Next/reconcile']?.[1]).toBeLessThan(0.09);
  });
});
