// The data format against an in-memory bucket: files of every kind back whole and equal, chunks
// stored once across files, volumes and backups, an interrupted upload resumed without sending
// anything twice, and every kind of damage refused naming the object.

import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmod,
  chown,
  link,
  lstat,
  mkdir,
  mkdtemp,
  open,
  readFile,
  readlink,
  rm,
  symlink,
  truncate,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Chunker, DEFAULT_CHUNKER } from '../../../src/storage/repository/chunker.js';
import { backupFiles, readManifest, restoreFiles } from '../../../src/storage/repository/files.js';
import { RepositoryKeys } from '../../../src/storage/repository/keys.js';
import {
  CorruptObjectError,
  MissingObjectError,
  Repository,
  WrongKeyError,
} from '../../../src/storage/repository/repository.js';
import { MemoryStore } from '../../support/memory-store.js';

const KEY = Buffer.alloc(32, 7);
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'snapback-repo-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Bytes that compress about half: random halves and repeated text. */
function mixed(bytes: number, seed: string): Buffer {
  const random = createHash('sha256');
  const parts: Buffer[] = [];
  let size = 0;
  let counter = 0;
  while (size < bytes) {
    const block =
      counter % 2 === 0
        ? Buffer.concat(
            Array.from({ length: 256 }, (_, i) => random.copy().update(`${seed}/${counter}/${i}`).digest()),
          )
        : Buffer.from(`${seed} row ${counter} `.repeat(8192 / 16).slice(0, 8192));
    parts.push(block);
    size += block.length;
    counter++;
  }
  return Buffer.concat(parts).subarray(0, bytes);
}

async function sha256(path: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(path))
    .digest('hex');
}

/** A volume with a file of each kind, owners and modes PostgreSQL checks, and a sparse file. */
async function makeVolume(root: string): Promise<void> {
  await mkdir(join(root, 'pgdata/base/1'), { recursive: true });
  await writeFile(join(root, 'pgdata/base/1/16384'), mixed(3 * 1024 * 1024 + 123, 'table'));
  await writeFile(join(root, 'pgdata/PG_VERSION'), '17\n');
  await writeFile(join(root, 'pgdata/empty'), '');
  const sparse = await open(join(root, 'pgdata/sparse'), 'w');
  await sparse.write(Buffer.from('head'), 0, 4, 0);
  await sparse.write(Buffer.from('tail'), 0, 4, 64 * 1024 * 1024);
  await sparse.close();
  await symlink('base/1/16384', join(root, 'pgdata/link-to-table'));
  await link(join(root, 'pgdata/PG_VERSION'), join(root, 'pgdata/hardlink'));
  for (const path of ['pgdata', 'pgdata/base', 'pgdata/base/1', 'pgdata/base/1/16384', 'pgdata/PG_VERSION']) {
    await chown(join(root, path), 999, 999);
  }
  await chmod(join(root, 'pgdata'), 0o700);
  await utimes(
    join(root, 'pgdata/PG_VERSION'),
    new Date('2026-01-02T03:04:05.678Z'),
    new Date('2026-01-02T03:04:05.678Z'),
  );
}

async function describeTree(root: string, paths: string[]) {
  const out: Record<string, unknown> = {};
  for (const path of paths) {
    const full = join(root, path);
    const stats = await lstat(full);
    out[path] = {
      mode: (stats.mode & 0o170777).toString(8),
      uid: stats.uid,
      gid: stats.gid,
      mtimeMs: stats.isSymbolicLink() ? 'symlink' : Math.floor(stats.mtimeMs),
      size: stats.size,
      content: stats.isFile() ? await sha256(full) : stats.isSymbolicLink() ? await readlink(full) : 'dir',
    };
  }
  return out;
}

const PATHS = [
  'pgdata',
  'pgdata/base',
  'pgdata/base/1',
  'pgdata/base/1/16384',
  'pgdata/PG_VERSION',
  'pgdata/empty',
  'pgdata/sparse',
  'pgdata/link-to-table',
  'pgdata/hardlink',
];

