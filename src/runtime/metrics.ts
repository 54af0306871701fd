// The metrics the runtime reports, as interfaces the runtime owns (client-go's MetricsProvider
// pattern): observability implements them with prom-client, so the runtime imports no metrics
// library and nothing above it.

type LabelValues<L extends string> = Partial<Record<L, string | number>>;

export interface CounterLike<L extends string> {
  inc(labels: LabelValues<L>, value?: number): void;
}

export interface GaugeLike<L extends string> {
  set(labels: LabelValues<L>, value: number): void;
}

export interface HistogramLike<L extends string> {
  observe(labels: LabelValues<L>, value: number): void;
}

export interface InformerMetrics {
  restarts: CounterLike<'resource' | 'reason'>;
  events: CounterLike<'resource' | 'type'>;
  relists: CounterLike<'resource'>;
  objects: GaugeLike<'resource'>;
}

export interface WorkqueueMetrics {
  depth: GaugeLike<'name'>;
  adds: CounterLike<'name'>;
  retries: CounterLike<'name'>;
  queueDuration: HistogramLike<'name'>;
  workDuration: HistogramLike<'name'>;
}

export interface ControllerMetrics {
  reconciles: CounterLike<'controller' | 'result'>;
  reconcileDuration: HistogramLike<'controller'>;
  /** Reconciles that threw and are retried with backoff. */
  reconcileErrors: CounterLike<'controller'>;
  /** Reconciles that threw a TerminalError: not retried. */
  terminalErrors: CounterLike<'controller'>;
  /**
   * Reconciles that moved an object into a new phase, by the phase entered and part: the key's
   * wait in the queue, the whole reconcile, and the API calls within it.
   */
  transitionSeconds: HistogramLike<'controller' | 'transition' | 'part'>;
}

export interface LeaderMetrics {
  /** 1 while this process holds the lease, else 0. */
  leader: { set(value: number): void };
}

export interface RuntimeMetrics {
  informer: InformerMetrics;
  workqueue: WorkqueueMetrics;
  controller: ControllerMetrics;
  leaderElection: LeaderMetrics;
}

/** A readiness or liveness check's verdict: undefined when fine, else what is wrong. */
export type CheckResult = string | undefined;
