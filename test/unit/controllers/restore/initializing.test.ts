// Initializing: resolve the Backup, check it is Completed and restorable into the target, and fix
// what the attempt restores.

import { describe, expect, it } from '@jest/globals';
import { DEFAULT_MATRIX_NAME } from '../../../../src/api/constants.js';
import type { Backup, RestorabilityMatrix, Restore } from '../../../../src/api/generated/types.js';
import { initializing } from '../../../../src/controllers/restore/initializing.js';
import type { StepOutcome } from '../../../../src/controllers/restore/outcome.js';
import { resources } from '../../../../src/runtime/resources.js';
import {
  backupVolume,
  BACKUP_NAME,
  completedBackup,
  NAMESPACE,
  referenceGrant,
  restoreIn,
  restoreWorld,
  statefulSetManifest,
  type RestoreContextOverrides,
  type RestoreInOptions,
} from '../../../support/builders.js';
import { apiError, connectionReset } from '../../../support/fake-client.js';

function setup(
  options: {
    backup?: Backup | null;
    restore?: RestoreInOptions;
    context?: Omit<RestoreContextOverrides, 'now'>;
  } = {},
) {
  const world = restoreWorld(options.context);
  const backup =
    options.backup === null
      ? undefined
      : world.fake.seed(resources.backups, options.backup ?? completedBackup());
  const restore: Restore = world.fake.seed(resources.restores, restoreIn('Initializing', options.restore));
  const run = (): Promise<StepOutcome> => initializing(world.ctx, restore);
  return { ...world, backup, restore, run };
}

const matrix = (
  conditions: { backupCapabilities?: Record<string, string>; imageCapabilities?: Record<string, string> }[],
): RestorabilityMatrix => ({
  metadata: { name: DEFAULT_MATRIX_NAME },
  spec: { dataServices: [{ name: 'postgresql', conditions }] },
});

describe('initializing: errors of the API server', () => {
  it.each([
    ['a reset connection', connectionReset()],
    ['503', apiError(503)],
    ['403 (made terminal by the reconciler)', apiError(403)],
  ])('throws what the authoritative Backup GET throws (%s)', async (_what, err) => {
    const { fake, run } = setup({ backup: null });
    fake.failNext('get', 'backups', err);
    await expect(run()).rejects.toBe(err);
  });

  it('reads the Backup from the cache when it has it: no request at all', async () => {
    const { fake, run } = setup();
    fake.clearCalls();
    expect((await run()).type).toBe('advance');
    expect(fake.calls).toEqual([]);
  });
});

