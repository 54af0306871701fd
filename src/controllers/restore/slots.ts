// The concurrency limit on running restores. The cache, indexed by phase, tells which restores
// are active; a grant made here covers the moment between this process deciding and the cache
// showing the new phase, so two workers cannot both take the last slot.

import type { Restore } from '../../api/generated/types.js';
import type { Cache } from '../../runtime/cache.js';
import { restoresByPhase } from './indexes.js';
import { ACTIVE_PHASES } from './transitions.js';

const GRANT_TTL_MS = 60_000;

export class ConcurrencySlots {
  private readonly grants = new Map<string, number>();

  constructor(
    private readonly restores: Cache<Restore>,
    private readonly limit: () => number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Active restores, counting this process's grants that the cache does not show yet. */
  inUse(): number {
    const active = new Set(
      ACTIVE_PHASES.flatMap((phase) => this.restores.byIndex(restoresByPhase, phase)).map(
        (restore) => `${restore.metadata.namespace ?? ''}/${restore.metadata.name ?? ''}`,
      ),
    );
    for (const [key, grantedAt] of this.grants) {
      if (active.has(key) || this.now() - grantedAt > GRANT_TTL_MS) this.grants.delete(key);
    }
    return active.size + this.grants.size;
  }

  /** Takes a slot for `key` if one is free. */
  tryAcquire(key: string): boolean {
    // inUse() first: it drops expired grants, so an expired one is re-acquired like a new one.
    const inUse = this.inUse();
    if (!this.grants.has(key) && inUse >= this.limit()) return false;
    this.grants.set(key, this.now());
    return true;
  }
}
