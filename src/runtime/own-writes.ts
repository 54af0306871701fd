// Read-your-writes for reconcilers that read from an informer cache. Right after a reconciler
// writes an object, an event of another object (a PVC bound, a StatefulSet ready) can reconcile
// it again before the watch has delivered that write: the cache still holds the version the
// write replaced, and a write made from it fails with 409 Conflict (`make bench` measured seven
// per restore). The reconciler notes the version each write replaced and skips the object until
// its cache has moved past that version. No requeue is needed: a write that changed the object
// always comes back as a watch event (or, after a relist, as an update), which enqueues it.

import type { KubeObject } from '../api/kubernetes.js';
import { objectKey } from './informer.js';

export class OwnWrites {
  /** Object key -> the resourceVersion our last write replaced. */
  private readonly replaced = new Map<string, string>();

  /** Notes that `before` was replaced by `after`; a write that changed nothing leaves no mark. */
  wrote(before: KubeObject, after: KubeObject): void {
    const old = before.metadata.resourceVersion;
    if (old !== undefined && old !== after.metadata.resourceVersion)
      this.replaced.set(objectKey(before), old);
  }

  /** Whether `cached` (the cache's object under `key`) is a version this reconciler already replaced. */
  behind(key: string, cached: KubeObject | undefined): boolean {
    const replaced = this.replaced.get(key);
    if (replaced === undefined) return false;
    if (cached?.metadata.resourceVersion === replaced) return true;
    this.replaced.delete(key);
    return false;
  }
}
