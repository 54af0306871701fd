// The data mover: one volume's files into a location's repository (backup), back into an empty
// volume (restore), or read back and authenticated in full (verify). It runs from the operator's
// image as `main.js mover ...`, in a pod of the operator's namespace that mounts the volume and
// gets the location's credentials and key from its Secret there. It reports progress as JSON lines
// on stdout and its result in a file (the pod's termination message), so it needs no Kubernetes
// permissions at all.

import { writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import type { S3Location } from './api/generated/types.js';
import { errorMessage, isNetworkError } from './runtime/errors.js';
import { MOVER_ENV, type MoverResult } from './storage/data-mover.js';
import { ObjectStore } from './storage/object-store.js';
import { backupFiles, restoreFiles, verifyFiles, type TransferProgress } from './storage/repository/files.js';
import {
  CorruptObjectError,
  MissingObjectError,
  Repository,
  WrongKeyError,
} from './storage/repository/repository.js';

const USAGE =
  'usage: mover backup <directory> <manifest> | mover restore <manifest> <directory> | mover verify <manifest>';

class UsageError extends Error {}

function required(env: NodeJS.ProcessEnv, name: string): string {
  const value = env[name];
  if (value === undefined || value === '') throw new UsageError(`${name} is not set`);
  return value;
}

/** The location's store, from the environment the pod's spec gives the mover. */
function storeOf(env: NodeJS.ProcessEnv): ObjectStore {
  const location = JSON.parse(required(env, MOVER_ENV.location)) as S3Location;
  const sessionToken = env[MOVER_ENV.sessionToken];
  return new ObjectStore(location, {
    accessKeyId: required(env, MOVER_ENV.accessKeyId),
    secretAccessKey: required(env, MOVER_ENV.secretAccessKey),
    ...(sessionToken === undefined || sessionToken === '' ? {} : { sessionToken }),
  });
}

/** The error as the result says it: a code a controller can act on, the object it concerns. */
export function moverError(err: unknown): Extract<MoverResult, { error: unknown }> {
  const message = errorMessage(err);
  if (err instanceof UsageError) return { error: { code: 'Usage', message: `${message}; ${USAGE}` } };
  if (err instanceof MissingObjectError)
    return { error: { code: 'ObjectMissing', message, object: err.key } };
  if (err instanceof CorruptObjectError)
    return { error: { code: 'ObjectCorrupt', message, object: err.key } };
  if (err instanceof WrongKeyError) return { error: { code: 'WrongKey', message } };
  if (isNetworkError(err)) return { error: { code: 'StoreUnreachable', message } };
  return { error: { code: 'StoreError', message } };
}

interface Operation {
  name: 'backup' | 'restore' | 'verify';
  manifest: string;
  run(
    repository: Repository,
    report: (progress: TransferProgress) => void,
  ): Promise<{ progress: TransferProgress; reusedManifest?: boolean }>;
}

/** The operation the arguments name, or UsageError. */
function parse(args: string[]): Operation {
  const [name, first, second] = args;
  if (name === 'backup' && first !== undefined && second !== undefined)
    return {
      name,
      manifest: second,
      run: (repository, report) => backupFiles(repository, first, second, report),
    };
  if (name === 'restore' && first !== undefined && second !== undefined)
    return {
      name,
      manifest: first,
      run: (repository, report) => restoreFiles(repository, first, second, report),
    };
  if (name === 'verify' && first !== undefined)
    return { name, manifest: first, run: (repository, report) => verifyFiles(repository, first, report) };
  throw new UsageError(`unknown operation ${JSON.stringify(args.join(' '))}`);
}

/** Runs one mover operation; resolves to the exit code (0: done, 1: failed, 2: usage). */
export async function runMover(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const started = Date.now();
  const intervalMs = Number(env[MOVER_ENV.progressSeconds] ?? '2') * 1000;
  let lastReport = 0;
  let lastBytes = 0;
  const report = (progress: TransferProgress): void => {
    const now = Date.now();
    if (now - lastReport < intervalMs) return;
    const seconds = lastReport === 0 ? (now - started) / 1000 : (now - lastReport) / 1000;
    const throughput = seconds > 0 ? (progress.bytesDone - lastBytes) / seconds : 0;
    lastReport = now;
    lastBytes = progress.bytesDone;
    const left = progress.bytesTotal - progress.bytesDone;
    const eta = throughput > 0 ? Math.round(left / throughput) : undefined;
    process.stdout.write(
      `${JSON.stringify({ progress, bytesPerSecond: Math.round(throughput), ...(eta === undefined ? {} : { etaSeconds: eta }) })}\n`,
    );
  };
  let result: MoverResult;
  let store: ObjectStore | undefined;
  let repository: Repository | undefined;
  try {
    const operation = parse(args);
    const key = Buffer.from(required(env, MOVER_ENV.locationKey), 'base64');
    store = storeOf(env);
    // A chunk worker per core the main thread leaves (it reads, chunks, seals and does the I/O).
    // At most 4 by default: a pod's CPU limit is not always what the process is told it has.
    const workers = Number(env[MOVER_ENV.workers] ?? Math.min(4, availableParallelism() - 1));
    repository = await Repository.open(store, key, { workers });
    const done = await operation.run(repository, report);
    result = {
      operation: operation.name,
      manifest: operation.manifest,
      progress: done.progress,
      seconds: (Date.now() - started) / 1000,
      ...(done.reusedManifest === true ? { reusedManifest: true } : {}),
    };
  } catch (err) {
    result = moverError(err);
  } finally {
    await repository?.close();
    store?.close();
  }
  const line = JSON.stringify(result);
  process.stdout.write(`${line}\n`);
  const resultFile = env[MOVER_ENV.resultFile];
  if (resultFile !== undefined && resultFile !== '') await writeFile(resultFile, line);
  if (!('error' in result)) return 0;
  return result.error.code === 'Usage' ? 2 : 1;
}
