// Tenancy, tried the way an attacker would: with a tenant's own identity. Each team is a namespace
// with a ServiceAccount holding the default `edit` role there (Snapback's kinds reach it through
// the chart's aggregated roles), on a TokenRequest token, against the real API server with the
// chart installed (its admission policy) and the operator running on the chart's ServiceAccount.
// Team A tries to read team B's database, to import records by hand, to forge statuses and to get
// the bucket's key; only what the owners and the admin granted works.

import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Backup, Restore } from '../../src/api/generated/types.js';
import { syncedBackupName } from '../../src/naming.js';
import { ApiError } from '../../src/runtime/errors.js';
import type { KubeClient } from '../../src/runtime/kube-client.js';
import { resources } from '../../src/runtime/resources.js';
import { RecordCodec, recordKey, recordOf } from '../../src/storage/backup-record.js';
import { referenceGrant } from '../support/builders.js';
import {
  createTestNamespace,
  deleteTestNamespace,
  testClient,
  uniqueName,
  waitFor,
} from './support/cluster.js';
import { installChartIdentity, kubectl, tenantIdentity, uninstallChart } from './support/identity.js';
import {
  locationManifest,
  startObjectStore,
  writeCredentials,
  type RunningObjectStore,
} from './support/object-store.js';
import { startOperator, type RunningOperator } from './support/operator.js';
import {
  backupManifest,
  deploySampleDataService,
  installCrds,
  isHealthy,
  restoreManifest,
  waitForBackup,
  waitForRestore,
} from './support/snapback.js';

const BUCKET = 'tenancy';

let admin: KubeClient;
let operatorClient: KubeClient;
let tenantA: KubeClient;
let tenantB: KubeClient;
let operatorNs: string;
let teamA: string;
let teamB: string;
let release: string;
let operator: RunningOperator | undefined;
let store: RunningObjectStore;

/** What the API server answered a request with: the ApiError, or a failure if it was accepted. */
async function refusal(request: Promise<unknown>): Promise<ApiError> {
  const outcome = await request.then(
    () => undefined,
    (err: unknown) => err,
  );
  if (!(outcome instanceof ApiError)) throw new Error(`expected a refusal, got ${String(outcome)}`);
  return outcome;
}

/** Team A's view of what a restore left in its namespace. */
async function leftIn(namespace: string, restore: string) {
  const selector = { namespace, labelSelector: `snapback.dev/restore=${restore}` };
  const [claims, statefulSets, snapshots, contents] = await Promise.all([
    admin.list(resources.persistentVolumeClaims, selector),
    admin.list(resources.statefulSets, selector),
    admin.list(resources.volumeSnapshots, selector),
    admin.list(resources.volumeSnapshotContents, { labelSelector: `snapback.dev/restore=${restore}` }),
  ]);
  const imported = contents.items.filter((content) => content.spec.volumeSnapshotRef.namespace === namespace);
  return [...claims.items, ...statefulSets.items, ...snapshots.items, ...imported].map(
    (object) => object.metadata.name,
  );
}

beforeAll(async () => {
  admin = await testClient();
  await installCrds(admin);
  operatorNs = await createTestNamespace(admin, 'tenancy-operator');
  teamA = await createTestNamespace(admin, 'team-a');
  teamB = await createTestNamespace(admin, 'team-b');
  release = `tenancy-${operatorNs.slice(-8)}`;
  store = await startObjectStore(operatorNs);
  await store.createBucket(BUCKET);
  const kubeconfig = await installChartIdentity(release, operatorNs);
  operator = await startOperator(
    release,
    {
      clusterName: release,
      watchNamespace: '',
      // Other test files' restores count too (this operator watches every namespace): the total is
      // left high, the share of one namespace small.
      restore: { maxConcurrentRestores: 20, maxConcurrentRestoresPerNamespace: 2 },
      namespace: operatorNs,
      leaderElection: { namespace: operatorNs, leaseName: release },
    },
    kubeconfig,
  );
  operatorClient = await testClient(kubeconfig);
  tenantA = await testClient(await tenantIdentity(teamA));
  tenantB = await testClient(await tenantIdentity(teamB));
  // The default roles take the chart's rules in once the aggregation controller has seen them.
  await waitFor('edit to include Restores', async () =>
    kubectl(
      'auth',
      'can-i',
      'create',
      'restores.snapback.dev',
      '-n',
      teamA,
      `--as=system:serviceaccount:${teamA}:tenant`,
    ).then(
      (answer) => answer.trim() === 'yes',
      () => false,
    ),
  );

  // Team B's database and its backup, made by team B itself.
  await deploySampleDataService(tenantB, teamB, 'pg', 1);
  await tenantB.create(resources.backups, backupManifest(teamB, 'pg-backup', 'pg'));
  await waitForBackup(tenantB, teamB, 'pg-backup', 'Completed');
});

