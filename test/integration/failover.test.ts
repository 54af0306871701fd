// Two operator processes on one Lease, as the Helm chart's two replicas run: only the leader
// reconciles; the leader killed with SIGKILL, the other takes over within the lease duration and
// finishes the restores that were in flight.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { KubeClient } from '../../src/runtime/kube-client.js';
import { resources } from '../../src/runtime/resources.js';
import {
  createTestNamespace,
  deleteTestNamespace,
  nodes,
  REPO_ROOT,
  testClient,
  waitFor,
} from './support/cluster.js';
import { metricValue, startOperator, type RunningOperator } from './support/operator.js';
import {
  backupManifest,
  deploySampleDataService,
  installCrds,
  restoreManifest,
  waitForBackup,
  waitForRestore,
} from './support/snapback.js';

const LEASE_SECONDS = 4;

let client: KubeClient;
let namespace: string;
let nodeLabel: string;
const replicas: RunningOperator[] = [];

/**
 * Every metric of the README's table is exported, and its samples carry exactly the labels the
 * table names (plus `le` on histogram buckets).
 */
function expectDocumentedMetrics(scraped: string): void {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const table = readme.slice(readme.indexOf('### Metrics'), readme.indexOf('### Argo CD'));
  const rows = table.split('\n').filter((line) => line.startsWith('| `snapback_'));
  expect(rows.length).toBeGreaterThan(10);
  for (const row of rows) {
    const [names = '', labelCell = ''] = row.split('|').slice(1, 3);
    const documented = [...labelCell.matchAll(/`(\w+)`/g)].map((m) => m[1] ?? '').sort();
    for (const [, name = ''] of names.matchAll(/`(snapback_\w+)`/g)) {
      expect({ name, exported: scraped.includes(`# TYPE ${name} `) }).toEqual({ name, exported: true });
      const samples = scraped
        .split('\n')
        .filter((line) => /^\w+/.exec(line)?.[0]?.replace(/_(bucket|sum|count)$/, '') === name);
      for (const sample of samples) {
        const labels = [...(/\{(.*)\}/.exec(sample)?.[1] ?? '').matchAll(/(\w+)="/g)]
          .map((m) => m[1] ?? '')
          .filter((label) => label !== 'le')
          .sort();
        expect({ name, labels }).toEqual({ name, labels: documented });
      }
    }
  }
}

const leads = async (replica: RunningOperator): Promise<boolean> =>
  metricValue(await replica.metrics(), 'snapback_leader') === 1;

beforeAll(async () => {
  client = await testClient();
  await installCrds(client);
  namespace = await createTestNamespace(client, 'failover');
  nodeLabel = `snapback.dev/test-${namespace}`.slice(0, 63);
  for (const name of ['a', 'b']) {
    replicas.push(
      await startOperator(`failover-${namespace}-${name}`, {
        watchNamespace: namespace,
        leaderElection: { leaseName: `snapback-failover-${namespace}`, leaseDurationSeconds: LEASE_SECONDS },
      }),
    );
  }
});

afterAll(async () => {
  await Promise.all(replicas.map((replica) => replica.stop()));
  for (const node of (await client.list(nodes, {})).items) {
    await client.mergePatch(nodes, node.metadata.name ?? '', { metadata: { labels: { [nodeLabel]: null } } });
  }
  await deleteTestNamespace(client, namespace);
  await client.close();
});

describe('two replicas', () => {
  it('only the leader reconciles; after a SIGKILL the other takes over and finishes the restores', async () => {
    const leader = await waitFor('a leader', async () => {
      for (const replica of replicas) if (await leads(replica)) return replica;
      return undefined;
    });
    const standby = replicas.find((replica) => replica !== leader);
    if (standby === undefined) throw new Error('no standby');

    await deploySampleDataService(client, namespace, 'pg', 2);
    await client.create(resources.backups, backupManifest(namespace, 'pg-backup', 'pg'));
    await waitForBackup(client, namespace, 'pg-backup', 'Completed');
    // Held in flight: their pods fit no node until the test labels one.
    for (const name of ['r1', 'r2']) {
      await client.create(
        resources.restores,
        restoreManifest(namespace, name, {
          source: { backupName: 'pg-backup' },
          destination: { deploymentName: `pg-${name}` },
          podSchedulingConfig: { nodeSelector: { [nodeLabel]: 'yes' } },
        }),
      );
      await waitFor(`${name} in RestoringDataServiceDeployment`, async () => {
        const restore = await client.get(resources.restores, name, namespace);
        return restore?.status?.phase === 'RestoringDataServiceDeployment';
      });
    }
    expect(await leads(standby)).toBe(false);
    expect(metricValue(await standby.metrics(), 'snapback_reconcile_total')).toBe(0);
    expect(metricValue(await leader.metrics(), 'snapback_reconcile_total')).toBeGreaterThan(0);

    const killedAt = performance.now();
    await leader.kill();
    await waitFor('the standby to lead', () => leads(standby), 3 * LEASE_SECONDS * 1000, 50);
    const takeoverMs = performance.now() - killedAt;
    console.log(`failover: takeover ${Math.round(takeoverMs)} ms after SIGKILL (lease ${LEASE_SECONDS} s)`);
    expect(takeoverMs).toBeLessThan((LEASE_SECONDS + 3) * 1000);

    const [node] = (await client.list(nodes, {})).items;
    await client.mergePatch(nodes, node?.metadata.name ?? '', {
      metadata: { labels: { [nodeLabel]: 'yes' } },
    });
    for (const name of ['r1', 'r2']) {
      const restore = await waitForRestore(client, namespace, name, 'Successful');
      expect(restore.status?.attempt).toBe(1);
      expect(new Set(restore.status?.phaseHistory?.map((p) => p.phase)).size).toBe(
        restore.status?.phaseHistory?.length,
      );
    }
    const scraped = await standby.metrics();
    expect(metricValue(scraped, 'snapback_reconcile_total')).toBeGreaterThan(0);
    expectDocumentedMetrics(scraped);
    const { items: sets } = await client.list(resources.statefulSets, { namespace });
    expect(sets.map((s) => s.metadata.name).sort()).toEqual(['pg', 'pg-r1', 'pg-r2']);
  });
});