describe('the chunker', () => {
  const gear = new RepositoryKeys(KEY, 'repo').gear;
  const chunksOf = (data: Buffer): Buffer[] => {
    const chunker = new Chunker(gear);
    const chunks: Buffer[] = [];
    for (let at = 0; at < data.length; at += 1_000_003)
      chunks.push(...chunker.push(data.subarray(at, at + 1_000_003)));
    return [...chunks, ...chunker.finish()];
  };

  it('cuts within the bounds, near the average, the same however the data arrives', () => {
    const data = randomBytes(8 * 1024 * 1024);
    const chunks = chunksOf(data);
    expect(Buffer.concat(chunks).equals(data)).toBe(true);
    for (const chunk of chunks.slice(0, -1)) {
      expect(chunk.length).toBeGreaterThanOrEqual(DEFAULT_CHUNKER.minBytes);
      expect(chunk.length).toBeLessThanOrEqual(DEFAULT_CHUNKER.maxBytes);
    }
    const average = data.length / chunks.length;
    expect(average).toBeGreaterThan(DEFAULT_CHUNKER.avgBytes / 2);
    expect(average).toBeLessThan(DEFAULT_CHUNKER.avgBytes * 2);
    const whole = new Chunker(gear);
    expect([...whole.push(data), ...whole.finish()].map((c) => c.length)).toEqual(
      chunks.map((c) => c.length),
    );
  });

  it('after an insertion, keeps every chunk but those near it', () => {
    const data = randomBytes(8 * 1024 * 1024);
    const changed = Buffer.concat([
      data.subarray(0, 4_000_000),
      Buffer.from('inserted'),
      data.subarray(4_000_000),
    ]);
    const ids = (chunks: Buffer[]): Set<string> =>
      new Set(chunks.map((c) => createHash('sha256').update(c).digest('hex')));
    const before = ids(chunksOf(data));
    const after = [...ids(chunksOf(changed))];
    const fresh = after.filter((id) => !before.has(id));
    expect(fresh.length).toBeGreaterThanOrEqual(1);
    expect(fresh.length).toBeLessThanOrEqual(2);
  });

  it('draws its boundaries from the key: another location cuts elsewhere', () => {
    const data = randomBytes(4 * 1024 * 1024);
    const other = new Chunker(new RepositoryKeys(Buffer.alloc(32, 8), 'repo').gear);
    const lengths = (chunks: Buffer[]): number[] => chunks.map((c) => c.length);
    expect(lengths([...other.push(data), ...other.finish()])).not.toEqual(lengths(chunksOf(data)));
  });
});

describe('a volume backed up and restored', () => {
  it('comes back equal: content, mode, owner, times, symlinks, hard links, holes', async () => {
    const source = join(dir, 'source');
    await makeVolume(source);
    const store = new MemoryStore();
    const repository = await Repository.open(store, KEY);
    const { manifest, progress } = await backupFiles(repository, source, 'backup-1/0');
    expect(manifest.format).toBe('snapback.dev/volume-manifest/v1');
    expect(progress.files).toBe(4);
    expect(progress.bytesDone).toBe(progress.bytesTotal);

    const target = join(dir, 'target');
    await mkdir(target);
    const reopened = await Repository.open(store, KEY);
    await restoreFiles(reopened, 'backup-1/0', target);
    expect(await describeTree(target, PATHS)).toEqual(await describeTree(source, PATHS));
    expect((await lstat(join(target, 'pgdata/hardlink'))).ino).toBe(
      (await lstat(join(target, 'pgdata/PG_VERSION'))).ino,
    );
    // 64 MiB of hole is neither stored nor written back.
    expect(store.putBytes).toBeLessThan(4 * 1024 * 1024);
    expect((await lstat(join(target, 'pgdata/sparse'))).blocks * 512).toBeLessThan(1024 * 1024);
  });

  it('stores a chunk once across files, volumes and backups; a small change sends about itself', async () => {
    const source = join(dir, 'source');
    await mkdir(source);
    const table = mixed(4 * 1024 * 1024, 'dedup');
    await writeFile(join(source, 'a'), table);
    await writeFile(join(source, 'b'), table);
    const store = new MemoryStore();
    const repository = await Repository.open(store, KEY);
    const first = await backupFiles(repository, source, 'b1/0');
    expect(first.progress.chunksReused).toBe(first.progress.chunksNew);

    const sent = store.putBytes;
    await backupFiles(repository, source, 'b1/1');
    // The second volume is the same data: only its manifest and index are new.
    expect(store.putBytes - sent).toBeLessThan(16 * 1024);

    table.write('an update of one row', 2_000_000);
    await writeFile(join(source, 'a'), table);
    const before = store.putBytes;
    const third = await backupFiles(repository, source, 'b2/0');
    expect(third.progress.chunksNew).toBeLessThanOrEqual(2);
    expect(store.putBytes - before).toBeLessThan(2 * DEFAULT_CHUNKER.maxBytes);
  });

  it('resumes an interrupted upload without sending a stored pack again', async () => {
    const source = join(dir, 'source');
    await mkdir(source);
    await writeFile(join(source, 'big'), randomBytes(40 * 1024 * 1024));
    const store = new MemoryStore();
    const repository = await Repository.open(store, KEY);
    store.failAfterPuts = 2;
    await expect(backupFiles(repository, source, 'b/0')).rejects.toThrow('killed');
    const packsSent = store.keys('repository/packs/').length;
    expect(packsSent).toBe(2);
    expect(store.keys('repository/index/')).toEqual([]);
    store.failAfterPuts = undefined;

    // A new process: the packs no index names are found from their own headers.
    const resumed = await Repository.open(store, KEY);
    const sentBefore = store.putBytes;
    const { progress } = await backupFiles(resumed, source, 'b/0');
    expect(progress.chunksReused).toBeGreaterThan(0);
    expect(store.putBytes - sentBefore).toBeLessThan(40 * 1024 * 1024 - packsSent * 15 * 1024 * 1024);
    const target = join(dir, 'target');
    await mkdir(target);
    await restoreFiles(await Repository.open(store, KEY), 'b/0', target);
    expect(await sha256(join(target, 'big'))).toBe(await sha256(join(source, 'big')));
  });

  it('picks up a stopped restore: whole files are not read again, a cut one is written again', async () => {
    const source = join(dir, 'source');
    await makeVolume(source);
    const store = new MemoryStore();
    await backupFiles(await Repository.open(store, KEY), source, 'b/0');
    const target = join(dir, 'target');
    await mkdir(target);
    const first = await restoreFiles(await Repository.open(store, KEY), 'b/0', target);
    // As a mover killed while writing the table leaves it: cut short, its time not set yet.
    await truncate(join(target, 'pgdata/base/1/16384'), 100);
    const again = await restoreFiles(await Repository.open(store, KEY), 'b/0', target);
    expect(await describeTree(target, PATHS)).toEqual(await describeTree(source, PATHS));
    expect(again.progress.bytesTransferred).toBeGreaterThan(0);
    expect(again.progress.bytesTransferred).toBeLessThan(first.progress.bytesTransferred);
    expect(again.progress.bytesDone).toBe(first.progress.bytesDone);
  });

  it('keeps a manifest already stored: an upload that finished before a restart sends nothing', async () => {
    const source = join(dir, 'source');
    await makeVolume(source);
    const store = new MemoryStore();
    await backupFiles(await Repository.open(store, KEY), source, 'b/0');
    const puts = store.puts;
    const again = await backupFiles(await Repository.open(store, KEY), source, 'b/0');
    expect(again.reusedManifest).toBe(true);
    expect(store.puts).toBe(puts);
  });

  it('leaves the bucket nothing to read: no content, no names, no chunk hashes', async () => {
    const source = join(dir, 'source');
    await mkdir(source);
    const secret = 'customer-4711-credit-card';
    await writeFile(join(source, `${secret}.txt`), `${secret}\n`.repeat(10_000));
    const store = new MemoryStore();
    await backupFiles(await Repository.open(store, KEY), source, 'b/0');
    const plainHash = createHash('sha256').update(`${secret}\n`.repeat(10_000)).digest('hex');
    for (const [key, body] of store.objects) {
      expect(body.includes(secret)).toBe(false);
      expect(key.includes(plainHash)).toBe(false);
      expect(body.includes(plainHash)).toBe(false);
    }
  });
});

