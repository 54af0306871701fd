// Credential sync (PDS FailedBackupCredentialSync). A synced Backup's snapshots were written by
// another cluster into storage behind its BackupLocation; what reads them in the destination
// namespace (the CSI driver provisioning the volumes, the data service in restore mode) needs the
// location's credentials there. The copy holds only the credential keys and is owned by the
// Restore, so it goes when the Restore goes.

import { API_VERSION, labels, MANAGED_BY } from '../../api/constants.js';
import type { Backup, Restore } from '../../api/generated/types.js';
import type { Secret } from '../../api/kubernetes.js';
import { boundedName, shortHash } from '../../naming.js';
import { errorMessage, isAlreadyExists, isTerminal } from '../../runtime/errors.js';
import { resources } from '../../runtime/resources.js';
import { CREDENTIAL_KEYS, SESSION_TOKEN_KEY } from '../../storage/location-store.js';
import type { RestoreContext } from './context.js';

/** The copy's name: one per Restore, stable across attempts and restarts. */
function credentialsSecretName(restore: Restore): string {
  return boundedName(
    restore.metadata.name ?? '',
    'backup-credentials',
    shortHash([restore.metadata.uid ?? ''], 5),
  );
}

const COPIED_KEYS = [...Object.values(CREDENTIAL_KEYS), SESSION_TOKEN_KEY];

/** Copies the credentials of the backup's location next to the restore; the copy's name, or why not. */
export async function syncCredentials(
  ctx: RestoreContext,
  restore: Restore,
  backup: Backup,
): Promise<{ name: string } | { problem: string }> {
  const locationName = backup.spec.backupLocation ?? '';
  const namespace = restore.metadata.namespace ?? '';
  const backupName = `${backup.metadata.namespace ?? ''}/${backup.metadata.name ?? ''}`;
  const retry = 'then change spec.recreateToken to try again';
  const location = ctx.cache.locations.get(locationName);
  if (location === undefined) {
    return {
      problem: `BackupLocation ${locationName}, which Backup ${backupName} was imported from, does not exist; create it, ${retry}.`,
    };
  }
  const sourceName = `${ctx.namespace}/${location.spec.credentialsSecretName}`;
  const source = await attempt(`the operator could not read Secret ${sourceName}`, () =>
    ctx.client.get(resources.secrets, location.spec.credentialsSecretName, ctx.namespace),
  );
  if (source !== undefined && 'problem' in source) return source;
  if (source === undefined) {
    return {
      problem: `Secret ${sourceName} with the credentials of BackupLocation ${locationName} does not exist; create it, ${retry}.`,
    };
  }
  const data = Object.fromEntries(
    Object.entries(source.data ?? {}).filter(([key]) => COPIED_KEYS.includes(key)),
  );
  const name = credentialsSecretName(restore);
  const copy: Secret = {
    metadata: {
      name,
      namespace,
      labels: { [labels.restore]: restore.metadata.name ?? '', [labels.managedBy]: MANAGED_BY },
      ownerReferences: [
        {
          apiVersion: API_VERSION,
          kind: 'Restore',
          name: restore.metadata.name ?? '',
          uid: restore.metadata.uid ?? '',
        },
      ],
    },
    type: 'Opaque',
    data,
  };
  // Only create is granted in users' namespaces (no cluster-wide read of Secrets). An existing
  // Secret of this name is this restore's copy from before a restart: the name carries the digest
  // of the Restore's UID.
  const created = await attempt(`the operator could not create Secret ${namespace}/${name}`, async () => {
    try {
      await ctx.client.create(resources.secrets, copy);
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
    }
    return { name };
  });
  return created;
}

/**
 * `call`'s result, or a failure naming what was refused when the API server says no for good (403,
 * 422, ...). Throttling, conflicts and timeouts (429, 409, 408) are thrown, to be retried.
 */
async function attempt<T>(what: string, call: () => Promise<T>): Promise<T | { problem: string }> {
  try {
    return await call();
  } catch (err) {
    if (isTerminal(err)) return { problem: `${what}: ${errorMessage(err)}.` };
    throw err;
  }
}
