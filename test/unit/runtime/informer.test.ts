// The informer's store, its diffs and indexes. The fake source only feeds the store; the
// list-watch machinery (relist on 410, backoff, watchdog) is tested against the real API server
// in test/integration/runtime.

import { afterEach, describe, expect, it } from '@jest/globals';
import { Registry } from 'prom-client';
import winston from 'winston';
import type { KubeObject, Status, WatchEventType } from '../../../src/api/kubernetes.js';
import { createMetrics } from '../../../src/observability/metrics.js';
import { Informer, ObjectStore, objectKey, type ListWatchClient } from '../../../src/runtime/informer.js';
import type { ResourceType } from '../../../src/runtime/resources.js';
import { defineIndex } from '../../../src/runtime/cache.js';

interface Thing extends KubeObject {
  data?: string;
}

const things: ResourceType<Thing> = {
  group: 'test.dev',
  version: 'v1',
  kind: 'Thing',
  plural: 'things',
  namespaced: true,
};

const thing = (name: string, rv: string, owner?: string, namespace = 'ns'): Thing => ({
  metadata: { name, namespace, resourceVersion: rv, ...(owner === undefined ? {} : { labels: { owner } }) },
});

const byOwner = defineIndex<Thing>('owner', (obj: Thing): string[] => {
  const owner = obj.metadata.labels?.owner;
  return owner === undefined ? [] : [owner];
});

const names = (objs: KubeObject[]): string[] => objs.map((o) => o.metadata.name ?? '').sort();

describe('objectKey', () => {
  it('is namespace/name, or the name of a cluster-scoped object', () => {
    expect(objectKey(thing('a', '1'))).toBe('ns/a');
    expect(objectKey({ metadata: { name: 'node-1' } })).toBe('node-1');
  });
});

describe('ObjectStore', () => {
  it('keeps indexes current as objects change, move and go', () => {
    const store = new ObjectStore<Thing>();
    store.upsert(thing('a', '1', 'x'));
    store.addIndex(byOwner);
    store.upsert(thing('b', '1', 'x'));
    expect(names(store.byIndex(byOwner, 'x'))).toEqual(['a', 'b']);

    expect(store.indexValues(byOwner)).toEqual(['x']);

    store.upsert(thing('a', '2', 'y'));
    expect(names(store.byIndex(byOwner, 'x'))).toEqual(['b']);
    expect(names(store.byIndex(byOwner, 'y'))).toEqual(['a']);
    expect(store.indexValues(byOwner).sort()).toEqual(['x', 'y']);

    expect(store.remove('ns/b')?.metadata.name).toBe('b');
    expect(store.byIndex(byOwner, 'x')).toEqual([]);
    // A value no object holds any more is not listed.
    expect(store.indexValues(byOwner)).toEqual(['y']);
    expect(store.remove('ns/b')).toBeUndefined();
    expect(() =>
      store.byIndex(
        defineIndex<Thing>('nope', () => []),
        'x',
      ),
    ).toThrow(/no index named nope/);
    expect(() => {
      store.addIndex(byOwner);
    }).toThrow(/already exists/);
  });

  it('replaces its content with a LIST and reports added, changed and vanished objects', () => {
    const store = new ObjectStore<Thing>();
    store.addIndex(byOwner);
    store.replace([thing('same', '1', 'x'), thing('changed', '1', 'x'), thing('gone', '1', 'x')]);
    const changes = store.replace([
      thing('same', '1', 'x'),
      thing('changed', '2', 'y'),
      thing('new', '5', 'x'),
    ]);
    expect(names(changes.added)).toEqual(['new']);
    expect(
      changes.updated.map((u) => [u.obj.metadata.resourceVersion, u.old.metadata.resourceVersion]),
    ).toEqual([['2', '1']]);
    expect(names(changes.deleted)).toEqual(['gone']);
    expect(store.size).toBe(3);
    expect(names(store.byIndex(byOwner, 'x'))).toEqual(['new', 'same']);
    expect(names(store.byIndex(byOwner, 'y'))).toEqual(['changed']);
  });
});

/** Serves a LIST from `items` and lets the test push watch events into the running watch. */
class FakeSource implements ListWatchClient {
  items: Thing[] = [];
  resourceVersion = '10';
  lists = 0;
  watchedFrom: string[] = [];
  private emit: ((type: WatchEventType, object: Thing | Status) => void) | undefined;
  private watching: (() => void) | undefined;

  list<T extends KubeObject>(_rt: ResourceType<T>): Promise<{ items: T[]; resourceVersion: string }> {
    this.lists += 1;
    return Promise.resolve({ items: this.items as unknown as T[], resourceVersion: this.resourceVersion });
  }

