// A controller: informer events become keys in a rate-limited work queue, and N workers call an
// idempotent reconcile for each key. Dependencies wake their owner: an event on a dependent
// object (a PVC a restore created) maps to the owner's key through `toKeys` (its label).

import type { Logger } from 'winston';
import type { KubeObject } from '../api/kubernetes.js';
import type { ControllerMetrics, WorkqueueMetrics } from './metrics.js';
import { objectKey, type EventSource } from './informer.js';
import { describeError, isConflict, isTransient, TerminalError } from './errors.js';
import { withTrace, type ReconcileTrace } from './trace.js';
import { WorkQueue, type RateLimiter } from './workqueue.js';

export interface ReconcileResult {
  /** Reconcile the key again after this long, even if no event arrives first. */
  requeueAfterMs?: number;
}

export type Reconcile = (key: string) => Promise<ReconcileResult | undefined>;

/** Events of `informer` wake the owners named by `toKeys` ("namespace/name" of the primary). */
export interface DependencyWatch<T extends KubeObject = KubeObject> {
  informer: EventSource<T>;
  toKeys(obj: T): string[];
}

export interface ControllerOptions {
  /** Labels metrics and logs, names the queue. */
  name: string;
  reconcile: Reconcile;
  /** The informer of the objects reconciled; keys are their objectKey. */
  primary: EventSource<KubeObject>;
  watches?: DependencyWatch[];
  /** Concurrent reconciles (of different keys). Default 1. */
  workers?: number;
  logger: Logger;
  metrics: { controller: ControllerMetrics; workqueue: WorkqueueMetrics };
  rateLimiter?: RateLimiter;
}

type Result = 'success' | 'error' | 'terminal' | 'requeue';

export class Controller {
  readonly name: string;
  private readonly queue: WorkQueue;
  private readonly log: Logger;
  private readonly unsubscribe: (() => void)[] = [];
  private workers: Promise<void>[] = [];
  private stopping = false;
  private started = false;

  constructor(private readonly options: ControllerOptions) {
    this.name = options.name;
    this.log = options.logger.child({ controller: options.name });
    this.queue = new WorkQueue({
      name: options.name,
      metrics: options.metrics.workqueue,
      rateLimiter: options.rateLimiter,
    });
  }

  /** Keys waiting for a worker. */
  get queueLength(): number {
    return this.queue.length;
  }

  /**
   * Subscribes to the informers and starts the workers. On informers that already synced, every
   * cached object is replayed as an add, so each one is reconciled once after the start.
   */
  start(): void {
    if (this.started) throw new Error(`controller ${this.name} was already started`);
    this.started = true;
    const enqueue = (obj: KubeObject): void => {
      this.queue.add(objectKey(obj));
    };
    // An object's first add (the start-up replay, a creation) starts new work: it waits behind the
    // work under way, whose every later step comes from an update, a watch or a requeue.
    const enqueueNew = (obj: KubeObject): void => {
      this.queue.add(objectKey(obj), 'low');
    };
    this.unsubscribe.push(this.options.primary.on({ add: enqueueNew, update: enqueue, delete: enqueue }));
    for (const watch of this.options.watches ?? []) {
      const wake = (obj: KubeObject): void => {
        for (const key of watch.toKeys(obj)) this.queue.add(key);
      };
      this.unsubscribe.push(
        watch.informer.on({
          add: wake,
          // The old state counts too: an object whose owner label changed must wake its old owner.
          update: (obj, old) => {
            wake(obj);
            if (old !== obj) wake(old);
          },
          delete: wake,
        }),
      );
    }
    const workers = this.options.workers ?? 1;
    this.workers = Array.from({ length: workers }, () => this.work());
    this.log.info('started', { workers });
  }

  /** Stops taking keys and resolves when the reconciles in flight have finished. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    for (const unsubscribe of this.unsubscribe.splice(0)) unsubscribe();
    this.queue.shutDown();
    await Promise.all(this.workers);
    this.log.info('stopped');
  }

  private async work(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      if (this.stopping) {
        this.queue.done(key);
        return;
      }
      try {
        await this.process(key);
      } finally {
        this.queue.done(key);
      }
    }
  }

  private async process(key: string): Promise<void> {
    const started = performance.now();
    const trace: ReconcileTrace = { queuedMs: this.queue.waitedMs(key), apiMs: 0 };
    let result: Result;
    try {
      const outcome = await withTrace(trace, () => this.options.reconcile(key));
      this.queue.forget(key);
      const after = outcome?.requeueAfterMs;
      if (after !== undefined) {
        this.queue.addAfter(key, after);
        result = 'requeue';
      } else {
        result = 'success';
      }
    } catch (err) {
      if (err instanceof TerminalError) {
        // Retrying cannot help (controller-runtime's TerminalError): the step has recorded the
        // failure in status; a change of the object or of what it watches brings it back.
        this.queue.forget(key);
        this.log.error('reconcile failed; not retried', { key, error: describeError(err.cause ?? err) });
        this.options.metrics.controller.terminalErrors.inc({ controller: this.name });
        result = 'terminal';
      } else {
        const attempt = this.queue.failures(key) + 1;
        this.queue.addRateLimited(key);
        if (isConflict(err)) {
          // Someone wrote the object since it was read; the next attempt reads the new version.
          this.log.info('conflict; retrying', { key, attempt, error: describeError(err) });
          result = 'requeue';
        } else {
          // A dropped connection or a 503 is expected now and then: its stack says nothing.
          const transient = isTransient(err);
          this.log[transient ? 'warn' : 'error']('reconcile failed; retrying', {
            key,
            attempt,
            error: describeError(err),
            ...(transient || !(err instanceof Error) ? {} : { stack: err.stack }),
          });
          this.options.metrics.controller.reconcileErrors.inc({ controller: this.name });
          result = 'error';
        }
      }
    }
    const seconds = (performance.now() - started) / 1000;
    const metrics = this.options.metrics.controller;
    metrics.reconciles.inc({ controller: this.name, result });
    metrics.reconcileDuration.observe({ controller: this.name }, seconds);
    if (trace.transition !== undefined) {
      // The reconcile that moved an object into a new phase, in parts: where a slow transition's
      // time went (the watch delivering the event is the rest of it).
      const labels = { controller: this.name, transition: trace.transition };
      metrics.transitionSeconds.observe({ ...labels, part: 'queue' }, trace.queuedMs / 1000);
      metrics.transitionSeconds.observe({ ...labels, part: 'reconcile' }, seconds);
      metrics.transitionSeconds.observe({ ...labels, part: 'api' }, trace.apiMs / 1000);
    }
  }
}
