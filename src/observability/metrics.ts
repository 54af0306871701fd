// Prometheus metrics. Everything registers on a Registry the process creates (never prom-client's
// global one), so tests and several managers in one process never collide. createMetrics returns
// typed groups; domain metrics (backups, restores) are added as further groups beside these.

import { collectDefaultMetrics, Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { RequestObserver } from '../runtime/kube-client.js';
import type { RuntimeMetrics } from '../runtime/metrics.js';

export interface ApiMetrics {
  requests: Counter<'verb' | 'resource' | 'code'>;
  requestDuration: Histogram<'verb' | 'resource'>;
  /** Feeds both from KubeClient (pass as its `observe` option). */
  observe: RequestObserver;
}

export interface InformerMetrics {
  restarts: Counter<'resource' | 'reason'>;
  events: Counter<'resource' | 'type'>;
  relists: Counter<'resource'>;
  objects: Gauge<'resource'>;
}

export interface WorkqueueMetrics {
  depth: Gauge<'name'>;
  adds: Counter<'name'>;
  retries: Counter<'name'>;
  queueDuration: Histogram<'name'>;
  workDuration: Histogram<'name'>;
}

export interface ControllerMetrics {
  reconciles: Counter<'controller' | 'result'>;
  reconcileDuration: Histogram<'controller'>;
  reconcileErrors: Counter<'controller'>;
  terminalErrors: Counter<'controller'>;
  transitionSeconds: Histogram<'controller' | 'transition' | 'part'>;
}

export interface LeaderMetrics {
  /** 1 while this process holds the lease, else 0. */
  leader: Gauge;
}

/**
 * The prom-client implementation of what the runtime reports (runtime/metrics.ts declares it), plus
 * the registry and the API client's metrics.
 */
export interface Metrics extends RuntimeMetrics {
  registry: Registry;
  api: ApiMetrics;
  informer: InformerMetrics;
  workqueue: WorkqueueMetrics;
  controller: ControllerMetrics;
  leaderElection: LeaderMetrics;
}

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export function createMetrics(registry: Registry): Metrics {
  collectDefaultMetrics({ register: registry });
  const registers = [registry];

  const requests = new Counter({
    name: 'snapback_api_requests_total',
    help: 'Kubernetes API requests by verb, resource and HTTP status code (0: no response).',
    labelNames: ['verb', 'resource', 'code'] as const,
    registers,
  });
  const requestDuration = new Histogram({
    name: 'snapback_api_request_duration_seconds',
    help: 'Kubernetes API request latency, watches excluded.',
    labelNames: ['verb', 'resource'] as const,
    buckets: LATENCY_BUCKETS,
    registers,
  });
  const observe: RequestObserver = (verb, resource, statusCode, seconds) => {
    requests.inc({ verb, resource, code: String(statusCode) });
    // A watch lasts minutes by design; its duration would drown the request latencies.
    if (verb !== 'watch') requestDuration.observe({ verb, resource }, seconds);
  };

  return {
    registry,
    api: { requests, requestDuration, observe },
    informer: {
      restarts: new Counter({
        name: 'snapback_informer_restarts_total',
        help: 'Informer watch restarts by reason (gone, error, silence, relist).',
        labelNames: ['resource', 'reason'] as const,
        registers,
      }),
      events: new Counter({
        name: 'snapback_informer_events_total',
        help: 'Watch events received by informers, by event type.',
        labelNames: ['resource', 'type'] as const,
        registers,
      }),
      relists: new Counter({
        name: 'snapback_informer_relists_total',
        help: 'Full LISTs made by informers.',
        labelNames: ['resource'] as const,
        registers,
      }),
      objects: new Gauge({
        name: 'snapback_informer_objects',
        help: 'Objects held in the informer cache.',
        labelNames: ['resource'] as const,
        registers,
      }),
    },
    workqueue: {
      depth: new Gauge({
        name: 'snapback_workqueue_depth',
        help: 'Keys waiting in the work queue.',
        labelNames: ['name'] as const,
        registers,
      }),
      adds: new Counter({
        name: 'snapback_workqueue_adds_total',
        help: 'Keys added to the work queue.',
        labelNames: ['name'] as const,
        registers,
      }),
      retries: new Counter({
        name: 'snapback_workqueue_retries_total',
        help: 'Rate-limited re-adds to the work queue.',
        labelNames: ['name'] as const,
        registers,
      }),
      queueDuration: new Histogram({
        name: 'snapback_workqueue_queue_duration_seconds',
        help: 'Time a key waits in the queue before a worker takes it.',
        labelNames: ['name'] as const,
        buckets: LATENCY_BUCKETS,
        registers,
      }),
      workDuration: new Histogram({
        name: 'snapback_workqueue_work_duration_seconds',
        help: 'Time a worker holds a key.',
        labelNames: ['name'] as const,
        buckets: LATENCY_BUCKETS,
        registers,
      }),
    },
    controller: {
      reconciles: new Counter({
        name: 'snapback_reconcile_total',
        help: 'Reconciles by controller and result (success, error, terminal, requeue).',
        labelNames: ['controller', 'result'] as const,
        registers,
      }),
      reconcileDuration: new Histogram({
        name: 'snapback_reconcile_duration_seconds',
        help: 'Reconcile duration by controller.',
        labelNames: ['controller'] as const,
        buckets: LATENCY_BUCKETS,
        registers,
      }),
      reconcileErrors: new Counter({
        name: 'snapback_reconcile_errors_total',
        help: 'Reconciles that failed with an error and are retried with backoff.',
        labelNames: ['controller'] as const,
        registers,
      }),
      transitionSeconds: new Histogram({
        name: 'snapback_transition_seconds',
        help: 'Reconciles that moved an object into a new phase, by the phase entered and part: the wait in the work queue (queue), the reconcile (reconcile), the API calls within it (api).',
        labelNames: ['controller', 'transition', 'part'] as const,
        buckets: LATENCY_BUCKETS,
        registers,
      }),
      terminalErrors: new Counter({
        name: 'snapback_reconcile_terminal_errors_total',
        help: 'Reconciles that failed with an error retrying cannot fix (not retried).',
        labelNames: ['controller'] as const,
        registers,
      }),
    },
    leaderElection: {
      leader: new Gauge({
        name: 'snapback_leader',
        help: '1 while this process holds the leader election lease.',
        registers,
      }),
    },
  };
}