describe('a restore from a damaged bucket fails naming the object', () => {
  async function backedUp(): Promise<{ store: MemoryStore; target: string }> {
    const source = join(dir, 'source');
    await mkdir(source);
    await writeFile(join(source, 'data'), mixed(2 * 1024 * 1024, 'damage'));
    const store = new MemoryStore();
    await backupFiles(await Repository.open(store, KEY), source, 'b/0');
    const target = join(dir, 'target');
    await mkdir(target);
    return { store, target };
  }

  it('a chunk altered in its pack', async () => {
    const { store, target } = await backedUp();
    const [pack] = store.keys('repository/packs/');
    const body = store.objects.get(pack ?? '');
    if (pack === undefined || body === undefined) throw new Error('no pack');
    body[1000] = (body[1000] ?? 0) ^ 0xff;
    const restore = restoreFiles(await Repository.open(store, KEY), 'b/0', target);
    await expect(restore).rejects.toThrow(CorruptObjectError);
    await expect(restore).rejects.toThrow(pack);
  });

  it('a pack deleted', async () => {
    const { store, target } = await backedUp();
    const [pack] = store.keys('repository/packs/');
    await store.delete(pack ?? '');
    const restore = restoreFiles(await Repository.open(store, KEY), 'b/0', target);
    await expect(restore).rejects.toThrow(MissingObjectError);
    await expect(restore).rejects.toThrow(pack ?? '');
  });

  it('a manifest altered', async () => {
    const { store } = await backedUp();
    const key = 'repository/manifests/b/0';
    const body = store.objects.get(key);
    if (body === undefined) throw new Error('no manifest');
    body[body.length - 1] = (body[body.length - 1] ?? 0) ^ 1;
    await expect(readManifest(await Repository.open(store, KEY), 'b/0')).rejects.toThrow(
      /repository\/manifests\/b\/0 is damaged/,
    );
  });

  it('another key than the one the backups were made with', async () => {
    const { store } = await backedUp();
    await expect(Repository.open(store, Buffer.alloc(32, 9))).rejects.toThrow(WrongKeyError);
  });
});

describe('moving buffers to a chunk worker', () => {
  it('moves a buffer a view has to itself, and copies a view into a shared one', async () => {
    const { transferable } = await import('../../../src/storage/repository/codec.js');
    const own = Buffer.from(new ArrayBuffer(8192));
    const pooled = Buffer.from('small'); // Node's pool: other buffers live in the same memory
    const slice = Buffer.alloc(8192).subarray(10, 20);
    expect(transferable([own, pooled, slice, own])).toEqual([own.buffer]);
  });
});
