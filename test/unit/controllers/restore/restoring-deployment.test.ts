// RestoringDataServiceDeployment: the new deployment runs in restore mode; the restore process is
// done when it is healthy in that mode.

import { describe, expect, it } from '@jest/globals';
import { restoringDeployment } from '../../../../src/controllers/restore/restoring-deployment.js';
import { labels } from '../../../../src/api/constants.js';
import type { Restore } from '../../../../src/api/generated/types.js';
import type { Pod } from '../../../../src/api/kubernetes.js';
import { resources } from '../../../../src/runtime/resources.js';
import {
  attemptLabelsOf,
  claim,
  DEPLOYMENT_UID,
  deploymentPhaseWorld,
  destinationClaim,
  firstConsumerVolume,
  NAMESPACE,
  provisioningFailed,
  restoredStatefulSet,
  statefulSet,
  T0,
  unschedulablePod,
  type StatefulSetOptions,
} from '../../../support/builders.js';
import { apiError, connectionReset } from '../../../support/fake-client.js';

const setup = (options: Parameters<typeof deploymentPhaseWorld>[2] = {}) =>
  deploymentPhaseWorld('RestoringDataServiceDeployment', restoringDeployment, options);

/** The restored pod on its node, scheduled `seconds` before T0, its container not started. */
const creatingContainers = (restore: Restore, seconds: number): Pod => ({
  ...unschedulablePod(restore, 'pg-restored-0', ''),
  spec: { nodeName: 'snapback-node', containers: [{ name: 'postgres' }] },
  status: {
    phase: 'Pending',
    conditions: [
      {
        type: 'PodScheduled',
        status: 'True',
        lastTransitionTime: new Date(T0.getTime() - seconds * 1000).toISOString(),
      },
    ],
    containerStatuses: [
      {
        name: 'postgres',
        image: 'postgres:16.4',
        ready: false,
        restartCount: 0,
        state: { waiting: { reason: 'ContainerCreating' } },
      },
    ],
  },
});

describe('restoringDeployment: errors of the API server', () => {
  it.each([
    ['a reset connection', connectionReset()],
    ['503', apiError(503)],
  ])('throws what the GET of a deployment the cache misses throws (%s)', async (_what, err) => {
    const { fake, ctx, restore, run } = setup({ deployment: null });
    ctx.cache.statefulSets.freeze();
    fake.seed(resources.statefulSets, restoredStatefulSet(restore, { uid: DEPLOYMENT_UID }));
    fake.failNext('get', 'statefulsets', err);
    await expect(run()).rejects.toBe(err);
  });
});

