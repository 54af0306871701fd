// A real S3-compatible object store for the tests: versitygw (built from Go modules by
// test/cluster/build.sh) with its posix backend, on loopback, checking request signatures against
// a root key. Each test file starts its own on a free port with its own directory.

import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { CreateBucketCommand, DeleteBucketCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { API_VERSION } from '../../../src/api/constants.js';
import type { BackupLocation, BackupLocationReason } from '../../../src/api/generated/types.js';
import type { Secret } from '../../../src/api/kubernetes.js';
import type { KubeClient } from '../../../src/runtime/kube-client.js';
import { resources } from '../../../src/runtime/resources.js';
import { MOVER_ENV } from '../../../src/storage/data-mover.js';
import { randomBytes } from 'node:crypto';
import { RecordCodec } from '../../../src/storage/backup-record.js';
import { ObjectStore } from '../../../src/storage/object-store.js';
import { REPO_ROOT, waitFor } from './cluster.js';
import { freePort, startLogged } from './process.js';

const BINARY = join(REPO_ROOT, '.cache', 'bin', 'versitygw');

/** The location key of this test file's locations (base64), as an admin gives it to every cluster. */
export const LOCATION_KEY = randomBytes(32).toString('base64');

export interface RunningObjectStore {
  /** http://<host>:<port> */
  endpoint: string;
  /** versitygw's posix directory: <root>/<bucket>/<key>, for damaging objects behind its back. */
  root: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** An S3 client with the root key, for the tests' own setup and checks. */
  s3: S3Client;
  /** The records of locations with LOCATION_KEY: what a cluster of them writes and reads. */
  records: RecordCodec;
  createBucket(name: string): Promise<void>;
  /** The project's own client for a bucket (and prefix), with the root key. Close it after use. */
  open(bucket: string, prefix?: string): ObjectStore;
  /** Runs `use` on a client of `bucket` (root key), closed afterwards. */
  inBucket<T>(bucket: string, use: (bucket: ObjectStore) => Promise<T>): Promise<T>;
  deleteBucket(name: string): Promise<void>;
  /** Bytes of the objects under `prefix` in `bucket`. */
  storedBytes(bucket: string, prefix: string): Promise<number>;
  /** The environment of a data mover process on `bucket`/`prefix`, as its pod gets it. */
  moverEnv(
    bucket: string,
    prefix: string,
    options?: { locationKey?: string; progressSeconds?: number },
  ): NodeJS.ProcessEnv;
  stop(): Promise<void>;
}

/**
 * `host`: the address it listens on; the pod bridge's (BRIDGE_IP) for data mover pods, which reach
 * this machine there and nowhere else.
 */
export async function startObjectStore(name: string, host = '127.0.0.1'): Promise<RunningObjectStore> {
  const root = mkdtempSync(join(REPO_ROOT, '.cache', `s3-${name}-`));
  const port = await freePort();
  const accessKeyId = `root-${name}`;
  const secretAccessKey = `secret-${name}-${String(port)}`;
  // --nometa: no extended attributes, which not every filesystem under .cache/ supports.
  const child = startLogged(`versitygw-${name}`, BINARY, [
    '--access',
    accessKeyId,
    '--secret',
    secretAccessKey,
    '--port',
    `${host}:${String(port)}`,
    'posix',
    '--nometa',
    root,
  ]);
  const endpoint = `http://${host}:${String(port)}`;
  const s3 = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId, secretAccessKey },
  });
  await waitFor(`versitygw on ${endpoint}`, async () => {
    child.assertRunning();
    const response = await fetch(endpoint).catch(() => undefined);
    return response !== undefined;
  });
  const open = (bucket: string, prefix?: string): ObjectStore =>
    new ObjectStore(
      { endpoint, bucket, forcePathStyle: true, ...(prefix === undefined ? {} : { prefix }) },
      { accessKeyId, secretAccessKey },
    );
  return {
    endpoint,
    root,
    accessKeyId,
    secretAccessKey,
    s3,
    records: new RecordCodec(Buffer.from(LOCATION_KEY, 'base64')),
    createBucket: async (bucket) => {
      await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    },
    open,
    inBucket: async (bucket, use) => {
      const client = open(bucket);
      try {
        return await use(client);
      } finally {
        client.close();
      }
    },
    deleteBucket: async (bucket) => {
      await s3.send(new DeleteBucketCommand({ Bucket: bucket }));
    },
    moverEnv: (bucket, prefix, options = {}) => ({
      ...process.env,
      NODE_OPTIONS: '',
      [MOVER_ENV.location]: JSON.stringify({ endpoint, bucket, prefix, forcePathStyle: true }),
      [MOVER_ENV.accessKeyId]: accessKeyId,
      [MOVER_ENV.secretAccessKey]: secretAccessKey,
      [MOVER_ENV.locationKey]: options.locationKey ?? LOCATION_KEY,
      [MOVER_ENV.progressSeconds]: String(options.progressSeconds ?? 2),
    }),
    storedBytes: async (bucket, prefix) => {
      let bytes = 0;
      let token: string | undefined;
      do {
        const page = await s3.send(
          new ListObjectsV2Command({
            Bucket: bucket,
            Prefix: prefix,
            ...(token === undefined ? {} : { ContinuationToken: token }),
          }),
        );
        for (const object of page.Contents ?? []) bytes += object.Size ?? 0;
        token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
      } while (token !== undefined);
      return bytes;
    },
    stop: async () => {
      s3.destroy();
      await child.stop();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** Creates or updates a credentials Secret as a BackupLocation reads it (`locationKey` null: none). */
export async function writeCredentials(
  client: KubeClient,
  namespace: string,
  name: string,
  accessKeyId: string,
  secretAccessKey: string,
  locationKey: string | null = LOCATION_KEY,
): Promise<void> {
  const secret: Secret = {
    metadata: { name, namespace },
    stringData: { accessKeyId, secretAccessKey, ...(locationKey === null ? {} : { locationKey }) },
  };
  if ((await client.get(resources.secrets, name, namespace)) === undefined)
    await client.create(resources.secrets, secret);
  else await client.mergePatch(resources.secrets, name, { stringData: secret.stringData }, { namespace });
}

/** A BackupLocation on `store` (path-style), its spec completed by `spec`; it copies no volume data unless told. */
export function locationManifest(
  store: RunningObjectStore,
  name: string,
  bucket: string,
  spec: Omit<Partial<BackupLocation['spec']>, 's3'> & { s3?: Partial<BackupLocation['spec']['s3']> },
): BackupLocation {
  const { s3, ...rest } = spec;
  return {
    apiVersion: API_VERSION,
    kind: 'BackupLocation',
    metadata: { name },
    spec: {
      s3: { endpoint: store.endpoint, bucket, forcePathStyle: true, ...s3 },
      credentialsSecretName: 'store-key',
      // Data movers need volumes a real node can mount; the simulator's are not.
      copyVolumeData: false,
      ...rest,
    },
  };
}

/** Waits until the location's status satisfies `wanted` (a reason, or a predicate). */
export async function waitForLocation(
  client: KubeClient,
  name: string,
  wanted: BackupLocationReason | ((location: BackupLocation) => boolean),
  what = typeof wanted === 'string' ? wanted : 'the expected status',
): Promise<BackupLocation> {
  const satisfied =
    typeof wanted === 'string' ? (location: BackupLocation) => location.status?.reason === wanted : wanted;
  return waitFor(
    `BackupLocation ${name}: ${what}`,
    async () => {
      const location = await client.get(resources.backupLocations, name);
      return location !== undefined && satisfied(location) ? location : undefined;
    },
    30_000,
  );
}
