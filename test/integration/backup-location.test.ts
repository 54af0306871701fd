// BackupLocations against a real S3-compatible store (versitygw, signatures checked): a good one
// becomes Available and leaves nothing behind in the bucket; an unreachable endpoint, wrong
// credentials, a missing bucket and a missing Secret each make it Unavailable with a reason and a
// message that says what to fix, with a Warning Event, the operator up throughout; fixing the cause
// makes it Available again, at once for a spec change and within validationFrequencySeconds for
// anything else. The API server refuses malformed locations. A Backup naming a location completes
// with its record stored and verified there, waits (InProgress, saying why) while the store cannot
// take it, and takes the record with it when deleted, unless force-deleted. A Backup that claims
// to be synced without being imported is refused or fails, snapshotting nothing.

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { annotations, labels } from '../../src/api/constants.js';
import type { Backup, BackupLocation, BackupLocationReason } from '../../src/api/generated/types.js';
import type { KubeClient } from '../../src/runtime/kube-client.js';
import { ApiError } from '../../src/runtime/errors.js';
import { resources } from '../../src/runtime/resources.js';
import {
  createTestNamespace,
  deleteTestNamespace,
  testClient,
  uniqueName,
  waitFor,
} from './support/cluster.js';
import {
  locationManifest,
  startObjectStore,
  waitForLocation,
  writeCredentials,
  type RunningObjectStore,
} from './support/object-store.js';
import { startOperator, type RunningOperator } from './support/operator.js';
import { recordKey, recordOf } from '../../src/storage/backup-record.js';
import { backupManifest, deploySampleDataService, installCrds, waitForBackup } from './support/snapback.js';

const FREQUENCY_SECONDS = 2;
/** The operator's clusterName (test/integration/support/operator.ts), the records' first key part. */
const CLUSTER = 'test';
const BUCKET = 'snapback-backups';

let client: KubeClient;
let namespace: string;
let store: RunningObjectStore;
let operator: RunningOperator;
const locations: string[] = [];

beforeAll(async () => {
  client = await testClient();
  await installCrds(client);
  namespace = await createTestNamespace(client, 'locations');
  store = await startObjectStore(namespace);
  await store.createBucket(BUCKET);
  operator = await startOperator(`locations-${namespace}`, {
    watchNamespace: namespace,
    namespace,
    backup: { timeoutSeconds: 120 },
  });
  await deploySampleDataService(client, namespace, 'pg', 1);
});

afterAll(async () => {
  for (const name of locations) await client.delete(resources.backupLocations, name);
  await operator.stop();
  await store.stop();
  await deleteTestNamespace(client, namespace);
  await client.close();
});

const writeSecret = (name: string, accessKeyId: string, secretAccessKey: string): Promise<void> =>
  writeCredentials(client, namespace, name, accessKeyId, secretAccessKey);

/** Creates a location (and a Secret with the store's key unless told otherwise). */
async function createLocation(
  prefix: string,
  s3: Partial<BackupLocation['spec']['s3']> = {},
  secret = 'store-key',
): Promise<string> {
  if (secret === 'store-key') await writeSecret(secret, store.accessKeyId, store.secretAccessKey);
  const name = uniqueName(prefix);
  locations.push(name);
  await client.create(
    resources.backupLocations,
    locationManifest(store, name, BUCKET, {
      s3,
      credentialsSecretName: secret,
      validationFrequencySeconds: FREQUENCY_SECONDS,
    }),
  );
  return name;
}

const waitForReason = (name: string, reason: BackupLocationReason): Promise<BackupLocation> =>
  waitForLocation(client, name, reason);

function expectUnavailable(location: BackupLocation, message: RegExp): void {
  expect(location.status?.phase).toBe('Unavailable');
  expect(location.status?.message).toMatch(message);
  expect(location.status?.observedGeneration).toBe(location.metadata.generation);
  const ready = location.status?.conditions?.find((condition) => condition.type === 'Ready');
  expect(ready).toMatchObject({ status: 'False', reason: location.status?.reason });
}

async function warningEvents(name: string): Promise<string[]> {
  const { items } = await client.list(resources.events, {
    namespace: 'default',
    fieldSelector: `involvedObject.kind=BackupLocation,involvedObject.name=${name}`,
  });
  return items.filter((event) => event.type === 'Warning').map((event) => event.reason);
}

