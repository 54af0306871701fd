// A real S3-compatible object store for the tests: versitygw (built from Go modules by
// test/cluster/build.sh) with its posix backend, on loopback, checking request signatures against
// a root key. Each test file starts its own on a free port with its own directory.

import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { CreateBucketCommand, DeleteBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { REPO_ROOT, waitFor } from './cluster.js';
import { freePort } from './operator.js';

const BINARY = join(REPO_ROOT, '.cache', 'bin', 'versitygw');
const LOG_DIR = join(REPO_ROOT, '.cache', 'test-logs');

export interface RunningObjectStore {
  /** http://127.0.0.1:<port> */
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** An S3 client with the root key, for the tests' own setup and checks. */
  s3: S3Client;
  createBucket(name: string): Promise<void>;
  deleteBucket(name: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startObjectStore(name: string): Promise<RunningObjectStore> {
  mkdirSync(LOG_DIR, { recursive: true });
  const root = mkdtempSync(join(REPO_ROOT, '.cache', `s3-${name}-`));
  const port = await freePort();
  const accessKeyId = `root-${name}`;
  const secretAccessKey = `secret-${name}-${String(port)}`;
  const log = openSync(join(LOG_DIR, `versitygw-${name}.log`), 'a');
  // --nometa: no extended attributes, which not every filesystem under .cache/ supports.
  const child = spawn(
    BINARY,
    [
      '--access',
      accessKeyId,
      '--secret',
      secretAccessKey,
      '--port',
      `127.0.0.1:${String(port)}`,
      'posix',
      '--nometa',
      root,
    ],
    { stdio: ['ignore', log, log] },
  );
  const exited = new Promise<void>((done) => {
    child.once('exit', () => {
      done();
    });
  });
  const endpoint = `http://127.0.0.1:${String(port)}`;
  const s3 = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId, secretAccessKey },
  });
  await waitFor(`versitygw on ${endpoint}`, async () => {
    if (child.exitCode !== null) throw new Error(`versitygw exited with ${String(child.exitCode)}`);
    const response = await fetch(endpoint).catch(() => undefined);
    return response !== undefined;
  });
  return {
    endpoint,
    accessKeyId,
    secretAccessKey,
    s3,
    createBucket: async (bucket) => {
      await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    },
    deleteBucket: async (bucket) => {
      await s3.send(new DeleteBucketCommand({ Bucket: bucket }));
    },
    stop: async () => {
      s3.destroy();
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
      rmSync(root, { recursive: true, force: true });
    },
  };
}
