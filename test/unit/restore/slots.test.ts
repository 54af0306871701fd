import { describe, expect, it } from '@jest/globals';
import type { Restore, RestorePhase } from '../../../src/api/generated/types.js';
import { RESTORE_PHASES } from '../../../src/api/crds.js';
import { restoresByPhase } from '../../../src/controllers/restore/indexes.js';
import { ObjectStore } from '../../../src/runtime/informer.js';
import { ConcurrencySlots } from '../../../src/controllers/restore/slots.js';

const TTL_MS = 60_000;

/** The informer's store with the operator's phase index; the test sets phases as the watch would. */
class MemoryCache extends ObjectStore<Restore> {
  constructor() {
    super();
    this.addIndex(restoresByPhase);
  }

  set(key: string, phase: RestorePhase | undefined): void {
    const [namespace = '', name = ''] = key.split('/');
    this.upsert({
      metadata: { namespace, name },
      spec: { source: { backupName: 'b' } },
      ...(phase === undefined ? {} : { status: { phase } }),
    });
  }
}

function setup(limit: number) {
  const cache = new MemoryCache();
  const clock = { now: 0 };
  const slots = new ConcurrencySlots(
    cache,
    () => limit,
    () => clock.now,
  );
  return { cache, clock, slots };
}

describe('ConcurrencySlots', () => {
  it('counts only restores in the active phases', () => {
    const { cache, slots } = setup(10);
    RESTORE_PHASES.forEach((phase, i) => {
      cache.set(`ns/r${i}`, phase);
    });
    cache.set('ns/fresh', undefined);
    expect(slots.inUse()).toBe(4);
  });

  it.each([
    { limit: 1, active: 0, granted: true },
    { limit: 2, active: 1, granted: true },
    { limit: 2, active: 2, granted: false },
    { limit: 2, active: 3, granted: false },
  ])('limit $limit with $active active: granted $granted', ({ limit, active, granted }) => {
    const { cache, slots } = setup(limit);
    for (let i = 0; i < active; i++) cache.set(`ns/active-${i}`, 'RestoringCloudSnap');
    cache.set('ns/new', 'Pending');
    expect(slots.tryAcquire('ns/new')).toBe(granted);
  });

  it('gives the last slot to one of two restores only', () => {
    const { cache, slots } = setup(3);
    cache.set('ns/a', 'RestoringCloudSnap');
    cache.set('ns/b', 'RestoringDataServiceDeployment');
    expect(slots.tryAcquire('ns/c')).toBe(true);
    expect(slots.tryAcquire('ns/d')).toBe(false);
    expect(slots.inUse()).toBe(3);
  });

  it('reads the limit on every call', () => {
    let limit = 1;
    const cache = new MemoryCache();
    const slots = new ConcurrencySlots(
      cache,
      () => limit,
      () => 0,
    );
    expect(slots.tryAcquire('ns/a')).toBe(true);
    expect(slots.tryAcquire('ns/b')).toBe(false);
    limit = 2;
    expect(slots.tryAcquire('ns/b')).toBe(true);
  });

  it('counts a grant until the cache shows the restore active, then counts the restore once', () => {
    const { cache, slots } = setup(1);
    cache.set('ns/a', 'Pending');
    expect(slots.tryAcquire('ns/a')).toBe(true);
    expect(slots.inUse()).toBe(1);
    expect(slots.tryAcquire('ns/b')).toBe(false);

    cache.set('ns/a', 'RestoringCloudSnap');
    expect(slots.inUse()).toBe(1);
    expect(slots.tryAcquire('ns/b')).toBe(false);

    cache.set('ns/a', 'Successful');
    expect(slots.inUse()).toBe(0);
    expect(slots.tryAcquire('ns/b')).toBe(true);
  });

  it('lets a grant expire when the cache never shows the restore active', () => {
    const { clock, slots } = setup(1);
    expect(slots.tryAcquire('ns/a')).toBe(true);
    clock.now = TTL_MS;
    expect(slots.inUse()).toBe(1);
    expect(slots.tryAcquire('ns/b')).toBe(false);
    clock.now = TTL_MS + 1;
    expect(slots.inUse()).toBe(0);
    expect(slots.tryAcquire('ns/b')).toBe(true);
  });

  it('re-acquiring with the same key is idempotent and takes no second slot', () => {
    const { slots } = setup(2);
    expect(slots.tryAcquire('ns/a')).toBe(true);
    expect(slots.tryAcquire('ns/a')).toBe(true);
    expect(slots.inUse()).toBe(1);
    expect(slots.tryAcquire('ns/b')).toBe(true);
    expect(slots.tryAcquire('ns/c')).toBe(false);
  });

  it('a re-acquire after the grant expired holds the slot again, so no one else takes it', () => {
    // When tryAcquire says yes, the caller holds a slot: at limit 1 nobody else may get one
    // until its grant expires again.
    const { clock, slots } = setup(1);
    expect(slots.tryAcquire('ns/a')).toBe(true);
    clock.now = TTL_MS + 1_000;
    expect(slots.tryAcquire('ns/a')).toBe(true);
    clock.now = TTL_MS + 2_000;
    expect(slots.tryAcquire('ns/b')).toBe(false);
  });
});
