// The Helm chart's RBAC is exactly what the operator needs. The chart is installed, the operator
// runs with a token of the chart's ServiceAccount (TokenRequest), and a workload that touches every
// path runs: backup, restore, restore into another namespace, a restore deleted in flight, a
// backup deleted, a backup location checked, another cluster's record imported and restored, a
// backup schedule run and pruned. Sufficient: RBAC refused nothing (no denial in the operator's log) and everything finished. Least
// privilege: every verb on every resource the chart grants was used, so narrowing any rule would
// make one of those requests fail.

import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { loadAll } from 'js-yaml';
import { labels } from '../../src/api/constants.js';
import type { KubeClient } from '../../src/runtime/kube-client.js';
import { resources } from '../../src/runtime/resources.js';
import { referenceGrant } from '../support/builders.js';
import { syncedBackupName } from '../../src/naming.js';
import { recordKey, recordOf } from '../../src/storage/backup-record.js';
import {
  createTestNamespace,
  deleteTestNamespace,
  nodes,
  testClient,
  uniqueName,
  waitFor,
} from './support/cluster.js';
import { helm, installChartIdentity, uninstallChart } from './support/identity.js';
import {
  locationManifest,
  startObjectStore,
  writeCredentials,
  type RunningObjectStore,
} from './support/object-store.js';
import { startOperator, type RunningOperator } from './support/operator.js';
import {
  backupManifest,
  deploySampleDataService,
  installCrds,
  restoreManifest,
  waitForBackup,
  waitForRestore,
} from './support/snapback.js';

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

/** Granted permissions this workload cannot reach deterministically, and the path that uses them. */
const RARE_PATHS: Record<string, string> = {
  'get backups': 'Initializing asks the API server about a Backup the cache does not have yet',
  'get volumesnapshots': 'a restarted backup step finds the snapshot it was creating already there',
  'list pods': 'a restored deployment that stays unhealthy is asked why (its pods and Warning events)',
  'get pods': 'a mover step repeated before the cache shows the pod it created finds it',
  'list persistentvolumes':
    'a failed or deleted attempt that restored from the bucket looks for the volumes it kept (Retain) on their way to its claims',
  'delete persistentvolumes':
    'a volume filled from the bucket that a failed or deleted attempt kept (Retain) on its way to its claim is released',
};

let client: KubeClient;
let operatorNs: string;
let workloads: string;
let elsewhere: string;
let release: string;
let operator: RunningOperator | undefined;
let nodeLabel: string;
let store: RunningObjectStore;
const BUCKET = 'rbac';

/** Requests the operator made, from its own metrics: "verb resource code" -> count. */
async function requests(): Promise<Map<string, number>> {
  const text = (await operator?.metrics()) ?? '';
  const counts = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match = /^snapback_api_requests_total\{verb="(\w+)",resource="([\w./]+)",code="(\d+)"\} (\d+)/.exec(
      line,
    );
    if (match === null) continue;
    const [, verb, resource, code, count] = match;
    counts.set(`${verb ?? ''} ${resource ?? ''} ${code ?? ''}`, Number(count));
  }
  return counts;
}

/**
 * Waits for the mover pod `run` names (a Backup's or Restore's, on a kwok node) to run, then ends
 * it as the kubelet would, its result the mover's for the manifest; returns the run.
 */
async function moverEnds(
  run: () => Promise<{ manifest: string; moverPod?: string; phase?: string } | undefined>,
  operation: 'backup' | 'restore',
): Promise<{ manifest: string; moverPod?: string }> {
  let started: { manifest: string; moverPod?: string; phase?: string } | undefined;
  // Running in status: the operator has seen the pod run (and read its log for progress).
  await waitFor(`a running ${operation} mover`, async () => {
    started = await run();
    return started?.phase === 'Running';
  });
  const { manifest, moverPod = '' } = started ?? { manifest: '' };
  const progress = {
    bytesTotal: 1024,
    bytesDone: 1024,
    bytesTransferred: 512,
    files: 3,
    chunksNew: 1,
    chunksReused: 0,
  };
  const result = { operation, manifest, progress, seconds: 1 };
  await client.mergePatch(
    resources.pods,
    moverPod,
    {
      status: {
        phase: 'Succeeded',
        containerStatuses: [
          {
            name: 'mover',
            image: 'snapback',
            imageID: '',
            ready: false,
            restartCount: 0,
            state: {
              terminated: {
                exitCode: 0,
                message: JSON.stringify(result),
                finishedAt: new Date().toISOString(),
              },
            },
          },
        ],
      },
    },
    { namespace: operatorNs, subresource: 'status' },
  );
  return { manifest, moverPod };
}

