// One data mover's run, for a Backup copying a volume into the bucket and a Restore rebuilding one
// from it alike: its pod is started, watched and, when the store or the pod failed (not the data
// or the key), started again under the next attempt's name after a backoff counted from the failed
// pod's end. The pods' names are deterministic per attempt, so a restarted operator finds them.

import type { Pod } from '../../api/kubernetes.js';
import type { ObjectClient } from '../../runtime/client.js';
import type { Cache } from '../../runtime/cache.js';
import { resources } from '../../runtime/resources.js';
import {
  lastProgress,
  MOVER_CONTAINER,
  moverPod,
  moverState,
  type MoverConfig,
  type MoverPodOptions,
  type MoverProgress,
  type MoverSuccess,
} from '../../storage/data-mover.js';
import type { TransferProgress } from '../../storage/repository/files.js';
import { createdUnlessTaken } from './objects.js';

/** A failed mover is started again after 5 s, then twice as long each time, at most 5 minutes. */
const RETRY_BASE_MS = 5_000;
const RETRY_MAX_MS = 300_000;
/** How often a running mover's progress is read from its log. */
const PROGRESS_RECHECK_MS = 5_000;

/** What a controller's context offers a mover run: the Backup's and the Restore's alike. */
export interface MoverRunContext {
  client: ObjectClient;
  /** The operator's namespace, where mover pods run. */
  namespace: string;
  cache: { movers: Cache<Pod> };
  /** Where mover pods run and what they may use. */
  mover: MoverConfig;
  now(): Date;
}

export interface MoverRunOptions {
  /** Mover pods started so far (status); 0 before the first. */
  attempts: number;
  podName: (attempt: number) => string;
  /** The pod of every attempt but its name and namespace (the operator's). */
  pod: Omit<MoverPodOptions, 'name' | 'namespace' | 'config'>;
  /** The label whose value tells the run's own objects from others' of the same name. */
  ownerLabel?: string;
  /** Creates what the pod mounts (found if there); why it cannot, or undefined. */
  prepare: () => Promise<string | undefined>;
}

/** Where the run is, under the attempt and pod it is at. */
export type MoverRunStep =
  | {
      phase: 'Pending' | 'Running';
      attempts: number;
      moverPod: string;
      message: string;
      /** A failed attempt is waited on or was just replaced. */
      retrying?: true;
      /** When to look again if no event comes first: a retry due, or the progress of a running pod. */
      recheckMs?: number;
      /** A running mover's last progress line. */
      progress?: MoverProgress;
    }
  | { phase: 'Completed'; attempts: number; moverPod: string; result: MoverSuccess }
  | { problem: string };

/** Takes the run one step: starts its pod, reads it, or replaces a failed one when its retry is due. */
export async function stepMoverRun(ctx: MoverRunContext, options: MoverRunOptions): Promise<MoverRunStep> {
  const attempt = Math.max(1, options.attempts);
  const podName = options.podName(attempt);
  const pod = ctx.cache.movers.get(`${ctx.namespace}/${podName}`);
  if (pod === undefined) {
    const problem = await start(ctx, options, podName);
    if (problem !== undefined) return { problem };
    return { phase: 'Pending', attempts: attempt, moverPod: podName, message: 'mover pod created' };
  }
  const state = moverState(pod);
  switch (state.state) {
    case 'waiting':
      return { phase: 'Pending', attempts: attempt, moverPod: podName, message: state.message };
    case 'running': {
      const progress = await readProgress(ctx.client, ctx.namespace, podName);
      return {
        phase: 'Running',
        attempts: attempt,
        moverPod: podName,
        message: progress === undefined ? state.message : `${state.message}: ${describeProgress(progress)}`,
        // No event tells of progress: the log is read again.
        recheckMs: PROGRESS_RECHECK_MS,
        ...(progress === undefined ? {} : { progress }),
      };
    }
    case 'succeeded':
      return { phase: 'Completed', attempts: attempt, moverPod: podName, result: state.result };
    case 'failed': {
      if (!state.retry) return { problem: state.message };
      // The failed pod stays until its retry is due, so its end is what the backoff counts from.
      const finished = pod.status?.containerStatuses?.[0]?.state?.terminated?.finishedAt;
      const endedAt = Date.parse(finished ?? pod.metadata.creationTimestamp ?? '');
      const now = ctx.now().getTime();
      const dueAt =
        (Number.isNaN(endedAt) ? now : endedAt) + Math.min(RETRY_BASE_MS * 2 ** (attempt - 1), RETRY_MAX_MS);
      const waitMs = dueAt - now;
      if (waitMs > 0) {
        return {
          phase: 'Pending',
          attempts: attempt,
          moverPod: podName,
          message: `attempt ${attempt} failed: ${state.message}; retrying in ${Math.ceil(waitMs / 1000)} s`,
          retrying: true,
          recheckMs: waitMs,
        };
      }
      await ctx.client.delete(resources.pods, podName, { namespace: ctx.namespace });
      const nextPod = options.podName(attempt + 1);
      const problem = await start(ctx, options, nextPod);
      if (problem !== undefined) return { problem };
      return {
        phase: 'Pending',
        attempts: attempt + 1,
        moverPod: nextPod,
        message: `attempt ${attempt} failed: ${state.message}; attempt ${attempt + 1} started`,
        retrying: true,
      };
    }
  }
}