describe('initializing', () => {
  it('advances to Pending, recording the Backup, the destination and the volumes', async () => {
    const { run, backup } = setup({ backup: completedBackup({ volumeCount: 3 }) });

    const outcome = await run();

    expect(outcome).toEqual({
      type: 'advance',
      to: 'Pending',
      message: 'Backup demo/pg-backup resolved: 3 volume(s) to restore into StatefulSet pg-restored',
      status: {
        backup: { namespace: 'demo', name: 'pg-backup', uid: backup?.metadata.uid },
        destination: { kind: 'StatefulSet', deploymentName: 'pg-restored' },
        volumes: [0, 1, 2].map((ordinal) => ({
          pvcName: `data-pg-restored-${ordinal}`,
          cloudSnapId: `snap-handle-${ordinal}`,
          phase: 'Pending',
        })),
      },
    });
  });

  it('restores under the backed-up name when spec.destination is absent', async () => {
    const { run } = setup({ restore: { deploymentName: null } });
    const outcome = await run();
    expect(outcome.status?.destination).toEqual({ kind: 'StatefulSet', deploymentName: 'pg' });
    expect(outcome.status?.volumes?.map((volume) => volume.pvcName)).toEqual(['data-pg-0']);
  });

  it('resolves a Backup of another namespace through backupRef where that namespace grants it', async () => {
    const { fake, run } = setup({
      backup: completedBackup({ namespace: 'prod' }),
      restore: { backupRef: { namespace: 'prod', name: BACKUP_NAME } },
    });
    fake.seed(resources.referenceGrants, referenceGrant('prod', NAMESPACE, BACKUP_NAME));
    fake.clearCalls();
    const outcome = await run();
    expect(outcome.type).toBe('advance');
    expect(outcome.status?.backup).toMatchObject({ namespace: 'prod', name: 'pg-backup' });
    expect(fake.calls).toEqual([]);
  });

  it('waits when the cache does not have a Backup the API server has (created a moment ago)', async () => {
    const { fake, ctx, run } = setup({ backup: null });
    ctx.cache.backups.freeze();
    fake.seed(resources.backups, completedBackup());

    const outcome = await run();

    expect(outcome).toEqual({
      type: 'wait',
      reason: 'WaitingForBackup',
      message: 'Backup demo/pg-backup was just created; waiting for it to be seen',
    });
  });

  it.each([
    ['InProgress', 'Backup demo/pg-backup is InProgress; the restore goes on when it completes'],
    [undefined, 'Backup demo/pg-backup is not started yet; the restore goes on when it completes'],
  ] as const)('waits for a Backup that is %s', async (phase, message) => {
    const { run } = setup({
      backup: completedBackup({ status: { phase } }),
    });
    expect(await run()).toEqual({ type: 'wait', reason: 'WaitingForBackup', message });
  });

  it.each<[string, Backup | null, string, RegExp]>([
    [
      'the Backup does not exist',
      null,
      'BackupNotFound',
      /^Backup demo\/pg-backup does not exist\. Check spec\.source/,
    ],
    [
      'the Backup failed',
      completedBackup({ status: { phase: 'Failed', errorMessage: 'snapshot of data-pg-0 failed' } }),
      'BackupNotCompleted',
      /^Backup demo\/pg-backup failed \(snapshot of data-pg-0 failed\); restore from a Completed backup\.$/,
    ],
    [
      'the Backup is Deleting',
      completedBackup({ status: { phase: 'Deleting' } }),
      'BackupNotCompleted',
      /^Backup demo\/pg-backup is being deleted/,
    ],
    [
      'the Backup has a deletionTimestamp',
      completedBackup({
        metadata: {
          deletionTimestamp: '2030-03-01T11:00:00Z',
          finalizers: ['snapback.dev/backup-protection'],
        },
      }),
      'BackupNotCompleted',
      /^Backup demo\/pg-backup is being deleted/,
    ],
    [
      'the Backup has no manifest',
      completedBackup({ manifest: null }),
      'IncompatibleBackup',
      /^Backup pg-backup records no deployment manifest\.$/,
    ],
    [
      'the manifest is of a kind no adapter handles',
      completedBackup({ manifest: { ...statefulSetManifest(), kind: 'Deployment' } }),
      'IncompatibleBackup',
      /^deployments of kind Deployment cannot be restored by this operator\.$/,
    ],
    [
      "no volume fits the manifest's claim templates",
      completedBackup({ volumes: [backupVolume(0, { pvcName: 'wal-pg-0' })] }),
      'IncompatibleBackup',
      /^Backup demo\/pg-backup records no volumes that fit its manifest's volume claim templates\.$/,
    ],
  ])('fails when %s', async (_what, backup, errorCode, message) => {
    const { run } = setup({ backup });
    const outcome = await run();
    expect(outcome).toMatchObject({ type: 'fail', errorCode });
    expect(outcome.message).toMatch(message);
  });

  it('fails CloudSnapNotFound, listing the handles, for a cloudSnapId the Backup does not have', async () => {
    const { run } = setup({
      backup: completedBackup({ volumeCount: 2 }),
      restore: { cloudSnapId: 'snap-nope' },
    });
    const outcome = await run();
    expect(outcome).toMatchObject({ type: 'fail', errorCode: 'CloudSnapNotFound' });
    expect(outcome.message).toBe(
      'Backup demo/pg-backup has no snapshot with handle "snap-nope"; its handles are: snap-handle-0, snap-handle-1. Fix spec.source.cloudSnapId in a new Restore.',
    );
  });

  describe('restorability', () => {
    it('fails IncompatibleBackup when the matrix lists the data service and no condition matches', async () => {
      const { fake, run } = setup();
      fake.seed(resources.restorabilityMatrices, matrix([{ imageCapabilities: { pds_restore: 'v2' } }]));
      const outcome = await run();
      expect(outcome).toMatchObject({ type: 'fail', errorCode: 'IncompatibleBackup' });
      expect(outcome.message).toMatch(/satisfy none of the 1 conditions for data service "postgresql"/);
    });

    it('advances when a condition of the matrix matches', async () => {
      const { fake, run } = setup();
      fake.seed(
        resources.restorabilityMatrices,
        matrix([
          { imageCapabilities: { pds_restore: 'v2' } },
          { backupCapabilities: { backup: 'v1' }, imageCapabilities: { pds_restore: 'v1' } },
        ]),
      );
      expect((await run()).type).toBe('advance');
    });

    it.each([
      [false, 'advance'],
      [true, 'fail'],
    ] as const)('with strictRestorability %s, an unlisted data service -> %s', async (strict, type) => {
      const { run } = setup({ context: { config: { strictRestorability: strict } } });
      const outcome = await run();
      expect(outcome.type).toBe(type);
      if (outcome.type === 'fail') {
        expect(outcome.errorCode).toBe('IncompatibleBackup');
        expect(outcome.message).toMatch(
          /not listed in RestorabilityMatrix "default" and the operator runs in strict mode/,
        );
      }
    });
  });
});