describe('a BackupLocation', () => {
  it('is Available when its bucket can be listed, written and deleted from, and leaves no probe behind', async () => {
    const name = await createLocation('good', { prefix: 'cluster-a/backups' });
    const location = await waitForReason(name, 'Available');
    expect(location.status?.phase).toBe('Available');
    expect(location.status?.message).toMatch(/snapback-backups.*cluster-a\/backups/);
    expect(location.status?.lastValidationTime).toBeDefined();
    const ready = location.status?.conditions?.find((condition) => condition.type === 'Ready');
    expect(ready).toMatchObject({ status: 'True', reason: 'Available' });
    const listed = await store.s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'cluster-a/' }));
    expect(listed.KeyCount ?? 0).toBe(0);

    // Checked again every validationFrequencySeconds.
    const first = Date.parse(location.status?.lastValidationTime ?? '');
    await waitFor('a second check', async () => {
      const again = await client.get(resources.backupLocations, name);
      return Date.parse(again?.status?.lastValidationTime ?? '') > first;
    });
  });

  it('is Unreachable when nothing answers at the endpoint, and Available as soon as the endpoint is fixed', async () => {
    const name = await createLocation('unreachable', { endpoint: 'http://127.0.0.1:1' });
    const location = await waitForReason(name, 'Unreachable');
    expectUnavailable(location, /127\.0\.0\.1:1.*ECONNREFUSED.*spec\.s3\.endpoint/);
    await waitFor('a Warning Event', async () => (await warningEvents(name)).includes('Unreachable'));

    await client.mergePatch(resources.backupLocations, name, { spec: { s3: { endpoint: store.endpoint } } });
    const fixed = await waitForReason(name, 'Available');
    expect(fixed.status?.observedGeneration).toBe(2);
  });

  it('is InvalidCredentials when the store refuses the key, and recovers when the Secret is fixed', async () => {
    await writeSecret('wrong-key', store.accessKeyId, 'not-the-secret');
    const name = await createLocation('wrong-key', {}, 'wrong-key');
    const location = await waitForReason(name, 'InvalidCredentials');
    expectUnavailable(location, new RegExp(`SignatureDoesNotMatch.*Secret ${namespace}/wrong-key`));

    await writeSecret('wrong-key', store.accessKeyId, store.secretAccessKey);
    await waitForReason(name, 'Available');
  });

  it('is InvalidCredentials for an access key the store does not know', async () => {
    await writeSecret('unknown-key', 'nobody', store.secretAccessKey);
    const name = await createLocation('unknown-key', {}, 'unknown-key');
    expectUnavailable(await waitForReason(name, 'InvalidCredentials'), /unknown-key/);
  });

  it('is BucketNotFound when the bucket does not exist, and recovers once it is created', async () => {
    const bucket = uniqueName('late');
    const name = await createLocation('no-bucket', { bucket });
    expectUnavailable(
      await waitForReason(name, 'BucketNotFound'),
      new RegExp(`${bucket}.*NoSuchBucket.*create the bucket`),
    );

    await store.createBucket(bucket);
    await waitForReason(name, 'Available');
    await store.deleteBucket(bucket);
    await waitForReason(name, 'BucketNotFound');
  });

  it('is CredentialsNotFound while its Secret is missing or lacks a key', async () => {
    const name = await createLocation('no-secret', {}, 'later-key');
    expectUnavailable(
      await waitForReason(name, 'CredentialsNotFound'),
      new RegExp(`Secret ${namespace}/later-key does not exist`),
    );
    await client.create(resources.secrets, {
      metadata: { name: 'later-key', namespace },
      stringData: { accessKeyId: store.accessKeyId },
    });
    await waitFor('the missing key to be named', async () => {
      const location = await client.get(resources.backupLocations, name);
      return location?.status?.message?.includes('has no secretAccessKey');
    });
    await writeSecret('later-key', store.accessKeyId, store.secretAccessKey);
    await waitForReason(name, 'Available');
  });

  it('left the operator running throughout', () => {
    expect(operator.running()).toBe(true);
  });
});

describe('the API server refuses a BackupLocation', () => {
  const refusal = async (s3: Partial<BackupLocation['spec']['s3']>): Promise<string> => {
    const manifest = locationManifest(store, uniqueName('invalid'), BUCKET, { s3 });
    const err = await client.create(resources.backupLocations, manifest).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).statusCode).toBe(422);
    return (err as ApiError).message;
  };

  it('with a bucket name S3 does not allow', async () => {
    expect(await refusal({ bucket: 'Upper_Case' })).toMatch(/spec\.s3\.bucket/);
  });

  it('with an endpoint that is not an http(s) URL', async () => {
    expect(await refusal({ endpoint: 'ftp://store:21' })).toMatch(/spec\.s3\.endpoint/);
  });

  it('with a prefix that starts with a slash', async () => {
    expect(await refusal({ prefix: '/backups' })).toMatch(/spec\.s3\.prefix/);
  });
});

