// The shared reconciler shell every kind runs in: the finalizer, skipping versions our own writes
// replaced, the single status write (none when nothing changed), deletion, and an error a step
// throws turned into status before it is retried or, if terminal, given up on.

import { beforeEach, describe, expect, it, jest } from '@jest/globals';
import winston from 'winston';
import type { BackupSchedule, BackupScheduleStatus } from '../../../src/api/generated/types.js';
import { describeError, TerminalError } from '../../../src/runtime/errors.js';
import { resources } from '../../../src/runtime/resources.js';
import {
  setFinalizer,
  statusReconciler,
  type Finalized,
  type Next,
} from '../../../src/runtime/status-reconciler.js';
import { apiError, connectionReset, FakeClient, type FakeCache } from '../../support/fake-client.js';

type Status = BackupScheduleStatus;

const rt = resources.backupSchedules;
const FINALIZER = 'snapback.dev/test-protection';
const NS = 'ns';
const KEY = `${NS}/s`;
const logger = winston.createLogger({ silent: true });

const schedule = (
  extra: { finalizers?: string[]; status?: Status; deletionTimestamp?: string } = {},
): BackupSchedule => ({
  metadata: {
    name: 's',
    namespace: NS,
    ...(extra.finalizers === undefined ? {} : { finalizers: extra.finalizers }),
    ...(extra.deletionTimestamp === undefined ? {} : { deletionTimestamp: extra.deletionTimestamp }),
  },
  spec: { schedule: '@daily', template: { deployment: { name: 'pg' } } },
  ...(extra.status === undefined ? {} : { status: extra.status }),
});

interface Harness {
  fake: FakeClient;
  cache: FakeCache<BackupSchedule>;
  reconcile: (key: string) => Promise<{ requeueAfterMs?: number } | undefined>;
  step: jest.Mock<(object: BackupSchedule) => Promise<Next<Status>>>;
  finalize: jest.Mock<(object: BackupSchedule) => Promise<Finalized<Status>>>;
  errorStatus: jest.Mock<(object: BackupSchedule, err: unknown, terminal: boolean) => Status | undefined>;
  announce: jest.Mock<(object: BackupSchedule, from: Status, to: Status) => void>;
}

let h: Harness;

/** Pacing for the tests that use it: `lastBackup` stands for the phase, `message` for progress. */
const PACING_MS = 5_000;
let clockMs = 0;

function harness(options: { finalizer?: boolean; paced?: boolean } = {}): Harness {
  const fake = new FakeClient({ now: () => new Date('2026-02-01T00:00:00Z') });
  const cache = fake.cache(rt);
  const step = jest.fn((_object: BackupSchedule) => Promise.resolve<Next<Status>>({}));
  const finalize = jest.fn((_object: BackupSchedule) => Promise.resolve<Finalized<Status>>({ done: true }));
  const errorStatus = jest.fn(
    (object: BackupSchedule, err: unknown, terminal: boolean): Status | undefined => ({
      ...object.status,
      message: `${terminal ? 'failed' : 'retrying'}: ${describeError(err)}`,
    }),
  );
  const announce = jest.fn((_object: BackupSchedule, _from: Status, _to: Status) => undefined);
  const reconcile = statusReconciler<BackupSchedule, Status>({
    resource: rt,
    client: fake,
    cache,
    logger,
    ...(options.finalizer === false ? {} : { finalizer: { name: FINALIZER, finalize } }),
    step,
    errorStatus,
    announce,
    ...(options.paced === true
      ? {
          progressPacing: {
            intervalMs: PACING_MS,
            now: () => clockMs,
            isProgress: (from: Status, to: Status) => to.lastBackup === from.lastBackup,
            // A status that says so is written more often (a transfer under way).
            intervalFor: (to: Status) => (to.message?.startsWith('moving') === true ? 1_000 : PACING_MS),
          },
        }
      : {}),
  });
  return { fake, cache, reconcile, step, finalize, errorStatus, announce };
}

const stored = (): BackupSchedule | undefined => h.fake.peek(rt, 's', NS);
const writes = (): string[] =>
  h.fake.calls
    .filter((call) => call.verb !== 'get' && call.verb !== 'list')
    .map((call) => `${call.verb}${call.subresource === undefined ? '' : `/${call.subresource}`}`);

beforeEach(() => {
  h = harness();
});

