// A chunk worker thread (codec.ts's WorkerCodec): the same per-chunk functions as the calling
// thread's, under keys derived here from the location key it is given.

import { parentPort, workerData } from 'node:worker_threads';
import {
  asBuffer,
  ChunkRefused,
  openChunks,
  prepareChunk,
  SealerCache,
  transferable,
  type WorkerAnswer,
  type WorkerRequest,
  type WorkerSetup,
} from './codec.js';
import { RepositoryKeys } from './keys.js';

const setup = workerData as WorkerSetup;
const keys = new RepositoryKeys(Buffer.from(setup.locationKey), setup.repositoryId);
const sealers = new SealerCache(keys);

parentPort?.on('message', (request: WorkerRequest) => {
  let answer: WorkerAnswer;
  try {
    answer =
      request.op === 'prepare'
        ? { job: request.job, prepared: request.chunks.map((chunk) => prepareChunk(keys, asBuffer(chunk))) }
        : {
            job: request.job,
            opened: openChunks(keys, sealers, request.pack, request.chunks, asBuffer(request.bytes)),
          };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    answer =
      err instanceof ChunkRefused
        ? { job: request.job, refused: message }
        : { job: request.job, failed: message };
  }
  // Decompressed chunks are most of a restore's bytes: moved to the calling thread, not copied.
  const views =
    'opened' in answer
      ? answer.opened
      : 'prepared' in answer
        ? answer.prepared.map((chunk) => chunk.body)
        : [];
  parentPort?.postMessage(answer, transferable(views));
});