/** The object under `key` in `bucket` (read with the store's root key), or undefined when there is none. */
const stored = (bucket: string, key: string): Promise<string | undefined> =>
  store.inBucket(bucket, (reader) => reader.get(key));

describe('a Backup stored in a BackupLocation', () => {
  it('completes with its record stored, read back with a matching checksum, holding what a restore needs', async () => {
    const location = await createLocation('records', { prefix: 'cluster-a' });
    await waitForReason(location, 'Available');
    await client.create(
      resources.backups,
      backupManifest(namespace, 'pg-stored', 'pg', { backupLocation: location }),
    );
    const backup = await waitForBackup(client, namespace, 'pg-stored', 'Completed');
    const key = `backups/${CLUSTER}/${namespace}/pg-stored.json`;
    expect(backup.status?.record).toMatchObject({ location, key });

    const body = await stored(BUCKET, `cluster-a/${key}`);
    expect(body).toBeDefined();
    const { record, checksum } = store.records.decode(key, body ?? '');
    expect(checksum).toBe(backup.status?.record?.checksum);
    expect(record.cluster).toBe(CLUSTER);
    expect(record.metadata).toMatchObject({ name: 'pg-stored', namespace, uid: backup.metadata.uid });
    expect(record.status.volumes?.map((v) => v.cloudSnapId)).toEqual(
      backup.status?.volumes?.map((v) => v.cloudSnapId),
    );
    expect(record.status.volumes?.[0]?.cloudSnapId).toBeTruthy();
    expect(record.status.manifest).toMatchObject({ kind: 'StatefulSet', metadata: { name: 'pg' } });

    // Deleting the Backup deletes the record.
    await client.delete(resources.backups, 'pg-stored', { namespace });
    await waitFor(
      'the Backup to go',
      async () => (await client.get(resources.backups, 'pg-stored', namespace)) === undefined,
    );
    expect(await stored(BUCKET, `cluster-a/${key}`)).toBeUndefined();
  });

  it("carries this cluster's identity, and never overwrites the record of another cluster of the same name", async () => {
    const location = await createLocation('records-taken');
    await waitForReason(location, 'Available');
    const own = await client.create(
      resources.backups,
      backupManifest(namespace, 'pg-own', 'pg', { backupLocation: location }),
    );
    await waitForBackup(client, namespace, 'pg-own', 'Completed');
    const kubeSystem = await client.get(resources.namespaces, 'kube-system');
    const ownKey = `backups/${CLUSTER}/${namespace}/pg-own.json`;
    expect(store.records.decode(ownKey, (await stored(BUCKET, ownKey)) ?? '').record.clusterUid).toBe(
      kubeSystem?.metadata.uid,
    );

    // Another cluster, also named "test", stored pg-twin first.
    const key = `backups/${CLUSTER}/${namespace}/pg-twin.json`;
    const theirs = store.records.encode(
      recordOf(
        { ...own, metadata: { ...own.metadata, name: 'pg-twin', uid: 'uid-of-their-backup' } },
        { phase: 'Completed' },
        {
          name: CLUSTER,
          uid: 'uid-of-another-cluster',
        },
      ),
    ).body;
    await store.inBucket(BUCKET, (writer) => writer.put(key, theirs));
    await client.create(
      resources.backups,
      backupManifest(namespace, 'pg-twin', 'pg', { backupLocation: location }),
    );
    const failed = await waitForBackup(client, namespace, 'pg-twin', 'Failed');
    expect(failed.status?.errorCode).toBe('ClusterNameConflict');
    expect(failed.status?.errorMessage).toContain(
      `record ${key} in BackupLocation ${location} was written by another cluster that is also named ${CLUSTER} (its kube-system namespace is uid-of-another-cluster`,
    );
    expect(await stored(BUCKET, key)).toBe(theirs);
  });

  it('stays InProgress, saying why, while the store cannot take the record, and completes once it can', async () => {
    const bucket = uniqueName('records-late');
    const location = await createLocation('records-late', { bucket });
    await waitForReason(location, 'BucketNotFound');
    await client.create(
      resources.backups,
      backupManifest(namespace, 'pg-waiting', 'pg', { backupLocation: location }),
    );
    const waiting = await waitFor('the Backup to wait for its location', async () => {
      const backup = await client.get(resources.backups, 'pg-waiting', namespace);
      const ready = backup?.status?.conditions?.find((condition) => condition.type === 'Ready');
      return ready?.reason === 'StoringRecord' ? backup : undefined;
    });
    expect(waiting.status?.phase).toBe('InProgress');
    const ready = waiting.status?.conditions?.find((condition) => condition.type === 'Ready');
    expect(ready?.message).toMatch(new RegExp(`${location}.*NoSuchBucket.*create the bucket`));

    await store.createBucket(bucket);
    const backup = await waitForBackup(client, namespace, 'pg-waiting', 'Completed');
    expect(await stored(bucket, backup.status?.record?.key ?? '')).toBeDefined();

    // Force-deleted: the Backup goes, its record stays for other clusters.
    await client.mergePatch(
      resources.backups,
      'pg-waiting',
      { metadata: { annotations: { [annotations.forceDelete]: 'true' } } },
      { namespace },
    );
    await client.delete(resources.backups, 'pg-waiting', { namespace });
    await waitFor(
      'the Backup to go',
      async () => (await client.get(resources.backups, 'pg-waiting', namespace)) === undefined,
    );
    expect(await stored(bucket, backup.status?.record?.key ?? '')).toBeDefined();
  });
});

