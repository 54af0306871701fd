// Consent for cross-namespace restores. A Restore reads a Backup of another namespace only where a
// ReferenceGrant in that namespace lets Restores of the Restore's namespace read it: the namespace
// that owns the data decides, as with Gateway API routes and cross-namespace volume data sources.

import { GROUP } from '../../api/constants.js';
import type { ReferenceGrant, Restore } from '../../api/generated/types.js';
import { defineIndex, type Cache } from '../../runtime/cache.js';

/** ReferenceGrants by their namespace: the grants of the namespace a Restore reads from. */
export const grantsByNamespace = defineIndex<ReferenceGrant>('namespace', (grant) => [
  grant.metadata.namespace ?? '',
]);

/**
 * Whether one of `grants` lets Restores of `from` read Backup `backup` of the grants' namespace.
 * The schema admits only snapback.dev Restores in `from` and snapback.dev Backups in `to`.
 */
export function grants(grants: readonly ReferenceGrant[], from: string, backup: string): boolean {
  return grants.some(
    (grant) =>
      grant.spec.from.some((entry) => entry.namespace === from) &&
      grant.spec.to.some((entry) => entry.name === undefined || entry.name === backup),
  );
}

/** Whether `restore` may read Backup `ref`: its own namespace's always, another's when granted there. */
export function referencePermitted(
  cache: Cache<ReferenceGrant>,
  restore: Restore,
  ref: { namespace: string; name: string },
): boolean {
  const from = restore.metadata.namespace ?? '';
  return ref.namespace === from || grants(cache.byIndex(grantsByNamespace, ref.namespace), from, ref.name);
}

/** What a Restore refused for want of a grant says: which grant, where, and who can make it. */
export function missingGrant(restore: Restore, ref: { namespace: string; name: string }): string {
  const from = restore.metadata.namespace ?? '';
  return (
    `no ReferenceGrant in namespace ${ref.namespace} lets Restores of namespace ${from} read Backup ${ref.namespace}/${ref.name}, so nothing was created. ` +
    `Someone who may create ReferenceGrants in ${ref.namespace} can grant it (from: [{group: ${GROUP}, kind: Restore, namespace: ${from}}], ` +
    `to: [{group: ${GROUP}, kind: Backup, name: ${ref.name}}]); then change spec.recreateToken`
  );
}
