// The informer against the real API server: it sees what happens to objects, and it survives
// the watch failures of production (expired resourceVersion, cut connection, silent stream),
// injected by a proxy in front of the server.

import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { Registry } from 'prom-client';
import { createMetrics, type Metrics } from '../../../src/observability/metrics.js';
import { Informer, type InformerOptions } from '../../../src/runtime/informer.js';
import { KubeClient } from '../../../src/runtime/kube-client.js';
import { createTestNamespace, deleteTestNamespace, testClient, waitFor } from '../support/cluster.js';
import { FaultProxy } from './fault-proxy.js';
import { configMaps, TEST_OBJECT_LABEL, testLogger, type ConfigMap } from './support.js';
import { counterValue } from '../../support/metrics.js';
import { defineIndex } from '../../../src/runtime/cache.js';

const logger = testLogger('runtime-informer');
const BULK = 300;

let client: KubeClient;
let ns: string;
let proxy: FaultProxy;
let proxied: KubeClient;
const informers: Informer<ConfigMap>[] = [];
const figures: Record<string, number> = {};

function configMap(
  name: string,
  data: Record<string, string> = {},
  labels: Record<string, string> = {},
): ConfigMap {
  return { metadata: { name, namespace: ns, labels: { ...labels, [TEST_OBJECT_LABEL]: 'true' } }, data };
}

function startInformer(
  through: KubeClient,
  options: InformerOptions = {},
): { informer: Informer<ConfigMap>; metrics: Metrics; events: string[] } {
  const metrics = createMetrics(new Registry());
  const informer = new Informer(
    through,
    configMaps,
    { namespace: ns, labelSelector: TEST_OBJECT_LABEL, backoffInitialMs: 50, ...options },
    {
      logger,
      metrics: metrics.informer,
    },
  );
  const events: string[] = [];
  informer.on({
    add: (obj) => {
      events.push(`add ${obj.metadata.name ?? ''}`);
    },
    update: (obj, old) => {
      if (obj !== old) events.push(`update ${obj.metadata.name ?? ''}`);
    },
    delete: (obj) => {
      events.push(`delete ${obj.metadata.name ?? ''}`);
    },
  });
  informers.push(informer);
  informer.start();
  return { informer, metrics, events };
}

beforeAll(async () => {
  client = await testClient();
  ns = await createTestNamespace(client, 'informer');
  proxy = await FaultProxy.start(client.config);
  proxied = await KubeClient.create(proxy.kubeConfig());
});

afterEach(async () => {
  await Promise.all(informers.splice(0).map((i) => i.stop()));
});

afterAll(async () => {
  await deleteTestNamespace(client, ns);
  await proxy.close();
  await proxied.close();
  await client.close();
  console.log(`informer figures: ${JSON.stringify(figures)}`);
});

/** ConfigMaps by their `set` label. */
const bySet = defineIndex<ConfigMap>('set', (cm) => [cm.metadata.labels?.set ?? 'none']);

