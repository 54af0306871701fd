// A location's data repository: the chunks of every backed-up volume, deduplicated by content
// across volumes and backups, compressed (zstd), sealed (AES-256-GCM) and packed into objects of
// about 16 MiB; indexes that say where each chunk is; and one manifest per volume backup. No object
// is ever rewritten, so buckets with object lock work. The layout is in the README ("Data format").

import { randomBytes } from 'node:crypto';
import { asError } from '../../runtime/errors.js';
import { DEFAULT_CHUNKER, type ChunkerParams } from './chunker.js';
import { chunkCodec, compress, decompress, type ChunkCodec, type PreparedChunk } from './codec.js';
import { RepositoryKeys, SealError, type ObjectSealer } from './keys.js';

export const REPOSITORY_FORMAT = 'snapback.dev/repository/v1';
export const PACK_FORMAT = 'snapback.dev/pack/v1';
export const INDEX_FORMAT = 'snapback.dev/index/v1';

/** Where the repository lives under the location's prefix. */
const REPOSITORY_PREFIX = 'repository/';
const CONFIG_KEY = `${REPOSITORY_PREFIX}config`;
const PACKS = `${REPOSITORY_PREFIX}packs/`;
const INDEXES = `${REPOSITORY_PREFIX}index/`;
export const MANIFESTS = `${REPOSITORY_PREFIX}manifests/`;

/** A pack is sent once it holds this much: few requests per volume, bounded memory per upload. */
const PACK_TARGET_BYTES = 16 * 1024 * 1024;
/** Packs sent at once by one writer. */
const PUTS_IN_FLIGHT = 3;

/** The narrow view of object storage the repository needs (ObjectStore, or a fake in tests). */
export interface BlobStore {
  put(key: string, body: Uint8Array): Promise<void>;
  /** The object's bytes (a range of them), or undefined when there is no such object. */
  getBytes(
    key: string,
    range?: { offset: number; length: number } | { suffix: number },
  ): Promise<Buffer | undefined>;
  list(prefix: string): Promise<string[]>;
  delete(key: string): Promise<void>;
}

export interface RepositoryConfig {
  format: typeof REPOSITORY_FORMAT;
  id: string;
  chunker: ChunkerParams;
  keyCheck: string;
}

/** Where a chunk is: its pack, its part number there, its bytes in the pack, and its size. */
export interface ChunkLocation {
  pack: string;
  part: number;
  offset: number;
  length: number;
  rawLength: number;
  compressed: boolean;
}

type IndexEntry = [
  id: string,
  part: number,
  offset: number,
  length: number,
  rawLength: number,
  compressed: 0 | 1,
];

/** An object the repository needs is not in the bucket. */
export class MissingObjectError extends Error {
  constructor(
    readonly key: string,
    what: string,
  ) {
    super(`${what}: object ${key} is missing from the bucket`);
    this.name = 'MissingObjectError';
  }
}

/** An object's bytes are not what was stored: damaged, truncated or planted. */
export class CorruptObjectError extends Error {
  constructor(
    readonly key: string,
    reason: string,
  ) {
    super(`object ${key} is damaged: ${reason}`);
    this.name = 'CorruptObjectError';
  }
}

/** The location key is not the one this repository was made with. */
export class WrongKeyError extends Error {
  constructor() {
    super(
      "the location's key does not open this repository (its key check differs): the Secret holds another key than the one the backups were made with",
    );
    this.name = 'WrongKeyError';
  }
}

const newName = (): string => randomBytes(16).toString('hex');
const packKey = (name: string): string => `${PACKS}${name.slice(0, 2)}/${name}`;

export class Repository {
  private readonly chunks = new Map<string, ChunkLocation>();

  private constructor(
    readonly store: BlobStore,
    readonly keys: RepositoryKeys,
    readonly config: RepositoryConfig,
    /** Where chunks are hashed, compressed and opened: this thread, or worker threads. */
    readonly codec: ChunkCodec,
  ) {}

  /**
   * Opens the repository under the location, making it when there is none yet. `workers`: chunk
   * worker threads (0: all on this thread); `close` ends them.
   */
  static async open(
    store: BlobStore,
    locationKey: Buffer,
    options: { workers?: number } = {},
  ): Promise<Repository> {
    let stored = await store.getBytes(CONFIG_KEY);
    if (stored === undefined) {
      const id = newName();
      const keys = new RepositoryKeys(locationKey, id);
      const config: RepositoryConfig = {
        format: REPOSITORY_FORMAT,
        id,
        chunker: DEFAULT_CHUNKER,
        keyCheck: keys.keyCheck,
      };
      await store.put(CONFIG_KEY, Buffer.from(JSON.stringify(config)));
      // Two first writers at once: the config read back is the one both go on with.
      stored = await store.getBytes(CONFIG_KEY);
      if (stored === undefined)
        throw new MissingObjectError(CONFIG_KEY, 'the repository config just written');
    }
    const config = parseConfig(stored);
    const keys = new RepositoryKeys(locationKey, config.id);
    if (!keys.checks(config.keyCheck)) throw new WrongKeyError();
    const codec = chunkCodec(keys, { locationKey, repositoryId: config.id }, options.workers ?? 0);
    const repository = new Repository(store, keys, config, codec);
    try {
      await repository.loadIndexes();
    } catch (err) {
      await codec.close();
      throw err;
    }
    return repository;
  }

