// DataServiceDeploymentEnteringNormalMode: switch the deployment to normal mode, then wait until it
// is healthy.

import { describe, expect, it } from '@jest/globals';
import { annotations, labels } from '../../../../src/api/constants.js';
import { enteringNormalMode } from '../../../../src/controllers/restore/entering-normal-mode.js';
import { resources } from '../../../../src/runtime/resources.js';
import {
  attemptLabelsOf,
  claim,
  DEPLOYMENT_UID,
  deploymentPhaseWorld,
  destinationClaim,
  firstConsumerVolume,
  NAMESPACE,
  restoredStatefulSet,
  setStatus,
  statefulSet,
  T0,
  unschedulablePod,
} from '../../../support/builders.js';
import { apiError } from '../../../support/fake-client.js';

function setup(options: Parameters<typeof deploymentPhaseWorld>[2] = {}) {
  const world = deploymentPhaseWorld('DataServiceDeploymentEnteringNormalMode', enteringNormalMode, options);
  const deployment = () => world.fake.peek(resources.statefulSets, 'pg-restored', NAMESPACE);
  return { ...world, deployment };
}

describe('enteringNormalMode: errors of the API server', () => {
  it.each([
    ['503', apiError(503)],
    ['409 Conflict', apiError(409, 'Conflict', 'the object has been modified')],
    ['404 (deleted since the cache saw it; terminal for the reconciler)', apiError(404)],
  ])('throws what the normal-mode patch throws (%s), changing nothing', async (_what, err) => {
    const { fake, run, deployment } = setup();
    const before = deployment();
    fake.failNext('patch', 'statefulsets', err);
    await expect(run()).rejects.toBe(err);
    expect(deployment()).toEqual(before);
  });
});

