// Our own list-watch cache. client-node's informer gives up for good on errors other than 410
// and its watch aborts after 30 s without data, so the operator would silently go blind; this
// one never gives up: it relists on 410 Gone, re-watches with backoff on any other failure,
// restarts a watch that went silent, and relists now and then to heal a watch that lost events
// without failing.
//
// Objects are stored and handed out as received, without copies: handlers and readers must
// treat them as read-only (copy before changing one to send it back to the API server).

import type { Logger } from 'winston';
import type { KubeObject, Status, WatchEventType } from '../api/kubernetes.js';
import type { Index } from './cache.js';
import type { InformerMetrics } from './metrics.js';
import type { KubeClient } from './kube-client.js';
import { errorMessage, isGone } from './errors.js';
import type { ResourceType } from './resources.js';
import { SharedStrings } from './shared-strings.js';
import { pause } from './async.js';

/** The cache key of an object: "namespace/name", or "name" for cluster-scoped objects. */
export function objectKey(obj: KubeObject): string {
  const name = obj.metadata.name ?? '';
  const namespace = obj.metadata.namespace;
  return namespace === undefined || namespace === '' ? name : `${namespace}/${name}`;
}

export interface EventHandler<T> {
  add?(obj: T): void;
  /** Also called on every resync with obj === old. */
  update?(obj: T, old: T): void;
  /** With the last state known: the object in the DELETED event, or the cached one after a relist. */
  delete?(obj: T): void;
}

/**
 * The subscription side of an informer. Its method signature lets an Informer<Restore> stand
 * where an EventSource<KubeObject> is expected (an Informer<T> itself is invariant in T).
 */
export interface EventSource<T extends KubeObject> {
  on(handler: EventHandler<T>): () => void;
}

export interface StoreChanges<T> {
  added: T[];
  updated: { obj: T; old: T }[];
  deleted: T[];
}

/** One table for every informer: namespaces, labels and names repeat across kinds too. */
const sharedStrings = new SharedStrings();

/**
 * The object as the cache keeps it: without metadata.managedFields, which the operator never reads
 * and which is often the larger part of a small object (client-go's informers offer the same
 * transform), and with its strings shared with the other cached objects. Writes are unaffected: a
 * PUT that omits managedFields keeps the server's.
 */
export function forCache<T extends KubeObject>(obj: T): T {
  const { managedFields: _managedFields, ...metadata } = obj.metadata;
  return sharedStrings.share({ ...obj, metadata });
}

/** The object map with its secondary indexes, kept current on every change. */
export class ObjectStore<T extends KubeObject> {
  private readonly items = new Map<string, T>();
  private readonly indexers = new Map<string, Index<T>>();
  /** index name → index value → keys */
  private readonly indexes = new Map<string, Map<string, Set<string>>>();

  get size(): number {
    return this.items.size;
  }

  get(key: string): T | undefined {
    return this.items.get(key);
  }

  list(): T[] {
    return [...this.items.values()];
  }

  addIndex(index: Index<T>): void {
    if (this.indexers.has(index.name)) throw new Error(`index ${index.name} already exists`);
    this.indexers.set(index.name, index);
    const entries = new Map<string, Set<string>>();
    this.indexes.set(index.name, entries);
    for (const [key, obj] of this.items) this.indexAdd(entries, index, key, obj);
  }

  byIndex(index: Index<T>, value: string): T[] {
    const entries = this.indexes.get(index.name);
    if (entries === undefined) throw new Error(`no index named ${index.name}`);
    const found: T[] = [];
    for (const key of entries.get(value) ?? []) {
      const obj = this.items.get(key);
      if (obj !== undefined) found.push(obj);
    }
    return found;
  }

  indexValues(index: Index<T>): string[] {
    const entries = this.indexes.get(index.name);
    if (entries === undefined) throw new Error(`no index named ${index.name}`);
    return [...entries.keys()];
  }