  async close(): Promise<void> {
    await this.codec.close();
  }

  has(id: string): boolean {
    return this.chunks.has(id);
  }

  locate(id: string): ChunkLocation | undefined {
    return this.chunks.get(id);
  }

  /**
   * Reads every index, then the header of each pack no index names (a writer stopped between its
   * packs and its index): those chunks are stored, and are not sent again. An index for them is
   * written, so the next reader need not look.
   */
  private async loadIndexes(): Promise<void> {
    const indexed = new Set<string>();
    for (const key of await this.store.list(INDEXES)) {
      const name = key.slice(INDEXES.length);
      const body = await this.store.getBytes(key);
      if (body === undefined) continue; // Removed by garbage collection since the listing.
      const packs = this.openIndex(name, body);
      for (const [pack, entries] of Object.entries(packs)) {
        indexed.add(pack);
        this.addEntries(pack, entries);
      }
    }
    const unindexed: Record<string, IndexEntry[]> = {};
    for (const key of await this.store.list(PACKS)) {
      const pack = key.slice(key.lastIndexOf('/') + 1);
      if (indexed.has(pack)) continue;
      const entries = await this.readPackHeader(pack);
      if (entries === undefined) continue;
      unindexed[pack] = entries;
      this.addEntries(pack, entries);
    }
    if (Object.keys(unindexed).length > 0) await this.writeIndex(unindexed);
  }

  private addEntries(pack: string, entries: IndexEntry[]): void {
    for (const [id, part, offset, length, rawLength, compressed] of entries) {
      this.chunks.set(id, { pack, part, offset, length, rawLength, compressed: compressed === 1 });
    }
  }

  private openIndex(name: string, body: Buffer): Record<string, IndexEntry[]> {
    const key = `${INDEXES}${name}`;
    const plain = this.unseal(key, name, body, 'index');
    const parsed = JSON.parse(plain.toString('utf8')) as {
      format?: unknown;
      packs?: Record<string, IndexEntry[]>;
    };
    if (parsed.format !== INDEX_FORMAT || parsed.packs === undefined) {
      throw new CorruptObjectError(key, `not an index of format ${INDEX_FORMAT}`);
    }
    return parsed.packs;
  }

  /** The entries of a pack from its own header, or undefined when it is gone or incomplete. */
  private async readPackHeader(pack: string): Promise<IndexEntry[] | undefined> {
    const key = packKey(pack);
    const tail = await this.store.getBytes(key, { suffix: 4 });
    if (tail?.length !== 4) return undefined;
    const headerLength = tail.readUInt32LE(0);
    const sealed = await this.store.getBytes(key, { suffix: headerLength + 4 });
    if (sealed === undefined) return undefined;
    const sealer = this.keys.objectSealer(pack);
    const header = sealed.subarray(0, headerLength);
    const parsed = JSON.parse(
      sealer.open(PACK_HEADER_PART, header, 'header', `pack ${key}`).toString('utf8'),
    ) as { format?: unknown; blobs?: IndexEntry[] };
    if (parsed.format !== PACK_FORMAT || parsed.blobs === undefined) {
      throw new CorruptObjectError(key, `not a pack of format ${PACK_FORMAT}`);
    }
    return parsed.blobs;
  }

  /** Writes an index of `packs` under a new name. */
  async writeIndex(packs: Record<string, IndexEntry[]>): Promise<void> {
    const name = newName();
    await this.store.put(`${INDEXES}${name}`, this.seal(name, 'index', { format: INDEX_FORMAT, packs }));
  }

  /** A writer of new chunks; `finish` it to send what it holds and index it. */
  packWriter(): PackWriter {
    return new PackWriter(this, (pack, entries) => {
      this.addEntries(pack, entries);
    });
  }

  /** The object key of a pack, for range reads of several chunks at once. */
  packObject(pack: string): string {
    return packKey(pack);
  }

  /** JSON, compressed and sealed under an object's own key, with the format's magic in front. */
  seal(name: string, what: string, value: unknown): Buffer {
    const plain = compress(Buffer.from(JSON.stringify(value)));
    return Buffer.concat([MAGIC, this.keys.objectSealer(name).seal(0, plain, what)]);
  }

