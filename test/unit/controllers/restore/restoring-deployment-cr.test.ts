// RestoringDataServiceDeploymentCR: the backed-up manifest, rewritten (name, namespace, scheduling,
// restore mode), is created.

import { describe, expect, it } from '@jest/globals';
import { annotations, labels } from '../../../../src/api/constants.js';
import type { Restore } from '../../../../src/api/generated/types.js';
import type { StepOutcome } from '../../../../src/controllers/restore/outcome.js';
import { restoringDeploymentCR } from '../../../../src/controllers/restore/restoring-deployment-cr.js';
import { resources } from '../../../../src/runtime/resources.js';
import {
  attemptLabelsOf,
  completedBackup,
  NAMESPACE,
  planOf,
  restoreIn,
  restoreWorld,
  statefulSet,
  type RestoreInOptions,
} from '../../../support/builders.js';
import { apiError, connectionReset } from '../../../support/fake-client.js';

function setup(options: RestoreInOptions = {}) {
  const world = restoreWorld();
  const backup = world.fake.seed(resources.backups, completedBackup());
  const restore: Restore = world.fake.seed(
    resources.restores,
    restoreIn('RestoringDataServiceDeploymentCR', { backup, ...options }),
  );
  const run = (): Promise<StepOutcome> =>
    restoringDeploymentCR(world.ctx, restore, planOf(world.ctx, restore));
  return { ...world, backup, restore, run };
}

describe('restoringDeploymentCR: errors of the API server', () => {
  it.each([
    ['503', apiError(503)],
    ['a reset connection', connectionReset()],
    ['429', apiError(429)],
    ['403 (made terminal by the reconciler)', apiError(403)],
  ])('throws what the create throws (%s)', async (_what, err) => {
    const { fake, run } = setup();
    fake.failNext('create', 'statefulsets', err);
    await expect(run()).rejects.toBe(err);
    expect(fake.objects(resources.statefulSets)).toEqual([]);
  });

  it.each([
    [
      422,
      'Invalid',
      'StatefulSet.apps "pg-restored" is invalid: spec.template.spec.affinity.nodeAffinity: Invalid value',
    ],
    [
      400,
      'BadRequest',
      'StatefulSet in version "v1" cannot be handled as a StatefulSet: json: cannot unmarshal',
    ],
  ])(
    'fails DataServiceDeploymentRestoreFailed when the API server refuses the object (%i)',
    async (code, reason, message) => {
      const { fake, run } = setup();
      fake.failNext('create', 'statefulsets', apiError(code, reason, message));

      const outcome = await run();

      expect(outcome).toMatchObject({ type: 'fail', errorCode: 'DataServiceDeploymentRestoreFailed' });
      expect(outcome.message).toBe(
        `the API server rejected the restored StatefulSet: ${message}. Fix spec.podSchedulingConfig (or the backed-up manifest's problem) in a new Restore.`,
      );
    },
  );
});

describe('restoringDeploymentCR', () => {
  it('creates the StatefulSet in restore mode and advances, recording its uid', async () => {
    const { fake, restore, run } = setup();

    const outcome = await run();

    const made = fake.peek(resources.statefulSets, 'pg-restored', NAMESPACE);
    expect(made).toBeDefined();
    expect(outcome).toEqual({
      type: 'advance',
      to: 'RestoringDataServiceDeployment',
      message: 'StatefulSet pg-restored created in restore mode',
      status: {
        destination: {
          kind: 'StatefulSet',
          deploymentName: 'pg-restored',
          deploymentUid: made?.metadata.uid,
        },
      },
    });
    expect(made?.metadata.labels).toEqual({
      'app.kubernetes.io/name': 'postgresql',
      'app.kubernetes.io/instance': 'pg-restored',
      ...attemptLabelsOf(restore),
    });
    expect(made?.metadata.annotations).toEqual({ [annotations.mode]: 'restore' });
    expect(made?.spec.replicas).toBe(1);
    expect(made?.spec.serviceName).toBe('pg-restored');
    expect(made?.spec.selector.matchLabels).toEqual({
      'app.kubernetes.io/name': 'postgresql',
      'app.kubernetes.io/instance': 'pg-restored',
    });
    expect(made?.spec.template.metadata?.annotations).toEqual({ [annotations.mode]: 'restore' });
    // The claim template is kept: the StatefulSet adopts the restored data-pg-restored-<n> claims.
    expect(made?.spec.volumeClaimTemplates?.map((template) => template.metadata.name)).toEqual(['data']);
  });

  it('replaces the backed-up scheduling by spec.podSchedulingConfig', async () => {
    const { fake, run } = setup({
      podSchedulingConfig: {
        nodeSelector: { 'topology.kubernetes.io/zone': 'eu-west-1b' },
        tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'db', effect: 'NoSchedule' }],
      },
    });
    await run();
    const spec = fake.peek(resources.statefulSets, 'pg-restored', NAMESPACE)?.spec.template.spec;
    expect(spec?.nodeSelector).toEqual({ 'topology.kubernetes.io/zone': 'eu-west-1b' });
    expect(spec?.tolerations).toEqual([
      { key: 'dedicated', operator: 'Equal', value: 'db', effect: 'NoSchedule' },
    ]);
  });

  it('takes the StatefulSet this attempt already made (a restart) and advances with its uid', async () => {
    const { fake, restore, run } = setup();
    const existing = fake.seed(
      resources.statefulSets,
      statefulSet('pg-restored', { labels: attemptLabelsOf(restore) }),
    );

    const outcome = await run();

    expect(outcome).toMatchObject({
      type: 'advance',
      status: { destination: { deploymentUid: existing.metadata.uid } },
    });
  });

  it('fails DataServiceDeploymentNameAlreadyExist when someone else made one of that name meanwhile', async () => {
    const { fake, run } = setup();
    const theirs = fake.seed(
      resources.statefulSets,
      statefulSet('pg-restored', {
        replicas: 3,
        labels: { [labels.restore]: 'another-restore', [labels.restoreAttempt]: 'restore-another-abcdef' },
      }),
    );

    const outcome = await run();

    expect(outcome).toMatchObject({ type: 'fail', errorCode: 'DataServiceDeploymentNameAlreadyExist' });
    expect(outcome.message).toMatch(
      /^StatefulSet demo\/pg-restored already exists and was not made by this restore; nothing of it was changed, and what this restore had created for it is removed\./,
    );
    expect(fake.peek(resources.statefulSets, 'pg-restored', NAMESPACE)).toEqual(theirs);
  });

  it('says so when the StatefulSet of that name was restored by an earlier attempt of this Restore', async () => {
    const { fake, restore, run } = setup();
    expect(restore.status?.attempt).toBe(1);
    fake.seed(
      resources.statefulSets,
      statefulSet('pg-restored', { labels: attemptLabelsOf(restoreIn('Pending', { attempt: 2 })) }),
    );

    const outcome = await run();

    expect(outcome).toMatchObject({ type: 'fail', errorCode: 'DataServiceDeploymentNameAlreadyExist' });
    // Handed over by that attempt: the message says it is the user's.
    expect(outcome.message).toMatch(
      /^StatefulSet demo\/pg-restored was restored by an earlier attempt of this Restore and is left to you; nothing of it was changed,/,
    );
  });
});
