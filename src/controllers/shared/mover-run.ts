// One data mover's run, for a Backup copying a volume into the bucket and a Restore rebuilding one
// from it alike: its pod is started, watched and, when the store or the pod failed (not the data
// or the key), started again under the next attempt's name after a backoff counted from the failed
// pod's end. The pods' names are deterministic per attempt, so a restarted operator finds them.

import type { Pod } from '../../api/kubernetes.js';
import type { ObjectClient } from '../../runtime/client.js';
import type { Cache } from '../../runtime/cache.js';
import { resources } from '../../runtime/resources.js';
import { moverPod, moverState, type MoverPodOptions, type MoverSuccess } from '../../storage/data-mover.js';
import { createdUnlessTaken } from './objects.js';

/** A failed mover is started again after 5 s, then twice as long each time, at most 5 minutes. */
const RETRY_BASE_MS = 5_000;
const RETRY_MAX_MS = 300_000;

export interface MoverRunOptions {
  client: ObjectClient;
  /** The operator's namespace, where mover pods run. */
  namespace: string;
  movers: Cache<Pod>;
  now: Date;
  /** Mover pods started so far (status); 0 before the first. */
  attempts: number;
  podName: (attempt: number) => string;
  /** The pod of every attempt but its name. */
  pod: Omit<MoverPodOptions, 'name'>;
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
      /** When the retry is due, if no event comes first. */
      recheckMs?: number;
    }
  | { phase: 'Completed'; attempts: number; moverPod: string; result: MoverSuccess }
  | { problem: string };

/** Takes the run one step: starts its pod, reads it, or replaces a failed one when its retry is due. */
export async function stepMoverRun(options: MoverRunOptions): Promise<MoverRunStep> {
  const attempt = Math.max(1, options.attempts);
  const podName = options.podName(attempt);
  const pod = options.movers.get(`${options.namespace}/${podName}`);
  if (pod === undefined) {
    const problem = await start(options, podName);
    if (problem !== undefined) return { problem };
    return { phase: 'Pending', attempts: attempt, moverPod: podName, message: 'mover pod created' };
  }
  const state = moverState(pod);
  switch (state.state) {
    case 'waiting':
    case 'running':
      return {
        phase: state.state === 'running' ? 'Running' : 'Pending',
        attempts: attempt,
        moverPod: podName,
        message: state.message,
      };
    case 'succeeded':
      return { phase: 'Completed', attempts: attempt, moverPod: podName, result: state.result };
    case 'failed': {
      if (!state.retry) return { problem: state.message };
      // The failed pod stays until its retry is due, so its end is what the backoff counts from.
      const finished = pod.status?.containerStatuses?.[0]?.state?.terminated?.finishedAt;
      const endedAt = Date.parse(finished ?? pod.metadata.creationTimestamp ?? '');
      const now = options.now.getTime();
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
      await options.client.delete(resources.pods, podName, { namespace: options.namespace });
      const nextPod = options.podName(attempt + 1);
      const problem = await start(options, nextPod);
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
async function start(options: MoverRunOptions, podName: string): Promise<string | undefined> {
  const problem = await options.prepare();
  if (problem !== undefined) return problem;
  return createdUnlessTaken(
    options.client,
    resources.pods,
    moverPod({ ...options.pod, name: podName }),
    options.ownerLabel,
  );
}

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