  /** The JSON that `seal` wrote, or CorruptObjectError naming the object. */
  unseal(key: string, name: string, body: Buffer, what: string): Buffer {
    if (!body.subarray(0, MAGIC.length).equals(MAGIC)) {
      throw new CorruptObjectError(key, 'it does not start with the repository format v1 magic');
    }
    try {
      return decompress(
        this.keys.objectSealer(name).open(0, body.subarray(MAGIC.length), what, `object ${key}`),
      );
    } catch (err) {
      if (err instanceof SealError) throw new CorruptObjectError(key, err.message);
      throw err;
    }
  }
}

const MAGIC = Buffer.from('SNAPBAK1');
/** The nonce counter value of a pack's header, after every blob's. */
const PACK_HEADER_PART = 0xffffffff;

function parseConfig(body: Buffer): RepositoryConfig {
  const corrupt = (why: string): CorruptObjectError => new CorruptObjectError(CONFIG_KEY, why);
  let parsed: Partial<RepositoryConfig>;
  try {
    parsed = JSON.parse(body.toString('utf8')) as Partial<RepositoryConfig>;
  } catch {
    throw corrupt('not JSON');
  }
  if (parsed.format !== REPOSITORY_FORMAT) {
    throw corrupt(`format ${String(parsed.format)}, this operator reads ${REPOSITORY_FORMAT}`);
  }
  if (typeof parsed.id !== 'string' || typeof parsed.keyCheck !== 'string' || parsed.chunker === undefined) {
    throw corrupt('id, keyCheck or chunker is missing');
  }
  return parsed as RepositoryConfig;
}

/**
 * Collects new chunks into packs and sends each when it is full, a few at a time. A chunk added is
 * known at once (`has`), so a chunk seen twice in one upload is stored once.
 */
export class PackWriter {
  private blobs: Buffer[] = [];
  private entries: IndexEntry[] = [];
  private bytes = 0;
  private readonly pending = new Set<string>();
  private readonly puts = new Set<Promise<void>>();
  private readonly written: Record<string, IndexEntry[]> = {};
  private failure: Error | undefined;
  private name = newName();
  private sealer: ObjectSealer;
  /** Bytes sent to the store so far (packs, sealed and compressed). */
  sentBytes = 0;

  constructor(
    private readonly repository: Repository,
    private readonly onWritten: (pack: string, entries: IndexEntry[]) => void,
  ) {
    this.sealer = repository.keys.objectSealer(this.name);
  }

  has(id: string): boolean {
    return this.pending.has(id) || this.repository.has(id);
  }

  /**
   * Adds a prepared chunk not stored yet; resolves once it is in a pack (not yet sent), which may
   * wait while packs are in flight. It never rejects: a failure is kept, and `finish` throws it,
   * so no manifest names a chunk that was not stored.
   */
  async add(chunk: PreparedChunk): Promise<void> {
    if (this.has(chunk.id)) return;
    this.pending.add(chunk.id);
    try {
      const part = this.entries.length;
      const sealed = this.sealer.seal(part, chunk.body, chunk.id);
      this.entries.push([
        chunk.id,
        part,
        this.bytes,
        sealed.length,
        chunk.rawLength,
        chunk.compressed ? 1 : 0,
      ]);
      this.blobs.push(sealed);
      this.bytes += sealed.length;
      if (this.bytes >= PACK_TARGET_BYTES) await this.send();
    } catch (err) {
      this.failure ??= asError(err);
    }
  }

  /** Sends the pack being filled; waits while too many are in flight. */
  private async send(): Promise<void> {
    if (this.entries.length === 0) return;
    const name = this.name;
    const entries = this.entries;
    const header = this.sealer.seal(
      PACK_HEADER_PART,
      Buffer.from(JSON.stringify({ format: PACK_FORMAT, blobs: entries })),
      'header',
    );
    const length = Buffer.alloc(4);
    length.writeUInt32LE(header.length, 0);
    const body = Buffer.concat([...this.blobs, header, length]);
    this.name = newName();
    this.sealer = this.repository.keys.objectSealer(this.name);
    this.blobs = [];
    this.entries = [];
    this.bytes = 0;
    const put = this.repository.store.put(packKey(name), body).then(
      () => {
        this.sentBytes += body.length;
        this.written[name] = entries;
        this.onWritten(name, entries);
        for (const [id] of entries) this.pending.delete(id);
      },
      (err: unknown) => {
        this.failure ??= asError(err);
      },
    );
    this.puts.add(put);
    void put.finally(() => this.puts.delete(put));
    while (this.puts.size >= PUTS_IN_FLIGHT) await Promise.race(this.puts);
    if (this.failure !== undefined) throw this.failure;
  }

  /** Throws what failed in the background (a pack's PUT), so an upload stops at once. */
  throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure;
  }

  /** Sends what is left, waits for every pack, and writes the index of this writer's packs. */
  async finish(): Promise<void> {
    await this.send();
    await Promise.all(this.puts);
    if (this.failure !== undefined) throw this.failure;
    if (Object.keys(this.written).length > 0) await this.repository.writeIndex(this.written);
  }
}