afterAll(async () => {
  await operator?.stop();
  await uninstallChart(release, operatorNs);
  await store.stop();
  for (const ns of [operatorNs, teamA, teamB]) await deleteTestNamespace(admin, ns);
  for (const client of [operatorClient, tenantA, tenantB, admin]) await client.close();
});

describe('a Restore of another namespace’s Backup (finding 1)', () => {
  it('fails ReferenceNotGranted without that namespace’s grant, creating nothing', async () => {
    await tenantA.create(
      resources.restores,
      restoreManifest(teamA, 'steal', { source: { backupRef: { namespace: teamB, name: 'pg-backup' } } }),
    );
    const failed = await waitForRestore(tenantA, teamA, 'steal', 'Failed');

    expect(failed.status?.errorCode).toBe('ReferenceNotGranted');
    expect(failed.status?.errorMessage).toContain(
      `no ReferenceGrant in namespace ${teamB} lets Restores of namespace ${teamA} read Backup ${teamB}/pg-backup, so nothing was created`,
    );
    expect(failed.status?.phaseHistory?.map((entry) => entry.phase)).toEqual(['Initializing', 'Failed']);
    expect(await leftIn(teamA, 'steal')).toEqual([]);
    expect(await tenantA.get(resources.statefulSets, 'pg', teamA)).toBeUndefined();
  });

  it('says the same of a Backup that does not exist: no refusal tells what another namespace holds', async () => {
    await tenantA.create(
      resources.restores,
      restoreManifest(teamA, 'probe', {
        source: { backupRef: { namespace: teamB, name: 'no-such-backup' } },
      }),
    );
    const failed = await waitForRestore(tenantA, teamA, 'probe', 'Failed');
    expect(failed.status?.errorCode).toBe('ReferenceNotGranted');
  });

  it('cannot be granted by the tenant who wants the data', async () => {
    const err = await refusal(tenantA.create(resources.referenceGrants, referenceGrant(teamB, teamA)));
    expect(err.statusCode).toBe(403);
  });

  it('is restored once the owning team grants it, by a recreate of the same Restore', async () => {
    await tenantB.create(resources.referenceGrants, referenceGrant(teamB, teamA, 'pg-backup'));
    await tenantA.mergePatch(
      resources.restores,
      'steal',
      { spec: { recreateToken: 'granted' } },
      { namespace: teamA },
    );

    const restored = await waitForRestore(tenantA, teamA, 'steal', 'Successful');
    expect(restored.status?.attempt).toBe(2);
    expect(isHealthy(await tenantA.get(resources.statefulSets, 'pg', teamA), 1)).toBe(true);
  });
});

describe('what only the operator writes (finding 3)', () => {
  const hijack = (namespace: string, name: string): Backup => ({
    ...backupManifest(namespace, name, 'pg'),
    spec: {
      deployment: { name: 'pg' },
      backupLocation: 'anything',
      syncedFrom: { cluster: release, namespace: teamB, name: 'pg-backup' },
    },
  });

  it('refuses a tenant’s Backup with spec.syncedFrom in the API server, and takes one without', async () => {
    const err = await refusal(tenantA.create(resources.backups, hijack(teamA, 'import-by-hand')));
    expect(err.statusCode).toBe(403);
    expect(err.message).toContain('spec.syncedFrom is set only by the Snapback operator');
    expect(await admin.get(resources.backups, 'import-by-hand', teamA)).toBeUndefined();

    // The policy refuses the field, not Backups.
    await tenantA.create(resources.backups, backupManifest(teamA, 'plain', 'pg'));
    await tenantA.delete(resources.backups, 'plain', { namespace: teamA });
  });

  it('refuses a tenant’s write of a Restore status, even one whose role allows it, and lets the operator’s ServiceAccount write both', async () => {
    // `edit` does not grant status writes; a role that grants everything Snapback has still
    // meets the admission policy.
    const subject = `--serviceaccount=${teamA}:tenant`;
    await kubectl(
      'create',
      'role',
      'all-of-snapback',
      '-n',
      teamA,
      '--verb=*',
      '--resource=restores.snapback.dev,restores.snapback.dev/status',
    );
    await kubectl('create', 'rolebinding', 'all-of-snapback', '-n', teamA, '--role=all-of-snapback', subject);
    const restore = await tenantA.get(resources.restores, 'probe', teamA);
    if (restore === undefined) throw new Error('the probe restore is gone');
    const forged: Restore = { ...restore, status: { ...restore.status, phase: 'Successful' } };
    const err = await refusal(tenantA.replace(resources.restores, forged, 'status'));
    expect(err.statusCode).toBe(403);
    expect(err.message).toContain('only the Snapback operator');
    expect((await admin.get(resources.restores, 'probe', teamA))?.status?.phase).toBe('Failed');

    const made = await operatorClient.create(
      resources.backups,
      hijack(operatorNs, uniqueName('by-operator')),
    );
    expect(made.spec.syncedFrom).toBeDefined();
    await admin.delete(resources.backups, made.metadata.name ?? '', { namespace: operatorNs });
  });
});

