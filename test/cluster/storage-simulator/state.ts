// The simulated storage backend's snapshots: one JSON file per snapshot handle under
// <SIM_STATE_DIR>/snapshots/. One file per record (rather than one shared file) lets the
// simulators of two clusters share a directory, for cross-cluster restores, without locking:
// records are created atomically and never rewritten.

import { randomBytes } from 'node:crypto';
import { link, mkdir, readFile, readdir, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface SnapshotRecord {
  handle: string;
  /** The content id of the source volume when the snapshot was cut. */
  contentId: string;
  sizeBytes: number;
  /** ISO 8601. */
  createdAt: string;
  driver: string;
  sourceVolumeHandle: string;
  /** The source PersistentVolume's name, for people reading the files. */
  sourceVolumeName?: string;
}

/** Handles name files: letters, digits, '.', '_' and '-' only, and not '.' or '..'. */
export function isValidHandle(handle: string): boolean {
  return /^[A-Za-z0-9._-]{1,200}$/.test(handle) && !/^\.+$/.test(handle);
}

function isRecord(value: unknown): value is SnapshotRecord {
  if (typeof value !== 'object' || value === null) return false;
  const record = value as Record<string, unknown>;
  return (
    typeof record.handle === 'string' &&
    typeof record.contentId === 'string' &&
    typeof record.sizeBytes === 'number' &&
    typeof record.createdAt === 'string' &&
    typeof record.driver === 'string' &&
    typeof record.sourceVolumeHandle === 'string'
  );
}

const errorCode = (err: unknown): unknown =>
  typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;

export class SnapshotStore {
  private constructor(readonly dir: string) {}

  /** Creates the directory when missing. */
  static async open(dir: string): Promise<SnapshotStore> {
    const store = new SnapshotStore(dir);
    await mkdir(store.snapshotsDir, { recursive: true });
    return store;
  }

  private get snapshotsDir(): string {
    return join(this.dir, 'snapshots');
  }

  private file(handle: string): string {
    if (!isValidHandle(handle)) throw new Error(`invalid snapshot handle "${handle}"`);
    return join(this.snapshotsDir, `${handle}.json`);
  }

  async get(handle: string): Promise<SnapshotRecord | undefined> {
    if (!isValidHandle(handle)) return undefined;
    const path = this.file(handle);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if (errorCode(err) === 'ENOENT') return undefined;
      throw err;
    }
    const parsed: unknown = JSON.parse(text);
    if (!isRecord(parsed) || parsed.handle !== handle) {
      throw new Error(`${path} is not a snapshot record for "${handle}"`);
    }
    return parsed;
  }

  /**
   * Stores the record unless one with the same handle exists, and returns what is stored: a
   * retried create keeps the first record (its content id and creation time) instead of
   * replacing it.
   */
  async createIfAbsent(record: SnapshotRecord): Promise<SnapshotRecord> {
    const path = this.file(record.handle);
    const temporary = `${path}.${String(process.pid)}.${randomBytes(4).toString('hex')}.tmp`;
    await writeFile(temporary, `${JSON.stringify(record, null, 2)}\n`, { flag: 'wx' });
    try {
      // link() fails with EEXIST instead of replacing: an atomic create-if-absent of a whole file.
      await link(temporary, path);
      return record;
    } catch (err) {
      if (errorCode(err) !== 'EEXIST') throw err;
      const existing = await this.get(record.handle);
      if (existing === undefined) throw new Error(`${path} vanished while being created`, { cause: err });
      return existing;
    } finally {
      await unlink(temporary);
    }
  }

  /** False when there was no such record. */
  async delete(handle: string): Promise<boolean> {
    try {
      await unlink(this.file(handle));
      return true;
    } catch (err) {
      if (errorCode(err) === 'ENOENT') return false;
      throw err;
    }
  }

  async list(): Promise<SnapshotRecord[]> {
    const names = await readdir(this.snapshotsDir);
    const records: SnapshotRecord[] = [];
    for (const name of names) {
      if (!name.endsWith('.json')) continue;
      const record = await this.get(name.slice(0, -'.json'.length));
      if (record !== undefined) records.push(record);
    }
    return records.sort((a, b) => a.handle.localeCompare(b.handle));
  }
}
