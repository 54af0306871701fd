// N Backups at once of N StatefulSets with three volumes each, by Snapback and by the client-go
// controller doing the same work (bench/go/backup.go), one after the other over the same
// StatefulSets: throughput, snapshots-ready → Completed latency, CPU and requests per backup.

import type { Backup } from '../src/api/generated/types.js';
import type { StatefulSet, VolumeSnapshot } from '../src/api/kubernetes.js';
import type { KubeClient } from '../src/runtime/kube-client.js';
import { resources } from '../src/runtime/resources.js';
import { createTestNamespace } from '../test/integration/support/cluster.js';
import { backupManifest, sampleStatefulSet } from '../test/integration/support/snapback.js';
import { startGoController } from './baselines.js';
import {
  clusterPids,
  cpuSeconds,
  distribution,
  serverServiceAccountRequests,
  type Distribution,
} from './measure.js';
import {
  drained,
  readCounters,
  startBenchOperator,
  summarize,
  type Identity,
  type RequestSummary,
} from './operator-run.js';
import { until, watchArrivals } from './watch.js';

/** The claim templates of each StatefulSet backed up: three volumes, one replica. */
const VOLUMES = ['data', 'wal', 'archive'];
const TIMEOUT_MS = 1_800_000;

export interface BackupFigures {
  backups: number;
  seconds: number;
  backupsPerSecond: number;
  /** Requests the API server dispatched for the operator's ServiceAccount in the same window. */
  serverRequests: number;
  /** From the last of a backup's snapshots arriving ready to its Completed arriving, in ms. */
  snapshotsReadyToCompletedMs: Distribution;
  /** From a Backup's creation being acknowledged to its Completed arriving, in ms. */
  createdToCompletedMs: Distribution;
  /** By process: the controller ("operator") and every process of the cluster. */
  cpuSeconds: Record<string, number>;
  /** Mutating calls: counted by the Go controller itself, by Snapback's request counters. */
  writes: number;
}

export interface BackupRun {
  go: BackupFigures;
  snapback: BackupFigures & { requests: RequestSummary };
}

const statefulSetName = (i: number, count: number): string =>
  `s${String(i).padStart(Math.max(3, String(count - 1).length), '0')}`;

/** `count` one-replica StatefulSets with three claim templates each, every claim Bound. */
async function statefulSets(client: KubeClient, count: number): Promise<string> {
  const namespace = await createTestNamespace(client, `bench-backups-${count}`);
  const bound = new Set<string>();
  const allBound = until(() => bound.size === count * VOLUMES.length, 'every claim Bound', TIMEOUT_MS);
  const watch = await watchArrivals(client, resources.persistentVolumeClaims, namespace, (claim) => {
    if (claim.status?.phase === 'Bound') bound.add(claim.metadata.name ?? '');
    allBound.notify();
  });
  for (let i = 0; i < count; i += 20) {
    await Promise.all(
      Array.from({ length: Math.min(20, count - i) }, (_, k) => {
        const set: StatefulSet = sampleStatefulSet(namespace, statefulSetName(i + k, count), 1);
        const [template] = set.spec.volumeClaimTemplates ?? [];
        if (template === undefined) throw new Error('the sample StatefulSet has no claim template');
        set.spec.volumeClaimTemplates = VOLUMES.map((name) => ({ ...template, metadata: { name } }));
        return client.create(resources.statefulSets, set);
      }),
    );
  }
  await allBound.done;
  await watch.stop();
  return namespace;
}

/**
 * Creates a Backup `<prefix>-<set>` of each StatefulSet and watches the controller of process
 * `pid` complete them all.
 */
