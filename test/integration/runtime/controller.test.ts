// The controller against the real API server: primary and dependent events wake the owner,
// failures retry with backoff, conflicts requeue quietly, a key is never reconciled twice at
// once, and stop() waits for the reconciles in flight.

import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { Registry } from 'prom-client';
import type { Lease } from '../../../src/api/kubernetes.js';
import { createMetrics, type Metrics } from '../../../src/observability/metrics.js';
import { Controller, type Reconcile } from '../../../src/runtime/controller.js';
import { Informer } from '../../../src/runtime/informer.js';
import type { KubeClient } from '../../../src/runtime/kube-client.js';
import { resources } from '../../../src/runtime/resources.js';
import { createTestNamespace, deleteTestNamespace, testClient, waitFor } from '../support/cluster.js';
import { configMaps, sleep, testLogger, type ConfigMap } from './support.js';
import { counterValue } from '../../support/metrics.js';

const logger = testLogger('runtime-controller');
const OWNER_LABEL = 'snapback.dev/test-owner';

let client: KubeClient;
let ns: string;
const running: { stop(): Promise<void> }[] = [];
const figures: Record<string, number> = {};

interface Harness {
  controller: Controller;
  metrics: Metrics;
  owners: Informer<ConfigMap>;
}

/** A controller of ConfigMaps labelled role=owner, woken by Leases labelled with their owner. */
async function startController(name: string, reconcile: Reconcile, workers = 2): Promise<Harness> {
  const metrics = createMetrics(new Registry());
  const deps = { logger, metrics: metrics.informer };
  const owners = new Informer(client, configMaps, { namespace: ns, labelSelector: `role=${name}` }, deps);
  const dependents = new Informer(
    client,
    resources.leases,
    { namespace: ns, labelSelector: OWNER_LABEL },
    deps,
  );
  const controller = new Controller({
    name,
    reconcile,
    primary: owners,
    watches: [
      {
        informer: dependents,
        toKeys: (lease: Lease) => {
          const owner = lease.metadata.labels?.[OWNER_LABEL];
          return owner === undefined ? [] : [`${lease.metadata.namespace ?? ''}/${owner}`];
        },
      },
    ],
    workers,
    logger,
    metrics,
  });
  controller.start();
  owners.start();
  dependents.start();
  running.push(controller, owners, dependents);
  await Promise.all([owners.waitForSync(), dependents.waitForSync()]);
  return { controller, metrics, owners };
}

const owner = (name: string, role: string): ConfigMap => ({
  metadata: { name, namespace: ns, labels: { role } },
  data: { v: '0' },
});

const lease = (name: string, ownerName: string): Lease => ({
  metadata: { name, namespace: ns, labels: { [OWNER_LABEL]: ownerName } },
  spec: { holderIdentity: 'nobody' },
});

beforeAll(async () => {
  client = await testClient();
  ns = await createTestNamespace(client, 'controller');
});

afterEach(async () => {
  // Controllers first: they stop taking keys before the informers go.
  for (const r of running.splice(0)) await r.stop();
});

afterAll(async () => {
  await deleteTestNamespace(client, ns);
  await client.close();
  console.log(`controller figures: ${JSON.stringify(figures)}`);
});

