import { describe, expect, it } from '@jest/globals';
import type { Restore, RestorePhase } from '../../../src/api/generated/types.js';
import { RESTORE_PHASES } from '../../../src/api/crds.js';
import { restoresByPhase } from '../../../src/controllers/restore/indexes.js';
import { ObjectStore } from '../../../src/runtime/informer.js';
import {
  ConcurrencySlots,
  WAITING_FOR_SLOT,
  waitingForSlotByNamespace,
} from '../../../src/controllers/restore/slots.js';

const TTL_MS = 60_000;

/** The informer's store with the operator's phase index; the test sets phases as the watch would. */
class MemoryCache extends ObjectStore<Restore> {
  constructor() {
    super();
    this.addIndex(restoresByPhase);
    this.addIndex(waitingForSlotByNamespace);
  }

  set(key: string, phase: RestorePhase | undefined, progressing?: string): void {
    const [namespace = '', name = ''] = key.split('/');
    const conditions =
      progressing === undefined
        ? []
        : [
            {
              type: 'Progressing',
              status: 'True' as const,
              reason: progressing,
              message: '',
              lastTransitionTime: 'x',
            },
          ];
    this.upsert({
      metadata: { namespace, name },
      spec: { source: { backupName: 'b' } },
      ...(phase === undefined ? {} : { status: { phase, conditions } }),
    });
  }

  /** A Pending restore that was told to wait for a slot. */
  waiting(key: string): void {
    this.set(key, 'Pending', WAITING_FOR_SLOT);
  }
}

function setup(total: number, perNamespace = total) {
  const cache = new MemoryCache();
  const clock = { now: 0 };
  const slots = new ConcurrencySlots(
    cache,
    () => ({ total, perNamespace }),
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
    expect(slots.tryAcquire('ns/new').granted).toBe(granted);
  });

  it('gives the last slot to one of two restores only', () => {
    const { cache, slots } = setup(3);
    cache.set('ns/c', 'Pending');
    cache.set('ns/d', 'Pending');
    cache.set('ns/a', 'RestoringCloudSnap');
    cache.set('ns/b', 'RestoringDataServiceDeployment');
    expect(slots.tryAcquire('ns/c').granted).toBe(true);
    expect(slots.tryAcquire('ns/d').granted).toBe(false);
    expect(slots.inUse()).toBe(3);
  });

  it('reads the limit on every call', () => {
    let limit = 1;
    const cache = new MemoryCache();
    const slots = new ConcurrencySlots(
      cache,
      () => ({ total: limit, perNamespace: limit }),
      () => 0,
    );
    cache.set('ns/a', 'Pending');
    cache.set('ns/b', 'Pending');
    expect(slots.tryAcquire('ns/a').granted).toBe(true);
    expect(slots.tryAcquire('ns/b').granted).toBe(false);
    limit = 2;
    expect(slots.tryAcquire('ns/b').granted).toBe(true);
  });

  it('counts a grant until the cache shows the restore active, then counts the restore once', () => {
    const { cache, slots } = setup(1);
    cache.set('ns/a', 'Pending');
    expect(slots.tryAcquire('ns/a').granted).toBe(true);
    expect(slots.inUse()).toBe(1);
    expect(slots.tryAcquire('ns/b').granted).toBe(false);

    cache.set('ns/a', 'RestoringCloudSnap');
    expect(slots.inUse()).toBe(1);
    expect(slots.tryAcquire('ns/b').granted).toBe(false);

    cache.set('ns/a', 'Successful');
    expect(slots.inUse()).toBe(0);
    expect(slots.tryAcquire('ns/b').granted).toBe(true);
  });

  it('drops a grant once the cache shows its restore finished, even if it was never seen running', () => {
    // A restore can pass every active phase between two looks at the cache; its grant must not
    // hold a slot for the rest of its time to live, when nothing wakes the restores waiting.
    const { cache, slots } = setup(1);
    cache.set('ns/fast', 'Pending');
    expect(slots.tryAcquire('ns/fast').granted).toBe(true);
    cache.set('ns/fast', 'Successful');
    cache.set('ns/next', 'Pending');
    expect(slots.tryAcquire('ns/next').granted).toBe(true);
  });

  it('lets a grant expire when the cache never shows the restore active', () => {
    const { cache, clock, slots } = setup(1);
    cache.set('ns/a', 'Pending');
    cache.set('ns/b', 'Pending');
    expect(slots.tryAcquire('ns/a').granted).toBe(true);
    clock.now = TTL_MS;
    expect(slots.inUse()).toBe(1);
    expect(slots.tryAcquire('ns/b').granted).toBe(false);
    clock.now = TTL_MS + 1;
    expect(slots.inUse()).toBe(0);
    expect(slots.tryAcquire('ns/b').granted).toBe(true);
  });

  it('re-acquiring with the same key is idempotent and takes no second slot', () => {
    const { cache, slots } = setup(2);
    cache.set('ns/a', 'Pending');
    cache.set('ns/b', 'Pending');
    cache.set('ns/c', 'Pending');
    expect(slots.tryAcquire('ns/a').granted).toBe(true);
    expect(slots.tryAcquire('ns/a').granted).toBe(true);
    expect(slots.inUse()).toBe(1);
    expect(slots.tryAcquire('ns/b').granted).toBe(true);
    expect(slots.tryAcquire('ns/c').granted).toBe(false);
  });

  it('a re-acquire after the grant expired holds the slot again, so no one else takes it', () => {
    // When tryAcquire says yes, the caller holds a slot: at limit 1 nobody else may get one
    // until its grant expires again.
    const { cache, clock, slots } = setup(1);
    cache.set('ns/a', 'Pending');
    cache.set('ns/b', 'Pending');
    expect(slots.tryAcquire('ns/a').granted).toBe(true);
    clock.now = TTL_MS + 1_000;
    expect(slots.tryAcquire('ns/a').granted).toBe(true);
    clock.now = TTL_MS + 2_000;
    expect(slots.tryAcquire('ns/b').granted).toBe(false);
  });
});