/** Creates what the pod mounts, then the pod `podName` (each found, if a restart repeats this). */
async function start(
  ctx: MoverRunContext,
  options: MoverRunOptions,
  podName: string,
): Promise<string | undefined> {
  const problem = await options.prepare();
  if (problem !== undefined) return problem;
  return createdUnlessTaken(
    ctx.client,
    resources.pods,
    moverPod({ ...options.pod, namespace: ctx.namespace, name: podName, config: ctx.mover }),
    options.ownerLabel,
  );
}

/**
 * The running mover's last progress line, from its log's tail; undefined when there is none yet or
 * the log cannot be read (progress is shown, never waited for or failed on).
 */
async function readProgress(
  client: ObjectClient,
  namespace: string,
  podName: string,
): Promise<MoverProgress | undefined> {
  try {
    return lastProgress(
      await client.podLog(podName, namespace, { container: MOVER_CONTAINER, tailLines: 4 }),
    );
  } catch {
    return undefined;
  }
}

const MIB = 1024 * 1024;

function describeProgress({ progress, bytesPerSecond, etaSeconds }: MoverProgress): string {
  const mib = (bytes: number): string => (bytes / MIB).toFixed(1);
  const left = etaSeconds === undefined ? '' : `, ${Math.ceil(etaSeconds)} s left`;
  return `${mib(progress.bytesDone)} of ${mib(progress.bytesTotal)} MiB, ${mib(bytesPerSecond)} MiB/s${left}`;
}

/**
 * The figures a copy and a rebuild both show: bytes total and done and files, and while the mover
 * runs, its rate and the time left.
 */
export function transferFigures(
  progress: TransferProgress,
  rate?: Omit<MoverProgress, 'progress'>,
): { bytesTotal: number; bytesDone: number; files: number; bytesPerSecond?: number; secondsLeft?: number } {
  return {
    bytesTotal: progress.bytesTotal,
    bytesDone: progress.bytesDone,
    files: progress.files,
    ...(rate === undefined ? {} : { bytesPerSecond: Math.round(rate.bytesPerSecond) }),
    ...(rate?.etaSeconds === undefined ? {} : { secondsLeft: Math.ceil(rate.etaSeconds) }),
  };
}

/**
 * Where a resource's mover runs are (each volume's attempt and phase): a change of it is written at
 * once, never paced as progress, since the attempt number names the next pod and a rebuilt volume
 * moves on from what status says.
 */
export const moverRunsOf = (runs: readonly ({ attempts?: number; phase?: string } | undefined)[]): string =>
  runs.map((run) => `${run?.attempts ?? 0}:${run?.phase ?? ''}`).join(',');

/**
 * How often a status whose movers run may be written with their progress: as often as the operator
 * reads their logs, so people see a transfer move; undefined when none runs.
 */
export const transferPacingMs = (runs: readonly ({ phase?: string } | undefined)[]): number | undefined =>
  runs.some((run) => run?.phase === 'Running') ? PROGRESS_RECHECK_MS : undefined;

/** Deletes the pods of every attempt of a run (those already gone are skipped). */
export async function deleteMoverPods(
  client: ObjectClient,
  namespace: string,
  attempts: number,
  podName: (attempt: number) => string,
): Promise<void> {
  for (let attempt = 1; attempt <= Math.max(1, attempts); attempt++) {
    await client.delete(resources.pods, podName(attempt), { namespace });
  }
}