async function measureBackups(
  client: KubeClient,
  namespace: string,
  prefix: string,
  pid: number,
  count: number,
): Promise<Omit<BackupFigures, 'writes'>> {
  const names = Array.from({ length: count }, (_, i) => `${prefix}-${statefulSetName(i, count)}`);
  const mine = new Set(names);
  const createdAt = new Map<string, number>();
  const completedAt = new Map<string, number>();
  /** Backup -> its snapshots seen ready, and when the last of them arrived. */
  const readySnapshots = new Map<string, { names: Set<string>; lastAt: number }>();
  const allDone = until(() => completedAt.size === count, `${count} backups Completed`, TIMEOUT_MS);
  const watches = await Promise.all([
    watchArrivals(client, resources.backups, namespace, (backup: Backup, at) => {
      const name = backup.metadata.name ?? '';
      if (!mine.has(name)) return;
      const { phase, errorCode, errorMessage } = backup.status ?? {};
      if (phase === 'Completed' && !completedAt.has(name)) completedAt.set(name, at);
      allDone.notify(
        phase === 'Failed' ? `${name} Failed: ${errorCode ?? ''} ${errorMessage ?? ''}` : undefined,
      );
    }),
    watchArrivals(client, resources.volumeSnapshots, namespace, (snapshot: VolumeSnapshot, at) => {
      const owner = snapshot.metadata.labels?.['snapback.dev/backup'] ?? '';
      if (!mine.has(owner) || snapshot.status?.readyToUse !== true) return;
      const seen = readySnapshots.get(owner) ?? { names: new Set<string>(), lastAt: 0 };
      if (seen.names.has(snapshot.metadata.name ?? '')) return;
      seen.names.add(snapshot.metadata.name ?? '');
      seen.lastAt = at;
      readySnapshots.set(owner, seen);
    }),
  ]);
  const pids: Record<string, number> = { operator: pid, ...clusterPids() };
  const cpuBefore = Object.fromEntries(Object.entries(pids).map(([k, p]) => [k, cpuSeconds(p)]));
  const serverBefore = await serverServiceAccountRequests();

  const started = performance.now();
  for (let i = 0; i < names.length; i += 20) {
    await Promise.all(
      names.slice(i, i + 20).map(async (name, k) => {
        await client.create(
          resources.backups,
          backupManifest(namespace, name, statefulSetName(i + k, count)),
        );
        createdAt.set(name, performance.now());
      }),
    );
  }
  await allDone.done;
  const seconds = (performance.now() - started) / 1000;

  const serverAfter = await serverServiceAccountRequests();
  const cpu = Object.fromEntries(
    Object.entries(pids).map(([k, p]) => [k, cpuSeconds(p) - (cpuBefore[k] ?? 0)]),
  );
  await Promise.all(watches.map((w) => w.stop()));
  const since = (from: Map<string, number>): number[] =>
    names.flatMap((name) => {
      const start = from.get(name);
      const end = completedAt.get(name);
      return start === undefined || end === undefined ? [] : [end - start];
    });
  const lastReady = new Map([...readySnapshots].map(([name, seen]) => [name, seen.lastAt]));
  return {
    backups: count,
    seconds,
    backupsPerSecond: count / seconds,
    serverRequests: serverAfter - serverBefore,
    snapshotsReadyToCompletedMs: distribution(since(lastReady)),
    createdToCompletedMs: distribution(since(createdAt)),
    cpuSeconds: cpu,
  };
}

/** The Go controller, then Snapback, each backing up every StatefulSet once. */
export async function runBackups(admin: KubeClient, identity: Identity, count: number): Promise<BackupRun> {
  const namespace = await statefulSets(admin, count);

  const controller = await startGoController('backup', namespace, identity);
  const goFigures = await measureBackups(admin, namespace, 'go', controller.pid, count);
  const { writes } = await controller.stop();

  // Snapback first takes in the Go controller's finished Backups (finalized and Completed: nothing
  // to write), then is measured on its own.
  const operator = await startBenchOperator(`bench-${namespace}`, namespace, identity);
  await drained(operator, count, 300_000);
  const before = await readCounters(operator);
  const snapbackFigures = await measureBackups(admin, namespace, 'snapback', operator.pid, count);
  const requests = summarize((await readCounters(operator)).requests, before.requests);
  await operator.stop();
  return {
    go: { ...goFigures, writes },
    snapback: { ...snapbackFigures, writes: requests.objectWrites, requests },
  };
}

/** The finalizer, InProgress, a VolumeSnapshot per volume and Completed. */
export const MINIMUM_BACKUP_WRITES = 1 + 1 + VOLUMES.length + 1;