describe('Controller on a real API server', () => {
  it('reconciles the owner when it changes and when a dependent changes', async () => {
    const reconciled: { key: string; at: number }[] = [];
    await startController('wake', (key) => {
      reconciled.push({ key, at: performance.now() });
      return Promise.resolve(undefined);
    });
    const key = `${ns}/app`;
    const count = (): number => reconciled.filter((r) => r.key === key).length;

    await client.create(configMaps, owner('app', 'wake'));
    await waitFor('the first reconcile of app', async () => Promise.resolve(count() >= 1));

    const wakes: number[] = [];
    for (const step of ['create', 'update', 'delete'] as const) {
      const before = count();
      const started = performance.now();
      if (step === 'create') await client.create(resources.leases, lease('dep', 'app'));
      if (step === 'update') {
        await client.mergePatch(
          resources.leases,
          'dep',
          { spec: { holderIdentity: 'someone' } },
          { namespace: ns },
        );
      }
      if (step === 'delete') await client.delete(resources.leases, 'dep', { namespace: ns });
      await waitFor(`a reconcile of app after the dependent's ${step}`, async () =>
        Promise.resolve(count() > before),
      );
      wakes.push(Math.round(performance.now() - started));
    }
    figures.dependentWakeMs = Math.max(...wakes);
    // Nothing else was woken.
    expect(new Set(reconciled.map((r) => r.key))).toEqual(new Set([key]));
  });

  it('retries failures with growing backoff, then forgets them', async () => {
    const calls: number[] = [];
    const { metrics } = await startController('retry', (key) => {
      if (!key.endsWith('/flaky')) return Promise.resolve(undefined);
      calls.push(performance.now());
      return calls.length <= 3
        ? Promise.reject(new Error(`attempt ${calls.length} failed`))
        : Promise.resolve(undefined);
    });
    await client.create(configMaps, owner('flaky', 'retry'));
    await waitFor('the fourth attempt', async () => Promise.resolve(calls.length >= 4));
    const labels = { controller: 'retry' };
    expect(await counterValue(metrics.controller.reconcileErrors, labels)).toBe(3);
    expect(await counterValue(metrics.controller.reconciles, { ...labels, result: 'error' })).toBe(3);
    expect(await counterValue(metrics.controller.reconciles, { ...labels, result: 'success' })).toBe(1);
    expect(await counterValue(metrics.workqueue.retries, { name: 'retry' })).toBe(3);
    // 5, 10, 20 ms: each gap at least the backoff of its attempt.
    const gaps = calls.slice(1).map((at, i) => at - (calls[i] ?? at));
    expect(gaps[0]).toBeGreaterThanOrEqual(4);
    expect(gaps[1]).toBeGreaterThanOrEqual(9);
    expect(gaps[2]).toBeGreaterThanOrEqual(19);
  });

  it('requeues a 409 Conflict quietly and succeeds on the next read', async () => {
    let attempts = 0;
    const { metrics, owners } = await startController('conflict', async (key) => {
      const current = owners.get(key);
      if (current === undefined) return undefined;
      attempts += 1;
      // The first attempt writes with a stale resourceVersion, as after a concurrent update.
      const resourceVersion = attempts === 1 ? '1' : current.metadata.resourceVersion;
      await client.mergePatch(
        configMaps,
        current.metadata.name ?? '',
        { metadata: { resourceVersion }, data: { v: 'reconciled' } },
        { namespace: current.metadata.namespace },
      );
      return undefined;
    });
    await client.create(configMaps, owner('contended', 'conflict'));
    await waitFor('the reconciled value', async () => {
      const cm = await client.get(configMaps, 'contended', ns);
      return cm?.data?.v === 'reconciled' ? cm : undefined;
    });
    const labels = { controller: 'conflict' };
    expect(await counterValue(metrics.controller.reconciles, { ...labels, result: 'requeue' })).toBe(1);
    expect(await counterValue(metrics.controller.reconcileErrors, labels)).toBe(0);
  });

  it('reconciles again after requeueAfterMs without any event', async () => {
    const calls: number[] = [];
    await startController('requeue', () => {
      calls.push(performance.now());
      return Promise.resolve(calls.length < 3 ? { requeueAfterMs: 200 } : undefined);
    });
    await client.create(configMaps, owner('periodic', 'requeue'));
    await waitFor('three reconciles', async () => Promise.resolve(calls.length >= 3));
    const gaps = calls.slice(1).map((at, i) => at - (calls[i] ?? at));
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(190);
    await sleep(400);
    expect(calls).toHaveLength(3);
  });

  it('never reconciles one key twice at once, and sees the last change', async () => {
    const inFlight = new Map<string, number>();
    let overlap = 0;
    const seen: string[] = [];
    const { owners } = await startController(
      'serial',
      async (key) => {
        const now = (inFlight.get(key) ?? 0) + 1;
        inFlight.set(key, now);
        if (now > 1) overlap += 1;
        await sleep(150);
        seen.push(owners.get(key)?.data?.v ?? '');
        inFlight.set(key, (inFlight.get(key) ?? 1) - 1);
        return undefined;
      },
      4,
    );
    await client.create(configMaps, owner('busy', 'serial'));
    for (let i = 1; i <= 10; i += 1) {
      await client.mergePatch(configMaps, 'busy', { data: { v: String(i) } }, { namespace: ns });
    }
    await waitFor('a reconcile that sees the last change', async () => Promise.resolve(seen.at(-1) === '10'));
    expect(overlap).toBe(0);
    // Changes that arrived while a reconcile ran were folded into one more reconcile.
    expect(seen.length).toBeLessThan(11);
  });

  it('stop() waits for the reconciles in flight and takes no new keys', async () => {
    let inFlight = 0;
    let finished = 0;
    const { controller } = await startController('graceful', async () => {
      inFlight += 1;
      await sleep(500);
      inFlight -= 1;
      finished += 1;
      return undefined;
    });
    await client.create(configMaps, owner('slow', 'graceful'));
    await waitFor('the reconcile to start', async () => Promise.resolve(inFlight === 1));
    await controller.stop();
    expect(inFlight).toBe(0);
    expect(finished).toBe(1);
    await client.create(configMaps, owner('late', 'graceful'));
    await sleep(300);
    expect(finished).toBe(1);
    expect(controller.queueLength).toBe(0);
  });
});
