// A volume's files into the repository, as one manifest, and back. A manifest lists every file,
// directory and symlink with its mode, owner, times and, for a file, its chunks at their offsets:
// a region no chunk covers is a hole (runs of zeros are not stored, and come back sparse).
// PostgreSQL refuses a data directory with another owner or mode, so both come back as they were.

import { constants as fsConstants, type BigIntStats } from 'node:fs';
import {
  lchown,
  link,
  lstat,
  lutimes,
  mkdir,
  open,
  readdir,
  readlink,
  symlink,
  unlink,
  type FileHandle,
} from 'node:fs/promises';
import { join } from 'node:path';
import { forEachLimit } from '../../runtime/async.js';
import { Chunker } from './chunker.js';
import { ChunkRefused, type PreparedChunk, type SealedChunk } from './codec.js';
import { CorruptObjectError, MANIFESTS, MissingObjectError, type Repository } from './repository.js';

export const MANIFEST_FORMAT = 'snapback.dev/volume-manifest/v1';

/** A file's chunk: its id, where it starts in the file, and its length. */
export type ChunkRef = [id: string, offset: number, length: number];

export interface ManifestEntry {
  /** Relative to the volume's root, `/`-separated; '' is the root itself. */
  path: string;
  type: 'file' | 'directory' | 'symlink' | 'hardlink';
  mode: number;
  uid: number;
  gid: number;
  /** Nanoseconds since the epoch, as a decimal string (beyond a double's precision). */
  mtimeNs: string;
  atimeNs: string;
  size?: number;
  chunks?: ChunkRef[];
  /** A symlink's target, or the earlier path a hard link shares its inode with. */
  target?: string;
}

export interface VolumeManifest {
  format: typeof MANIFEST_FORMAT;
  createdAt: string;
  totals: { files: number; bytes: number; chunks: number };
  /** What could not be kept (sockets, devices): counted, named in the mover's log. */
  skipped: string[];
  entries: ManifestEntry[];
}

export interface TransferProgress {
  bytesDone: number;
  bytesTotal: number;
  files: number;
  chunksNew: number;
  chunksReused: number;
  /** Bytes sent to or read from the store (compressed, sealed). */
  bytesTransferred: number;
}

const emptyProgress = (bytesTotal: number): TransferProgress => ({
  bytesDone: 0,
  bytesTotal,
  files: 0,
  chunksNew: 0,
  chunksReused: 0,
  bytesTransferred: 0,
});

const READ_BYTES = 4 * 1024 * 1024;
/** Reads whose chunks are being prepared at once: they keep the chunk workers busy. */
const BATCHES_IN_FLIGHT = 8;

/** The object that holds manifest `name`, under the location's prefix. */
export const manifestKey = (name: string): string => `${MANIFESTS}${name}`;

/** Every entry under `root`, parents before children, in a stable order. */
async function walk(root: string): Promise<{ path: string; stats: BigIntStats }[]> {
  const found: { path: string; stats: BigIntStats }[] = [
    { path: '', stats: await lstat(root, { bigint: true }) },
  ];
  for (let i = 0; i < found.length; i++) {
    const entry = found[i];
    if (entry === undefined || !entry.stats.isDirectory()) continue;
    const names = (await readdir(join(root, entry.path))).sort();
    for (const name of names) {
      const path = entry.path === '' ? name : `${entry.path}/${name}`;
      found.push({ path, stats: await lstat(join(root, path), { bigint: true }) });
    }
  }
  return found;
}

/** The bytes of the files among `entries`, a file with several links counted once. */
function fileBytes(entries: { stats: BigIntStats }[]): number {
  const seen = new Set<string>();
  let bytes = 0;
  for (const { stats } of entries) {
    if (!stats.isFile()) continue;
    const inode = `${stats.dev}:${stats.ino}`;
    if (stats.nlink > 1n && seen.has(inode)) continue;
    seen.add(inode);
    bytes += Number(stats.size);
  }
  return bytes;
}

/**
 * Stores the files under `root` and then their manifest as `name`. A manifest already stored
 * under `name` (an upload that finished before a restart) is kept: nothing is read or sent again.
 */