  /** Stores the object; returns the one it replaced. */
  upsert(obj: T): T | undefined {
    const key = objectKey(obj);
    const old = this.items.get(key);
    if (old !== undefined) this.unindex(key, old);
    this.items.set(key, obj);
    for (const [name, index] of this.indexers) {
      const entries = this.indexes.get(name);
      if (entries !== undefined) this.indexAdd(entries, index, key, obj);
    }
    return old;
  }

  /** Removes the object with the key; returns it. */
  remove(key: string): T | undefined {
    const old = this.items.get(key);
    if (old === undefined) return undefined;
    this.unindex(key, old);
    this.items.delete(key);
    return old;
  }

  /**
   * Replaces the content with a fresh LIST and returns what changed. An object counts as updated
   * only when its resourceVersion differs: an unchanged one needs no event (resyncs cover those).
   */
  replace(items: T[]): StoreChanges<T> {
    const changes: StoreChanges<T> = { added: [], updated: [], deleted: [] };
    const listed = new Set<string>();
    for (const obj of items) {
      listed.add(objectKey(obj));
      const old = this.upsert(obj);
      if (old === undefined) changes.added.push(obj);
      else if (old.metadata.resourceVersion !== obj.metadata.resourceVersion)
        changes.updated.push({ obj, old });
    }
    for (const [key, obj] of [...this.items]) {
      if (listed.has(key)) continue;
      this.remove(key);
      changes.deleted.push(obj);
    }
    return changes;
  }

  private indexAdd(entries: Map<string, Set<string>>, index: Index<T>, key: string, obj: T): void {
    for (const value of index.values(obj)) {
      let keys = entries.get(value);
      if (keys === undefined) {
        keys = new Set();
        entries.set(value, keys);
      }
      keys.add(key);
    }
  }

  private unindex(key: string, obj: T): void {
    for (const [name, index] of this.indexers) {
      const entries = this.indexes.get(name);
      if (entries === undefined) continue;
      for (const value of index.values(obj)) {
        const keys = entries.get(value);
        keys?.delete(key);
        if (keys?.size === 0) entries.delete(value);
      }
    }
  }
}

export interface InformerOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Every cached object is re-delivered as an update this often (no API call). Default 10 min. */
  resyncPeriodMs?: number;
  /** Every this many resyncs the informer also relists, to heal a watch that lost events. Default 3. */
  relistEveryResyncs?: number;
  /** Server-side watch timeout. Default: random 5–10 min per watch, as client-go does. */
  watchTimeoutSeconds?: number;
  /** A watch with no event or bookmark for this long is restarted. Default: watch timeout + 60 s. */
  silenceTimeoutMs?: number;
  /** A LIST taking longer is abandoned and retried. Default 60 s. */
  listTimeoutMs?: number;
  /** Backoff between failed attempts, with jitter. Default 200 ms to 30 s. */
  backoffInitialMs?: number;
  backoffMaxMs?: number;
}

export interface InformerDeps {
  logger: Logger;
  metrics: InformerMetrics;
}

/** The API calls an informer makes. */
export type ListWatchClient = Pick<KubeClient, 'list' | 'watch'>;

export type RestartReason = 'gone' | 'error' | 'silence' | 'relist';

/** The watch must be replaced by a LIST: the server no longer has our resourceVersion. */
class ResourceVersionGone extends Error {}

/** An ERROR event other than 410. */
class WatchErrorEvent extends Error {}

const PAGE_SIZE = 500;
const MIN_WATCH_TIMEOUT_SECONDS = 300;

export class Informer<T extends KubeObject> implements EventSource<T> {
  private readonly store = new ObjectStore<T>();
  private readonly handlers = new Set<EventHandler<T>>();
  private readonly syncWaiters = new Set<() => void>();
  private readonly resource: string;
  private readonly log: Logger;
  private readonly resyncPeriodMs: number;
  private readonly relistEveryResyncs: number;
  private readonly listTimeoutMs: number;
  private readonly backoffInitialMs: number;
  private readonly backoffMaxMs: number;

