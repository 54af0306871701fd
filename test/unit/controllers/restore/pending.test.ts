// Pending: a synced Backup's credentials in place, then wait for a free concurrency slot; no reads.

import { describe, expect, it } from '@jest/globals';
import type { Backup, Restore } from '../../../../src/api/generated/types.js';
import type { StepOutcome } from '../../../../src/controllers/restore/outcome.js';
import { pending } from '../../../../src/controllers/restore/pending.js';
import { resources } from '../../../../src/runtime/resources.js';
import {
  backupLocation,
  completedBackup,
  OPERATOR_NAMESPACE,
  planOf,
  restoreIn,
  restoreWorld,
  secret,
  syncedBackup,
  type RestoreContextOverrides,
  type RestoreInOptions,
} from '../../../support/builders.js';
import { apiError, connectionReset } from '../../../support/fake-client.js';

function setup(
  options: {
    restore?: RestoreInOptions;
    context?: Omit<RestoreContextOverrides, 'now'>;
    volumeCount?: number;
    backup?: Backup;
  } = {},
) {
  const world = restoreWorld(options.context);
  const backup = world.fake.seed(
    resources.backups,
    options.backup ?? completedBackup({ volumeCount: options.volumeCount ?? 2 }),
  );
  const restore: Restore = world.fake.seed(
    resources.restores,
    restoreIn('Pending', { backup, volumeCount: options.volumeCount ?? 2, ...options.restore }),
  );
  const run = (): Promise<StepOutcome> => pending(world.ctx, restore, planOf(world.ctx, restore));
  return { ...world, backup, restore, run };
}

/** Another restore, running (it holds a slot). */
const running = (name: string): Restore =>
  restoreIn('RestoringCloudSnap', { name, uid: `uid-${name}`, deploymentName: `${name}-db` });

describe('pending', () => {
  it('advances to RestoringCloudSnap and takes a slot when nothing is in the way', async () => {
    const { fake, ctx, run } = setup();

    const outcome = await run();

    expect(outcome).toEqual({
      type: 'advance',
      to: 'RestoringCloudSnap',
      message: 'restoring 2 volume(s) from snapshots',
    });
    expect(ctx.slots.inUse()).toBe(1);
    // Nothing read, nothing written: the creates that follow are the check that names are free.
    expect(fake.calls).toEqual([]);
  });

  it('waits for a slot when the limit is reached, and takes none', async () => {
    const { fake, ctx, run } = setup({ context: { config: { maxConcurrentRestores: 2 } } });
    fake.seed(resources.restores, running('a'));
    fake.seed(resources.restores, running('b'));

    const outcome = await run();

    expect(outcome).toEqual({
      type: 'wait',
      reason: 'WaitingForSlot',
      message: '2 restores are running, the limit is 2; this one starts when its turn comes',
      status: { queuedAt: ctx.now().toISOString() },
    });
    expect(ctx.slots.inUse()).toBe(2);
  });

  it('keeps the time it began to wait, so the wait is not counted against the Pending timeout', async () => {
    const { fake, run } = setup({
      context: { config: { maxConcurrentRestores: 1 } },
      restore: { status: { queuedAt: '2026-01-01T00:00:00Z' } },
    });
    fake.seed(resources.restores, running('a'));
    expect(await run()).toMatchObject({ type: 'wait', status: { queuedAt: '2026-01-01T00:00:00Z' } });
  });

  it('takes the slot a finished restore frees', async () => {
    const { fake, run } = setup({ context: { config: { maxConcurrentRestores: 1 } } });
    const other = fake.seed(resources.restores, running('a'));
    expect((await run()).type).toBe('wait');

    fake.seed(resources.restores, {
      ...other,
      metadata: { ...other.metadata, resourceVersion: undefined },
      status: { ...other.status, phase: 'Successful' },
    });
    expect((await run()).type).toBe('advance');
  });

  it('does not count restores that are Pending or Initializing as running', async () => {
    const { fake, run } = setup({ context: { config: { maxConcurrentRestores: 1 } } });
    fake.seed(resources.restores, restoreIn('Pending', { name: 'x', uid: 'uid-x' }));
    fake.seed(resources.restores, restoreIn('Initializing', { name: 'y', uid: 'uid-y' }));
    expect((await run()).type).toBe('advance');
  });
});

