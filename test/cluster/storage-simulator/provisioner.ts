// The simulated external-provisioner: carries out decideClaim and decideVolume against the API.

import type {
  PersistentVolume,
  PersistentVolumeClaim,
  StorageClass,
  VolumeSnapshot,
  VolumeSnapshotContent,
} from '../../../src/api/kubernetes.js';
import type { EventRecorder } from '../../../src/observability/events.js';
import type { KubeClient } from '../../../src/runtime/kube-client.js';
import { isAlreadyExists } from '../../../src/runtime/errors.js';
import { resources } from '../../../src/runtime/resources.js';
import { DRIVER, KUBE, SIM } from './constants.js';
import {
  claimClassName,
  claimDataSource,
  decideClaim,
  decideVolume,
  resolveSnapshotSource,
  volumeNameFor,
  type SourceResolution,
} from './provisioning.js';
import type { SnapshotStore } from './state.js';
import type { Log, Result, Store } from './types.js';

/** How often a claim waiting on a snapshot is retried besides the snapshot's own changes. */
const SOURCE_RETRY_MS = 15_000;

export interface ProvisionerDeps {
  client: KubeClient;
  claims: Store<PersistentVolumeClaim>;
  volumes: Store<PersistentVolume>;
  storageClasses: Store<StorageClass>;
  snapshots: Store<VolumeSnapshot>;
  contents: Store<VolumeSnapshotContent>;
  backend: SnapshotStore;
  events: EventRecorder;
  log: Log;
  now: () => number;
}

export class Provisioner {
  constructor(private readonly deps: ProvisionerDeps) {}

  /** Key: namespace/name of a PersistentVolumeClaim. */
  async reconcileClaim(key: string): Promise<Result> {
    const { claims, volumes, storageClasses, log } = this.deps;
    const claim = claims.get(key);
    if (claim === undefined) return {};
    const volumeName =
      claim.spec.volumeName !== undefined && claim.spec.volumeName !== ''
        ? claim.spec.volumeName
        : volumeNameFor(claim.metadata.uid ?? '');
    const className = claimClassName(claim);
    const action = decideClaim({
      claim,
      storageClass: className === undefined ? undefined : storageClasses.get(className),
      volume: volumes.get(volumeName),
      source: await this.snapshotSource(claim),
      nowMs: this.deps.now(),
    });
    const fields = { claim: key, action: action.kind };
    switch (action.kind) {
      case 'none':
        log.debug('claim: nothing to do', { ...fields, reason: action.reason });
        return {};
      case 'wait':
        log.info('claim: waiting', { ...fields, reason: action.reason, afterMs: action.afterMs });
        return { requeueAfterMs: action.afterMs };
      case 'fail': {
        const message = `failed to provision volume with StorageClass "${className ?? ''}": ${action.message}`;
        log.warn('claim: provisioning failed', { ...fields, message, retry: action.retry });
        await this.deps.events.record(
          resources.persistentVolumeClaims,
          claim,
          'Warning',
          'ProvisioningFailed',
          message,
          `ProvisioningFailed/${message}`,
        );
        return action.retry ? { requeueAfterMs: SOURCE_RETRY_MS } : {};
      }
      case 'provision': {
        await this.deps.events.record(
          resources.persistentVolumeClaims,
          claim,
          'Normal',
          'Provisioning',
          `External provisioner is provisioning volume for claim "${key}"`,
          'Provisioning',
        );
        const name = action.volume.metadata.name ?? '';
        try {
          await this.deps.client.create(resources.persistentVolumes, action.volume);
        } catch (err) {
          // A previous attempt created it; the PV controller binds it either way.
          if (!isAlreadyExists(err)) throw err;
        }
        log.info('claim: provisioned', {
          ...fields,
          volume: name,
          contentId: action.volume.metadata.annotations?.[SIM.contentId],
          restoredFrom: action.volume.metadata.annotations?.[SIM.restoredFrom],
        });
        await this.deps.events.record(
          resources.persistentVolumeClaims,
          claim,
          'Normal',
          'ProvisioningSucceeded',
          `Successfully provisioned volume ${name}`,
          'ProvisioningSucceeded',
        );
        return {};
      }
      case 'write': {
        const volume = volumes.get(action.volumeName);
        await this.deps.client.mergePatch(resources.persistentVolumes, action.volumeName, {
          metadata: {
            // Conditional on what was read: a concurrent write must not be lost.
            resourceVersion: volume?.metadata.resourceVersion,
            annotations: { [SIM.contentId]: action.contentId, [SIM.appliedWrite]: action.write },
          },
        });
        log.info('claim: write applied', {
          ...fields,
          volume: action.volumeName,
          contentId: action.contentId,
        });
        return {};
      }
    }
  }

  private async snapshotSource(claim: PersistentVolumeClaim): Promise<SourceResolution | undefined> {
    const source = claimDataSource(claim);
    if (source.kind !== 'snapshot' || (claim.spec.volumeName ?? '') !== '') return undefined;
    const snapshot = this.deps.snapshots.get(`${source.ref.namespace}/${source.ref.name}`);
    const contentName = snapshot?.status?.boundVolumeSnapshotContentName;
    const content = contentName === undefined ? undefined : this.deps.contents.get(contentName);
    const handle = content?.status?.snapshotHandle;
    const record = handle === undefined ? undefined : await this.deps.backend.get(handle);
    return resolveSnapshotSource(source.ref, snapshot, content, record);
  }

  /** Key: name of a PersistentVolume. */
  async reconcileVolume(key: string): Promise<Result> {
    const { client, log } = this.deps;
    const volume = this.deps.volumes.get(key);
    if (volume === undefined) return {};
    const action = decideVolume(volume);
    const finalizers = volume.metadata.finalizers ?? [];
    const withoutOurs = finalizers.filter((f) => f !== KUBE.provisionerFinalizer);
    const fields = { volume: key, action: action.kind };
    switch (action.kind) {
      case 'none':
        return {};
      case 'addFinalizer':
        await client.mergePatch(resources.persistentVolumes, key, {
          metadata: {
            resourceVersion: volume.metadata.resourceVersion,
            finalizers: [...finalizers, KUBE.provisionerFinalizer],
          },
        });
        log.info('volume: finalizer added', fields);
        return {};
      case 'removeFinalizer':
        await client.mergePatch(resources.persistentVolumes, key, {
          metadata: { resourceVersion: volume.metadata.resourceVersion, finalizers: withoutOurs },
        });
        log.info('volume: finalizer removed', fields);
        return {};
      case 'delete': {
        // The simulated backing volume lives only in the PV's annotations: deleting the PV
        // object deletes the volume. The finalizer goes last, as external-provisioner does.
        await client.delete(resources.persistentVolumes, key, {
          preconditions: { uid: volume.metadata.uid ?? '' },
        });
        const current = await client.get(resources.persistentVolumes, key);
        if (
          current !== undefined &&
          (current.metadata.finalizers ?? []).includes(KUBE.provisionerFinalizer)
        ) {
          await client.mergePatch(resources.persistentVolumes, key, {
            metadata: {
              resourceVersion: current.metadata.resourceVersion,
              finalizers: (current.metadata.finalizers ?? []).filter((f) => f !== KUBE.provisionerFinalizer),
            },
          });
        }
        log.info('volume: deleted', {
          ...fields,
          driver: DRIVER,
          contentId: volume.metadata.annotations?.[SIM.contentId],
          claim: `${volume.spec.claimRef?.namespace ?? ''}/${volume.spec.claimRef?.name ?? ''}`,
        });
        return {};
      }
    }
  }
}