describe('enteringNormalMode', () => {
  it('switches a restore-mode deployment to normal mode with the backed-up replicas, then waits', async () => {
    const { fake, run, deployment } = setup();

    const outcome = await run();

    expect(outcome).toEqual({
      type: 'wait',
      reason: 'SwitchingToNormalMode',
      message: 'StatefulSet pg-restored switched to normal mode',
    });
    expect(fake.calls).toEqual([
      { verb: 'patch', plural: 'statefulsets', name: 'pg-restored', namespace: NAMESPACE },
    ]);
    const patched = deployment();
    expect(patched?.metadata.annotations).toEqual({ [annotations.mode]: 'normal' });
    expect(patched?.spec.template.metadata?.annotations).toEqual({ [annotations.mode]: 'normal' });
    expect(patched?.spec.replicas).toBe(3);
    expect(patched?.metadata.generation).toBe(2);
  });

  it('then waits for the controller and the replicas, and advances to Successful once healthy', async () => {
    const { fake, run } = setup();
    await run();

    expect(await run()).toMatchObject({
      type: 'wait',
      reason: 'WaitingForHealthy',
      message: 'normal mode: the StatefulSet controller has not observed the latest spec yet',
    });

    setStatus(fake, resources.statefulSets, 'pg-restored', NAMESPACE, {
      observedGeneration: 2,
      replicas: 3,
      readyReplicas: 2,
      updatedReplicas: 3,
    });
    expect(await run()).toMatchObject({
      type: 'wait',
      reason: 'WaitingForHealthy',
      message: 'normal mode: 2/3 replicas ready, 3/3 updated',
    });

    setStatus(fake, resources.statefulSets, 'pg-restored', NAMESPACE, {
      observedGeneration: 2,
      replicas: 3,
      readyReplicas: 3,
      updatedReplicas: 3,
      currentRevision: 'pg-restored-7f9c',
      updateRevision: 'pg-restored-7f9c',
    });
    fake.clearCalls();
    expect(await run()).toEqual({
      type: 'advance',
      to: 'Successful',
      message: 'StatefulSet pg-restored restored and healthy (3/3 replicas ready)',
    });
    // Healthy and in normal mode: nothing more is patched.
    expect(fake.calls).toEqual([]);
  });

  it('on success writes Bound for a volume that waited for its first consumer and has bound', async () => {
    const { fake, run, restore } = setup({
      restore: { status: { volumes: [firstConsumerVolume(0)] } },
      deployment: { mode: 'normal', replicas: 3 },
    });
    fake.seed(
      resources.persistentVolumeClaims,
      claim(destinationClaim(0), { labels: attemptLabelsOf(restore), phase: 'Bound' }),
    );

    expect(await run()).toEqual({
      type: 'advance',
      to: 'Successful',
      message: 'StatefulSet pg-restored restored and healthy (3/3 replicas ready)',
      status: { volumes: [{ pvcName: 'data-pg-restored-0', cloudSnapId: 'snap-handle-0', phase: 'Bound' }] },
    });
  });

  it('waits while a rolling update is still in progress', async () => {
    const { fake, run } = setup({ deployment: { mode: 'normal', replicas: 3 } });
    setStatus(fake, resources.statefulSets, 'pg-restored', NAMESPACE, {
      observedGeneration: 1,
      replicas: 3,
      readyReplicas: 3,
      updatedReplicas: 3,
      currentRevision: 'pg-restored-1',
      updateRevision: 'pg-restored-2',
    });
    expect(await run()).toMatchObject({
      type: 'wait',
      reason: 'WaitingForHealthy',
      message: 'normal mode: a rolling update is still in progress',
    });
  });

  it('after 20s unhealthy, names the cause from the pods and looks again every 15s', async () => {
    const { fake, run, restore } = setup({
      restore: { enteredAt: new Date(T0.getTime() - 120_000).toISOString() },
      deployment: { mode: 'normal', replicas: 3, readyReplicas: 2 },
    });
    fake.seed(
      resources.pods,
      unschedulablePod(restore, 'pg-restored-2', '0/3 nodes are available: 3 node(s) had untolerated taint.'),
    );

    const outcome = await run();

    expect(outcome).toMatchObject({ type: 'wait', reason: 'WaitingForHealthy', requeueAfterMs: 15_000 });
    expect(outcome.message).toBe(
      'normal mode: 2/3 replicas ready, 3/3 updated; pod pg-restored-2 cannot be scheduled: 0/3 nodes are available: 3 node(s) had untolerated taint.',
    );
  });

  it('waits to see a deployment the cache misses but the GET finds with its uid', async () => {
    const { fake, ctx, restore, run } = setup({ deployment: null });
    ctx.cache.statefulSets.freeze();
    fake.seed(resources.statefulSets, restoredStatefulSet(restore, { uid: DEPLOYMENT_UID }));

    expect(await run()).toEqual({
      type: 'wait',
      reason: 'SwitchingToNormalMode',
      message: 'waiting to see StatefulSet pg-restored',
    });
    // Nothing is patched from a GET's answer alone.
    expect(fake.calls.map((call) => call.verb)).toEqual(['get']);
  });

  it('fails DataServiceDeploymentRestoreFailed when the deployment is gone', async () => {
    const { run } = setup({ deployment: null });
    expect(await run()).toEqual({
      type: 'fail',
      errorCode: 'DataServiceDeploymentRestoreFailed',
      message: 'StatefulSet demo/pg-restored was deleted before it reached normal mode.',
    });
  });

  // Regression (restoredDeployment in context.ts): the cached StatefulSet was not checked against
  // status.destination.deploymentUid, so a StatefulSet of that name that is not the one this attempt
  // created was patched to normal mode (its replicas and annotations rewritten).
  it('does not patch a StatefulSet of that name with another uid (not the one it created)', async () => {
    const { fake, run, deployment } = setup({ deployment: null });
    fake.seed(
      resources.statefulSets,
      statefulSet('pg-restored', {
        uid: 'uid-of-another-restores-statefulset',
        mode: 'restore',
        labels: { [labels.restore]: 'other', [labels.restoreAttempt]: 'restore-other-abcdef' },
      }),
    );
    const before = deployment();

    const outcome = await run();

    expect(fake.calls.filter((call) => call.verb === 'patch')).toEqual([]);
    expect(deployment()).toEqual(before);
    expect(outcome).toMatchObject({ type: 'fail', errorCode: 'DataServiceDeploymentRestoreFailed' });
  });
});
