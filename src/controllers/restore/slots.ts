// The concurrency limit on running restores, shared fairly across namespaces: one namespace holds
// at most its own cap, and a free slot goes first to a waiting namespace that runs fewer restores
// (max-min fairness), so one tenant cannot take every slot. The cache, indexed by phase, tells
// which restores are active and which wait; a grant made here covers the moment between this
// process deciding and the cache showing the new phase, so two workers cannot both take the last
// slot.

import type { Restore } from '../../api/generated/types.js';
import { defineIndex, type Cache } from '../../runtime/cache.js';
import { restoresByPhase } from './indexes.js';
import { ACTIVE_PHASES } from './transitions.js';

const GRANT_TTL_MS = 60_000;

/** The Progressing reason of a Pending restore that waits for a slot. */
export const WAITING_FOR_SLOT = 'WaitingForSlot';

/**
 * Restores waiting for a slot, by namespace: whose turn comes first is judged from the namespaces
 * that wait, without a scan of every waiting restore for each one (quadratic in a long queue).
 */
export const waitingForSlotByNamespace = defineIndex<Restore>('waitingForSlot', (restore) =>
  restore.status?.phase === 'Pending' && waitsForSlot(restore) ? [restore.metadata.namespace ?? ''] : [],
);

export interface SlotLimits {
  /** Restores running at once, in all namespaces. */
  total: number;
  /** Restores running at once in one namespace. */
  perNamespace: number;
}

export type SlotDecision = { granted: true } | { granted: false; why: string };

const keyOf = (restore: Restore): string =>
  `${restore.metadata.namespace ?? ''}/${restore.metadata.name ?? ''}`;
const namespaceOf = (key: string): string => key.slice(0, key.indexOf('/'));

export class ConcurrencySlots {
  private readonly grants = new Map<string, number>();

  constructor(
    private readonly restores: Cache<Restore>,
    private readonly limits: () => SlotLimits,
    private readonly now: () => number = Date.now,
  ) {}

  /** The keys of active restores, counting this process's grants that the cache does not show yet. */
  private active(): Set<string> {
    const active = new Set(
      ACTIVE_PHASES.flatMap((phase) => this.restores.byIndex(restoresByPhase, phase)).map(keyOf),
    );
    for (const [key, grantedAt] of this.grants) {
      // A grant covers only the cache's lag: once the cache shows the restore past Pending (running,
      // or already finished) or gone, the grant has done its work.
      const lagging = this.restores.get(key)?.status?.phase === 'Pending';
      if (!lagging || this.now() - grantedAt > GRANT_TTL_MS) this.grants.delete(key);
      else active.add(key);
    }
    return active;
  }

  inUse(): number {
    return this.active().size;
  }

  /** Takes a slot for `key` ("namespace/name") if one is free and it is the namespace's turn. */
  tryAcquire(key: string): SlotDecision {
    // active() first: it drops expired grants, so an expired one is re-acquired like a new one.
    const active = this.active();
    if (this.grants.has(key)) return { granted: true };
    const { total, perNamespace } = this.limits();
    const running = new Map<string, number>();
    for (const other of active) running.set(namespaceOf(other), (running.get(namespaceOf(other)) ?? 0) + 1);
    const namespace = namespaceOf(key);
    const mine = running.get(namespace) ?? 0;
    if (active.size >= total) {
      return { granted: false, why: `${active.size} restores are running, the limit is ${total}` };
    }
    if (mine >= perNamespace) {
      return {
        granted: false,
        why: `${mine} restores of namespace ${namespace} are running, the limit per namespace is ${perNamespace}`,
      };
    }
    // Namespaces waiting that run fewer restores than this one have the first claim on free slots.
    const before = this.restores
      .indexValues(waitingForSlotByNamespace)
      .filter((other) => other !== namespace && (running.get(other) ?? 0) < mine);
    if (total - active.size <= before.length) {
      return {
        granted: false,
        why: `the free slots go first to namespaces running fewer restores (${before.sort().join(', ')})`,
      };
    }
    this.grants.set(key, this.now());
    return { granted: true };
  }
}

function waitsForSlot(restore: Restore): boolean {
  return (
    restore.status?.conditions?.some(
      (condition) => condition.type === 'Progressing' && condition.reason === WAITING_FOR_SLOT,
    ) ?? false
  );
}
