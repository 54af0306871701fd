// N restores of a one-replica StatefulSet through every phase, with the operator running as the
// chart's ServiceAccount: throughput, requests per restore (counted by the operator and by the
// API server), event-to-next-phase latency, CPU, and the writes a restarted operator makes over
// the finished restores (a no-op resync: none expected).

import type { PersistentVolumeClaim, StatefulSet } from '../src/api/kubernetes.js';
import type { Backup, Restore, RestorePhase } from '../src/api/generated/types.js';
import { HAPPY_PATH } from '../src/controllers/restore/transitions.js';
import type { KubeClient } from '../src/runtime/kube-client.js';
import { resources } from '../src/runtime/resources.js';
import { createTestNamespace } from '../test/integration/support/cluster.js';
import type { RunningOperator } from '../test/integration/support/operator.js';
import {
  backupManifest,
  createRestores,
  deploySampleDataService,
  isHealthy,
  waitForBackup,
} from '../test/integration/support/snapback.js';
import {
  clusterPids,
  cpuSeconds,
  distribution,
  histogramDelta,
  histogramQuantile,
  labelOf,
  serverServiceAccountRequests,
  type Distribution,
} from './measure.js';
import {
  drained,
  readCounters,
  startBenchOperator,
  summarize,
  type Identity,
  type RequestSummary,
} from './operator-run.js';
import { until, watchArrivals } from './watch.js';

/** A watch event and the phase write it lets the operator make. */
const TRIGGERS = {
  volumeBound: 'RestoringDataServiceDeploymentCR',
  restoreModeReady: 'DataServiceDeploymentEnteringNormalMode',
  normalModeReady: 'Successful',
} as const satisfies Record<string, RestorePhase>;
export type Trigger = keyof typeof TRIGGERS;

/** Of the reconciles that moved restores into one phase: p50 and p99 of each part, in ms. */
export type TransitionBreakdown = Record<
  RestorePhase,
  Record<TransitionPart, { p50: number; p99: number; count: number }>
>;
type TransitionPart = 'queue' | 'reconcile' | 'api';

export interface RestoreRun extends WorkflowFigures {
  requests: RequestSummary;
  /** The operator's own account of each transition (snapback_transition_seconds). */
  transitions: Partial<TransitionBreakdown>;
  /** A restarted operator over the finished restores. */
  resync: { reconciles: number; objectWrites: number; requests: RequestSummary };
  /** A finished Backup and Restore of this run, as templates for the cache benchmarks. */
  samples: { backup: Backup; restore: Restore };
}

/** First arrival of each thing, in ms since the process started. */
class Arrivals {
  readonly phase = new Map<string, Map<RestorePhase, number>>();
  readonly bound = new Map<string, number>();
  /** StatefulSet name -> generation -> first arrival as healthy at that generation. */
  readonly ready = new Map<string, Map<number, number>>();
  /** "phase reason" of each status change seen (its Progressing condition's reason) -> count. */
  readonly statusChanges = new Map<string, number>();
  private readonly lastStatus = new Map<string, string>();

  restore(restore: Restore, at: number): void {
    const status = JSON.stringify(restore.status ?? {});
    const name = restore.metadata.name ?? '';
    if (restore.status !== undefined && this.lastStatus.get(name) !== status) {
      const reason = restore.status.conditions?.find((c) => c.type === 'Progressing')?.reason ?? '';
      const key = `${restore.status.phase ?? '(none)'} ${reason}`;
      this.statusChanges.set(key, (this.statusChanges.get(key) ?? 0) + 1);
    }
    this.lastStatus.set(name, status);
    const phase = restore.status?.phase;
    if (phase === undefined) return;
    const phases = this.phase.get(restore.metadata.name ?? '') ?? new Map<RestorePhase, number>();
    if (!phases.has(phase)) phases.set(phase, at);
    this.phase.set(restore.metadata.name ?? '', phases);
  }

  claim(claim: PersistentVolumeClaim, at: number): void {
    const name = claim.metadata.name ?? '';
    if (claim.status?.phase === 'Bound' && !this.bound.has(name)) this.bound.set(name, at);
  }

  statefulSet(set: StatefulSet, at: number): void {
    if (!isHealthy(set, set.spec.replicas ?? 1)) return;
    const byGeneration = this.ready.get(set.metadata.name ?? '') ?? new Map<number, number>();
    const generation = set.metadata.generation ?? 1;
    if (!byGeneration.has(generation)) byGeneration.set(generation, at);
    this.ready.set(set.metadata.name ?? '', byGeneration);
  }