  watch<T extends KubeObject>(
    _rt: ResourceType<T>,
    options: { resourceVersion: string },
    onEvent: (type: WatchEventType, object: T | Status) => void,
    signal: AbortSignal,
  ): Promise<void> {
    this.watchedFrom.push(options.resourceVersion);
    return new Promise((resolve, reject) => {
      this.emit = (type, object) => {
        try {
          onEvent(type, object as T | Status);
        } catch (err) {
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      };
      this.watching = resolve;
      signal.addEventListener(
        'abort',
        () => {
          resolve();
        },
        { once: true },
      );
    });
  }

  send(type: WatchEventType, object: Thing | Status): void {
    if (this.emit === undefined) throw new Error('no watch is running');
    this.emit(type, object);
  }

  get watchRunning(): boolean {
    return this.watching !== undefined;
  }
}

const until = async (what: string, probe: () => boolean): Promise<void> => {
  for (let i = 0; i < 200; i += 1) {
    if (probe()) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error(`timed out waiting for ${what}`);
};

describe('Informer store and handlers', () => {
  const logger = winston.createLogger({ silent: true });
  let informer: Informer<Thing> | undefined;

  afterEach(async () => {
    await informer?.stop();
    informer = undefined;
  });

  function start(
    source: FakeSource,
    metrics = createMetrics(new Registry()),
  ): { seen: string[]; informer: Informer<Thing> } {
    const seen: string[] = [];
    informer = new Informer(source, things, { backoffInitialMs: 1 }, { logger, metrics: metrics.informer });
    informer.addIndex(byOwner);
    informer.on({
      add: (obj) => seen.push(`add ${obj.metadata.name ?? ''}@${obj.metadata.resourceVersion ?? ''}`),
      update: (obj, old) =>
        seen.push(
          `update ${obj.metadata.name ?? ''}@${old.metadata.resourceVersion ?? ''}->${obj.metadata.resourceVersion ?? ''}`,
        ),
      delete: (obj) => seen.push(`delete ${obj.metadata.name ?? ''}@${obj.metadata.resourceVersion ?? ''}`),
    });
    informer.start();
    return { seen, informer };
  }

  it('lists, syncs, applies watch events and keeps the last state of deleted objects', async () => {
    const source = new FakeSource();
    source.items = [thing('a', '1', 'x')];
    const metrics = createMetrics(new Registry());
    const { seen, informer } = start(source, metrics);
    await informer.waitForSync();
    expect(informer.hasSynced()).toBe(true);
    await until('the watch', () => source.watchRunning);
    expect(source.watchedFrom).toEqual(['10']);

    source.send('ADDED', thing('b', '11', 'x'));
    source.send('MODIFIED', thing('a', '12', 'y'));
    source.send('BOOKMARK', { metadata: { resourceVersion: '13' } });
    source.send('DELETED', thing('b', '14', 'x'));
    expect(seen).toEqual(['add a@1', 'add b@11', 'update a@1->12', 'delete b@14']);
    expect(names(informer.list())).toEqual(['a']);
    expect(informer.get('ns/a')?.metadata.resourceVersion).toBe('12');
    expect(names(informer.byIndex(byOwner, 'y'))).toEqual(['a']);
    expect(informer.byIndex(byOwner, 'x')).toEqual([]);
    expect((await metrics.informer.objects.get()).values[0]?.value).toBe(1);
    expect(informer.lastEventAt()).toBeGreaterThan(0);
  });

  it('caches listed and watched objects without their managedFields, and keeps the rest', async () => {
    const managed = (obj: Thing): Thing => ({
      ...obj,
      data: 'kept',
      metadata: { ...obj.metadata, managedFields: [{ manager: 'kubectl', operation: 'Apply' }] },
    });
    const source = new FakeSource();
    source.items = [managed(thing('a', '1', 'x'))];
    const { informer } = start(source);
    await informer.waitForSync();
    await until('the watch', () => source.watchRunning);
    source.send('ADDED', managed(thing('b', '11', 'x')));

    for (const key of ['ns/a', 'ns/b']) {
      const cached = informer.get(key);
      expect(cached?.metadata).not.toHaveProperty('managedFields');
      expect(cached).toMatchObject({ data: 'kept', metadata: { labels: { owner: 'x' } } });
    }
  });

  it('emits the differences when a 410 makes it relist, and watches from the new resourceVersion', async () => {
    const source = new FakeSource();
    source.items = [thing('keep', '1'), thing('change', '1'), thing('vanish', '1')];
    const metrics = createMetrics(new Registry());
    const { seen, informer } = start(source, metrics);
    await informer.waitForSync();
    await until('the watch', () => source.watchRunning);
    seen.length = 0;

    source.items = [thing('keep', '1'), thing('change', '7'), thing('appear', '8')];
    source.resourceVersion = '20';
    source.send('ERROR', {
      kind: 'Status',
      code: 410,
      reason: 'Expired',
      message: 'too old resource version',
    });
    await until('the relist', () => source.watchedFrom.length === 2);
    expect(source.lists).toBe(2);
    expect(source.watchedFrom).toEqual(['10', '20']);
    expect(seen).toEqual(['add appear@8', 'update change@1->7', 'delete vanish@1']);
    const restarts = (await metrics.informer.restarts.get()).values;
    expect(restarts).toEqual([
      expect.objectContaining({ labels: { resource: 'things', reason: 'gone' }, value: 1 }),
    ]);
  });

  it('replays the cache to a handler registered after the sync, and isolates failing handlers', async () => {
    const source = new FakeSource();
    source.items = [thing('a', '1'), thing('b', '2')];
    const { informer } = start(source);
    await informer.waitForSync();
    await until('the watch', () => source.watchRunning);

    const late: string[] = [];
    informer.on({
      add: (obj) => {
        if (obj.metadata.name === 'a') throw new Error('handler bug');
        late.push(obj.metadata.name ?? '');
      },
    });
    expect(late).toEqual(['b']);
    source.send('ADDED', thing('c', '3'));
    expect(late).toEqual(['b', 'c']);
    expect(informer.get('ns/c')).toBeDefined();
  });

  it('stops waiting for the sync when the signal aborts', async () => {
    const source = new FakeSource();
    const waiting = new Informer(
      source,
      things,
      {},
      { logger, metrics: createMetrics(new Registry()).informer },
    );
    const abort = new AbortController();
    const sync = waiting.waitForSync(abort.signal);
    abort.abort();
    await expect(sync).rejects.toThrow(/stopped waiting for the things informer to sync/);
    expect(waiting.hasSynced()).toBe(false);
  });
});