describe('Informer on a real API server', () => {
  it(`lists ${BULK} objects in pages, then sees adds, updates and deletes with the last state`, async () => {
    const created = performance.now();
    for (let i = 0; i < BULK; i += 10) {
      await Promise.all(
        Array.from({ length: 10 }, (_, j) =>
          client.create(configMaps, configMap(`bulk-${i + j}`, {}, { set: 'bulk' })),
        ),
      );
    }
    figures.createBulkMs = Math.round(performance.now() - created);

    const started = performance.now();
    const { informer, metrics, events } = startInformer(client);
    informer.addIndex(bySet);
    await informer.waitForSync();
    figures[`listAndSync${BULK}Ms`] = Math.round(performance.now() - started);
    expect(informer.list()).toHaveLength(BULK);
    expect(informer.byIndex(bySet, 'bulk')).toHaveLength(BULK);
    expect(events.filter((e) => e.startsWith('add bulk-'))).toHaveLength(BULK);
    expect(await counterValue(metrics.informer.relists, { resource: 'configmaps' })).toBe(1);

    const addedAt = performance.now();
    await client.create(configMaps, configMap('watched', { v: '1' }, { set: 'single' }));
    await waitFor('the add of watched', async () => Promise.resolve(informer.get(`${ns}/watched`)));
    figures.watchEventLatencyMs = Math.round(performance.now() - addedAt);
    expect(informer.byIndex(bySet, 'single').map((cm) => cm.metadata.name)).toEqual(['watched']);

    await client.mergePatch(
      configMaps,
      'watched',
      { data: { v: '2' }, metadata: { labels: { set: 'moved' } } },
      { namespace: ns },
    );
    await waitFor('the update of watched', async () =>
      Promise.resolve(informer.get(`${ns}/watched`)?.data?.v === '2'),
    );
    expect(informer.byIndex(bySet, 'single')).toEqual([]);
    expect(informer.byIndex(bySet, 'moved')).toHaveLength(1);

    const deleted: ConfigMap[] = [];
    informer.on({
      delete: (obj) => {
        deleted.push(obj);
      },
    });
    await client.delete(configMaps, 'watched', { namespace: ns });
    await waitFor('the delete of watched', async () => Promise.resolve(deleted.length === 1));
    expect(deleted[0]?.data).toEqual({ v: '2' });
    expect(informer.get(`${ns}/watched`)).toBeUndefined();
    expect(informer.byIndex(bySet, 'moved')).toEqual([]);
    expect(events.slice(BULK)).toEqual(['add watched', 'update watched', 'delete watched']);
    expect(informer.lastEventAt()).toBeGreaterThan(Date.now() - 10_000);
    expect(informer.isHealthy()).toBe(true);
    const objects = await metrics.informer.objects.get();
    expect(objects.values[0]?.value).toBe(BULK);
  });

  it('relists when the server no longer has its resourceVersion (410 Gone) and misses nothing', async () => {
    const { informer, metrics, events } = startInformer(proxied);
    await informer.waitForSync();
    await waitFor('the watch to run', async () => Promise.resolve(proxy.runningWatches > 0));
    const watchesBefore = proxy.watchRequests.length;

    proxy.expireNextWatch('1');
    proxy.cutWatches();
    // Changed while the informer is between watches: only the relist can deliver it.
    await client.create(configMaps, configMap('during-gone'));
    const started = performance.now();
    await waitFor('the relist after 410', async () =>
      (await counterValue(metrics.informer.restarts, { reason: 'gone' })) > 0 ? true : undefined,
    );
    await waitFor('during-gone in the cache', async () => Promise.resolve(informer.get(`${ns}/during-gone`)));
    figures.goneRecoveryMs = Math.round(performance.now() - started);
    expect(
      proxy.watchRequests.slice(watchesBefore).some((path) => /[?&]resourceVersion=1(&|$)/.test(path)),
    ).toBe(true);
    expect(await counterValue(metrics.informer.relists, {})).toBeGreaterThanOrEqual(2);
    expect(events).toContain('add during-gone');

    // And the watch after the relist works.
    await client.create(configMaps, configMap('after-gone'));
    await waitFor('after-gone in the cache', async () => Promise.resolve(informer.get(`${ns}/after-gone`)));
  });

  it('re-watches from its resourceVersion after a cut connection, counting the restart', async () => {
    const { informer, metrics } = startInformer(proxied);
    await informer.waitForSync();
    await waitFor('the watch to run', async () => Promise.resolve(proxy.runningWatches > 0));

    expect(proxy.cutWatches()).toBeGreaterThan(0);
    await client.create(configMaps, configMap('during-cut'));
    const started = performance.now();
    await waitFor('during-cut in the cache', async () => Promise.resolve(informer.get(`${ns}/during-cut`)));
    figures.cutRecoveryMs = Math.round(performance.now() - started);
    expect(
      await counterValue(metrics.informer.restarts, { resource: 'configmaps', reason: 'error' }),
    ).toBeGreaterThanOrEqual(1);
    // The event came from a re-watch, not a new LIST.
    expect(await counterValue(metrics.informer.relists, {})).toBe(1);
  });

  it('restarts a watch that went silent (watchdog) and catches up on what it missed', async () => {
    const { informer, metrics } = startInformer(proxied, { silenceTimeoutMs: 1500, watchTimeoutSeconds: 60 });
    await informer.waitForSync();
    await waitFor('the watch to run', async () => Promise.resolve(proxy.runningWatches > 0));

    expect(proxy.stallWatches()).toBeGreaterThan(0);
    const started = performance.now();
    await client.create(configMaps, configMap('during-stall'));
    await waitFor(
      'during-stall in the cache',
      async () => Promise.resolve(informer.get(`${ns}/during-stall`)),
      15_000,
    );
    figures.silenceRecoveryMs = Math.round(performance.now() - started);
    expect(figures.silenceRecoveryMs).toBeGreaterThanOrEqual(1000);
    expect(await counterValue(metrics.informer.restarts, { reason: 'silence' })).toBeGreaterThanOrEqual(1);
    expect(await counterValue(metrics.informer.restarts, { reason: 'error' })).toBe(0);
  });
});