describe('an imported Backup (findings 1 and 2)', () => {
  let imported: string;

  beforeAll(async () => {
    await writeCredentials(admin, operatorNs, 'store-key', store.accessKeyId, store.secretAccessKey);
    await admin.create(
      resources.backupLocations,
      locationManifest(store, release, BUCKET, { validationFrequencySeconds: 1, syncPeriodSeconds: 1 }),
    );
    // Another cluster's record of team B's backup, as that cluster would have written it.
    const source = await waitForBackup(admin, teamB, 'pg-backup', 'Completed');
    const key = recordKey('east', teamB, 'pg-backup');
    const body = store.records.encode(
      recordOf(source, source.status ?? {}, { name: 'east', uid: 'uid-east' }),
    ).body;
    await store.inBucket(BUCKET, (writer) => writer.put(key, body));
    imported = syncedBackupName({ cluster: 'east', namespace: teamB, name: 'pg-backup' });
    await waitForBackup(admin, operatorNs, imported, 'Completed');
  });

  afterAll(async () => {
    await admin.delete(resources.backupLocations, release);
  });

  it('refuses a record planted by someone who can write the bucket but lacks the location key (finding 4)', async () => {
    const source = await waitForBackup(admin, teamB, 'pg-backup', 'Completed');
    const key = recordKey('east', teamB, 'planted');
    const planted = recordOf(
      { ...source, metadata: { ...source.metadata, name: 'planted' } },
      source.status ?? {},
      { name: 'east', uid: 'uid-east' },
    );
    // A valid record, checksum and all, signed with a key that is not this location's.
    await store.inBucket(BUCKET, (writer) =>
      writer.put(key, new RecordCodec(randomBytes(32)).encode(planted).body),
    );

    const refused = await waitFor('the location to refuse the planted record', async () => {
      const location = await admin.get(resources.backupLocations, release);
      return location?.status?.corruptRecords?.find((entry) => entry.key === key);
    });
    expect(refused.message).toContain(`backup record ${key} is not signed with this location's key`);
    const name = syncedBackupName({ cluster: 'east', namespace: teamB, name: 'planted' });
    expect(await admin.get(resources.backups, name, operatorNs)).toBeUndefined();
  });

  it('sanitizes what a record’s manifest says of its metadata on import (finding 5)', async () => {
    const source = await waitForBackup(admin, teamB, 'pg-backup', 'Completed');
    const manifest = source.status?.manifest as { metadata: Record<string, unknown> };
    const key = recordKey('east', teamB, 'crafted');
    const crafted = recordOf(
      { ...source, metadata: { ...source.metadata, name: 'crafted' } },
      {
        ...source.status,
        manifest: {
          ...manifest,
          metadata: {
            ...manifest.metadata,
            finalizers: ['example.com/never-let-go'],
            ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'gc-me', uid: 'uid-gc-me' }],
          },
        },
      },
      { name: 'east', uid: 'uid-east' },
    );
    // Signed with the location's key: a peer cluster's record, or one of a buggy writer.
    await store.inBucket(BUCKET, (writer) => writer.put(key, store.records.encode(crafted).body));
    const name = syncedBackupName({ cluster: 'east', namespace: teamB, name: 'crafted' });
    const imported = await waitForBackup(admin, operatorNs, name, 'Completed');
    const metadata = (imported.status?.manifest as { metadata: Record<string, unknown> }).metadata;
    expect(metadata).not.toHaveProperty('finalizers');
    expect(metadata).not.toHaveProperty('ownerReferences');
    expect(metadata).toMatchObject({ name: manifest.metadata.name });
  });

  it('needs the admin’s grant in the operator’s namespace', async () => {
    await tenantA.create(
      resources.restores,
      restoreManifest(teamA, 'from-import', {
        source: { backupRef: { namespace: operatorNs, name: imported } },
        destination: { deploymentName: 'pg-imported' },
      }),
    );
    const failed = await waitForRestore(tenantA, teamA, 'from-import', 'Failed');
    expect(failed.status?.errorCode).toBe('ReferenceNotGranted');
    expect(failed.status?.errorMessage).toContain(`no ReferenceGrant in namespace ${operatorNs}`);
  });

  it('once granted, is restored with the location’s key nowhere in the tenant’s namespace', async () => {
    await admin.create(resources.referenceGrants, referenceGrant(operatorNs, teamA));
    await tenantA.mergePatch(
      resources.restores,
      'from-import',
      { spec: { recreateToken: 'granted' } },
      { namespace: teamA },
    );
    await waitForRestore(tenantA, teamA, 'from-import', 'Successful');
    expect(isHealthy(await tenantA.get(resources.statefulSets, 'pg-imported', teamA), 1)).toBe(true);

    // Everything team A can read of Secrets: none holds the key every cluster on the bucket shares.
    const { items } = await tenantA.list(resources.secrets, { namespace: teamA });
    const values = items.flatMap((secret) =>
      Object.values(secret.data ?? {}).map((value) => Buffer.from(value, 'base64').toString()),
    );
    expect(values).not.toContain(store.secretAccessKey);
    expect(values).not.toContain(store.accessKeyId);
    expect((await refusal(tenantA.get(resources.secrets, 'store-key', operatorNs))).statusCode).toBe(403);
  });
});

