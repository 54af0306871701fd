// Credential check (PDS FailedBackupCredentialSync). A synced Backup's data sits behind its
// BackupLocation, whose credentials are what every cluster on that bucket shares. They stay in the
// operator's namespace: nothing that runs in a tenant's namespace ever holds them (the CSI driver
// takes them from a Secret of the operator's namespace named in its StorageClass, the data movers
// run in the operator's namespace). Before a restore starts, this checks they are there.

import type { Backup } from '../../api/generated/types.js';
import { errorMessage, isTerminal } from '../../runtime/errors.js';
import { resources } from '../../runtime/resources.js';
import { CREDENTIAL_KEYS } from '../../storage/location-store.js';
import type { RestoreContext } from './context.js';

const RETRY = 'then change spec.recreateToken to try again';

/**
 * Why the credentials of the location `backup` was imported from cannot be used, or undefined when
 * they can. Throttling, conflicts and timeouts (429, 409, 408) are thrown, to be retried.
 */
export async function credentialsProblem(ctx: RestoreContext, backup: Backup): Promise<string | undefined> {
  const locationName = backup.spec.backupLocation ?? '';
  const backupName = `${backup.metadata.namespace ?? ''}/${backup.metadata.name ?? ''}`;
  const location = ctx.cache.locations.get(locationName);
  if (location === undefined) {
    return `BackupLocation ${locationName}, which Backup ${backupName} was imported from, does not exist; create it, ${RETRY}.`;
  }
  const secretName = `${ctx.namespace}/${location.spec.credentialsSecretName}`;
  let secret;
  try {
    secret = await ctx.client.get(resources.secrets, location.spec.credentialsSecretName, ctx.namespace);
  } catch (err) {
    if (isTerminal(err)) return `the operator could not read Secret ${secretName}: ${errorMessage(err)}.`;
    throw err;
  }
  if (secret === undefined) {
    return `Secret ${secretName} with the credentials of BackupLocation ${locationName} does not exist; create it, ${RETRY}.`;
  }
  const missing = Object.values(CREDENTIAL_KEYS).filter((key) => secret.data?.[key] === undefined);
  if (missing.length > 0) {
    return `Secret ${secretName} of BackupLocation ${locationName} has no ${missing.join(' or ')}; add it, ${RETRY}.`;
  }
  return undefined;
}