describe('a Backup claiming to be synced, written by hand', () => {
  const synced = (name: string, spec: Partial<Backup['spec']>): Backup =>
    backupManifest(namespace, name, 'pg', {
      syncedFrom: { cluster: 'elsewhere', namespace: 'shop', name: 'pg-backup' },
      ...spec,
    });

  it('is refused by the API server without a backupLocation', async () => {
    const err = await client.create(resources.backups, synced('no-location', {})).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).message).toContain('a synced Backup names the backupLocation its record is in');
    expect(await client.get(resources.backups, 'no-location', namespace)).toBeUndefined();
  });

  it('reads a record that is not there yet again, and is imported once it appears', async () => {
    const location = uniqueName('late-records');
    locations.push(location);
    await client.create(
      resources.backupLocations,
      // No backup sync: this Backup is the only import of the record.
      locationManifest(store, location, BUCKET, {
        validationFrequencySeconds: FREQUENCY_SECONDS,
        syncPeriodSeconds: 0,
      }),
    );
    await waitForReason(location, 'Available');
    await client.create(
      resources.backups,
      backupManifest(namespace, 'pg-late-source', 'pg', { backupLocation: location }),
    );
    const source = await waitForBackup(client, namespace, 'pg-late-source', 'Completed');

    await client.create(
      resources.backups,
      backupManifest(namespace, 'late-import', 'pg', {
        backupLocation: location,
        syncedFrom: { cluster: 'elsewhere', namespace, name: 'pg-late' },
      }),
    );
    // One miss is not the record's fault: it is read again, not failed (before: RecordNotFound at once).
    const waiting = await waitFor('the import to read the record again', async () => {
      const backup = await client.get(resources.backups, 'late-import', namespace);
      const ready = backup?.status?.conditions?.find((condition) => condition.type === 'Ready');
      return ready?.reason === 'ImportingRecord' ? backup : undefined;
    });
    expect(waiting.status?.phase).toBeUndefined();
    expect(waiting.status?.conditions?.find((c) => c.type === 'Ready')?.message).toMatch(
      /record backups\/elsewhere\/.*pg-late\.json is not in BackupLocation .*reading it again/,
    );

    // The record appears, as another cluster would write it.
    const sourceKey = source.status?.record?.key ?? '';
    const { record } = store.records.decode(sourceKey, (await stored(BUCKET, sourceKey)) ?? '');
    const key = recordKey('elsewhere', namespace, 'pg-late');
    const { body } = store.records.encode({
      ...record,
      cluster: 'elsewhere',
      metadata: { ...record.metadata, name: 'pg-late' },
    });
    await store.inBucket(BUCKET, (writer) => writer.put(key, body));
    const imported = await waitForBackup(client, namespace, 'late-import', 'Completed');
    expect(imported.status?.record).toMatchObject({ location, key });
    expect(imported.status?.volumes?.map((v) => v.cloudSnapId)).toEqual(
      source.status?.volumes?.map((v) => v.cloudSnapId),
    );
  });

  it('fails with RecordNotFound, snapshotting nothing, when its location does not exist', async () => {
    await client.create(resources.backups, synced('hand-made', { backupLocation: 'no-such-location' }));
    const backup = await waitForBackup(client, namespace, 'hand-made', 'Failed');
    expect(backup.status?.errorCode).toBe('RecordNotFound');
    expect(backup.status?.errorMessage).toMatch(
      /BackupLocation no-such-location does not exist; .*without it/,
    );
    const { items } = await client.list(resources.volumeSnapshots, {
      namespace,
      labelSelector: `${labels.backup}=hand-made`,
    });
    expect(items).toEqual([]);
  });
});
