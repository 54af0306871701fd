// The operator under measurement: started as a child process with the chart's ServiceAccount,
// with its own request counters (client side) read from /metrics before and after a run.

import { startOperator, type RunningOperator } from '../test/integration/support/operator.js';
import { delta, labelOf, samples, sumBy, type Counters } from './measure.js';

/** What the benchmarks change from the defaults, and why. */
export const BENCH_OPERATOR = {
  workers: 8,
  // Debug logs of every step would be measured as operator CPU.
  logLevel: 'info' as const,
  // The design's default (20 restores in the active phases) paces work on purpose; the benchmark
  // measures the machinery, so every restore may run at once.
  restore: { maxConcurrentRestores: 100_000, maxConcurrentRestoresPerNamespace: 100_000 },
  leaderElection: { leaseDurationSeconds: 15, renewDeadlineSeconds: 10, retryPeriodSeconds: 2 },
};

export interface OperatorCounters {
  /** snapback_api_requests_total samples by label set. */
  requests: Counters;
  reconciles: number;
  queueDepth: number;
}

export async function readCounters(operator: RunningOperator): Promise<OperatorCounters> {
  const text = await operator.metrics();
  const sum = (name: string): number => Object.values(samples(text, name)).reduce((a, b) => a + b, 0);
  return {
    requests: samples(text, 'snapback_api_requests_total'),
    reconciles: sum('snapback_reconcile_total'),
    queueDepth: sum('snapback_workqueue_depth'),
  };
}

const WRITE_VERBS = new Set(['create', 'update', 'patch', 'delete']);
/** Bookkeeping that is not the restores' work: the lease and the Events written for people. */
const BOOKKEEPING = new Set(['leases', 'events']);

export interface RequestSummary {
  total: number;
  byVerb: Counters;
  /** "verb resource" -> count. */
  byVerbAndResource: Counters;
  /** Writes to the objects the restores are made of (no lease renewals, no Events). */
  objectWrites: number;
  conflicts: number;
}

export function summarize(later: Counters, earlier: Counters): RequestSummary {
  const changed = delta(later, earlier);
  const byVerbAndResource = sumBy(changed, (l) => `${labelOf(l, 'verb')} ${labelOf(l, 'resource')}`);
  return {
    total: Object.values(changed).reduce((a, b) => a + b, 0),
    byVerb: sumBy(changed, (l) => labelOf(l, 'verb')),
    byVerbAndResource,
    objectWrites: Object.entries(byVerbAndResource)
      .filter(([key]) => {
        const [verb = '', resource = ''] = key.split(' ');
        return WRITE_VERBS.has(verb) && !BOOKKEEPING.has(resource);
      })
      .reduce((sum, [, n]) => sum + n, 0),
    conflicts: Object.values(sumBy(changed, (l) => (labelOf(l, 'code') === '409' ? 'c' : undefined))).reduce(
      (a, b) => a + b,
      0,
    ),
  };
}

/** The chart's ServiceAccount: a kubeconfig with its token, and the namespace of its Lease Role. */
export interface Identity {
  kubeconfig: string;
  namespace: string;
}

export function startBenchOperator(
  name: string,
  watchNamespace: string,
  identity: Identity,
  readyWithinMs?: number,
): Promise<RunningOperator> {
  return startOperator(
    name,
    {
      ...BENCH_OPERATOR,
      watchNamespace,
      // Backup locations' credentials are where the chart's Role lets the operator read them.
      namespace: identity.namespace,
      leaderElection: { ...BENCH_OPERATOR.leaderElection, leaseName: name, namespace: identity.namespace },
    },
    identity.kubeconfig,
    readyWithinMs,
  );
}

/** Resolves once the operator has reconciled at least `reconciles` keys and its queues are empty. */
export async function drained(
  operator: RunningOperator,
  reconciles: number,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const counters = await readCounters(operator);
    if (counters.reconciles >= reconciles && counters.queueDepth === 0) return;
    if (Date.now() > deadline)
      throw new Error(
        `operator ${operator.name}: ${counters.reconciles}/${reconciles} reconciles, queue depth ${counters.queueDepth} after ${timeoutMs / 1000}s`,
      );
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
