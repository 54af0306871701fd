// The real node (kubelet, containerd, runc, CNI) and the project's CSI driver behind the real
// csi-provisioner and csi-snapshotter: pods that really run, and a real PostgreSQL backed up and
// restored with its rows compared. The operator runs as a local process here; the Helm-installed
// pod is helm-operator.test.ts.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { labels } from '../../src/api/constants.js';
import type { KubeObject, Pod } from '../../src/api/kubernetes.js';
import type { KubeClient } from '../../src/runtime/kube-client.js';
import { resources, type ResourceType } from '../../src/runtime/resources.js';
import {
  createTestNamespace,
  deleteTestNamespace,
  nodes,
  REPO_ROOT,
  testClient,
  waitFor,
} from './support/cluster.js';
import { kubectl } from './support/identity.js';
import { startOperator, type RunningOperator } from './support/operator.js';
import {
  backUpAndRestore,
  CSI_DATA_DIR,
  CSI_DRIVER,
  CSI_IMMEDIATE_STORAGE_CLASS,
  deployPostgres,
  imageRef,
  onRealNode,
  postgresStatefulSet,
  postgresWithRows,
  psql,
  REAL_NODE,
  REAL_NODE_TAINT,
  tableDigest,
} from './support/real-node.js';
import {
  backupManifest,
  installCrds,
  restoreManifest,
  waitForBackup,
  waitForRestore,
} from './support/snapback.js';

let client: KubeClient;
let namespace: string;
let operator: RunningOperator;
/** Cluster-scoped objects a test made, deleted after the namespace. */
const cleanups: (() => Promise<unknown>)[] = [];

async function createClusterObject<T extends KubeObject>(type: ResourceType<T>, object: T): Promise<void> {
  await client.create(type, object);
  cleanups.push(() => client.delete(type, object.metadata.name ?? ''));
}

beforeAll(async () => {
  client = await testClient();
  await installCrds(client);
  namespace = await createTestNamespace(client, 'real');
  operator = await startOperator(`real-${namespace}`, { watchNamespace: namespace });
});

afterAll(async () => {
  await operator.stop();
  await deleteTestNamespace(client, namespace);
  for (const cleanup of cleanups) await cleanup();
  await client.close();
});

/** Runs a pod to completion and returns its log (kubectl logs: API server to kubelet). */
async function runToCompletion(pod: Pod): Promise<{ phase: string; log: string }> {
  const name = pod.metadata.name ?? '';
  await client.create(resources.pods, pod);
  const done = await waitFor(
    `pod ${namespace}/${name} to finish`,
    async () => {
      const current = await client.get(resources.pods, name, namespace);
      const phase = current?.status?.phase;
      return phase === 'Succeeded' || phase === 'Failed' ? current : undefined;
    },
    90_000,
  );
  return { phase: done.status?.phase ?? '', log: await kubectl('-n', namespace, 'logs', name) };
}

