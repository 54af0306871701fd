// The one reconciler shell every kind runs in (Flux's Reconcile + summarize-and-patch, in one
// place). It owns what every kind repeated: the cache read, skipping versions our own writes
// replaced, the finalizer, deletion, skipping an unchanged status, the single status write, and
// turning an error a step throws into status a person can read. A kind supplies only its step,
// its finalizer's work, and how an error and a change are told.

import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'winston';
import type { KubeObject } from '../api/kubernetes.js';
import type { Cache } from './cache.js';
import type { ObjectClient } from './client.js';
import type { Reconcile, ReconcileResult } from './controller.js';
import { describeError, isNotFound, isTerminal, TerminalError } from './errors.js';
import { OwnWrites } from './own-writes.js';
import { currentTrace } from './trace.js';
import type { ResourceType } from './resources.js';

export interface StatusObject<S> extends KubeObject {
  status?: S;
}

/** What one step decided: the status to record (unchanged when absent) and when to look again. */
export interface Next<S> {
  status?: S;
  requeueAfterMs?: number;
}

/** What the finalizer's work decided; `done` lets the object go. */
export interface Finalized<S> extends Next<S> {
  done: boolean;
}

export interface StatusReconcilerOptions<T extends StatusObject<S>, S extends object> {
  resource: ResourceType<T>;
  client: ObjectClient;
  cache: Cache<T>;
  logger: Logger;
  /** Held while the object exists; `finalize` runs once it is being deleted. */
  finalizer?: { name: string; finalize(object: T): Promise<Finalized<S>> };
  /** One step of the object's work: reads state, makes one decision. */
  step(object: T): Promise<Next<S>>;
  /**
   * The status that records an error the step threw: for a terminal one, the object's failure
   * naming the cause; for any other, the object still at work, saying what is retried (and failed
   * once its deadline has passed). Undefined records nothing.
   */
  errorStatus(object: T, err: unknown, terminal: boolean): S | undefined;
  /** Tells a status change (log, Event) after it was written. */
  announce?(object: T, from: S, to: S): void;
  /** The phase a status change moves the object into; undefined when it stays in its phase. */
  transition?(from: S, to: S): string | undefined;
  /**
   * Progress (a count, a message: what `isProgress` tells from a change others act on) is written
   * at most once per `intervalMs` per object, or per the shorter `intervalFor(to)` where a status
   * says more often is worth it; any other change is written at once.
   */
  progressPacing?: {
    intervalMs: number;
    intervalFor?(to: S): number;
    now(): number;
    isProgress(from: S, to: S): boolean;
  };
}

/** `transition` for kinds whose status has a phase: the phase a change enters. */
export const enteredPhase = <S extends { phase?: string }>(from: S, to: S): string | undefined =>
  to.phase !== undefined && to.phase !== from.phase ? to.phase : undefined;

/** Adds or removes one finalizer, conditional on the resourceVersion it was read at. */
export async function setFinalizer<T extends KubeObject>(
  client: ObjectClient,
  rt: ResourceType<T>,
  object: T,
  finalizer: string,
  add: boolean,
): Promise<T> {
  const held = object.metadata.finalizers ?? [];
  const list = add ? [...held, finalizer] : held.filter((name) => name !== finalizer);
  return client.mergePatch(
    rt,
    object.metadata.name ?? '',
    { metadata: { finalizers: list, resourceVersion: object.metadata.resourceVersion } },
    { namespace: object.metadata.namespace ?? '' },
  );
}

/** The pacing map is not swept below this many entries. */
const MIN_SWEEP_SIZE = 1_024;