describe('restoringDeployment', () => {
  it('advances to DataServiceDeploymentEnteringNormalMode once healthy in restore mode', async () => {
    const { fake, run } = setup();
    fake.clearCalls();

    expect(await run()).toEqual({
      type: 'advance',
      to: 'DataServiceDeploymentEnteringNormalMode',
      message: 'restore mode finished (1/1 replicas ready); StatefulSet pg-restored switched to normal mode',
    });
    // Switched in the same reconcile: the next phase needs no write of its own to do it.
    expect(fake.calls).toEqual([
      { verb: 'patch', plural: 'statefulsets', name: 'pg-restored', namespace: NAMESPACE },
    ]);
    const switched = fake.peek(resources.statefulSets, 'pg-restored', NAMESPACE);
    expect(switched?.spec.replicas).toBe(3);
    expect(switched?.metadata.annotations?.['snapback.dev/mode']).toBe('normal');
  });

  it('advances, sending nothing, when it finds the deployment switched already (the status write after the switch was lost)', async () => {
    const { fake, run } = setup({ deployment: { mode: 'normal', readyReplicas: 0, updatedReplicas: 0 } });
    fake.clearCalls();

    expect(await run()).toEqual({
      type: 'advance',
      to: 'DataServiceDeploymentEnteringNormalMode',
      message: 'StatefulSet pg-restored switched to normal mode',
    });
    expect(fake.calls).toEqual([]);
  });

  it.each([
    ['a reset connection', connectionReset()],
    ['503', apiError(503)],
  ])('throws what the switch to normal mode throws (%s), advancing nowhere', async (_what, err) => {
    const { fake, run } = setup();
    fake.failNext('patch', 'statefulsets', err);
    await expect(run()).rejects.toBe(err);
  });

  it('writes Bound for the volumes that waited for their first consumer and whose claims bound since', async () => {
    const { fake, run, restore } = setup({
      restore: { status: { volumes: [firstConsumerVolume(0), firstConsumerVolume(1)] } },
    });
    // Restore mode runs one replica: only its claim has bound.
    const labelled = { labels: attemptLabelsOf(restore) };
    fake.seed(resources.persistentVolumeClaims, claim(destinationClaim(0), { ...labelled, phase: 'Bound' }));
    fake.seed(
      resources.persistentVolumeClaims,
      claim(destinationClaim(1), { ...labelled, phase: 'Pending' }),
    );

    const outcome = await run();

    expect(outcome).toMatchObject({ type: 'advance', to: 'DataServiceDeploymentEnteringNormalMode' });
    expect(outcome.status).toEqual({
      volumes: [
        { pvcName: 'data-pg-restored-0', cloudSnapId: 'snap-handle-0', phase: 'Bound' },
        firstConsumerVolume(1),
      ],
    });
  });

  it('fails CloudSnapRestoreFailed when a volume left for its first consumer is refused once its pod is scheduled', async () => {
    const { fake, run, restore } = setup({
      deployment: { readyReplicas: 0, updatedReplicas: 0 },
      restore: { status: { volumes: [firstConsumerVolume(0)] } },
    });
    const pending = fake.seed(
      resources.persistentVolumeClaims,
      claim(destinationClaim(0), { labels: attemptLabelsOf(restore), phase: 'Pending', uid: 'claim-0' }),
    );
    // A transient failure is the provisioner's to retry: still waiting.
    fake.seed(
      resources.events,
      provisioningFailed(pending, 'rpc error: code = Unavailable desc = driver restarting'),
    );
    expect(await run()).toMatchObject({ type: 'wait', reason: 'RestoreModeRunning' });

    fake.seed(
      resources.events,
      provisioningFailed(pending, 'rpc error: code = InvalidArgument desc = snapshot of another pool'),
    );
    expect(await run()).toEqual({
      type: 'fail',
      errorCode: 'CloudSnapRestoreFailed',
      message:
        'volume data-pg-restored-0 could not be restored from snapshot snap-handle-0: rpc error: code = InvalidArgument desc = snapshot of another pool',
    });
  });

  it.each<[string, Omit<StatefulSetOptions, 'labels'>, string]>([
    [
      'no replica is ready',
      { readyReplicas: 0, updatedReplicas: 0 },
      'restore mode: 0/1 replicas ready, 0/1 updated',
    ],
    [
      'the controller has not seen the spec',
      { generation: 2, observedGeneration: 1 },
      'restore mode: the StatefulSet controller has not observed the latest spec yet',
    ],
  ])('waits while %s', async (_what, deployment, message) => {
    const { run } = setup({ deployment });
    expect(await run()).toMatchObject({ type: 'wait', reason: 'RestoreModeRunning', message });
  });

  it('before 20s unhealthy, reads no pods and looks again when the diagnosis is due', async () => {
    const { fake, run } = setup({
      restore: { enteredAt: new Date(T0.getTime() - 5_000).toISOString() },
      deployment: { readyReplicas: 0, updatedReplicas: 0 },
    });
    fake.clearCalls();

    expect(await run()).toEqual({
      type: 'wait',
      reason: 'RestoreModeRunning',
      message: 'restore mode: 0/1 replicas ready, 0/1 updated',
      requeueAfterMs: 15_000,
    });
    expect(fake.calls).toEqual([]);
  });

  it('after 20s unhealthy, names the cause from the pods and looks again every 15s', async () => {
    const { fake, run, restore } = setup({
      restore: { enteredAt: new Date(T0.getTime() - 60_000).toISOString() },
      deployment: { readyReplicas: 0, updatedReplicas: 1 },
    });
    fake.seed(
      resources.pods,
      unschedulablePod(restore, 'pg-restored-0', '0/3 nodes are available: 3 Insufficient memory.'),
    );

    fake.clearCalls();

    const outcome = await run();

    expect(outcome).toEqual({
      type: 'wait',
      reason: 'RestoreModeRunning',
      message:
        'restore mode: 0/1 replicas ready, 1/1 updated; pod pg-restored-0 cannot be scheduled: 0/3 nodes are available: 3 Insufficient memory.',
      requeueAfterMs: 15_000,
    });
    // The pods are the cache's, and their status says it all: no request.
    expect(fake.calls).toEqual([]);
  });

  it('reads the Warning events of only the pod whose status says nothing, and names the cause from them', async () => {
    const { fake, run, restore } = setup({
      restore: { enteredAt: new Date(T0.getTime() - 60_000).toISOString() },
      deployment: { readyReplicas: 0, updatedReplicas: 1 },
    });
    const stuck = fake.seed(resources.pods, creatingContainers(restore, 30));
    const mountFailed = (uid: string, message: string) => ({
      metadata: { name: `pg-restored-0.${uid}`, namespace: NAMESPACE },
      involvedObject: { kind: 'Pod', name: 'pg-restored-0', namespace: NAMESPACE, uid },
      type: 'Warning' as const,
      reason: 'FailedMount',
      message,
      lastTimestamp: T0.toISOString(),
    });
    fake.seed(
      resources.events,
      mountFailed(stuck.metadata.uid ?? '', 'MountVolume.SetUp failed: no such volume'),
    );
    // Of an earlier pod of that name: its uid differs, and it does not count.
    fake.seed(resources.events, mountFailed('uid-of-an-earlier-pod', 'an old failure'));
    // A pod of another restore, in the same namespace, is not this restore's.
    fake.seed(resources.pods, {
      ...unschedulablePod(restore, 'other-0', 'not this one'),
      metadata: { name: 'other-0', namespace: NAMESPACE, labels: { [labels.restore]: 'other' } },
    });
    fake.clearCalls();

    expect(await run()).toMatchObject({
      type: 'wait',
      message:
        'restore mode: 0/1 replicas ready, 1/1 updated; pod pg-restored-0 is still Pending (FailedMount): MountVolume.SetUp failed: no such volume',
    });
    // One LIST, of that pod's events by uid (the old failure, seeded later, would be the newest).
    expect(fake.calls).toEqual([{ verb: 'list', plural: 'events', namespace: NAMESPACE }]);
  });

  it('reads no Events of a pod scheduled moments ago: its node is still at work', async () => {
    const { fake, run, restore } = setup({
      restore: { enteredAt: new Date(T0.getTime() - 60_000).toISOString() },
      deployment: { readyReplicas: 0, updatedReplicas: 1 },
    });
    fake.seed(resources.pods, creatingContainers(restore, 5));
    fake.clearCalls();
    expect(await run()).toMatchObject({
      type: 'wait',
      message: 'restore mode: 0/1 replicas ready, 1/1 updated',
    });
    expect(fake.calls).toEqual([]);
  });

  it('waits when the cache has not seen the deployment this attempt made (the GET finds its uid)', async () => {
    const { fake, ctx, restore, run } = setup({ deployment: null });
    ctx.cache.statefulSets.freeze();
    fake.seed(resources.statefulSets, restoredStatefulSet(restore, { uid: DEPLOYMENT_UID }));

    expect(await run()).toEqual({
      type: 'wait',
      reason: 'RestoreModeRunning',
      message: 'restore mode: StatefulSet demo/pg-restored created',
    });
    expect(fake.calls).toContainEqual({
      verb: 'get',
      plural: 'statefulsets',
      name: 'pg-restored',
      namespace: NAMESPACE,
    });
  });

  it.each([
    ['is gone', undefined],
    ['was replaced by another of that name', 'some-other-uid'],
  ])('fails DataServiceDeploymentRestoreFailed when the deployment %s', async (_what, uid) => {
    const { fake, ctx, restore, run } = setup({ deployment: null });
    ctx.cache.statefulSets.freeze();
    if (uid !== undefined) fake.seed(resources.statefulSets, restoredStatefulSet(restore, { uid }));

    expect(await run()).toEqual({
      type: 'fail',
      errorCode: 'DataServiceDeploymentRestoreFailed',
      message: 'StatefulSet demo/pg-restored was deleted while it restored its data.',
    });
  });

  // Regression (restoredDeployment in context.ts): a StatefulSet the cache had was returned without
  // comparing its uid with status.destination.deploymentUid, though the function promises undefined
  // for a deployment that "is gone or was replaced"; only a cache miss was checked. The cache selects
  // every StatefulSet labelled snapback.dev/restore, so another Restore's StatefulSet of that name
  // (or one re-applied with the restored labels) was adopted.
  it('fails when the cache holds a StatefulSet of that name with another uid (replaced)', async () => {
    const { fake, run } = setup({ deployment: null });
    fake.seed(
      resources.statefulSets,
      statefulSet('pg-restored', {
        uid: 'uid-of-another-restores-statefulset',
        mode: 'restore',
        labels: { [labels.restore]: 'other', [labels.restoreAttempt]: 'restore-other-abcdef' },
      }),
    );

    expect(await run()).toMatchObject({ type: 'fail', errorCode: 'DataServiceDeploymentRestoreFailed' });
  });
});