  private resourceVersion = '';
  private synced = false;
  private started = false;
  /** Aborted by stop(): ends every wait and request of the loop. */
  private readonly stopController = new AbortController();
  /** The running watch and why it is being aborted, if it is. */
  private watchAbort: { controller: AbortController; reason?: RestartReason } | undefined;
  private relistRequested = false;
  private loop: Promise<void> | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private resyncs = 0;
  private consecutiveFailures = 0;
  private lastEvent = 0;
  /** Last time the loop made progress of any kind (for the stuck-loop health check). */
  private lastActivity = 0;

  constructor(
    private readonly client: ListWatchClient,
    private readonly rt: ResourceType<T>,
    private readonly options: InformerOptions = {},
    private readonly deps: InformerDeps,
  ) {
    this.resource = rt.plural;
    this.log = deps.logger.child({ informer: rt.plural, namespace: options.namespace });
    this.resyncPeriodMs = options.resyncPeriodMs ?? 10 * 60_000;
    this.relistEveryResyncs = options.relistEveryResyncs ?? 3;
    this.listTimeoutMs = options.listTimeoutMs ?? 60_000;
    this.backoffInitialMs = options.backoffInitialMs ?? 200;
    this.backoffMaxMs = options.backoffMaxMs ?? 30_000;
  }

  get resourceType(): ResourceType<T> {
    return this.rt;
  }

  /**
   * Registers a handler and returns a function that removes it. Registered on a running
   * informer, the handler first receives an add for every cached object.
   */
  on(handler: EventHandler<T>): () => void {
    this.handlers.add(handler);
    if (this.synced) {
      for (const obj of this.store.list()) {
        this.call('add', () => {
          handler.add?.(obj);
        });
      }
    }
    return () => this.handlers.delete(handler);
  }

  addIndex(index: Index<T>): void {
    this.store.addIndex(index);
  }

  start(): void {
    if (this.started) throw new Error(`informer ${this.resource} was already started`);
    this.started = true;
    this.lastActivity = Date.now();
    this.loop = this.run();
    this.resyncTimer = setInterval(() => {
      this.resync();
    }, this.resyncPeriodMs);
    this.resyncTimer.unref();
  }

  async stop(): Promise<void> {
    if (this.isStopped()) return;
    clearInterval(this.resyncTimer);
    this.stopController.abort();
    this.watchAbort?.controller.abort();
    await this.loop;
  }

  /** A call, not a field: TypeScript would keep a field's narrowing across awaits (TS#9998). */
  private isStopped(): boolean {
    return this.stopController.signal.aborted;
  }

  hasSynced(): boolean {
    return this.synced;
  }

