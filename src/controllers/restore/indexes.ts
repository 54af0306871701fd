// The restore cache's indexes, and what they are computed from. Apart from context.ts so that the
// slots, the steps and the wiring can share them without importing each other.

import type { Restore } from '../../api/generated/types.js';

/** Index names the caches are built with. */
export const indexes = {
  /** Objects by their snapback.dev/restore-attempt label. */
  attempt: 'attempt',
  /** Events by involved object "namespace/name". */
  involvedObject: 'involvedObject',
  /** Restores by the "namespace/name" of the Backup they read. */
  backup: 'backup',
  /** Restores by status.phase ("" before the first): who waits and who runs, without a scan. */
  phase: 'phase',
} as const;

export const phaseOf = (restore: Restore): string[] => [restore.status?.phase ?? ''];

/** The Backup a restore names: backupRef, or backupName in the restore's own namespace. */
export function backupKeyOf(restore: Restore): { namespace: string; name: string } {
  const source = restore.spec.source;
  if (source.backupRef !== undefined) return source.backupRef;
  return { namespace: restore.metadata.namespace ?? '', name: source.backupName ?? '' };
}
