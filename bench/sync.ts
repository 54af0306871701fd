// Backup sync at scale: `count` records of another cluster in a bucket (versitygw, signatures
// checked), imported by the operator as read-only Backups. The baseline, measured in the same run
// against the same store and API server, is the least an import needs done in a plain loop in
// this process: GET the record, verify its checksum, create the Backup, write its status. Then
// the steady state (syncs that find nothing new) and the removal of every import once the
// records leave the store.

import type { Backup } from '../src/api/generated/types.js';
import type { KubeClient } from '../src/runtime/kube-client.js';
import { resources } from '../src/runtime/resources.js';
import { syncedBackupName } from '../src/naming.js';
import { RECORDS_PREFIX, recordKey, recordOf, type BackupRecord } from '../src/storage/backup-record.js';
import { syncedBackup } from '../src/controllers/backuplocation/sync.js';
import { forEachLimit } from '../src/runtime/async.js';
import { createTestNamespace, deleteTestNamespace } from '../test/integration/support/cluster.js';
import {
  locationManifest,
  startObjectStore,
  writeCredentials,
} from '../test/integration/support/object-store.js';
import { sampleStatefulSet } from '../test/integration/support/snapback.js';
import { cpuSeconds } from './measure.js';
import {
  readCounters,
  startBenchOperator,
  summarize,
  type Identity,
  type RequestSummary,
} from './operator-run.js';
import { until, watchArrivals } from './watch.js';

export interface SyncRun {
  records: number;
  /** Bytes of one record as stored. */
  recordBytes: number;
  /** Location created → every import Completed. */
  seconds: number;
  importsPerSecond: number;
  baseline: { seconds: number; importsPerSecond: number; writesPerImport: number };
  requests: RequestSummary;
  operatorCpuSeconds: number;
  /** Syncs that found nothing new, over `steadySeconds`. */
  steady: { seconds: number; objectWrites: number; locationStatusWrites: number };
  /** Every record deleted from the store → every import gone. */
  removalSeconds: number;
}

const SYNC_PERIOD_SECONDS = 2;
const STEADY_SECONDS = 10;
const BUCKET = 'bench-sync';

/** A record as a real backup of the sample data service with three replicas makes it. */
function sampleRecord(index: number): BackupRecord {
  const name = `nightly-${String(index).padStart(5, '0')}`;
  const manifest = { apiVersion: 'apps/v1', kind: 'StatefulSet', ...sampleStatefulSet('shop', 'pg', 3) };
  const backup: Backup = {
    metadata: {
      name,
      namespace: 'shop',
      uid: `uid-${String(index)}`,
      creationTimestamp: '2026-11-23T02:30:00Z',
    },
    spec: { deployment: { name: 'pg' }, backupLocation: 'primary' },
  };
  const volumes = [0, 1, 2].map((replica) => ({
    pvcName: `data-pg-${String(replica)}`,
    volumeSnapshotName: `${name}-data-pg-${String(replica)}`,
    cloudSnapId: `snap-${String(index)}-${String(replica)}`,
    sizeBytes: 1_073_741_824,
    driver: 'sim.snapback.dev',
    volumeSnapshotClassName: 'snapback-sim',
  }));
  return recordOf(
    backup,
    {
      phase: 'Completed',
      volumes,
      cloudSnapId: volumes[0]?.cloudSnapId ?? '',
      fileSize: 3 * 1_073_741_824,
      startTime: '2026-11-23T02:30:00Z',
      completionTime: '2026-11-23T02:30:41Z',
      backupCapability: { backup: 'v1' },
      dataServiceDeploymentMetaData: {
        name: 'pg',
        targetClusterName: 'east',
        namespaceName: 'shop',
        replicas: 3,
      },
      manifest,
    },
    { name: 'east', uid: 'uid-east' },
  );
}

