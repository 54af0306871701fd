// An in-memory bucket behind the repository's BlobStore interface, counting what is sent, for
// unit tests of the data format. Behaviour against real S3 is tested with versitygw.

import type { BlobStore } from '../../src/storage/repository/repository.js';

export class MemoryStore implements BlobStore {
  readonly objects = new Map<string, Buffer>();
  /** Bytes and objects sent by put, over the store's life. */
  putBytes = 0;
  puts = 0;
  /** When set, the put after this many more fails (a process killed mid-upload). */
  failAfterPuts: number | undefined;

  put(key: string, body: Uint8Array): Promise<void> {
    if (this.failAfterPuts !== undefined) {
      if (this.failAfterPuts === 0) return Promise.reject(new Error('killed'));
      this.failAfterPuts--;
    }
    if (this.objects.has(key)) return Promise.reject(new Error(`${key} was written twice`));
    this.objects.set(key, Buffer.from(body));
    this.putBytes += body.length;
    this.puts++;
    return Promise.resolve();
  }

  getBytes(
    key: string,
    range?: { offset: number; length: number } | { suffix: number },
  ): Promise<Buffer | undefined> {
    const body = this.objects.get(key);
    if (body === undefined || range === undefined) return Promise.resolve(body);
    if ('suffix' in range) return Promise.resolve(body.subarray(Math.max(0, body.length - range.suffix)));
    return Promise.resolve(body.subarray(range.offset, range.offset + range.length));
  }

  list(prefix: string): Promise<string[]> {
    return Promise.resolve([...this.objects.keys()].filter((key) => key.startsWith(prefix)).sort());
  }

  delete(key: string): Promise<void> {
    this.objects.delete(key);
    return Promise.resolve();
  }

  keys(prefix: string): string[] {
    return [...this.objects.keys()].filter((key) => key.startsWith(prefix));
  }
}