export async function backupFiles(
  repository: Repository,
  root: string,
  name: string,
  onProgress: (progress: TransferProgress) => void = () => undefined,
): Promise<{ manifest: VolumeManifest; progress: TransferProgress; reusedManifest: boolean }> {
  const stored = await readManifest(repository, name).catch((err: unknown) => {
    if (err instanceof MissingObjectError) return undefined;
    throw err;
  });
  if (stored !== undefined) {
    // Stored before a restart: its totals say what was backed up; the volume is not read again.
    const { bytes, files } = stored.totals;
    return {
      manifest: stored,
      progress: { ...emptyProgress(bytes), bytesDone: bytes, files },
      reusedManifest: true,
    };
  }
  const entries = await walk(root);
  const progress = emptyProgress(fileBytes(entries));
  const writer = repository.packWriter();
  const inodes = new Map<string, string>();
  const manifestEntries: ManifestEntry[] = [];
  const skipped: string[] = [];
  let chunkCount = 0;
  const inFlight = new Set<Promise<void>>();
  /** A file's prepared chunks from `at` on: holes skipped, the new ones into packs. */
  const store = async (chunks: ChunkRef[], at: number, prepared: PreparedChunk[]): Promise<void> => {
    let position = at;
    for (const chunk of prepared) {
      const start = position;
      position += chunk.rawLength;
      progress.bytesDone += chunk.rawLength;
      if (chunk.zero) continue;
      chunks.push([chunk.id, start, chunk.rawLength]);
      chunkCount++;
      if (writer.has(chunk.id)) {
        progress.chunksReused++;
        continue;
      }
      progress.chunksNew++;
      await writer.add(chunk);
    }
  };
  for (const { path, stats } of entries) {
    const base = {
      path,
      mode: Number(stats.mode & 0o7777n),
      uid: Number(stats.uid),
      gid: Number(stats.gid),
      mtimeNs: stats.mtimeNs.toString(),
      atimeNs: stats.atimeNs.toString(),
    };
    if (stats.isDirectory()) {
      manifestEntries.push({ ...base, type: 'directory' });
    } else if (stats.isSymbolicLink()) {
      manifestEntries.push({ ...base, type: 'symlink', target: await readlink(join(root, path)) });
    } else if (stats.isFile()) {
      const inode = `${stats.dev}:${stats.ino}`;
      const first = stats.nlink > 1n ? inodes.get(inode) : undefined;
      if (first !== undefined) {
        manifestEntries.push({ ...base, type: 'hardlink', target: first });
        continue;
      }
      if (stats.nlink > 1n) inodes.set(inode, path);
      const chunks: ChunkRef[] = [];
      manifestEntries.push({ ...base, type: 'file', size: Number(stats.size), chunks });
      const chunker = new Chunker(repository.keys.gear, repository.config.chunker);
      let offset = 0;
      // Each read's chunks are prepared (hashed, compressed) while the file is read on; a file's
      // batches are applied in order, so its chunk list keeps the file's order.
      let applied = Promise.resolve();
      const submit = async (batch: Buffer[]): Promise<void> => {
        if (batch.length === 0) return;
        const at = offset;
        offset += batch.reduce((sum, chunk) => sum + chunk.length, 0);
        const prepared = repository.codec.prepare(batch);
        applied = applied.then(async () => {
          await store(chunks, at, await prepared);
        });
        const tracked = applied.then(() => {
          inFlight.delete(tracked);
        });
        inFlight.add(tracked);
        while (inFlight.size >= BATCHES_IN_FLIGHT) await Promise.race(inFlight);
        writer.throwIfFailed();
      };
      const handle = await open(join(root, path), fsConstants.O_RDONLY);
      let read = 0;
      try {
        for (;;) {
          // No larger than what is left of the file: a buffer of 4 MiB for each small file of a
          // database kept the garbage collector busy for a third of the time (profiled).
          const length = Math.min(READ_BYTES, Math.max(1, Number(stats.size) - read));
          const buffer = Buffer.allocUnsafe(length);
          const { bytesRead } = await handle.read(buffer, 0, length, null);
          if (bytesRead === 0) break;
          read += bytesRead;
          await submit(chunker.push(buffer.subarray(0, bytesRead)));
          progress.bytesTransferred = writer.sentBytes;
          onProgress(progress);
        }
        await submit(chunker.finish());
      } finally {
        await handle.close();
      }
      progress.files++;
    } else {
      skipped.push(path);
    }
  }
  await Promise.all(inFlight);
  await writer.finish();
  progress.bytesTransferred = writer.sentBytes;
  const manifest: VolumeManifest = {
    format: MANIFEST_FORMAT,
    createdAt: new Date().toISOString(),
    totals: { files: progress.files, bytes: progress.bytesTotal, chunks: chunkCount },
    skipped,
    entries: manifestEntries,
  };
  await repository.store.put(manifestKey(name), repository.seal(name, 'manifest', manifest));
  // Read back: a Backup is complete only once its manifest is known to be stored whole.
  await readManifest(repository, name);
  onProgress(progress);
  return { manifest, progress, reusedManifest: false };
}