  /** Per phase, how long each restore was seen in it before the next phase arrived. */
  phaseDurations(names: readonly string[]): Partial<Record<RestorePhase, number[]>> {
    const durations: Partial<Record<RestorePhase, number[]>> = {};
    HAPPY_PATH.slice(0, -1).forEach((phase, i) => {
      const next = HAPPY_PATH[i + 1] ?? phase;
      durations[phase] = names.flatMap((name) => {
        const seen = this.phase.get(name);
        const from = seen?.get(phase);
        const to = seen?.get(next);
        return from === undefined || to === undefined ? [] : [to - from];
      });
    });
    return durations;
  }

  successful(): number {
    let done = 0;
    for (const phases of this.phase.values()) if (phases.has('Successful')) done += 1;
    return done;
  }

  /** Latencies of one trigger over all restores; restores missing either end are skipped. */
  latencies(trigger: Trigger, names: readonly string[]): number[] {
    return names.flatMap((name) => {
      const phaseAt = this.phase.get(name)?.get(TRIGGERS[trigger]);
      const generations = [...(this.ready.get(`pg-${name}`)?.entries() ?? [])].sort(([a], [b]) => a - b);
      const eventAt =
        trigger === 'volumeBound'
          ? this.bound.get(`data-pg-${name}-0`)
          : trigger === 'restoreModeReady'
            ? generations[0]?.[1]
            : generations.length > 1
              ? generations.at(-1)?.[1]
              : undefined;
      return phaseAt === undefined || eventAt === undefined ? [] : [phaseAt - eventAt];
    });
  }
}

/** What is measured the same way of every controller that takes restores through the workflow. */
export interface WorkflowFigures {
  restores: number;
  seconds: number;
  restoresPerSecond: number;
  /** Requests the API server dispatched for the operator's ServiceAccount in the same window. */
  serverRequests: number;
  /** Event-to-next-phase latency in ms, by the event. */
  latencyMs: Record<Trigger | 'all', Distribution>;
  latencySamplesMs: number[];
  /** Time from the arrival of each phase to the arrival of the next, in ms: where the time goes. */
  phaseMs: Partial<Record<RestorePhase, Distribution>>;
  /** Status changes seen per restore, by "phase reason" (of the Progressing condition). */
  statusChangesPerRestore: Record<string, number>;
  /** By process: the controller ("operator") and every process of the cluster (kube-apiserver, ...). */
  cpuSeconds: Record<string, number>;
}

/**
 * A namespace with the one-replica data service and its Backup Completed (made by Snapback, whose
 * record both controllers restore from), and the operator that made it, still running.
 */
export async function backedUpNamespace(
  client: KubeClient,
  identity: Identity,
  prefix: string,
): Promise<{ namespace: string; operator: RunningOperator }> {
  const namespace = await createTestNamespace(client, prefix);
  await deploySampleDataService(client, namespace, 'pg', 1);
  await client.create(resources.backups, backupManifest(namespace, 'pg-backup', 'pg'));
  const operator = await startBenchOperator(`bench-${namespace}`, namespace, identity);
  await waitForBackup(client, namespace, 'pg-backup', 'Completed');
  return { namespace, operator };
}

/**
 * Creates `count` restores in `namespace` and watches the controller of process `pid` take them
 * to Successful: throughput, event-to-next-phase latency, time per phase, CPU and server-counted
 * requests, each the same for every controller.
 */
