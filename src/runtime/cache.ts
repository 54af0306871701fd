/**
 * A secondary index of a cache, typed by the objects it indexes. One handle both registers the
 * index on an informer and reads it, so a reader can never name an index that was not registered
 * under that name (controller-runtime's field indexes, without the strings on both sides).
 */
export interface Index<T> {
  readonly name: string;
  values(object: T): string[];
}

export function defineIndex<T>(name: string, values: (object: T) => string[]): Index<T> {
  return { name, values };
}

/** The read side of an informer, as reconcilers use it (an Informer satisfies it). */
export interface Cache<T> {
  /** By "namespace/name", or "name" for cluster-scoped objects. */
  get(key: string): T | undefined;
  list(): T[];
  byIndex(index: Index<T>, value: string): T[];
  /** The values `index` holds for at least one object. */
  indexValues(index: Index<T>): string[];
}