describe('statusReconciler', () => {
  it('does nothing for an object not in the cache', async () => {
    await expect(h.reconcile(KEY)).resolves.toBeUndefined();
    expect(h.step).not.toHaveBeenCalled();
    expect(h.fake.calls).toEqual([]);
  });

  it('adds the finalizer once, without running the step in the same reconcile', async () => {
    h.fake.seed(rt, schedule());
    await expect(h.reconcile(KEY)).resolves.toBeUndefined();
    expect(h.step).not.toHaveBeenCalled();
    expect(stored()?.metadata.finalizers).toEqual([FINALIZER]);

    await h.reconcile(KEY);
    await h.reconcile(KEY);
    expect(h.step).toHaveBeenCalledTimes(2);
    expect(writes()).toEqual(['patch']);
    expect(stored()?.metadata.finalizers).toEqual([FINALIZER]);
  });

  it('keeps the finalizers others hold when adding its own', async () => {
    h.fake.seed(rt, schedule({ finalizers: ['someone.else/keep'] }));
    await h.reconcile(KEY);
    expect(stored()?.metadata.finalizers).toEqual(['someone.else/keep', FINALIZER]);
  });

  it('runs without a finalizer when the kind has none', async () => {
    h = harness({ finalizer: false });
    h.fake.seed(rt, schedule());
    h.step.mockResolvedValue({ status: { message: 'hello' } });
    await h.reconcile(KEY);
    expect(h.step).toHaveBeenCalledTimes(1);
    expect(stored()?.metadata.finalizers).toBeUndefined();
    expect(stored()?.status).toEqual({ message: 'hello' });
  });

  it('skips an object whose cached version its own status write replaced, until the cache catches up', async () => {
    h.fake.seed(rt, schedule({ finalizers: [FINALIZER] }));
    h.step.mockResolvedValue({ status: { message: 'one' }, requeueAfterMs: 1_000 });
    h.cache.freeze();
    await expect(h.reconcile(KEY)).resolves.toEqual({ requeueAfterMs: 1_000 });
    expect(stored()?.status).toEqual({ message: 'one' });
    h.fake.clearCalls();

    // The watch has not delivered the write: the step would work from the replaced version and
    // its write would fail with 409. Nothing is done, and no requeue is asked for.
    await expect(h.reconcile(KEY)).resolves.toBeUndefined();
    expect(h.step).toHaveBeenCalledTimes(1);
    expect(h.fake.calls).toEqual([]);

    h.cache.thaw();
    h.step.mockResolvedValue({ status: { message: 'two' } });
    await h.reconcile(KEY);
    expect(h.step).toHaveBeenCalledTimes(2);
    expect(h.step.mock.calls[1]?.[0].status).toEqual({ message: 'one' });
    expect(stored()?.status).toEqual({ message: 'two' });
  });

  it('skips the version its own finalizer write replaced', async () => {
    h.fake.seed(rt, schedule());
    h.cache.freeze();
    await h.reconcile(KEY);
    h.fake.clearCalls();
    // A second add from the stale version would be a 409 Conflict.
    await expect(h.reconcile(KEY)).resolves.toBeUndefined();
    expect(h.fake.calls).toEqual([]);
    expect(h.step).not.toHaveBeenCalled();
  });

  it('writes nothing and tells nothing when the status is unchanged', async () => {
    const status: Status = { message: 'same', lastBackup: 's-1' };
    h.fake.seed(rt, schedule({ finalizers: [FINALIZER], status }));
    h.step.mockResolvedValue({ status: { lastBackup: 's-1', message: 'same' }, requeueAfterMs: 500 });
    await expect(h.reconcile(KEY)).resolves.toEqual({ requeueAfterMs: 500 });
    expect(writes()).toEqual([]);
    expect(h.announce).not.toHaveBeenCalled();
  });

  it('writes nothing for a step that returns no status', async () => {
    h.fake.seed(rt, schedule({ finalizers: [FINALIZER], status: { message: 'kept' } }));
    await expect(h.reconcile(KEY)).resolves.toBeUndefined();
    expect(writes()).toEqual([]);
    expect(stored()?.status).toEqual({ message: 'kept' });
  });

  it('writes a changed status once, through the status subresource, and announces it once with (from, to)', async () => {
    h.fake.seed(rt, schedule({ finalizers: [FINALIZER], status: { message: 'before' } }));
    h.step.mockResolvedValue({ status: { message: 'after' } });
    await h.reconcile(KEY);
    expect(writes()).toEqual(['update/status']);
    expect(stored()?.status).toEqual({ message: 'after' });
    expect(h.announce).toHaveBeenCalledTimes(1);
    const [object, from, to] = h.announce.mock.calls[0] ?? [];
    expect(from).toEqual({ message: 'before' });
    expect(to).toEqual({ message: 'after' });
    // The object announced is the one written, with its new resourceVersion.
    expect(object?.metadata.resourceVersion).toBe(stored()?.metadata.resourceVersion);

    await h.reconcile(KEY);
    expect(h.announce).toHaveBeenCalledTimes(1);
    expect(writes()).toEqual(['update/status']);
  });

  it('announces a first status from an empty one', async () => {
    h.fake.seed(rt, schedule({ finalizers: [FINALIZER] }));
    h.step.mockResolvedValue({ status: { message: 'first' } });
    await h.reconcile(KEY);
    expect(h.announce.mock.calls.map(([, from, to]) => [from, to])).toEqual([[{}, { message: 'first' }]]);
  });

  it('records a transient error of the step as errorStatus(…, false) and rejects with the same error', async () => {
    h.fake.seed(rt, schedule({ finalizers: [FINALIZER], status: { lastBackup: 's-1' } }));
    const err = connectionReset();
    h.step.mockRejectedValue(err);
    const rejection = h.reconcile(KEY);
    await expect(rejection).rejects.toBe(err);
    expect(h.errorStatus).toHaveBeenCalledTimes(1);
    expect(h.errorStatus.mock.calls[0]?.[1]).toBe(err);
    expect(h.errorStatus.mock.calls[0]?.[2]).toBe(false);
    expect(stored()?.status).toEqual({ lastBackup: 's-1', message: 'retrying: read ECONNRESET' });
    expect(h.announce).toHaveBeenCalledTimes(1);
  });

  it('treats an error that is neither transient nor terminal as retried (errorStatus(…, false))', async () => {
    h.fake.seed(rt, schedule({ finalizers: [FINALIZER] }));
    const err = new Error('something odd');
    h.step.mockRejectedValue(err);
    await expect(h.reconcile(KEY)).rejects.toBe(err);
    expect(h.errorStatus.mock.calls[0]?.[2]).toBe(false);
    expect(stored()?.status).toEqual({ message: 'retrying: something odd' });
  });

  it('records a 403 as errorStatus(…, true) and rejects with a TerminalError naming it', async () => {
    h.fake.seed(rt, schedule({ finalizers: [FINALIZER] }));
    const err = apiError(403, 'Forbidden', 'backups.snapback.dev is forbidden: User "sa" cannot create');
    h.step.mockRejectedValue(err);
    let thrown: unknown;
    try {
      await h.reconcile(KEY);
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(TerminalError);
    expect(thrown).toMatchObject({
      message: '403 Forbidden: backups.snapback.dev is forbidden: User "sa" cannot create',
      cause: err,
    });
    expect(h.errorStatus.mock.calls[0]?.[2]).toBe(true);
    expect(stored()?.status).toEqual({
      message: 'failed: 403 Forbidden: backups.snapback.dev is forbidden: User "sa" cannot create',
    });
  });

  it('rethrows a TerminalError of the step as a TerminalError and records it as terminal', async () => {
    h.fake.seed(rt, schedule({ finalizers: [FINALIZER] }));
    h.step.mockRejectedValue(new TerminalError('not a storage quantity: "lots"'));
    await expect(h.reconcile(KEY)).rejects.toBeInstanceOf(TerminalError);
    expect(h.errorStatus.mock.calls[0]?.[2]).toBe(true);
  });

  it('writes nothing when errorStatus records nothing, and still rejects', async () => {
    h.fake.seed(rt, schedule({ finalizers: [FINALIZER], status: { message: 'kept' } }));
    h.errorStatus.mockReturnValue(undefined);
    const err = apiError(503);
    h.step.mockRejectedValue(err);
    await expect(h.reconcile(KEY)).rejects.toBe(err);
    expect(writes()).toEqual([]);
  });

  it('ignores a status write answering 404 (deleted since the cache saw it)', async () => {
    h.fake.seed(rt, schedule({ finalizers: [FINALIZER] }));
    h.step.mockResolvedValue({ status: { message: 'late' }, requeueAfterMs: 2_000 });
    h.fake.failNext(
      'update',
      rt.plural,
      apiError(404, 'NotFound', 'backupschedules.snapback.dev "s" not found'),
    );
    await expect(h.reconcile(KEY)).resolves.toEqual({ requeueAfterMs: 2_000 });
    expect(h.announce).not.toHaveBeenCalled();
  });

  it('rejects with the 409 of a status write from a stale version, announcing nothing', async () => {
    h.fake.seed(rt, schedule({ finalizers: [FINALIZER] }));
    h.step.mockResolvedValue({ status: { message: 'stale' } });
    h.cache.freeze();
    // Someone else writes meanwhile; the cache has not seen it.
    await h.fake.mergePatch(rt, 's', { metadata: { labels: { touched: 'yes' } } }, { namespace: NS });
    await expect(h.reconcile(KEY)).rejects.toMatchObject({ statusCode: 409, reason: 'Conflict' });
    expect(h.announce).not.toHaveBeenCalled();
    expect(stored()?.status).toBeUndefined();
  });

  describe('deletion', () => {
    const deleting = (status?: Status): BackupSchedule =>
      schedule({
        finalizers: [FINALIZER],
        deletionTimestamp: '2026-02-01T00:00:00Z',
        ...(status === undefined ? {} : { status }),
      });

    it('keeps the finalizer and returns the requeue while finalize is not done, writing its status', async () => {
      h.fake.seed(rt, deleting());
      h.finalize.mockResolvedValue({ done: false, requeueAfterMs: 5_000, status: { message: 'waiting' } });
      await expect(h.reconcile(KEY)).resolves.toEqual({ requeueAfterMs: 5_000 });
      expect(h.step).not.toHaveBeenCalled();
      expect(stored()?.metadata.finalizers).toEqual([FINALIZER]);
      expect(stored()?.status).toEqual({ message: 'waiting' });
      expect(writes()).toEqual(['update/status']);
    });

    it('asks for no requeue when finalize is not done and names none', async () => {
      h.fake.seed(rt, deleting());
      h.finalize.mockResolvedValue({ done: false });
      await expect(h.reconcile(KEY)).resolves.toBeUndefined();
      expect(stored()?.metadata.finalizers).toEqual([FINALIZER]);
    });

    it('removes the finalizer once finalize is done, and the object goes', async () => {
      h.fake.seed(rt, deleting());
      h.finalize.mockResolvedValue({ done: true, requeueAfterMs: 5_000 });
      await expect(h.reconcile(KEY)).resolves.toBeUndefined();
      expect(writes()).toEqual(['patch']);
      expect(stored()).toBeUndefined();
    });

    it('removes only its own finalizer', async () => {
      h.fake.seed(rt, {
        ...deleting(),
        metadata: { ...deleting().metadata, finalizers: ['other/x', FINALIZER] },
      });
      await h.reconcile(KEY);
      expect(stored()?.metadata.finalizers).toEqual(['other/x']);
    });

    it('does nothing for an object being deleted that does not hold its finalizer', async () => {
      h.fake.seed(rt, {
        ...deleting(),
        metadata: { ...deleting().metadata, finalizers: ['other/x'] },
      });
      await expect(h.reconcile(KEY)).resolves.toBeUndefined();
      expect(h.finalize).not.toHaveBeenCalled();
      expect(h.step).not.toHaveBeenCalled();
      expect(h.fake.calls).toEqual([]);
    });

    it('records an error of finalize as it does one of the step', async () => {
      h.fake.seed(rt, deleting());
      const err = apiError(500, 'InternalError', 'etcd leader changed');
      h.finalize.mockRejectedValue(err);
      await expect(h.reconcile(KEY)).rejects.toBe(err);
      expect(stored()?.status).toEqual({ message: 'retrying: 500 InternalError: etcd leader changed' });
      expect(stored()?.metadata.finalizers).toEqual([FINALIZER]);
    });
  });
});

describe('progress pacing', () => {
  beforeEach(() => {
    clockMs = 0;
    h = harness({ paced: true });
    h.fake.seed(rt, schedule({ finalizers: [FINALIZER] }));
  });

  const written = (): Status | undefined => stored()?.status;

  it('holds a progress write made within the interval of the last one, and asks to look again when it is due', async () => {
    h.step.mockResolvedValue({ status: { lastBackup: 's-1', message: '0/3' } });
    await h.reconcile(KEY);
    clockMs = 1_000;
    h.step.mockResolvedValue({ status: { lastBackup: 's-1', message: '1/3' }, requeueAfterMs: 30_000 });
    await expect(h.reconcile(KEY)).resolves.toEqual({ requeueAfterMs: 4_000 });
    expect(written()).toEqual({ lastBackup: 's-1', message: '0/3' });

    clockMs = 5_000;
    h.step.mockResolvedValue({ status: { lastBackup: 's-1', message: '2/3' }, requeueAfterMs: 30_000 });
    await expect(h.reconcile(KEY)).resolves.toEqual({ requeueAfterMs: 30_000 });
    expect(written()).toEqual({ lastBackup: 's-1', message: '2/3' });
    expect(writes()).toEqual(['update/status', 'update/status']);
  });

  it('writes progress as often as intervalFor says for the status written', async () => {
    h.step.mockResolvedValue({ status: { lastBackup: 's-1', message: 'moving 0%' } });
    await h.reconcile(KEY);
    clockMs = 600;
    h.step.mockResolvedValue({ status: { lastBackup: 's-1', message: 'moving 10%' } });
    await expect(h.reconcile(KEY)).resolves.toEqual({ requeueAfterMs: 400 });
    clockMs = 1_000;
    h.step.mockResolvedValue({ status: { lastBackup: 's-1', message: 'moving 20%' } });
    await h.reconcile(KEY);
    expect(written()).toEqual({ lastBackup: 's-1', message: 'moving 20%' });
    expect(writes()).toEqual(['update/status', 'update/status']);
  });

  it('keeps a sooner requeue of the step', async () => {
    h.step.mockResolvedValue({ status: { lastBackup: 's-1', message: '0/3' } });
    await h.reconcile(KEY);
    h.step.mockResolvedValue({ status: { lastBackup: 's-1', message: '1/3' }, requeueAfterMs: 0 });
    await expect(h.reconcile(KEY)).resolves.toEqual({ requeueAfterMs: 0 });
  });

  it('writes a change that enters a phase at once, superseding held progress', async () => {
    h.step.mockResolvedValue({ status: { lastBackup: 's-1', message: '0/3' } });
    await h.reconcile(KEY);
    clockMs = 100;
    h.step.mockResolvedValue({ status: { lastBackup: 's-1', message: '1/3' } });
    await h.reconcile(KEY);
    clockMs = 200;
    h.step.mockResolvedValue({ status: { lastBackup: 's-2', message: 'done' } });
    await expect(h.reconcile(KEY)).resolves.toBeUndefined();
    expect(written()).toEqual({ lastBackup: 's-2', message: 'done' });
    expect(writes()).toEqual(['update/status', 'update/status']);
    expect(h.announce.mock.calls.map(([, , to]) => to.message)).toEqual(['0/3', 'done']);
  });

  it("paces the error it records like any progress; the error still goes to the queue's backoff", async () => {
    h.step.mockResolvedValue({ status: { lastBackup: 's-1', message: '0/3' } });
    await h.reconcile(KEY);
    const err = connectionReset();
    h.step.mockRejectedValue(err);
    await expect(h.reconcile(KEY)).rejects.toBe(err);
    expect(written()).toEqual({ lastBackup: 's-1', message: '0/3' });
    clockMs = PACING_MS;
    await expect(h.reconcile(KEY)).rejects.toBe(err);
    expect(written()?.message).toBe(`retrying: ${describeError(err)}`);
  });

  it("forgets an object once it is gone from the cache: a new one of the same name isn't held", async () => {
    h.step.mockResolvedValue({ status: { lastBackup: 's-1', message: '0/3' } });
    await h.reconcile(KEY);
    await h.fake.delete(rt, 's', { namespace: NS });
    await h.reconcile(KEY);
    h.fake.seed(rt, schedule({ finalizers: [FINALIZER], status: { lastBackup: 's-1' } }));
    h.step.mockResolvedValue({ status: { lastBackup: 's-1', message: 'new' } });
    await h.reconcile(KEY);
    expect(written()).toEqual({ lastBackup: 's-1', message: 'new' });
  });
});

describe('setFinalizer', () => {
  it('is conditional on the resourceVersion it read', async () => {
    const fake = new FakeClient();
    const seeded = fake.seed(rt, schedule());
    await fake.mergePatch(rt, 's', { metadata: { labels: { a: 'b' } } }, { namespace: NS });
    await expect(setFinalizer(fake, rt, seeded, FINALIZER, true)).rejects.toMatchObject({ statusCode: 409 });
    expect(fake.peek(rt, 's', NS)?.metadata.finalizers).toBeUndefined();
  });
});
