// The seam between Snapback and the kind of a data service deployment. The StatefulSet adapter
// comes first; custom resources of other data-service operators plug in here later through
// declarative profiles (where their PVCs are, which field holds replicas, how restore mode is
// switched, what "healthy" means), without the controllers changing.

import type { KubeObject, Labels, PersistentVolumeClaimSpec } from '../api/kubernetes.js';
import type { PodSchedulingConfig } from '../api/generated/types.js';
import type { ResourceType } from '../runtime/resources.js';
import type { Manifest } from './manifest.js';

export type DeploymentMode = 'restore' | 'normal';

export interface RestoreTarget {
  name: string;
  namespace: string;
  /** Bookkeeping labels for the new deployment (which restore, attempt and backup made it). */
  labels: Labels;
  /** Replaces the backed-up scheduling field by field when given. */
  scheduling?: PodSchedulingConfig;
}

export interface VolumePlan {
  /** The PVC that was backed up. */
  sourcePvcName: string;
  /** The PVC the restored deployment will mount in its place. */
  pvcName: string;
  /** What the restored PVC must look like for the deployment to adopt it. */
  claim: PersistentVolumeClaimSpec;
}

export interface Health {
  healthy: boolean;
  /** Why it is not healthy yet, for a person reading the restore's status. */
  message: string;
}

export interface DataServiceAdapter<T extends KubeObject = KubeObject> {
  readonly kind: string;
  readonly resource: ResourceType<T>;
  /** The PVCs that hold the deployment's data, in a stable order (primary first). */
  volumeClaimNames(deployment: T): string[];
  /** The deployment as a backup records it. */
  capture(deployment: T): Manifest;
  replicas(manifest: Manifest): number;
  /** The image of the data service's main container. */
  image(manifest: Manifest): string | undefined;
  /** Maps backed-up PVCs to the PVCs a deployment named `destinationName` will mount. */
  planVolumes(manifest: Manifest, sourcePvcNames: readonly string[], destinationName: string): VolumePlan[];
  /** The new deployment, created in restore mode. */
  render(manifest: Manifest, target: RestoreTarget): T;
  mode(deployment: T): DeploymentMode | undefined;
  /** A JSON merge patch that puts the restored deployment into normal mode. */
  normalModePatch(manifest: Manifest): object;
  health(deployment: T): Health;
}