describe('restore slots (finding 7)', () => {
  const stuck = (name: string): Restore =>
    restoreManifest(teamA, name, {
      source: { backupName: 'own-backup' },
      destination: { deploymentName: `db-${name}` },
      // Pods that can never be scheduled: the restore holds its slot in RestoringDataServiceDeployment.
      podSchedulingConfig: { nodeSelector: { 'snapback.dev/test-never': 'true' } },
    });

  it('are not all taken by one tenant: team A holds its share, team B still restores', async () => {
    await deploySampleDataService(tenantA, teamA, 'own', 1);
    await tenantA.create(resources.backups, backupManifest(teamA, 'own-backup', 'own'));
    await waitForBackup(tenantA, teamA, 'own-backup', 'Completed');
    const names = ['hog-1', 'hog-2', 'hog-3', 'hog-4'];
    for (const name of names) await tenantA.create(resources.restores, stuck(name));

    const waiting = await waitFor('two of team A’s restores to run and two to wait', async () => {
      const restores = await Promise.all(names.map((name) => tenantA.get(resources.restores, name, teamA)));
      const running = restores.filter((r) => r?.status?.phase === 'RestoringDataServiceDeployment');
      const queued = restores.filter((r) =>
        r?.status?.conditions?.some((c) => c.type === 'Progressing' && c.reason === 'WaitingForSlot'),
      );
      return running.length === 2 && queued.length === 2 ? queued : undefined;
    });
    for (const restore of waiting) {
      expect(restore?.status?.phase).toBe('Pending');
      expect(restore?.status?.queuedAt).toBeDefined();
      const progressing = restore?.status?.conditions?.find((c) => c.type === 'Progressing');
      expect(progressing?.message).toContain(
        `2 restores of namespace ${teamA} are running, the limit per namespace is 2`,
      );
    }

    await tenantB.create(
      resources.restores,
      restoreManifest(teamB, 'own-copy', {
        source: { backupName: 'pg-backup' },
        destination: { deploymentName: 'pg-copy' },
      }),
    );
    await waitForRestore(tenantB, teamB, 'own-copy', 'Successful');
    for (const name of names) await tenantA.delete(resources.restores, name, { namespace: teamA });
  });
});
