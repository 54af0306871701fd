// Where a reconcile's time goes, for the breakdown of phase transitions: the controller opens a
// trace around each reconcile, the API client adds each request's time to the trace it runs in,
// and the status reconciler names the transition when a write moves its object to a new phase.
// AsyncLocalStorage carries the trace, so no signature in between has to.

import { AsyncLocalStorage } from 'node:async_hooks';

export interface ReconcileTrace {
  /** How long the key waited in the work queue before this reconcile took it. */
  queuedMs: number;
  /** Time spent waiting for API responses during the reconcile. */
  apiMs: number;
  /** The phase the reconcile's status write moved the object into, if it did. */
  transition?: string;
}

const traces = new AsyncLocalStorage<ReconcileTrace>();

export function withTrace<T>(trace: ReconcileTrace, run: () => Promise<T>): Promise<T> {
  return traces.run(trace, run);
}

export function currentTrace(): ReconcileTrace | undefined {
  return traces.getStore();
}
