// The per-chunk work of the data path: a chunk's id (HMAC), its compression (zstd), and on the way
// back its authentication, decompression and id check. It runs either on the calling thread or on
// worker threads (chunk-worker.ts runs these same functions): on one thread the mover was CPU-bound
// while a second core sat idle (`bench/data-path.ts`).

import { Worker } from 'node:worker_threads';
import { constants, zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import { asError } from '../../runtime/errors.js';
import { RepositoryKeys, type ObjectSealer } from './keys.js';

/** zstd level 1: its speed is near the network's, and a database's pages compress well at it. */
const zstdOptions = { params: { [constants.ZSTD_c_compressionLevel]: 1 } };

// Synchronous: a chunk is 64 KiB on average, and the asynchronous API's per-call overhead (a
// stream, its callbacks and copies) cost four times the compression itself (profiled).
export const compress = (data: Buffer): Buffer => zstdCompressSync(data, zstdOptions);
export const decompress = (data: Buffer): Buffer => zstdDecompressSync(data);

/** A chunk made ready for a pack: its id, and its body compressed unless that was not smaller. */
export interface PreparedChunk {
  id: string;
  /** All zeros: a hole, neither stored nor hashed. */
  zero: boolean;
  body: Buffer;
  compressed: boolean;
  rawLength: number;
}

/** A chunk in a range read of its pack: where it starts there, and what its index says of it. */
export interface SealedChunk {
  id: string;
  part: number;
  from: number;
  length: number;
  rawLength: number;
  compressed: boolean;
}

/** A Buffer over the same memory as `bytes` (what a thread receives is a plain Uint8Array). */
export const asBuffer = (bytes: Uint8Array): Buffer =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

/** Why a chunk could not be opened: the reason, for CorruptObjectError on its pack. */
export class ChunkRefused extends Error {}

const ZEROS = Buffer.alloc(1024 * 1024);

function isZero(chunk: Buffer): boolean {
  for (let at = 0; at < chunk.length; at += ZEROS.length) {
    const part = chunk.subarray(at, Math.min(chunk.length, at + ZEROS.length));
    if (!part.equals(ZEROS.subarray(0, part.length))) return false;
  }
  return true;
}

export function prepareChunk(keys: RepositoryKeys, chunk: Buffer): PreparedChunk {
  if (isZero(chunk))
    return { id: '', zero: true, body: Buffer.alloc(0), compressed: false, rawLength: chunk.length };
  const squeezed = compress(chunk);
  const compressed = squeezed.length < chunk.length;
  return {
    id: keys.chunkId(chunk),
    zero: false,
    body: compressed ? squeezed : chunk,
    compressed,
    rawLength: chunk.length,
  };
}

/** Sealers of packs read lately: deriving one per chunk cost a restore a tenth of its time. */
export class SealerCache {
  private readonly sealers = new Map<string, ObjectSealer>();

  constructor(private readonly keys: RepositoryKeys) {}

  get(pack: string): ObjectSealer {
    let sealer = this.sealers.get(pack);
    if (sealer === undefined) {
      sealer = this.keys.objectSealer(pack);
      this.sealers.set(pack, sealer);
      // Maps iterate in insertion order: the first key is the oldest.
      if (this.sealers.size > 256) this.sealers.delete(this.sealers.keys().next().value ?? '');
    }
    return sealer;
  }
}

/**
 * The plaintexts of the chunks of one range read, each authenticated (its seal, then its id
 * recomputed from the content); ChunkRefused names the first that fails.
 */
export function openChunks(
  keys: RepositoryKeys,
  sealers: SealerCache,
  pack: string,
  chunks: readonly SealedChunk[],
  bytes: Buffer,
): Buffer[] {
  return chunks.map((chunk) => {
    const sealed = bytes.subarray(chunk.from, chunk.from + chunk.length);
    if (sealed.length !== chunk.length) {
      throw new ChunkRefused(`chunk ${chunk.id} is truncated (${sealed.length} of ${chunk.length} bytes)`);
    }
    let plain: Buffer;
    try {
      const opened = sealers.get(pack).open(chunk.part, sealed, chunk.id);
      plain = chunk.compressed ? decompress(opened) : opened;
    } catch (err) {
      throw new ChunkRefused(`chunk ${chunk.id}: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (plain.length !== chunk.rawLength || keys.chunkId(plain) !== chunk.id) {
      throw new ChunkRefused(`chunk ${chunk.id} does not hash to its id`);
    }
    return plain;
  });
}

/**
 * The ArrayBuffers of `views` that each view has to itself, to move to another thread rather than
 * copy; a view into a shared buffer (Node's pool for small allocations) is copied.
 */
export function transferable(views: readonly Uint8Array[]): ArrayBuffer[] {
  const owned = new Set<ArrayBuffer>();
  for (const view of views) {
    const buffer = view.buffer;
    if (buffer instanceof ArrayBuffer && view.byteOffset === 0 && view.byteLength === buffer.byteLength)
      owned.add(buffer);
  }
  return [...owned];
}

/** Where the per-chunk work runs. */
export interface ChunkCodec {
  prepare(chunks: Buffer[]): Promise<PreparedChunk[]>;
  open(pack: string, chunks: SealedChunk[], bytes: Buffer): Promise<Buffer[]>;
  close(): Promise<void>;
}

/** On the calling thread: for tests, and where there is one core. */
export class InlineCodec implements ChunkCodec {
  private readonly sealers: SealerCache;

  constructor(private readonly keys: RepositoryKeys) {
    this.sealers = new SealerCache(keys);
  }

  prepare(chunks: Buffer[]): Promise<PreparedChunk[]> {
    return Promise.resolve(chunks.map((chunk) => prepareChunk(this.keys, chunk)));
  }

  open(pack: string, chunks: SealedChunk[], bytes: Buffer): Promise<Buffer[]> {
    try {
      return Promise.resolve(openChunks(this.keys, this.sealers, pack, chunks, bytes));
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** A request to a chunk worker, and its answer. */
export type WorkerRequest =
  | { job: number; op: 'prepare'; chunks: Uint8Array[] }
  | { job: number; op: 'open'; pack: string; chunks: SealedChunk[]; bytes: Uint8Array };
export type WorkerAnswer =
  | { job: number; prepared: PreparedChunk[] }
  | { job: number; opened: Uint8Array[] }
  | { job: number; refused: string }
  | { job: number; failed: string };

export interface WorkerSetup {
  locationKey: Uint8Array;
  repositoryId: string;
}

/**
 * Worker threads, one per core but the calling thread's (which reads, chunks, seals and does the
 * I/O), each given the next job in turn. Every job is answered; a worker that dies fails its jobs.
 */
export class WorkerCodec implements ChunkCodec {
  private readonly workers: Worker[];
  private readonly waiting = new Map<
    number,
    { resolve(answer: WorkerAnswer): void; reject(err: Error): void }
  >();
  private next = 0;
  private job = 0;
  private closing = false;

  constructor(setup: WorkerSetup, count: number) {
    // Compiled, the worker is chunk-worker.js beside this file; run from source (tsx), .ts.
    const file = new URL(
      import.meta.url.endsWith('.ts') ? './chunk-worker.ts' : './chunk-worker.js',
      import.meta.url,
    );
    this.workers = Array.from({ length: count }, () => {
      const worker = new Worker(file, { workerData: setup });
      worker.on('message', (answer: WorkerAnswer) => {
        const waiter = this.waiting.get(answer.job);
        this.waiting.delete(answer.job);
        waiter?.resolve(answer);
      });
      const failAll = (err: Error): void => {
        for (const waiter of this.waiting.values()) waiter.reject(err);
        this.waiting.clear();
      };
      worker.on('error', (err: unknown) => {
        failAll(asError(err));
      });
      worker.on('exit', (code) => {
        if (!this.closing) failAll(new Error(`a chunk worker exited with code ${code}`));
      });
      return worker;
    });
  }

  private ask(request: WorkerRequest, transfer: ArrayBuffer[] = []): Promise<WorkerAnswer> {
    const worker = this.workers[this.next++ % this.workers.length];
    if (worker === undefined) return Promise.reject(new Error('no chunk worker'));
    return new Promise((resolve, reject) => {
      this.waiting.set(request.job, { resolve, reject });
      worker.postMessage(request, transfer);
    });
  }

  async prepare(chunks: Buffer[]): Promise<PreparedChunk[]> {
    const answer = await this.ask({ job: this.job++, op: 'prepare', chunks });
    if ('prepared' in answer) {
      return answer.prepared.map((chunk) => ({
        ...chunk,
        body: asBuffer(chunk.body),
      }));
    }
    throw new Error(`chunk worker: ${'failed' in answer ? answer.failed : 'unexpected answer'}`);
  }

  async open(pack: string, chunks: SealedChunk[], bytes: Buffer): Promise<Buffer[]> {
    // The bytes are the caller's no more: moved, not copied.
    const answer = await this.ask(
      { job: this.job++, op: 'open', pack, chunks, bytes },
      transferable([bytes]),
    );
    if ('opened' in answer) return answer.opened.map(asBuffer);
    if ('refused' in answer) throw new ChunkRefused(answer.refused);
    throw new Error(`chunk worker: ${'failed' in answer ? answer.failed : 'unexpected answer'}`);
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.workers.map((worker) => worker.terminate()));
  }
}

/** `workers` worker threads; with none, the calling thread does it all. */
export function chunkCodec(keys: RepositoryKeys, setup: WorkerSetup, workers: number): ChunkCodec {
  return workers < 1 ? new InlineCodec(keys) : new WorkerCodec(setup, workers);
}
