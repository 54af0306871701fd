// Capturing a deployment's manifest for a backup, and rewriting it for a restore. Pure functions.

import { annotations, labels } from '../api/constants.js';
import type { KubeObject, Labels, ObjectMeta } from '../api/kubernetes.js';

/** What a backup keeps of a deployment: enough to create it again, nothing the server owns. */
export type Manifest = KubeObject & Record<string, unknown>;

/** Metadata the API server or other controllers own; a recreated object must not carry it. */
const SERVER_OWNED_METADATA: readonly (keyof ObjectMeta)[] = [
  'uid',
  'resourceVersion',
  'generation',
  'creationTimestamp',
  'deletionTimestamp',
  'managedFields',
  'ownerReferences',
  'finalizers',
  'generateName',
];

/** Annotations that describe the old object's history rather than what it should be. */
const HISTORY_ANNOTATIONS = [
  'kubectl.kubernetes.io/last-applied-configuration',
  'deployment.kubernetes.io/revision',
];

/** What a restore stamps on the deployment it creates; a backup of that deployment must not carry it on. */
const BOOKKEEPING_LABELS: readonly string[] = [
  labels.backup,
  labels.deployment,
  labels.restore,
  labels.restoreAttempt,
];
const BOOKKEEPING_ANNOTATIONS: readonly string[] = [annotations.mode];

/**
 * Argo CD's annotations say how the original is synced from Git (its tracking id, sync wave,
 * options). A restored copy is in no Git repository: carried over, the tracking id would claim it
 * for the original's Application.
 */
const GITOPS_ANNOTATION_PREFIXES: readonly string[] = ['argocd.argoproj.io/'];

function withoutKeys(map: Record<string, string> | undefined, drop: (key: string) => boolean) {
  if (map === undefined) return undefined;
  const kept = Object.entries(map).filter(([key]) => !drop(key));
  return kept.length === 0 ? undefined : Object.fromEntries(kept);
}

/**
 * The deployment as a backup records it: no status, no server-owned metadata, no history or
 * GitOps annotations, and none of Snapback's own bookkeeping labels from an earlier restore.
 */
export function sanitize(object: KubeObject): Manifest {
  const copy = structuredClone(object) as Manifest;
  delete copy.status;
  const metadata = Object.fromEntries(
    Object.entries(copy.metadata).filter(([field]) => !(SERVER_OWNED_METADATA as string[]).includes(field)),
  ) as ObjectMeta;
  metadata.labels = withoutKeys(metadata.labels, (key) => BOOKKEEPING_LABELS.includes(key));
  metadata.annotations = withoutKeys(
    metadata.annotations,
    (key) =>
      HISTORY_ANNOTATIONS.includes(key) ||
      BOOKKEEPING_ANNOTATIONS.includes(key) ||
      GITOPS_ANNOTATION_PREFIXES.some((prefix) => key.startsWith(prefix)),
  );
  if (metadata.labels === undefined) delete metadata.labels;
  if (metadata.annotations === undefined) delete metadata.annotations;
  copy.metadata = metadata;
  return copy;
}

/** A manifest as read from a record, which may hold anything: sanitized as a capture is. */
export function sanitizeRecorded(manifest: Record<string, unknown>): Manifest {
  const { metadata } = manifest;
  const isMap = typeof metadata === 'object' && metadata !== null && !Array.isArray(metadata);
  return sanitize({ ...manifest, metadata: isMap ? metadata : {} });
}

/** Replaces label values equal to `from` with `to`, so renamed pods stop matching the original's selectors. */
export function renameLabelValues(set: Labels | undefined, from: string, to: string): Labels | undefined {
  if (set === undefined) return undefined;
  return Object.fromEntries(Object.entries(set).map(([key, value]) => [key, value === from ? to : value]));
}

export function mergeLabels(...sets: (Labels | undefined)[]): Labels {
  return Object.assign({}, ...sets.filter((set) => set !== undefined)) as Labels;
}