/** The manifest stored as `name`, authenticated; MissingObjectError when there is none. */
export async function readManifest(repository: Repository, name: string): Promise<VolumeManifest> {
  const key = manifestKey(name);
  const body = await repository.store.getBytes(key);
  if (body === undefined) throw new MissingObjectError(key, `manifest ${name}`);
  const manifest = JSON.parse(
    repository.unseal(key, name, body, 'manifest').toString('utf8'),
  ) as Partial<VolumeManifest>;
  if (manifest.format !== MANIFEST_FORMAT) {
    throw new CorruptObjectError(
      key,
      `format ${String(manifest.format)}, this operator reads ${MANIFEST_FORMAT}`,
    );
  }
  return manifest as VolumeManifest;
}

/** Chunks of one pack next to each other, fetched with one range read. */
interface Run {
  pack: string;
  offset: number;
  length: number;
  chunks: { ref: ChunkRef; from: number }[];
}

/** A file's chunks grouped into runs of adjacent bytes in one pack. */
function runsOf(repository: Repository, chunks: ChunkRef[]): Run[] {
  const runs: Run[] = [];
  for (const ref of chunks) {
    const location = repository.locate(ref[0]);
    if (location === undefined) throw new MissingObjectError(`chunk ${ref[0]}`, 'no index names this chunk');
    const last = runs.at(-1);
    if (
      last?.pack === location.pack &&
      last.offset + last.length === location.offset &&
      last.length < RUN_BYTES
    ) {
      last.chunks.push({ ref, from: last.length });
      last.length += location.length;
    } else {
      runs.push({
        pack: location.pack,
        offset: location.offset,
        length: location.length,
        chunks: [{ ref, from: 0 }],
      });
    }
  }
  return runs;
}

/** Range reads of at most 4 MiB, 4 per file and 4 files at once: at most 64 MiB held. */
const RUN_BYTES = 4 * 1024 * 1024;
const RUNS_IN_FLIGHT = 4;
const FILES_AT_ONCE = 4;

/**
 * Writes the files of manifest `name` under `root` (an empty volume), every chunk authenticated
 * before it is written: a missing or damaged one fails naming its object, never a wrong file.
 */
export async function restoreFiles(
  repository: Repository,
  name: string,
  root: string,
  onProgress: (progress: TransferProgress) => void = () => undefined,
): Promise<{ manifest: VolumeManifest; progress: TransferProgress }> {
  const manifest = await readManifest(repository, name);
  const progress = emptyProgress(manifest.totals.bytes);
  const of = (type: ManifestEntry['type']): ManifestEntry[] =>
    manifest.entries.filter((entry) => entry.type === type);
  const directories = of('directory');
  for (const entry of directories) await mkdir(join(root, entry.path), { recursive: true });
  // Files side by side: a database's many small files are one range read each.
  await forEachLimit(of('file'), FILES_AT_ONCE, async (entry) => {
    const path = join(root, entry.path);
    // A mover run before this one that was stopped leaves whole files: they are not read again.
    if (await restoredAlready(path, entry)) progress.bytesDone += entry.size ?? 0;
    else await restoreFile(repository, entry, path, progress, onProgress);
    progress.files++;
  });
  for (const entry of of('symlink')) {
    const path = join(root, entry.path);
    await removeLeft(path);
    await symlink(entry.target ?? '', path);
    await lchown(path, entry.uid, entry.gid);
    await lutimes(path, nsToDate(entry.atimeNs), nsToDate(entry.mtimeNs));
  }
  for (const entry of of('hardlink')) {
    const path = join(root, entry.path);
    await removeLeft(path);
    await link(join(root, entry.target ?? ''), path);
  }
  // Children change a directory's mtime: directories last, deepest first.
  for (const entry of directories.reverse()) {
    const handle = await open(join(root, entry.path), fsConstants.O_RDONLY);
    try {
      await keepMetadata(handle, entry);
    } finally {
      await handle.close();
    }
  }
  onProgress(progress);
  return { manifest, progress };
}

/**
 * Whether a file is there whole: its size, and its time set to the manifest's (within the
 * microsecond utimes keeps), which is written last, after its content and owner.
 */
async function restoredAlready(path: string, entry: ManifestEntry): Promise<boolean> {
  const stats = await lstat(path, { bigint: true }).catch(() => undefined);
  if (stats?.isFile() !== true || stats.size !== BigInt(entry.size ?? 0)) return false;
  const drift = stats.mtimeNs - BigInt(entry.mtimeNs);
  return drift > -1000n && drift < 1000n;
}

/** Removes what a stopped run left at a link's path. */
async function removeLeft(path: string): Promise<void> {
  await unlink(path).catch((err: unknown) => {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  });
}

