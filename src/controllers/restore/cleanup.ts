// Removing what a restore attempt created: for a recreate (the failed attempt's leftovers) and
// when a Restore is deleted. Listed from the API server, not the cache, so nothing created just
// before is missed.

import { annotations, labels } from '../../api/constants.js';
import type { Restore } from '../../api/generated/types.js';
import type { KubeObject } from '../../api/kubernetes.js';
import { adapterFor } from '../../dataservices/index.js';
import type { ObjectClient } from '../../runtime/client.js';
import { resources, type ResourceType } from '../../runtime/resources.js';
import { putBackReclaimPolicy } from './from-bucket.js';

/**
 * Whether the restored deployment is the user's: after a success, and once it was healthy in
 * restore mode (it may serve already, whatever failed after), deleting or recreating the Restore
 * removes only the scaffolding, never the deployment or its volumes.
 */
export function deploymentHandedOver(restore: Restore): boolean {
  const status = restore.status;
  return (
    status?.phase === 'Successful' ||
    (status?.phaseHistory ?? []).some((entry) => entry.phase === 'DataServiceDeploymentEnteringNormalMode')
  );
}

export interface CleanupScope {
  /** Also remove the deployment and its PVCs (not once handed over: they are the user's then). */
  includeDeployment: boolean;
  /**
   * Where the attempt's data movers and their claims are (the operator's namespace), when it may
   * have any or kept a volume the bucket filled; absent, nothing of the bucket path is looked for.
   */
  movers?: { namespace: string };
}

/**
 * Deletes the attempt's objects in scope and returns how many still exist (being deleted).
 * Zero means the attempt left nothing behind.
 */
export async function cleanUpAttempt(
  client: ObjectClient,
  restore: Restore,
  scope: CleanupScope,
): Promise<number> {
  const attempt = restore.status?.customResourceName;
  if (attempt === undefined) return 0;
  const namespace = restore.metadata.namespace ?? '';
  const selector = `${labels.restoreAttempt}=${attempt}`;
  // The movers carry their own label too: the operator's namespace may be the restore's, where the
  // restored deployment's pods and claims carry the attempt's label and must stay once handed over.
  const movers = `${selector},${labels.moverFor}`;
  const kinds: { rt: ResourceType; namespace?: string; selector: string }[] = [
    // The movers before their claims, which they mount.
    ...(scope.movers === undefined
      ? []
      : [
          { rt: resources.pods, namespace: scope.movers.namespace, selector: movers },
          { rt: resources.persistentVolumeClaims, namespace: scope.movers.namespace, selector: movers },
        ]),
    { rt: resources.volumeSnapshots, namespace, selector },
    { rt: resources.volumeSnapshotContents, selector },
  ];
  let remaining = 0;
  if (scope.includeDeployment) {
    const deployment = adapterFor(restore.status?.destination?.kind);
    if (deployment !== undefined) kinds.unshift({ rt: deployment.resource, namespace, selector });
    kinds.push({ rt: resources.persistentVolumeClaims, namespace, selector });
    if (scope.movers !== undefined) remaining += await releaseKeptVolumes(client, selector);
  }
  for (const { rt, namespace: ns, selector: labelSelector } of kinds) {
    const { items } = await client.list<KubeObject>(rt, {
      labelSelector,
      ...(ns === undefined ? {} : { namespace: ns }),
    });
    for (const item of items) {
      remaining++;
      if (item.metadata.deletionTimestamp !== undefined) continue;
      await client.delete(rt, item.metadata.name ?? '', {
        ...(ns === undefined ? {} : { namespace: ns }),
        propagationPolicy: 'Background',
        preconditions: { uid: item.metadata.uid ?? '' },
      });
    }
  }
  return remaining;
}

/**
 * Volumes filled from the bucket that the attempt kept (Retain) on their way to its claims get
 * their reclaim policy back, and those no claim holds are deleted (the policy deletes their
 * storage); returns how many are left. A volume handed over has its policy back already.
 */
async function releaseKeptVolumes(client: ObjectClient, selector: string): Promise<number> {
  const { items } = await client.list(resources.persistentVolumes, { labelSelector: selector });
  for (const pv of items) {
    if (pv.metadata.annotations?.[annotations.reclaimPolicy] === undefined) continue;
    await putBackReclaimPolicy(client, pv);
    if (pv.status?.phase !== 'Bound' && pv.metadata.deletionTimestamp === undefined) {
      await client.delete(resources.persistentVolumes, pv.metadata.name ?? '', {
        preconditions: { uid: pv.metadata.uid ?? '' },
      });
    }
  }
  return items.filter((pv) => pv.metadata.annotations?.[annotations.reclaimPolicy] !== undefined).length;
}