export async function measureWorkflow(
  client: KubeClient,
  namespace: string,
  pid: number,
  count: number,
): Promise<WorkflowFigures & { names: string[] }> {
  const arrivals = new Arrivals();
  const allDone = until(() => arrivals.successful() === count, `${count} restores Successful`, 1_800_000);
  const watches = await Promise.all([
    watchArrivals(client, resources.restores, namespace, (restore, at) => {
      arrivals.restore(restore, at);
      const { phase, errorCode, errorMessage } = restore.status ?? {};
      allDone.notify(
        phase === 'Failed'
          ? `${restore.metadata.name ?? ''} Failed: ${errorCode ?? ''} ${errorMessage ?? ''}`
          : undefined,
      );
    }),
    watchArrivals(client, resources.persistentVolumeClaims, namespace, (claim, at) => {
      arrivals.claim(claim, at);
    }),
    watchArrivals(client, resources.statefulSets, namespace, (set, at) => {
      arrivals.statefulSet(set, at);
    }),
  ]);
  const pids: Record<string, number> = { operator: pid, ...clusterPids() };
  const cpuBefore = Object.fromEntries(Object.entries(pids).map(([k, p]) => [k, cpuSeconds(p)]));
  const serverBefore = await serverServiceAccountRequests();

  const started = performance.now();
  const names = await createRestores(client, namespace, count);
  await allDone.done;
  const seconds = (performance.now() - started) / 1000;

  const serverAfter = await serverServiceAccountRequests();
  const cpu = Object.fromEntries(
    Object.entries(pids).map(([k, p]) => [k, cpuSeconds(p) - (cpuBefore[k] ?? 0)]),
  );
  await Promise.all(watches.map((w) => w.stop()));

  const triggers = Object.keys(TRIGGERS) as Trigger[];
  const byTrigger = Object.fromEntries(triggers.map((t) => [t, arrivals.latencies(t, names)])) as Record<
    Trigger,
    number[]
  >;
  const all = triggers.flatMap((t) => byTrigger[t]);
  return {
    names,
    restores: count,
    seconds,
    restoresPerSecond: count / seconds,
    serverRequests: serverAfter - serverBefore,
    latencyMs: {
      ...(Object.fromEntries(triggers.map((t) => [t, distribution(byTrigger[t])])) as Record<
        Trigger,
        Distribution
      >),
      all: distribution(all),
    },
    latencySamplesMs: all,
    phaseMs: Object.fromEntries(
      Object.entries(arrivals.phaseDurations(names)).map(([phase, values]) => [phase, distribution(values)]),
    ),
    cpuSeconds: cpu,
    statusChangesPerRestore: Object.fromEntries(
      [...arrivals.statusChanges].map(([key, n]) => [key, n / count]),
    ),
  };
}

export async function runRestores(
  client: KubeClient,
  identity: Identity,
  count: number,
): Promise<RestoreRun> {
  const { namespace, operator } = await backedUpNamespace(client, identity, `bench-restores-${count}`);
  const countersBefore = await readCounters(operator);
  const metricsBefore = await operator.metrics();
  const { names, ...figures } = await measureWorkflow(client, namespace, operator.pid, count);
  const countersAfter = await readCounters(operator);
  const metricsAfter = await operator.metrics();

  // A new operator over the finished restores: it reconciles each once and must write nothing.
  await operator.stop();
  const restarted = await startBenchOperator(`bench-${namespace}`, namespace, identity);
  await drained(restarted, count + 1, 300_000);
  const resyncCounters = await readCounters(restarted);
  const resyncRequests = summarize(resyncCounters.requests, {});
  await restarted.stop();

  const backup = await client.get(resources.backups, 'pg-backup', namespace);
  const restore = await client.get(resources.restores, names[0] ?? '', namespace);
  if (backup === undefined || restore === undefined)
    throw new Error('the backup or the first restore vanished');
  return {
    ...figures,
    requests: summarize(countersAfter.requests, countersBefore.requests),
    transitions: transitionBreakdown(metricsAfter, metricsBefore),
    resync: {
      reconciles: resyncCounters.reconciles,
      objectWrites: resyncRequests.objectWrites,
      requests: resyncRequests,
    },
    samples: { backup, restore },
  };
}

function transitionBreakdown(later: string, earlier: string): Partial<TransitionBreakdown> {
  const breakdown: Partial<TransitionBreakdown> = {};
  for (const [labelSet, buckets] of histogramDelta(later, earlier, 'snapback_transition_seconds')) {
    if (labelOf(labelSet, 'controller') !== 'restore') continue;
    const phase = labelOf(labelSet, 'transition') as RestorePhase;
    const part = labelOf(labelSet, 'part') as TransitionPart;
    const parts = breakdown[phase] ?? ({} as TransitionBreakdown[RestorePhase]);
    parts[part] = {
      p50: histogramQuantile(buckets, 0.5) * 1000,
      p99: histogramQuantile(buckets, 0.99) * 1000,
      count: Math.max(0, ...buckets.map((bucket) => bucket.count)),
    };
    breakdown[phase] = parts;
  }
  return breakdown;
}

/** Phase writes plus required objects for one restore of a `replicas`-replica StatefulSet. */
export function minimumWritesPerRestore(replicas: number): { total: number; parts: Record<string, number> } {
  const parts = {
    'finalizer (update restores)': 1,
    'status, one per phase (update restores/status)': HAPPY_PATH.length,
    'PVCs from snapshots (create persistentvolumeclaims)': replicas,
    'StatefulSet in restore mode (create statefulsets)': 1,
    'StatefulSet to normal mode (patch statefulsets)': 1,
  };
  return { total: Object.values(parts).reduce((a, b) => a + b, 0), parts };
}

/** The Events a restore or a backup needs, for people: its (attempt's) start and its end. */
export const MINIMUM_EVENTS = 2;