export function statusReconciler<T extends StatusObject<S>, S extends object>(
  options: StatusReconcilerOptions<T, S>,
): Reconcile {
  const { resource, client, cache, finalizer, progressPacing } = options;
  const ownWrites = new OwnWrites();
  /** Object key -> when this process last wrote its status (for progressPacing). */
  const lastWrittenAt = new Map<string, number>();
  let sweepAtSize = MIN_SWEEP_SIZE;

  /**
   * Notes a write for pacing. A finished object is not reconciled again, so entries past their
   * interval (as good as none) are swept once the map has doubled since the last sweep.
   */
  const noteWrite = (key: string): void => {
    if (progressPacing === undefined) return;
    const now = progressPacing.now();
    lastWrittenAt.set(key, now);
    if (lastWrittenAt.size < sweepAtSize) return;
    for (const [other, at] of lastWrittenAt) {
      if (at + progressPacing.intervalMs <= now) lastWrittenAt.delete(other);
    }
    sweepAtSize = Math.max(MIN_SWEEP_SIZE, 2 * lastWrittenAt.size);
  };

  /** How long a write of `status` over `current` is held back; 0 when it goes now. */
  const heldFor = (key: string, current: S, status: S): number => {
    if (progressPacing?.isProgress(current, status) !== true) return 0;
    const last = lastWrittenAt.get(key);
    const interval = Math.min(progressPacing.intervalMs, progressPacing.intervalFor?.(status) ?? Infinity);
    return last === undefined ? 0 : Math.max(0, last + interval - progressPacing.now());
  };

  /**
   * Writes the status when it changed, unless pacing holds it back: then returns how long, for the
   * caller to look again (the step recomputes it then, and a phase change in between supersedes
   * it). A status PUT carries the resourceVersion: stale → 409.
   */
  const write = async (key: string, object: T, status: S): Promise<number> => {
    const current = object.status ?? ({} as S);
    if (isDeepStrictEqual(status, current)) return 0;
    const held = heldFor(key, current, status);
    if (held > 0) return held;
    let written: T;
    try {
      written = await client.replace(resource, { ...object, status }, 'status');
    } catch (err) {
      // Deleted since the cache saw it: there is nothing left to record on.
      if (isNotFound(err)) return 0;
      throw err;
    }
    ownWrites.wrote(object, written);
    noteWrite(key);
    const trace = currentTrace();
    const entered = options.transition?.(current, status);
    if (trace !== undefined && entered !== undefined) trace.transition = entered;
    options.announce?.(written, current, status);
    return 0;
  };

  /** The step's requeue, brought forward to when a held write may go. */
  const requeue = (after: number | undefined, held: number): ReconcileResult | undefined => {
    if (held === 0) return after === undefined ? undefined : { requeueAfterMs: after };
    return { requeueAfterMs: after === undefined ? held : Math.min(after, held) };
  };

  /** Runs the step; an error it throws is recorded in status, then retried or, if terminal, not. */
  const guarded = async <R extends Next<S>>(key: string, object: T, run: () => Promise<R>): Promise<R> => {
    try {
      return await run();
    } catch (err) {
      const terminal = isTerminal(err);
      const status = options.errorStatus(object, err, terminal);
      if (status !== undefined) await write(key, object, status);
      if (terminal) throw new TerminalError(describeError(err), { cause: err });
      throw err;
    }
  };

  return async (key: string): Promise<ReconcileResult | undefined> => {
    const object = cache.get(key);
    if (object === undefined) lastWrittenAt.delete(key);
    if (ownWrites.behind(key, object) || object === undefined) return undefined;
    const holdsFinalizer =
      finalizer !== undefined && (object.metadata.finalizers ?? []).includes(finalizer.name);
    if (object.metadata.deletionTimestamp !== undefined) {
      if (finalizer === undefined || !holdsFinalizer) return undefined;
      const result = await guarded(key, object, () => finalizer.finalize(object));
      const held = result.status === undefined ? 0 : await write(key, object, result.status);
      if (!result.done) return requeue(result.requeueAfterMs, held);
      await setFinalizer(client, resource, object, finalizer.name, false);
      lastWrittenAt.delete(key);
      return undefined;
    }
    if (finalizer !== undefined && !holdsFinalizer) {
      ownWrites.wrote(object, await setFinalizer(client, resource, object, finalizer.name, true));
      return undefined;
    }
    const next = await guarded(key, object, () => options.step(object));
    const held = next.status === undefined ? 0 : await write(key, object, next.status);
    return requeue(next.requeueAfterMs, held);
  };
}