describe('the real node', () => {
  it('is Ready, tainted and labelled, and kwok leaves it to its kubelet', async () => {
    const node = await client.get(nodes, REAL_NODE);
    expect(node?.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
    expect(node?.spec?.taints).toEqual(
      expect.arrayContaining([expect.objectContaining({ key: REAL_NODE_TAINT, effect: 'NoSchedule' })]),
    );
    expect(node?.metadata.labels?.[REAL_NODE_TAINT]).toBe('true');
    expect(node?.metadata.annotations?.['kwok.x-k8s.io/node']).toBeUndefined();
    expect(node?.status?.nodeInfo?.kubeletVersion).toBe('v1.37.2');
    expect(node?.status?.nodeInfo?.containerRuntimeVersion).toBe('containerd://2.4.2');
    // kubelet registered the CSI driver from its own registration socket.
    const csiNode = await kubectl('get', 'csinode', REAL_NODE, '-o', 'jsonpath={.spec.drivers[*].name}');
    expect(csiNode.split(' ')).toContain(CSI_DRIVER);
  });

  it('runs containers for real: limits enforced, no route off the machine, the kubernetes Service reachable', async () => {
    // Node 24 from the operator's image: it reads its cgroup and routes, and calls the API server
    // through the `kubernetes` Service with the ServiceAccount's CA (kube-proxy's rules).
    const script = `
      const fs = require('node:fs'), https = require('node:https');
      const sa = '/var/run/secrets/kubernetes.io/serviceaccount/';
      const routes = fs.readFileSync('/proc/net/route', 'utf8').trim().split('\\n').slice(1).map((l) => l.split('\\t')[1]);
      const req = https.get({ host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT,
        path: '/version', ca: fs.readFileSync(sa + 'ca.crt'),
        headers: { authorization: 'Bearer ' + fs.readFileSync(sa + 'token', 'utf8') } }, (res) => {
        let body = ''; res.on('data', (c) => (body += c)); res.on('end', () => {
          console.log(JSON.stringify({
            memoryLimit: fs.readFileSync('/sys/fs/cgroup/memory/memory.limit_in_bytes', 'utf8').trim(),
            cpuQuota: fs.readFileSync('/sys/fs/cgroup/cpu/cpu.cfs_quota_us', 'utf8').trim(),
            destinations: routes, service: process.env.KUBERNETES_SERVICE_HOST,
            status: res.statusCode, version: JSON.parse(body).gitVersion, uid: process.getuid(), cwd: process.cwd() }));
        });
      });
      req.on('error', (e) => { console.log(JSON.stringify({ error: e.message })); process.exit(1); });`;
    const { phase, log } = await runToCompletion({
      metadata: { name: 'probe', namespace },
      spec: {
        ...onRealNode,
        restartPolicy: 'Never',
        containers: [
          {
            name: 'probe',
            image: imageRef('snapback'),
            imagePullPolicy: 'Never',
            command: ['node', '-e', script],
            resources: { limits: { memory: '64Mi', cpu: '200m' } },
          },
        ],
      },
    });
    expect(phase).toBe('Succeeded');
    const seen = JSON.parse(log.trim().split('\n').pop() ?? '{}') as Record<string, unknown>;
    expect(seen).toMatchObject({
      memoryLimit: String(64 * 1024 * 1024),
      cpuQuota: '20000',
      service: '10.0.0.1',
      status: 200,
      version: 'v1.37.2',
      // No securityContext here: the image's own USER and WORKDIR, as the Dockerfile sets them.
      uid: 65532,
      cwd: '/app',
    });
    // Only the pod subnet and the service range: no default route (00000000) out of the machine.
    expect(seen.destinations).not.toContain('00000000');
    expect([...((seen.destinations as string[] | undefined) ?? [])].sort()).toEqual(['0000000A', '0000F40A']);
  });

  it('keeps pods that do not tolerate its taint on the kwok nodes', async () => {
    await client.create(resources.pods, {
      metadata: { name: 'elsewhere', namespace },
      spec: { containers: [{ name: 'c', image: imageRef('postgres') }] },
    });
    const nodeName = await waitFor('pod elsewhere to be scheduled', async () => {
      const current = await client.get(resources.pods, 'elsewhere', namespace);
      const name: unknown = current?.spec.nodeName;
      return typeof name === 'string' ? name : undefined;
    });
    expect(nodeName).not.toBe(REAL_NODE);
    const node = await client.get(nodes, nodeName);
    expect(node?.metadata.labels?.type).toBe('kwok');
  });
});

describe('PostgreSQL backed up and restored through the real CSI sidecars', () => {
  it('restores the rows as they were at the backup into a new StatefulSet, on a WaitForFirstConsumer class', async () => {
    const { host: source, digest: before } = await postgresWithRows(client, namespace, 'pg', {
      table: 'orders',
      rows: 5000,
    });
    expect(before.rows).toBe(5000);

    const started = Date.now();
    const {
      backup,
      restore,
      host: restored,
    } = await backUpAndRestore(client, namespace, {
      deployment: 'pg',
      copy: 'pg-restored',
      // Written after the backup: the restore must not have it.
      afterBackup: () =>
        psql(source, 'INSERT INTO orders VALUES (100001, $$after the backup$$)').then(() => undefined),
    });
    const seconds = (Date.now() - started) / 1000;
    process.stdout.write(`real-data backup and restore of 5000 rows: ${seconds.toFixed(1)} s\n`);
    expect(restore.status?.errorCode).toBeUndefined();
    const [volume] = backup.status?.volumes ?? [];
    // The snapshot is a real copy in the driver's data directory.
    expect(volume?.driver).toBe(CSI_DRIVER);
    expect(existsSync(join(CSI_DATA_DIR, 'snapshots', volume?.cloudSnapId ?? 'none'))).toBe(true);

    expect(await tableDigest(restored, 'orders')).toEqual(before);
    expect((await tableDigest(source, 'orders')).rows).toBe(5001);
    const claim = await client.get(resources.persistentVolumeClaims, 'data-pg-restored-0', namespace);
    expect(claim?.status?.phase).toBe('Bound');
    expect(claim?.spec.dataSource).toMatchObject({ kind: 'VolumeSnapshot' });
  });
});

describe('storage errors through the real sidecars', () => {
  it('a snapshot the driver fails twice with Unavailable still completes the Backup', async () => {
    await createClusterObject(resources.volumeSnapshotClasses, {
      metadata: { name: `${namespace}-flaky` },
      driver: CSI_DRIVER,
      deletionPolicy: 'Delete',
      parameters: { 'fail.csi.snapback.test/create-snapshot': 'Unavailable:2' },
    });
    await deployPostgres(
      client,
      postgresStatefulSet(namespace, 'flaky', { storageClassName: CSI_IMMEDIATE_STORAGE_CLASS }),
    );
    await client.create(
      resources.backups,
      backupManifest(namespace, 'flaky-backup', 'flaky', { volumeSnapshotClassName: `${namespace}-flaky` }),
    );
    const backup = await waitForBackup(client, namespace, 'flaky-backup', 'Completed');
    expect(backup.status?.volumes?.[0]?.volumeSnapshotClassName).toBe(`${namespace}-flaky`);
    // The driver did fail it twice: the snapshotter names the CSI snapshot after the VolumeSnapshot.
    const snapshot = await client.get(
      resources.volumeSnapshots,
      backup.status?.volumes?.[0]?.volumeSnapshotName ?? '',
      namespace,
    );
    const driverLog = readFileSync(join(REPO_ROOT, '.cache', 'cluster', 'logs', 'csi-driver.log'), 'utf8');
    expect(driverLog).toContain(
      `injected failure 2 of 2: fail.csi.snapback.test/create-snapshot=Unavailable:2 for "snapshot-${snapshot?.metadata.uid ?? '?'}"`,
    );
  });

  it('a volume the driver refuses with InvalidArgument once its pod is scheduled fails the Restore, naming the cause', async () => {
    // The class the source was provisioned with is replaced, before the restore, by one of the same
    // name the driver refuses (as a class changed to an incompatible pool would be).
    const className = `${namespace}-changing`;
    const storageClass = {
      metadata: { name: className },
      provisioner: CSI_DRIVER,
      volumeBindingMode: 'WaitForFirstConsumer',
      reclaimPolicy: 'Delete',
    };
    await createClusterObject(resources.storageClasses, storageClass);
    await deployPostgres(client, postgresStatefulSet(namespace, 'refused', { storageClassName: className }));
    await client.create(resources.backups, backupManifest(namespace, 'refused-backup', 'refused'));
    await waitForBackup(client, namespace, 'refused-backup', 'Completed');
    await client.delete(resources.storageClasses, className);
    await waitFor(
      'the class to be gone',
      async () => (await client.get(resources.storageClasses, className)) === undefined,
    );
    await client.create(resources.storageClasses, {
      ...storageClass,
      parameters: { 'fail.csi.snapback.test/create-volume': 'InvalidArgument' },
    });

    await client.create(
      resources.restores,
      restoreManifest(namespace, 'refused-restore', {
        source: { backupName: 'refused-backup' },
        destination: { deploymentName: 'refused-copy' },
      }),
    );
    const restore = await waitForRestore(client, namespace, 'refused-restore', 'Failed');
    expect(restore.status?.errorCode).toBe('CloudSnapRestoreFailed');
    expect(restore.status?.errorMessage).toMatch(
      /^volume data-refused-copy-0 could not be restored from snapshot \S+: .*code = InvalidArgument desc = injected failure/,
    );
    // Failed while its pod waited for the volume: the StatefulSet it made stays, labelled with the attempt.
    expect(restore.status?.phaseHistory?.map((entry) => entry.phase)).toContain(
      'RestoringDataServiceDeployment',
    );
    const copy = await client.get(resources.statefulSets, 'refused-copy', namespace);
    expect(copy?.metadata.labels?.[labels.restoreAttempt]).toBe(restore.status?.customResourceName);
  });
});
