// Snapback-specific test fixtures: the CRDs installed from crds/, a sample StatefulSet data
// service, and waiting for a Backup or Restore to reach a phase.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadAll } from 'js-yaml';
import type { Backup, BackupPhase, Restore, RestorePhase } from '../../../src/api/generated/types.js';
import type {
  KubeObject,
  PersistentVolume,
  StatefulSet,
  StorageClass,
  VolumeSnapshotClass,
} from '../../../src/api/kubernetes.js';
import type { KubeClient } from '../../../src/runtime/kube-client.js';
import { resources, type ResourceType } from '../../../src/runtime/resources.js';
import { DRIVER } from '../../cluster/storage-simulator/constants.js';
import { REPO_ROOT, waitFor } from './cluster.js';

export const customResourceDefinitions: ResourceType<
  KubeObject & { status?: { conditions?: { type: string; status: string }[] } }
> = {
  group: 'apiextensions.k8s.io',
  version: 'v1',
  kind: 'CustomResourceDefinition',
  plural: 'customresourcedefinitions',
  namespaced: false,
};

/** Server-side applies every CRD in crds/ and waits until each is Established. */
export async function installCrds(client: KubeClient): Promise<void> {
  const dir = join(REPO_ROOT, 'crds');
  for (const file of readdirSync(dir).filter((name) => name.endsWith('.yaml'))) {
    for (const document of loadAll(readFileSync(join(dir, file), 'utf8'))) {
      const crd = document as KubeObject;
      await client.apply(customResourceDefinitions, crd, { fieldManager: 'snapback-tests', force: true });
      await waitFor(`CRD ${crd.metadata.name ?? ''} Established`, async () => {
        const current = await client.get(customResourceDefinitions, crd.metadata.name ?? '');
        return current?.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True');
      });
    }
  }
}

export const SIM_STORAGE_CLASS = 'snapback-sim';
export const CONTENT_ID_ANNOTATION = 'sim.snapback.dev/content-id';

/** A StorageClass of the simulator's driver, for a test to inject failures into; returns its name. */
export async function createSimStorageClass(
  client: KubeClient,
  name: string,
  annotations: Record<string, string> = {},
): Promise<string> {
  const storageClass: StorageClass = {
    metadata: { name, annotations },
    provisioner: DRIVER,
    reclaimPolicy: 'Delete',
    volumeBindingMode: 'Immediate',
  };
  await client.create(resources.storageClasses, storageClass);
  return name;
}

/** A VolumeSnapshotClass of the simulator's driver; returns its name. */
export async function createSimSnapshotClass(
  client: KubeClient,
  name: string,
  annotations: Record<string, string> = {},
): Promise<string> {
  const snapshotClass: VolumeSnapshotClass = {
    metadata: { name, annotations },
    driver: DRIVER,
    deletionPolicy: 'Delete',
  };
  await client.create(resources.volumeSnapshotClasses, snapshotClass);
  return name;
}

export function sampleStatefulSet(
  namespace: string,
  name: string,
  replicas = 3,
  storageClassName = SIM_STORAGE_CLASS,
): StatefulSet {
  const podLabels = { 'app.kubernetes.io/name': 'postgresql', 'app.kubernetes.io/instance': name };
  return {
    metadata: {
      name,
      namespace,
      labels: { ...podLabels, 'snapback.dev/project': 'payments' },
      annotations: { 'snapback.dev/image-capabilities': 'pds_restore=v1' },
    },
    spec: {
      replicas,
      serviceName: name,
      selector: { matchLabels: podLabels },
      template: {
        metadata: { labels: podLabels },
        spec: { containers: [{ name: 'postgres', image: 'docker.io/library/postgres:17' }] },
      },
      volumeClaimTemplates: [
        {
          metadata: { name: 'data' },
          spec: {
            accessModes: ['ReadWriteOnce'],
            storageClassName,
            resources: { requests: { storage: '1Gi' } },
          },
        },
      ],
    },
  };
}

