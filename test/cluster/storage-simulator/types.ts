// What the simulator's reconcilers need from their surroundings.

import type { Index } from '../../../src/runtime/cache.js';

/** A read-only cache of objects of one kind, keyed namespace/name (or name, cluster-scoped). */
export interface Store<T> {
  get(key: string): T | undefined;
  byIndex(index: Index<T>, value: string): T[];
}

/** Structured logging; every line is one JSON object. */
export interface Log {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** A reconcile's outcome: come back after this long (for delays), or only on the next change. */
export interface Result {
  requeueAfterMs?: number;
}