  /** Resolves after the first complete LIST; rejects if the signal aborts first. */
  waitForSync(signal?: AbortSignal): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        this.syncWaiters.delete(done);
        reject(new Error(`stopped waiting for the ${this.resource} informer to sync`));
      };
      const done = (): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      if (signal?.aborted === true) {
        onAbort();
        return;
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      this.syncWaiters.add(done);
    });
  }

  get(key: string): T | undefined {
    return this.store.get(key);
  }

  list(): T[] {
    return this.store.list();
  }

  byIndex(index: Index<T>, value: string): T[] {
    return this.store.byIndex(index, value);
  }

  indexValues(index: Index<T>): string[] {
    return this.store.indexValues(index);
  }

  /** Epoch ms of the last LIST, watch event or bookmark; 0 before any. */
  lastEventAt(): number {
    return this.lastEvent;
  }

  /**
   * False when the list-watch loop stopped making progress: every step of it (a LIST, a watch
   * without events, a backoff) is bounded, so a loop silent for longer than all of them together
   * is stuck. A loop that keeps failing against an unreachable server still counts as alive.
   */
  isHealthy(now = Date.now()): boolean {
    if (!this.started || this.isStopped()) return true;
    const longestWatch = this.options.watchTimeoutSeconds ?? 2 * MIN_WATCH_TIMEOUT_SECONDS;
    const bound =
      Math.max(this.silenceTimeoutMs(longestWatch), this.listTimeoutMs) + this.backoffMaxMs + 60_000;
    return now - this.lastActivity <= bound;
  }

  private async run(): Promise<void> {
    let needList = true;
    while (!this.isStopped()) {
      const delay = this.backoffDelay();
      if (delay > 0) await pause(delay, this.stopController.signal);
      if (this.isStopped()) break;
      this.lastActivity = Date.now();
      if (needList || this.relistRequested) {
        this.relistRequested = false;
        try {
          await this.listAndReplace();
          needList = false;
        } catch (err) {
          if (this.isStopped()) break;
          this.consecutiveFailures += 1;
          this.log.warn('list failed; retrying', {
            error: errorMessage(err),
            failures: this.consecutiveFailures,
          });
          continue;
        }
      }
      needList = await this.watchOnce();
    }
  }

  /** One watch from the current resourceVersion; true when a LIST must come next. */
  private async watchOnce(): Promise<boolean> {
    const controller = new AbortController();
    const current: { controller: AbortController; reason?: RestartReason } = { controller };
    this.watchAbort = current;
    const timeoutSeconds = this.watchTimeoutSeconds();
    const silenceMs = this.silenceTimeoutMs(timeoutSeconds);
    const watchdog = setTimeout(() => {
      current.reason = 'silence';
      controller.abort();
    }, silenceMs);
    watchdog.unref();
    const opened = performance.now();
    let received = 0;
    try {
      await this.client.watch(
        this.rt,
        {
          namespace: this.options.namespace,
          labelSelector: this.options.labelSelector,
          fieldSelector: this.options.fieldSelector,
          resourceVersion: this.resourceVersion,
          timeoutSeconds,
        },
        (type, object) => {
          // Lines already buffered when the watch was aborted are dropped: the next watch
          // starts from the last resourceVersion handled here.
          if (controller.signal.aborted) return;
          watchdog.refresh();
          if (type !== 'ERROR') received += 1;
          this.onWatchEvent(type, object);
        },
        controller.signal,
      );
      if (this.isStopped()) return false;
      if (current.reason !== undefined) return this.restarted(current.reason, received);
      // The server ended the watch: its timeout, or it is going away. Re-watch at once, unless
      // it ended at once without an event: re-opening that right away would be a tight loop.
      const endedAtOnce = received === 0 && performance.now() - opened < 1000;
      this.consecutiveFailures = endedAtOnce ? this.consecutiveFailures + 1 : 0;
      this.lastActivity = Date.now();
      return false;
    } catch (err) {
      if (this.isStopped()) return false;
      if (err instanceof ResourceVersionGone || isGone(err)) {
        this.log.info('watch resourceVersion expired; relisting', { error: errorMessage(err) });
        return this.restarted('gone', received);
      }
      this.log.warn('watch failed; re-watching', { error: errorMessage(err) });
      return this.restarted('error', received);
    } finally {
      clearTimeout(watchdog);
      // Also closes the response stream when the handler threw mid-stream.
      controller.abort();
      if (this.watchAbort === current) this.watchAbort = undefined;
    }
  }

  /** Counts a restart and decides what comes next; true when a LIST must come next. */
  private restarted(reason: RestartReason, received: number): boolean {
    this.deps.metrics.restarts.inc({ resource: this.resource, reason });
    this.lastActivity = Date.now();
    if (reason === 'relist') {
      this.consecutiveFailures = 0;
      return true;
    }
    if (reason === 'silence') this.log.warn('watch silent; restarting it', { received });
    // A watch that delivered events was healthy until now: the backoff starts over.
    this.consecutiveFailures = received > 0 ? 1 : this.consecutiveFailures + 1;
    // Three failures in a row without an event in between may have a cause a fresh LIST heals
    // (a resourceVersion the server rejects in a way not recognised here).
    return reason === 'gone' || this.consecutiveFailures >= 3;
  }

  private onWatchEvent(type: WatchEventType, object: T | Status): void {
    this.deps.metrics.events.inc({ resource: this.resource, type });
    if (type === 'ERROR') {
      const status = object as Status;
      const text = `${String(status.code ?? '')} ${status.reason ?? ''}: ${status.message ?? ''}`;
      if (status.code === 410) throw new ResourceVersionGone(text);
      throw new WatchErrorEvent(text);
    }
    const obj = forCache(object as T);
    this.resourceVersion = obj.metadata.resourceVersion ?? this.resourceVersion;
    this.lastEvent = Date.now();
    this.lastActivity = this.lastEvent;
    switch (type) {
      case 'BOOKMARK':
        return;
      case 'ADDED':
      case 'MODIFIED': {
        const old = this.store.upsert(obj);
        this.updateGauge();
        if (old === undefined) this.emit('add', (h) => h.add?.(obj));
        else this.emit('update', (h) => h.update?.(obj, old));
        return;
      }
      case 'DELETED': {
        const old = this.store.remove(objectKey(obj));
        this.updateGauge();
        if (old !== undefined) this.emit('delete', (h) => h.delete?.(obj));
        return;
      }
    }
  }

  private async listAndReplace(): Promise<void> {
    const started = performance.now();
    const signal = AbortSignal.any([this.stopController.signal, AbortSignal.timeout(this.listTimeoutMs)]);
    const { items, resourceVersion } = await this.client.list(this.rt, {
      namespace: this.options.namespace,
      labelSelector: this.options.labelSelector,
      fieldSelector: this.options.fieldSelector,
      limit: PAGE_SIZE,
      signal,
    });
    if (this.isStopped()) return;
    this.deps.metrics.relists.inc({ resource: this.resource });
    const changes = this.store.replace(items.map(forCache));
    this.resourceVersion = resourceVersion;
    this.lastEvent = Date.now();
    this.lastActivity = this.lastEvent;
    this.updateGauge();
    this.log.debug('listed', {
      objects: items.length,
      added: changes.added.length,
      updated: changes.updated.length,
      deleted: changes.deleted.length,
      ms: Math.round(performance.now() - started),
    });
    for (const obj of changes.added) this.emit('add', (h) => h.add?.(obj));
    for (const { obj, old } of changes.updated) this.emit('update', (h) => h.update?.(obj, old));
    for (const obj of changes.deleted) this.emit('delete', (h) => h.delete?.(obj));
    if (!this.synced) {
      this.synced = true;
      for (const resolve of this.syncWaiters) resolve();
      this.syncWaiters.clear();
    }
  }

  private resync(): void {
    if (!this.synced || this.isStopped()) return;
    this.resyncs += 1;
    for (const obj of this.store.list()) this.emit('update', (h) => h.update?.(obj, obj));
    if (this.resyncs % this.relistEveryResyncs === 0) this.requestRelist();
  }

  private requestRelist(): void {
    if (this.watchAbort === undefined) {
      // Between watches: the loop picks the request up before its next watch.
      this.relistRequested = true;
      return;
    }
    this.watchAbort.reason = 'relist';
    this.watchAbort.controller.abort();
  }

  private emit(what: keyof EventHandler<T>, call: (handler: EventHandler<T>) => void): void {
    for (const handler of this.handlers) {
      this.call(what, () => {
        call(handler);
      });
    }
  }

  /** A failing handler is logged and must not break the watch or the other handlers. */
  private call(what: keyof EventHandler<T>, invoke: () => void): void {
    try {
      invoke();
    } catch (err) {
      this.log.error(`${what} handler failed`, { error: errorMessage(err) });
    }
  }

  private updateGauge(): void {
    this.deps.metrics.objects.set({ resource: this.resource }, this.store.size);
  }

  private watchTimeoutSeconds(): number {
    return this.options.watchTimeoutSeconds ?? Math.floor(MIN_WATCH_TIMEOUT_SECONDS * (1 + Math.random()));
  }

  private silenceTimeoutMs(watchTimeoutSeconds: number): number {
    return this.options.silenceTimeoutMs ?? watchTimeoutSeconds * 1000 + 60_000;
  }

  /** Exponential backoff with jitter in [half, full] of the step; 0 after a success. */
  private backoffDelay(): number {
    if (this.consecutiveFailures === 0) return 0;
    const step = Math.min(this.backoffMaxMs, this.backoffInitialMs * 2 ** (this.consecutiveFailures - 1));
    return step / 2 + (Math.random() * step) / 2;
  }
}