async function restoreFile(
  repository: Repository,
  entry: ManifestEntry,
  path: string,
  progress: TransferProgress,
  onProgress: (progress: TransferProgress) => void,
): Promise<void> {
  const handle = await open(path, 'w', 0o600);
  try {
    // The size first: what no chunk covers stays a hole.
    await handle.truncate(entry.size ?? 0);
    await readChunks(repository, entry, progress, onProgress, async (plains, offset) => {
      await handle.writev(plains, offset);
    });
    await keepMetadata(handle, entry);
  } finally {
    await handle.close();
  }
}

/**
 * Reads every chunk of a file's entry, a few ranges at once, authenticating each before `sink`
 * gets it; `bytesDone` counts the holes too.
 */
async function readChunks(
  repository: Repository,
  entry: ManifestEntry,
  progress: TransferProgress,
  onProgress: (progress: TransferProgress) => void,
  sink: (plains: Buffer[], offset: number) => Promise<void>,
): Promise<void> {
  await forEachLimit(runsOf(repository, entry.chunks ?? []), RUNS_IN_FLIGHT, async (run) => {
    await fetchRun(repository, run, progress, sink);
    onProgress(progress);
  });
  progress.bytesDone +=
    (entry.size ?? 0) - (entry.chunks ?? []).reduce((sum, [, , length]) => sum + length, 0);
}

async function fetchRun(
  repository: Repository,
  run: Run,
  progress: TransferProgress,
  sink: (plains: Buffer[], offset: number) => Promise<void>,
): Promise<void> {
  const key = repository.packObject(run.pack);
  const bytes = await repository.store.getBytes(key, { offset: run.offset, length: run.length });
  if (bytes === undefined) throw new MissingObjectError(key, `chunk ${run.chunks[0]?.ref[0] ?? ''}`);
  progress.bytesTransferred += bytes.length;
  const sealed: SealedChunk[] = run.chunks.map(({ ref, from }) => {
    const location = repository.locate(ref[0]);
    if (location === undefined) throw new MissingObjectError(`chunk ${ref[0]}`, 'no index names this chunk');
    return {
      id: ref[0],
      part: location.part,
      from,
      length: location.length,
      rawLength: location.rawLength,
      compressed: location.compressed,
    };
  });
  const plains = await repository.codec.open(run.pack, sealed, bytes).catch((err: unknown) => {
    throw err instanceof ChunkRefused ? new CorruptObjectError(key, err.message) : err;
  });
  // Chunks that follow each other in the file go to the sink together: one writev, not one write each.
  let group: Buffer[] = [];
  let groupAt = 0;
  let groupEnd = 0;
  for (const [index, { ref }] of run.chunks.entries()) {
    const [id, offset, length] = ref;
    const plain = plains[index];
    if (plain?.length !== length)
      throw new CorruptObjectError(key, `chunk ${id} is ${plain?.length ?? 0} bytes, not ${length}`);
    if (group.length > 0 && offset !== groupEnd) {
      await sink(group, groupAt);
      group = [];
    }
    if (group.length === 0) groupAt = offset;
    group.push(plain);
    groupEnd = offset + length;
    progress.bytesDone += length;
  }
  if (group.length > 0) await sink(group, groupAt);
}

/**
 * Reads back and authenticates every chunk of manifest `name` without writing anything: what a
 * restore would read, checked in full.
 */
export async function verifyFiles(
  repository: Repository,
  name: string,
  onProgress: (progress: TransferProgress) => void = () => undefined,
): Promise<{ manifest: VolumeManifest; progress: TransferProgress }> {
  const manifest = await readManifest(repository, name);
  const progress = emptyProgress(manifest.totals.bytes);
  const noWrite = (): Promise<void> => Promise.resolve();
  for (const entry of manifest.entries) {
    if (entry.type !== 'file') continue;
    await readChunks(repository, entry, progress, onProgress, noWrite);
    progress.files++;
  }
  onProgress(progress);
  return { manifest, progress };
}

const nsToDate = (ns: string): Date => new Date(Number(BigInt(ns) / 1_000_000n));

/** Owner, then mode (a chown clears set-id bits), then times: as the manifest has them. */
async function keepMetadata(handle: FileHandle, entry: ManifestEntry): Promise<void> {
  await handle.chown(entry.uid, entry.gid);
  await handle.chmod(entry.mode);
  // Nanoseconds, not a Date's milliseconds: a second backup sees the same times.
  await handle.utimes(nsToSeconds(entry.atimeNs), nsToSeconds(entry.mtimeNs));
}

const nsToSeconds = (ns: string): number => Number(BigInt(ns)) / 1e9;