beforeAll(async () => {
  client = await testClient();
  await installCrds(client);
  operatorNs = await createTestNamespace(client, 'rbac-operator');
  workloads = await createTestNamespace(client, 'rbac-workloads');
  elsewhere = await createTestNamespace(client, 'rbac-elsewhere');
  nodeLabel = `snapback.dev/test-${workloads}`.slice(0, 63);
  release = `rbac-${operatorNs.slice(-8)}`;
  store = await startObjectStore(operatorNs);
  await store.createBucket(BUCKET);
  const kubeconfig = await installChartIdentity(release, operatorNs);
  operator = await startOperator(
    release,
    // All namespaces, as the chart's ClusterRole allows; the Lease where the chart's Role allows.
    {
      watchNamespace: '',
      namespace: operatorNs,
      leaderElection: { namespace: operatorNs, leaseName: release },
      // Data movers on the kwok nodes: they are created and deleted, and never end (enough here).
      mover: { nodeSelector: { type: 'kwok' }, tolerations: [] },
    },
    kubeconfig,
  );
});

afterAll(async () => {
  await operator?.stop();
  for (const node of (await client.list(nodes, {})).items) {
    await client.mergePatch(nodes, node.metadata.name ?? '', { metadata: { labels: { [nodeLabel]: null } } });
  }
  await uninstallChart(release, operatorNs);
  await store.stop();
  for (const ns of [operatorNs, workloads, elsewhere]) await deleteTestNamespace(client, ns);
  await client.close();
});

