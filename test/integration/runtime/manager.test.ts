// The manager against the real API server: informers on every replica, controllers only on the
// leader, a standby that is ready without leading, and a leader that returns when it loses its
// lease so that its process restarts clean.

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Registry } from 'prom-client';
import { createMetrics, type Metrics } from '../../../src/observability/metrics.js';
import type { KubeClient } from '../../../src/runtime/kube-client.js';
import { microTime } from '../../../src/runtime/leader-election.js';
import { Manager, type StopReason } from '../../../src/runtime/manager.js';
import { resources } from '../../../src/runtime/resources.js';
import { createTestNamespace, deleteTestNamespace, testClient, waitFor } from '../support/cluster.js';
import { configMaps, sleep, TEST_OBJECT_LABEL, testLogger } from './support.js';

const logger = testLogger('runtime-manager');

let client: KubeClient;
let ns: string;
const figures: Record<string, number> = {};

interface Replica {
  identity: string;
  manager: Manager;
  metrics: Metrics;
  reconciled: string[];
  stop: AbortController;
  result: Promise<StopReason>;
}

function replica(identity: string, lease: string | undefined, reconcileMs = 0): Replica {
  const metrics = createMetrics(new Registry());
  const manager = new Manager({
    client,
    logger: logger.child({ replica: identity }),
    metrics,
    ...(lease === undefined
      ? {}
      : {
          leaderElection: {
            namespace: ns,
            name: lease,
            identity,
            leaseDurationMs: 3000,
            renewDeadlineMs: 2000,
            retryPeriodMs: 500,
          },
        }),
  });
  const reconciled: string[] = [];
  const informer = manager.informer(configMaps, { namespace: ns, labelSelector: TEST_OBJECT_LABEL });
  manager.controller({
    name: `test-${identity}`,
    primary: informer,
    workers: 4,
    reconcile: async (key) => {
      if (reconcileMs > 0) await sleep(reconcileMs);
      reconciled.push(key);
      return undefined;
    },
  });
  const stop = new AbortController();
  return { identity, manager, metrics, reconciled, stop, result: manager.start(stop.signal) };
}

beforeAll(async () => {
  client = await testClient();
  ns = await createTestNamespace(client, 'manager');
});

afterAll(async () => {
  await deleteTestNamespace(client, ns);
  await client.close();
  console.log(`manager figures: ${JSON.stringify(figures)}`);
});

describe('Manager on a real API server', () => {
  it('runs controllers on the leader only; a standby is ready; a deposed leader returns', async () => {
    await client.create(configMaps, {
      metadata: { name: 'existing', namespace: ns, labels: { [TEST_OBJECT_LABEL]: 'true' } },
    });
    const one = replica('one', 'managers');
    const two = replica('two', 'managers');
    const leader = await waitFor('a leader', async () =>
      Promise.resolve([one, two].find((r) => r.manager.isLeader())),
    );
    const standby = leader === one ? two : one;
    await waitFor('the standby to be ready', async () =>
      Promise.resolve(standby.manager.readiness() === undefined),
    );
    expect(leader.manager.readiness()).toBeUndefined();
    expect(standby.manager.health()).toBeUndefined();
    expect(standby.manager.isLeader()).toBe(false);
    expect((await leader.metrics.leaderElection.leader.get()).values[0]?.value).toBe(1);
    expect((await standby.metrics.leaderElection.leader.get()).values[0]?.value).toBe(0);

    await client.create(configMaps, {
      metadata: { name: 'new', namespace: ns, labels: { [TEST_OBJECT_LABEL]: 'true' } },
    });
    await waitFor('the leader to reconcile both objects', async () =>
      Promise.resolve(
        leader.reconciled.includes(`${ns}/new`) && leader.reconciled.includes(`${ns}/existing`),
      ),
    );
    await sleep(300);
    expect(standby.reconciled).toEqual([]);

    // Another holder takes the lease (as a partitioned leader would find on its return).
    const lease = await client.get(resources.leases, 'managers', ns);
    if (lease === undefined) throw new Error('lease not found');
    const deposedAt = performance.now();
    await client.replace(resources.leases, {
      ...lease,
      spec: { ...lease.spec, holderIdentity: 'intruder', renewTime: microTime(new Date()) },
    });
    expect(await leader.result).toBe('leadership-lost');
    figures.returnAfterLossMs = Math.round(performance.now() - deposedAt);
    expect(figures.returnAfterLossMs).toBeLessThanOrEqual(2000 + 2 * 500);

    // The intruder never renews: the standby takes over once the lease expires, and reconciles
    // everything its warm cache holds.
    await waitFor('the standby to lead', async () => Promise.resolve(standby.manager.isLeader()), 10_000);
    figures.standbyTakeoverMs = Math.round(performance.now() - deposedAt);
    await waitFor('the standby to reconcile both objects', async () =>
      Promise.resolve(standby.reconciled.length >= 2),
    );

    standby.stop.abort();
    expect(await standby.result).toBe('stopped');
    const released = await client.get(resources.leases, 'managers', ns);
    expect(released?.spec.holderIdentity).toBe('');
  });

  it('without leader election, runs until the signal aborts and lets reconciles in flight finish', async () => {
    const solo = replica('solo', undefined, 800);
    await client.create(configMaps, {
      metadata: { name: 'slow', namespace: ns, labels: { [TEST_OBJECT_LABEL]: 'true' } },
    });
    await waitFor('the manager to sync', async () => Promise.resolve(solo.manager.readiness() === undefined));
    expect(solo.manager.isLeader()).toBe(true);
    await sleep(200);
    solo.stop.abort();
    expect(await solo.result).toBe('stopped');
    // Every object was being reconciled when the stop came; each reconcile finished.
    expect(new Set(solo.reconciled)).toEqual(new Set([`${ns}/existing`, `${ns}/new`, `${ns}/slow`]));
  });
});