describe('pending: the location credentials of a synced Backup', () => {
  const KEYS = { accessKeyId: 'QUtJQQ==', secretAccessKey: 'czNjcjN0', locationKey: 'a2V5' };

  const synced = (
    options: {
      location?: boolean;
      data?: Record<string, string> | false;
      restore?: RestoreInOptions;
      context?: Omit<RestoreContextOverrides, 'now'>;
    } = {},
  ) => {
    const world = setup({
      backup: syncedBackup('shared-store', { volumeCount: 2 }),
      ...(options.restore === undefined ? {} : { restore: options.restore }),
      ...(options.context === undefined ? {} : { context: options.context }),
    });
    if (options.location !== false)
      world.fake.seed(resources.backupLocations, backupLocation('shared-store'));
    if (options.data !== false) {
      world.fake.seed(
        resources.secrets,
        secret('store-credentials', OPERATOR_NAMESPACE, options.data ?? KEYS),
      );
    }
    return world;
  };

  it("reads the Secret in the operator's namespace, copies it nowhere, and takes a slot", async () => {
    const { fake, ctx, run } = synced();

    expect((await run()).type).toBe('advance');

    expect(ctx.slots.inUse()).toBe(1);
    expect(fake.calls.filter((call) => call.plural === 'secrets')).toEqual([
      { verb: 'get', plural: 'secrets', name: 'store-credentials', namespace: OPERATOR_NAMESPACE },
    ]);
    expect(fake.objects(resources.secrets).map((item) => item.metadata.namespace)).toEqual([
      OPERATOR_NAMESPACE,
    ]);
  });

  it.each([
    [
      'the BackupLocation is missing',
      { location: false },
      'BackupLocation shared-store, which Backup demo/pg-backup was imported from, does not exist; create it, then change spec.recreateToken to try again.',
    ],
    [
      'the credentials Secret is missing',
      { data: false },
      'Secret snapback-system/store-credentials with the credentials of BackupLocation shared-store does not exist; create it, then change spec.recreateToken to try again.',
    ],
    [
      'the Secret lacks a key',
      { data: { accessKeyId: 'QUtJQQ==', locationKey: 'a2V5' } },
      'Secret snapback-system/store-credentials of BackupLocation shared-store has no secretAccessKey; add it, then change spec.recreateToken to try again.',
    ],
  ] as const)('fails FailedBackupCredentialSync when %s, taking no slot', async (_what, options, message) => {
    const { ctx, run } = synced(options);
    expect(await run()).toEqual({ type: 'fail', errorCode: 'FailedBackupCredentialSync', message });
    expect(ctx.slots.inUse()).toBe(0);
  });

  it('fails FailedBackupCredentialSync when the Secret GET answers 403', async () => {
    const { fake, run } = synced();
    fake.failNext('get', 'secrets', apiError(403, 'Forbidden', 'secrets "store-credentials" is forbidden'));
    expect(await run()).toEqual({
      type: 'fail',
      errorCode: 'FailedBackupCredentialSync',
      message:
        'the operator could not read Secret snapback-system/store-credentials: secrets "store-credentials" is forbidden.',
    });
  });

  describe('queued for a slot', () => {
    const queued = (data?: false) =>
      synced({
        restore: { status: { queuedAt: '2030-03-01T11:59:00.000Z' } },
        context: { config: { maxConcurrentRestores: 1 } },
        ...(data === false ? { data } : {}),
      });
    const secretReads = (world: ReturnType<typeof synced>): number =>
      world.fake.calls.filter((call) => call.plural === 'secrets').length;

    it('reads no Secret while it waits its turn', async () => {
      const world = queued();
      world.fake.seed(resources.restores, running('other'));
      expect(await world.run()).toMatchObject({ type: 'wait', reason: 'WaitingForSlot' });
      expect(secretReads(world)).toBe(0);
    });

    it('reads the Secret again when its turn comes, and advances', async () => {
      const world = queued();
      expect((await world.run()).type).toBe('advance');
      expect(secretReads(world)).toBe(1);
    });

    it('fails FailedBackupCredentialSync when its turn comes and the Secret has gone meanwhile', async () => {
      const world = queued(false);
      expect(await world.run()).toMatchObject({ type: 'fail', errorCode: 'FailedBackupCredentialSync' });
    });
  });

  it.each([
    ['429', apiError(429)],
    ['409', apiError(409, 'Conflict')],
    ['a reset connection', connectionReset()],
  ])('throws %s on the Secret GET, to be retried', async (_what, err) => {
    const { fake, ctx, run } = synced();
    fake.failNext('get', 'secrets', err);
    await expect(run()).rejects.toBe(err);
    expect(ctx.slots.inUse()).toBe(0);
  });
});