describe("the chart's RBAC", () => {
  it('lets the operator do all its work, and grants nothing it does not use', async () => {
    await deploySampleDataService(client, workloads, 'pg', 1);
    await client.create(resources.backups, backupManifest(workloads, 'pg-backup', 'pg'));
    await waitForBackup(client, workloads, 'pg-backup', 'Completed');

    await client.create(
      resources.restores,
      restoreManifest(workloads, 'here', {
        source: { backupName: 'pg-backup' },
        destination: { deploymentName: 'pg-here' },
      }),
    );
    await waitForRestore(client, workloads, 'here', 'Successful');
    await client.create(resources.referenceGrants, referenceGrant(workloads, elsewhere, 'pg-backup'));
    await client.create(
      resources.restores,
      restoreManifest(elsewhere, 'there', {
        source: { backupRef: { namespace: workloads, name: 'pg-backup' } },
      }),
    );
    await waitForRestore(client, elsewhere, 'there', 'Successful');

    // A backup location on a real store: its Secret read in the operator's namespace, its status
    // written; another cluster's record imported as a Backup, restored (its credentials read, never
    // copied), and the import removed once the record leaves the store.
    await writeCredentials(client, operatorNs, 'store-key', store.accessKeyId, store.secretAccessKey);
    const location = uniqueName('rbac');
    await client.create(
      resources.backupLocations,
      locationManifest(store, location, BUCKET, { validationFrequencySeconds: 1, syncPeriodSeconds: 1 }),
    );
    const pgBackup = await waitForBackup(client, workloads, 'pg-backup', 'Completed');
    // A Backup stored in the location: its record carries this cluster's identity (kube-system's UID).
    await client.create(
      resources.backups,
      backupManifest(workloads, 'pg-stored', 'pg', { backupLocation: location }),
    );
    await waitForBackup(client, workloads, 'pg-stored', 'Completed');
    await client.delete(resources.backups, 'pg-stored', { namespace: workloads });
    await waitFor(
      'the stored Backup and its record to go',
      async () => (await client.get(resources.backups, 'pg-stored', workloads)) === undefined,
    );
    // A Backup stored in a location that copies volume data: its data mover pod, on a kwok node
    // whose end the test writes as a kubelet would, copies the volume; a Restore rebuilds it from
    // the bucket, the filled volume moved to the restore's claim by the real PV controller.
    const copying = uniqueName('rbac-copy');
    await client.create(
      resources.backupLocations,
      locationManifest(store, copying, BUCKET, { copyVolumeData: true, syncPeriodSeconds: 0 }),
    );
    await client.create(
      resources.backups,
      backupManifest(workloads, 'pg-copying', 'pg', { backupLocation: copying }),
    );
    const copy = await moverEnds(async () => {
      const backup = await client.get(resources.backups, 'pg-copying', workloads);
      return backup?.status?.volumes?.[0]?.dataCopy;
    }, 'backup');
    await waitForBackup(client, workloads, 'pg-copying', 'Completed');
    await client.create(
      resources.restores,
      restoreManifest(workloads, 'from-bucket', {
        source: { backupName: 'pg-copying', volumesFrom: 'BackupLocation' },
        destination: { deploymentName: 'pg-from-bucket' },
      }),
    );
    await moverEnds(async () => {
      const restore = await client.get(resources.restores, 'from-bucket', workloads);
      return restore?.status?.volumes?.[0]?.dataRestore;
    }, 'restore');
    const fromBucket = await waitForRestore(client, workloads, 'from-bucket', 'Successful');
    expect(fromBucket.status?.volumes?.[0]).toMatchObject({
      restoredFrom: 'BackupLocation',
      phase: 'Bound',
      dataRestore: { manifest: copy.manifest, phase: 'Completed' },
    });
    const restoredClaim = await client.get(
      resources.persistentVolumeClaims,
      'data-pg-from-bucket-0',
      workloads,
    );
    const restoredVolume = await client.get(
      resources.persistentVolumes,
      restoredClaim?.spec.volumeName ?? '',
    );
    expect(restoredVolume?.spec.persistentVolumeReclaimPolicy).toBe('Delete');
    expect(restoredVolume?.spec.claimRef?.namespace).toBe(workloads);
    await client.delete(resources.backups, 'pg-copying', { namespace: workloads });
    await waitFor('the copying Backup and every mover to go', async () => {
      const movers = await client.list(resources.pods, {
        namespace: operatorNs,
        labelSelector: labels.moverFor,
      });
      return (
        movers.items.length === 0 &&
        (await client.get(resources.backups, 'pg-copying', workloads)) === undefined
      );
    });
    await client.delete(resources.backupLocations, copying);
    const key = recordKey('east', workloads, 'pg-backup');
    const record = store.records.encode(
      recordOf(pgBackup, pgBackup.status ?? {}, { name: 'east', uid: 'uid-east' }),
    ).body;
    await store.inBucket(BUCKET, (writer) => writer.put(key, record));
    const imported = syncedBackupName({ cluster: 'east', namespace: workloads, name: 'pg-backup' });
    await waitForBackup(client, operatorNs, imported, 'Completed');
    await client.create(resources.referenceGrants, referenceGrant(operatorNs, elsewhere));
    await client.create(
      resources.restores,
      restoreManifest(elsewhere, 'synced', {
        source: { backupRef: { namespace: operatorNs, name: imported } },
        destination: { deploymentName: 'pg-synced' },
      }),
    );
    await waitForRestore(client, elsewhere, 'synced', 'Successful');
    await store.inBucket(BUCKET, (writer) => writer.delete(key));
    await waitFor(
      'the import to go with its record',
      async () => (await client.get(resources.backups, imported, operatorNs)) === undefined,
    );
    await client.delete(resources.backupLocations, location);

    // A restore deleted while its deployment waits for a node: its StatefulSet and claims go.
    await client.create(
      resources.restores,
      restoreManifest(workloads, 'abandoned', {
        source: { backupName: 'pg-backup' },
        destination: { deploymentName: 'pg-abandoned' },
        podSchedulingConfig: { nodeSelector: { [nodeLabel]: 'never' } },
      }),
    );
    await waitFor('the abandoned restore to wait for its pods', async () => {
      const restore = await client.get(resources.restores, 'abandoned', workloads);
      return restore?.status?.phase === 'RestoringDataServiceDeployment';
    });
    await client.delete(resources.restores, 'abandoned', { namespace: workloads });
    await waitFor('the abandoned restore and its StatefulSet to go', async () => {
      const [restore, sts] = await Promise.all([
        client.get(resources.restores, 'abandoned', workloads),
        client.get(resources.statefulSets, 'pg-abandoned', workloads),
      ]);
      return restore === undefined && sts === undefined;
    });
    // Deleting the cross-namespace restore removes its imported snapshots and their contents.
    await client.delete(resources.restores, 'there', { namespace: elsewhere });
    await waitFor(
      'the cross-namespace restore to go',
      async () => (await client.get(resources.restores, 'there', elsewhere)) === undefined,
    );
    await client.delete(resources.backups, 'pg-backup', { namespace: workloads });
    await waitFor(
      'the Backup to go',
      async () => (await client.get(resources.backups, 'pg-backup', workloads)) === undefined,
    );

    // A BackupSchedule: its status written, its Backups created and, past retention, deleted.
    await client.create(resources.backupSchedules, {
      metadata: { name: 'every-2s', namespace: workloads },
      spec: {
        schedule: '*/2 * * * * *',
        template: { deployment: { name: 'pg' } },
        retention: { keepLast: 1 },
      },
    });
    await waitFor(
      'a scheduled Backup pruned by retention',
      async () =>
        (
          await client.list(resources.events, {
            namespace: workloads,
            fieldSelector: 'involvedObject.kind=BackupSchedule,reason=Pruned',
          })
        ).items.length > 0,
      120_000,
    );
    await client.delete(resources.backupSchedules, 'every-2s', { namespace: workloads });
    const scheduled = { namespace: workloads, labelSelector: 'snapback.dev/schedule=every-2s' };
    for (const backup of (await client.list(resources.backups, scheduled)).items) {
      await client.delete(resources.backups, backup.metadata.name ?? '', { namespace: workloads });
    }
    await waitFor(
      "the schedule's Backups to go",
      async () => (await client.list(resources.backups, scheduled)).items.length === 0,
    );

    const made = await requests();
    // A 403 can also mean a namespace being deleted (other test files' leftovers, seen by this
    // all-namespace operator): the API server's RBAC denials are told apart by their message.
    const log = readFileSync(operator?.logFile ?? '', 'utf8');
    expect(log.split('\n').length).toBeGreaterThan(20);
    const denials = log.split('\n').filter((line) => /cannot \w+ resource/.test(line));
    expect(denials).toEqual([]);

    const rendered = loadAll(await helm('get', 'manifest', release, '--namespace', operatorNs)) as ({
      kind: string;
      metadata: { labels?: Record<string, string> };
      rules?: Rule[];
    } | null)[];
    // The operator's roles; those aggregated into the default user roles are the users'.
    const forUsers = (labels: Record<string, string> = {}) =>
      Object.keys(labels).some((label) => label.startsWith('rbac.authorization.k8s.io/aggregate-to-'));
    const rules = rendered.flatMap((doc) =>
      (doc?.kind === 'ClusterRole' || doc?.kind === 'Role') && !forUsers(doc.metadata.labels)
        ? (doc.rules ?? [])
        : [],
    );
    const unused: string[] = [];
    for (const rule of rules) {
      for (const resource of rule.resources) {
        for (const verb of rule.verbs) {
          // Status subresources are counted under their resource.
          const counted = resource.replace(/\/status$/, '');
          const used = [...made.keys()].some((key) => key.startsWith(`${verb} ${counted} `));
          if (!used && !(`${verb} ${resource}` in RARE_PATHS)) unused.push(`${verb} ${resource}`);
        }
      }
    }
    expect(unused).toEqual([]);
  });
});