describe('initializing: consent of the namespace a Backup is in', () => {
  const crossNamespace = (backup: Backup | null = completedBackup({ namespace: 'prod' })) =>
    setup({ backup, restore: { backupRef: { namespace: 'prod', name: BACKUP_NAME } } });
  const REFUSED =
    'no ReferenceGrant in namespace prod lets Restores of namespace demo read Backup prod/pg-backup, so nothing was created. ' +
    'Someone who may create ReferenceGrants in prod can grant it (from: [{group: snapback.dev, kind: Restore, namespace: demo}], ' +
    'to: [{group: snapback.dev, kind: Backup, name: pg-backup}]); then change spec.recreateToken.';

  it.each([
    ['no grant at all', []],
    ['a grant to another namespace', [referenceGrant('prod', 'elsewhere')]],
    ['a grant of another Backup', [referenceGrant('prod', NAMESPACE, 'other-backup')]],
    ['a grant in another namespace', [referenceGrant('staging', NAMESPACE)]],
  ])('fails ReferenceNotGranted with %s, after asking the API server', async (_what, grants) => {
    const { fake, run } = crossNamespace();
    for (const grant of grants) fake.seed(resources.referenceGrants, grant);
    fake.clearCalls();

    expect(await run()).toEqual({ type: 'fail', errorCode: 'ReferenceNotGranted', message: REFUSED });
    expect(fake.calls).toEqual([{ verb: 'list', plural: 'referencegrants', namespace: 'prod' }]);
  });

  it('says the same whether the Backup exists or not: a refusal tells nothing about the other namespace', async () => {
    const missing = crossNamespace(null);
    expect(await missing.run()).toEqual({ type: 'fail', errorCode: 'ReferenceNotGranted', message: REFUSED });
  });

  it('takes a grant of every Backup of the namespace (no name)', async () => {
    const { fake, run } = crossNamespace();
    fake.seed(resources.referenceGrants, referenceGrant('prod', NAMESPACE));
    expect((await run()).type).toBe('advance');
  });

  it('waits when the API server has a grant the cache does not show yet', async () => {
    const { fake, ctx, run } = crossNamespace();
    ctx.cache.referenceGrants.freeze();
    fake.seed(resources.referenceGrants, referenceGrant('prod', NAMESPACE, BACKUP_NAME));

    expect(await run()).toEqual({
      type: 'wait',
      reason: 'WaitingForGrant',
      message: 'the ReferenceGrant in prod was just created; waiting for it to be seen',
    });
  });

  it('needs no grant for a Backup of its own namespace', async () => {
    const { fake, run } = setup({ restore: { backupRef: { namespace: NAMESPACE, name: BACKUP_NAME } } });
    fake.clearCalls();
    expect((await run()).type).toBe('advance');
    expect(fake.calls).toEqual([]);
  });
});
