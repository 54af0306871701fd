// The indexes of the Restore controller's caches: each a typed handle that registers the index and
// reads it. Apart from context.ts so that the slots, the steps, the Backup controller and the
// wiring can share them without importing each other.

import { labels } from '../../api/constants.js';
import type { Restore } from '../../api/generated/types.js';
import type { Event, KubeObject } from '../../api/kubernetes.js';
import { defineIndex } from '../../runtime/cache.js';

/** The Backup a restore names: backupRef, or backupName in the restore's own namespace. */
export function backupKeyOf(restore: Restore): { namespace: string; name: string } {
  const source = restore.spec.source;
  if (source.backupRef !== undefined) return source.backupRef;
  return { namespace: restore.metadata.namespace ?? '', name: source.backupName ?? '' };
}

/** Restores by status.phase ("" before the first): who waits and who runs, without a scan. */
export const restoresByPhase = defineIndex<Restore>('phase', (restore) => [restore.status?.phase ?? '']);

/** Restores by the "namespace/name" of the Backup they read. */
export const restoresByBackup = defineIndex<Restore>('backup', (restore) => {
  const ref = backupKeyOf(restore);
  return [`${ref.namespace}/${ref.name}`];
});

/** Objects by their snapback.dev/restore-attempt label. */
export const byAttempt = defineIndex<KubeObject>('attempt', (object) => {
  const attempt = object.metadata.labels?.[labels.restoreAttempt];
  return attempt === undefined ? [] : [attempt];
});

/** Events by involved object "namespace/name". */
export const eventsByInvolvedObject = defineIndex<Event>('involvedObject', (event) => [
  `${event.involvedObject.namespace ?? ''}/${event.involvedObject.name ?? ''}`,
]);
