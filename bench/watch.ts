// The benchmarks' eyes: watches (Snapback's own Informer) that note when each change arrives.
// Every latency the benchmarks report is a difference of two arrival times seen by one process,
// so no clocks are compared.

import { Registry } from 'prom-client';
import { createLogger } from 'winston';
import type { KubeObject } from '../src/api/kubernetes.js';
import { createMetrics } from '../src/observability/metrics.js';
import { Informer } from '../src/runtime/informer.js';
import type { KubeClient } from '../src/runtime/kube-client.js';
import type { ResourceType } from '../src/runtime/resources.js';

export interface Watch {
  stop(): Promise<void>;
}

/** Calls `seen` with each added or changed object of `rt` in `namespace` and its arrival time. */
export async function watchArrivals<T extends KubeObject>(
  client: KubeClient,
  rt: ResourceType<T>,
  namespace: string | undefined,
  seen: (object: T, arrivedAtMs: number) => void,
): Promise<Watch> {
  const informer = new Informer(
    client,
    rt,
    { ...(namespace === undefined ? {} : { namespace }), backoffInitialMs: 100, backoffMaxMs: 1_000 },
    { logger: createLogger({ silent: true }), metrics: createMetrics(new Registry()).informer },
  );
  const record = (object: T): void => {
    seen(object, performance.now());
  };
  informer.on({ add: record, update: record });
  informer.start();
  await informer.waitForSync();
  return { stop: () => informer.stop() };
}

/**
 * Resolves `done` when `check()` holds, checked at each notify(); rejects after `timeoutMs`, or at
 * once with the message notify() is given.
 */
export function until(
  check: () => boolean,
  what: string,
  timeoutMs: number,
): { notify: (failure?: string) => void; done: Promise<void> } {
  let resolve = (): void => undefined;
  let reject = (_: Error): void => undefined;
  const done = new Promise<void>((yes, no) => {
    resolve = yes;
    reject = no;
  });
  const timer = setTimeout(() => {
    reject(new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}`));
  }, timeoutMs);
  const notify = (failure?: string): void => {
    if (failure !== undefined) {
      clearTimeout(timer);
      reject(new Error(`${what}: ${failure}`));
      return;
    }
    if (!check()) return;
    clearTimeout(timer);
    resolve();
  };
  return { notify, done };
}
