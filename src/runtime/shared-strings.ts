// Strings the cached objects share. JSON.parse gives every object its own copy of every string,
// though most of them repeat from object to object: apiVersion and kind, namespaces, labels,
// condition types and reasons, the image and command lines of a backed-up manifest, the timestamps
// of a burst. A cache of 100k Backups and Restores held each of them 100k times. Passed through
// the table, an object points at one copy of each.

/** Longer strings are mostly one object's own (messages; manifests' scripts are the exception). */
const MAX_LENGTH = 128;
/** Strings a generation of the table holds; see `string`. */
const GENERATION = 25_000;
/** Fields unique to each object: sharing them saves nothing and churns the table. */
const UNIQUE_FIELDS = new Set(['uid', 'resourceVersion']);

export class SharedStrings {
  private young = new Map<string, string>();
  private old = new Map<string, string>();

  constructor(
    private readonly generation = GENERATION,
    private readonly maxLength = MAX_LENGTH,
  ) {}

  /** Strings held, in both generations. */
  get size(): number {
    return this.young.size + this.old.size;
  }

  /**
   * Makes the strings of `value`, a parsed JSON value the caller owns, the table's. In place: a
   * copy built key by key would be laid out less compactly than JSON.parse lays out its objects.
   */
  share<T>(value: T): T {
    return this.walk(value) as T;
  }

  private walk(value: unknown): unknown {
    if (typeof value === 'string') return this.string(value);
    if (value === null || typeof value !== 'object') return value;
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) value[i] = this.walk(value[i]);
      return value;
    }
    const object = value as Record<string, unknown>;
    for (const key of Object.keys(object)) {
      if (!UNIQUE_FIELDS.has(key)) object[key] = this.walk(object[key]);
    }
    return object;
  }

  /**
   * Two generations bound the table: when the young one is full it becomes the old one, and the
   * old one is dropped. A string still in use is seen again and moves back to the young one; the
   * names of objects long gone are forgotten. Cached objects keep the copies they point at.
   */
  private string(value: string): string {
    if (value.length > this.maxLength) return value;
    const young = this.young.get(value);
    if (young !== undefined) return young;
    const shared = this.old.get(value) ?? value;
    this.young.set(value, shared);
    if (this.young.size >= this.generation) {
      this.old = this.young;
      this.young = new Map();
    }
    return shared;
  }
}