export async function runSync(admin: KubeClient, identity: Identity, count: number): Promise<SyncRun> {
  const store = await startObjectStore(`bench-sync-${String(count)}`);
  await store.createBucket(BUCKET);
  const secret = `bench-sync-${String(count)}`;
  await writeCredentials(admin, identity.namespace, secret, store.accessKeyId, store.secretAccessKey);
  const writer = store.open(BUCKET);
  const keys: string[] = [];
  let recordBytes = 0;
  await forEachLimit(
    Array.from({ length: count }, (_, i) => i),
    16,
    async (i) => {
      const record = sampleRecord(i);
      const { body } = store.records.encode(record);
      recordBytes = body.length;
      const key = recordKey(record.cluster, record.metadata.namespace, record.metadata.name);
      keys.push(key);
      await writer.put(key, body);
    },
  );

  // Baseline: the least an import needs, one record after another.
  const baselineNs = await createTestNamespace(admin, 'bench-sync-baseline');
  const baselineStart = performance.now();
  for (const key of await writer.list(RECORDS_PREFIX)) {
    const { record } = store.records.decode(key, (await writer.get(key)) ?? '');
    const source = {
      cluster: record.cluster,
      namespace: record.metadata.namespace,
      name: record.metadata.name,
    };
    const created = await admin.create(
      resources.backups,
      syncedBackup('primary', baselineNs, syncedBackupName(source), record),
    );
    await admin.replace(resources.backups, { ...created, status: record.status }, 'status');
  }
  const baselineSeconds = (performance.now() - baselineStart) / 1000;
  await deleteTestNamespace(admin, baselineNs);

  // Snapback.
  const namespace = await createTestNamespace(admin, 'bench-sync');
  const operator = await startBenchOperator(`bench-${namespace}`, namespace, identity);
  const completed = new Set<string>();
  const imported = until(() => completed.size === count, `${count} imports Completed`, 1_800_000);
  const watch = await watchArrivals(admin, resources.backups, namespace, (backup) => {
    if (backup.status?.phase === 'Completed') completed.add(backup.metadata.name ?? '');
    imported.notify(backup.status?.phase === 'Failed' ? `${backup.metadata.name ?? ''} Failed` : undefined);
  });
  const countersBefore = await readCounters(operator);
  const cpuBefore = cpuSeconds(operator.pid);
  const location = `bench-sync-${String(count)}`;
  const started = performance.now();
  await admin.create(
    resources.backupLocations,
    locationManifest(store, location, BUCKET, {
      credentialsSecretName: secret,
      syncPeriodSeconds: SYNC_PERIOD_SECONDS,
      validationFrequencySeconds: SYNC_PERIOD_SECONDS,
    }),
  );
  await imported.done;
  const seconds = (performance.now() - started) / 1000;
  const countersAfter = await readCounters(operator);
  const operatorCpuSeconds = cpuSeconds(operator.pid) - cpuBefore;

  await new Promise((resolve) => setTimeout(resolve, STEADY_SECONDS * 1000));
  const steadyCounters = await readCounters(operator);
  const steady = summarize(steadyCounters.requests, countersAfter.requests);

  const removalStart = performance.now();
  await forEachLimit(keys, 16, (key) => writer.delete(key));
  writer.close();
  await watch.stop();
  for (;;) {
    const { items } = await admin.list(resources.backups, { namespace });
    if (items.length === 0) break;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  const removalSeconds = (performance.now() - removalStart) / 1000;

  await operator.stop();
  await admin.delete(resources.backupLocations, location);
  await deleteTestNamespace(admin, namespace);
  await store.stop();
  return {
    records: count,
    recordBytes,
    seconds,
    importsPerSecond: count / seconds,
    baseline: { seconds: baselineSeconds, importsPerSecond: count / baselineSeconds, writesPerImport: 2 },
    requests: summarize(countersAfter.requests, countersBefore.requests),
    operatorCpuSeconds,
    steady: {
      seconds: STEADY_SECONDS,
      objectWrites: steady.objectWrites,
      locationStatusWrites: steady.byVerbAndResource['update backuplocations'] ?? 0,
    },
    removalSeconds,
  };
}