describe('ConcurrencySlots shared across namespaces', () => {
  it('holds a namespace to its cap, saying so, while other namespaces still get slots', () => {
    const { cache, slots } = setup(10, 2);
    cache.set('team-a/r1', 'RestoringCloudSnap');
    cache.set('team-a/r2', 'RestoringDataServiceDeployment');
    expect(slots.tryAcquire('team-a/r3')).toEqual({
      granted: false,
      why: '2 restores of namespace team-a are running, the limit per namespace is 2',
    });
    expect(slots.tryAcquire('team-b/r1').granted).toBe(true);
  });

  it('gives the last free slot to the waiting namespace that runs fewer restores', () => {
    const { cache, slots } = setup(3, 3);
    cache.set('team-a/r1', 'RestoringCloudSnap');
    cache.set('team-a/r2', 'RestoringCloudSnap');
    cache.waiting('team-a/r3');
    cache.waiting('team-b/r1');

    expect(slots.tryAcquire('team-a/r3')).toEqual({
      granted: false,
      why: 'the free slots go first to namespaces running fewer restores (team-b)',
    });
    expect(slots.tryAcquire('team-b/r1').granted).toBe(true);
  });

  it('does not hold a restore back when there are free slots enough for every namespace before it', () => {
    const { cache, slots } = setup(4, 4);
    cache.set('team-a/r1', 'RestoringCloudSnap');
    cache.waiting('team-a/r2');
    cache.waiting('team-b/r1');
    expect(slots.tryAcquire('team-a/r2').granted).toBe(true);
    expect(slots.tryAcquire('team-b/r1').granted).toBe(true);
  });

  it('lets one tenant of 20 waiting restores take at most its share, so another tenant still starts', () => {
    const { cache, slots } = setup(6, 5);
    for (let i = 0; i < 20; i++) cache.waiting(`greedy/r${i}`);
    cache.waiting('quiet/r0');
    const granted = Array.from({ length: 20 }, (_, i) => slots.tryAcquire(`greedy/r${i}`).granted);
    expect(granted.filter(Boolean)).toHaveLength(5);
    expect(slots.tryAcquire('quiet/r0').granted).toBe(true);
  });

  it('ignores Pending restores that are not waiting for a slot (still checking names)', () => {
    const { cache, slots } = setup(2, 2);
    cache.set('team-a/r1', 'RestoringCloudSnap');
    cache.set('team-b/r1', 'Pending');
    expect(slots.tryAcquire('team-a/r2').granted).toBe(true);
  });
});
