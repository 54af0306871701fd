import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { isValidHandle, SnapshotStore, type SnapshotRecord } from '../../cluster/storage-simulator/state.js';

const record = (handle: string, contentId = 'c-1'): SnapshotRecord => ({
  handle,
  contentId,
  sizeBytes: 1024,
  createdAt: '2026-01-01T00:00:00.000Z',
  driver: 'sim.csi.snapback.dev',
  sourceVolumeHandle: 'vol-1',
  sourceVolumeName: 'pvc-1',
});

describe('SnapshotStore', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sim-state-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('round-trips records through files a second store (another simulator) reads', async () => {
    const store = await SnapshotStore.open(join(dir, 'nested', 'state'));
    expect(await store.createIfAbsent(record('snap-a'))).toEqual(record('snap-a'));
    await store.createIfAbsent(record('snap-b', 'c-2'));

    const other = await SnapshotStore.open(join(dir, 'nested', 'state'));
    expect(await other.get('snap-a')).toEqual(record('snap-a'));
    expect((await other.list()).map((r) => r.handle)).toEqual(['snap-a', 'snap-b']);
    const text = await readFile(join(dir, 'nested', 'state', 'snapshots', 'snap-b.json'), 'utf8');
    expect(JSON.parse(text)).toEqual(record('snap-b', 'c-2'));
  });

  it('keeps the first record when a create is repeated', async () => {
    const store = await SnapshotStore.open(dir);
    await store.createIfAbsent(record('snap-a', 'first'));
    expect((await store.createIfAbsent(record('snap-a', 'second'))).contentId).toBe('first');
    expect((await store.get('snap-a'))?.contentId).toBe('first');
  });

  it('creates once when two creates race', async () => {
    const store = await SnapshotStore.open(dir);
    const results = await Promise.all(
      ['x', 'y', 'z'].map((id) => store.createIfAbsent(record('snap-r', id))),
    );
    expect(new Set(results.map((r) => r.contentId)).size).toBe(1);
    expect(await store.list()).toHaveLength(1);
  });

  it('deletes records and tells whether there was one', async () => {
    const store = await SnapshotStore.open(dir);
    await store.createIfAbsent(record('snap-a'));
    expect(await store.delete('snap-a')).toBe(true);
    expect(await store.delete('snap-a')).toBe(false);
    expect(await store.get('snap-a')).toBeUndefined();
  });

  it('answers unknown and unsafe handles with nothing', async () => {
    const store = await SnapshotStore.open(dir);
    expect(await store.get('snap-missing')).toBeUndefined();
    expect(await store.get('../etc/passwd')).toBeUndefined();
    await expect(store.createIfAbsent(record('a/b'))).rejects.toThrow('invalid snapshot handle');
  });

  it('refuses a file that is not a record of its handle', async () => {
    const store = await SnapshotStore.open(dir);
    await writeFile(join(dir, 'snapshots', 'snap-bad.json'), JSON.stringify(record('snap-other')));
    await expect(store.get('snap-bad')).rejects.toThrow('is not a snapshot record for "snap-bad"');
  });

  it('validates handles', () => {
    expect(isValidHandle('snap-0b4c1d2e-uid')).toBe(true);
    for (const bad of ['', '.', '..', 'a/b', 'a b', 'x'.repeat(201)]) expect(isValidHandle(bad)).toBe(false);
  });
});