export function isHealthy(sts: StatefulSet | undefined, replicas: number): boolean {
  return (
    sts !== undefined &&
    (sts.status?.observedGeneration ?? 0) >= (sts.metadata.generation ?? 1) &&
    sts.status?.readyReplicas === replicas &&
    sts.status.updatedReplicas === replicas
  );
}

/** Creates the sample data service and waits until every replica is ready and every PVC bound. */
export async function deploySampleDataService(
  client: KubeClient,
  namespace: string,
  name: string,
  replicas = 3,
): Promise<StatefulSet> {
  await client.create(resources.statefulSets, sampleStatefulSet(namespace, name, replicas));
  return waitFor(
    `StatefulSet ${namespace}/${name} with ${replicas} ready replicas`,
    async () => {
      const sts = await client.get(resources.statefulSets, name, namespace);
      return isHealthy(sts, replicas) ? sts : undefined;
    },
    120_000,
  );
}

export async function waitForBackup(
  client: KubeClient,
  namespace: string,
  name: string,
  phase: BackupPhase,
  timeoutMs = 120_000,
): Promise<Backup> {
  return waitFor(
    `Backup ${namespace}/${name} ${phase}`,
    async () => {
      const backup = await client.get(resources.backups, name, namespace);
      const current = backup?.status?.phase;
      if (current !== phase && (current === 'Completed' || current === 'Failed')) {
        throw new Error(`Backup ${name} ended ${current}: ${backup?.status?.errorMessage ?? ''}`);
      }
      return current === phase ? backup : undefined;
    },
    timeoutMs,
  );
}

export async function waitForRestore(
  client: KubeClient,
  namespace: string,
  name: string,
  phase: RestorePhase,
  timeoutMs = 120_000,
): Promise<Restore> {
  return waitFor(
    `Restore ${namespace}/${name} ${phase}`,
    async () => {
      const restore = await client.get(resources.restores, name, namespace);
      const current = restore?.status?.phase;
      if (current !== phase && (current === 'Successful' || current === 'Failed')) {
        throw new Error(
          `Restore ${name} ended ${current}: ${restore?.status?.errorCode ?? ''} ${restore?.status?.errorMessage ?? ''}`,
        );
      }
      return current === phase ? restore : undefined;
    },
    timeoutMs,
  );
}

/** The storage simulator's content id of the volume bound to a PVC. */
export async function contentIdOf(
  client: KubeClient,
  namespace: string,
  pvcName: string,
): Promise<string | undefined> {
  const claim = await client.get(resources.persistentVolumeClaims, pvcName, namespace);
  const volumeName = claim?.spec.volumeName;
  if (volumeName === undefined) return undefined;
  const volume: PersistentVolume | undefined = await client.get(resources.persistentVolumes, volumeName);
  return volume?.metadata.annotations?.[CONTENT_ID_ANNOTATION];
}

export function backupManifest(
  namespace: string,
  name: string,
  deployment: string,
  extra: Partial<Backup['spec']> = {},
): Backup {
  return {
    metadata: { name, namespace },
    spec: { deployment: { kind: 'StatefulSet', name: deployment }, ...extra },
  };
}

export function restoreManifest(namespace: string, name: string, spec: Restore['spec']): Restore {
  return { metadata: { name, namespace }, spec };
}

/**
 * Creates `count` Restores of `backupName` named r000, r001, ... (destination pg-<name>), 20
 * requests at a time; returns their names.
 */
export async function createRestores(
  client: KubeClient,
  namespace: string,
  count: number,
  backupName = 'pg-backup',
): Promise<string[]> {
  const width = Math.max(3, String(count - 1).length);
  const names = Array.from({ length: count }, (_, i) => `r${String(i).padStart(width, '0')}`);
  for (let i = 0; i < names.length; i += 20) {
    await Promise.all(
      names.slice(i, i + 20).map((name) =>
        client.create(
          resources.restores,
          restoreManifest(namespace, name, {
            source: { backupName },
            destination: { deploymentName: `pg-${name}` },
          }),
        ),
      ),
    );
  }
  return names;
}
