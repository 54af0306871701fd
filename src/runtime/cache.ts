/** The read side of an informer, as reconcilers use it (an Informer satisfies it). */
export interface Cache<T> {
  /** By "namespace/name", or "name" for cluster-scoped objects. */
  get(key: string): T | undefined;
  list(): T[];
  byIndex(index: string, value: string): T[];
}
