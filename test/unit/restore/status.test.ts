import { isDeepStrictEqual } from 'node:util';
import { describe, expect, it } from '@jest/globals';
import type { Restore, RestoreStatus } from '../../../src/api/generated/types.js';
import type { Condition } from '../../../src/api/kubernetes.js';
import { advance, fail, wait } from '../../../src/controllers/restore/outcome.js';
import { applyOutcome, newAttempt, phaseEnteredAt } from '../../../src/controllers/restore/status.js';
import { setCondition } from '../../../src/controllers/shared/conditions.js';
import { customResourceName } from '../../../src/naming.js';

const T0 = '2025-01-01T00:00:00Z';
const T1 = '2025-01-01T00:01:00Z';
const T2 = '2025-01-01T00:02:00Z';
const T3 = '2025-01-01T00:03:00Z';

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function restore(
  overrides: { name?: string; uid?: string; generation?: number; token?: string } = {},
): Restore {
  return {
    apiVersion: 'snapback.dev/v1alpha1',
    kind: 'Restore',
    metadata: {
      name: overrides.name ?? 'pg-restore',
      namespace: 'demo',
      uid: overrides.uid ?? '0b7c8a0e-1111-4111-8111-111111111111',
      ...(overrides.generation === undefined ? {} : { generation: overrides.generation }),
    },
    spec: {
      source: { backupName: 'pg-backup' },
      ...(overrides.token === undefined ? {} : { recreateToken: overrides.token }),
    },
  };
}

function condition(status: RestoreStatus, type: string): Condition {
  const found = status.conditions?.find((c) => c.type === type);
  if (found === undefined) throw new Error(`no ${type} condition`);
  return found;
}

const statuses = (status: RestoreStatus) =>
  Object.fromEntries((status.conditions ?? []).map((c) => [c.type, c.status]));

describe('setCondition', () => {
  it('appends a new condition with lastTransitionTime now', () => {
    const list = setCondition(undefined, { type: 'Ready', status: 'False', reason: 'A', message: 'a' }, T0);
    expect(list).toEqual([
      { type: 'Ready', status: 'False', reason: 'A', message: 'a', lastTransitionTime: T0 },
    ]);
  });

  it('keeps lastTransitionTime when the status does not change, but updates reason and message', () => {
    const before = setCondition(undefined, { type: 'Ready', status: 'False', reason: 'A', message: 'a' }, T0);
    const after = setCondition(before, { type: 'Ready', status: 'False', reason: 'B', message: 'b' }, T1);
    expect(after).toEqual([
      { type: 'Ready', status: 'False', reason: 'B', message: 'b', lastTransitionTime: T0 },
    ]);
  });

  it('moves lastTransitionTime when the status changes, in place, without touching others', () => {
    let list = setCondition(undefined, { type: 'Ready', status: 'False', reason: 'A', message: '' }, T0);
    list = setCondition(list, { type: 'Failed', status: 'False', reason: 'A', message: '' }, T0);
    const before = structuredClone(list);
    const after = setCondition(list, { type: 'Ready', status: 'True', reason: 'Done', message: '' }, T1);
    expect(after.map((c) => [c.type, c.status, c.lastTransitionTime])).toEqual([
      ['Ready', 'True', T1],
      ['Failed', 'False', T0],
    ]);
    expect(list).toEqual(before);
  });
});

describe('newAttempt', () => {
  it('names the attempt "restore-<name>-<shortId>" from the restore UID and attempt', () => {
    const status = newAttempt(restore(), 1, T0);
    expect(status.customResourceName).toMatch(/^restore-pg-restore-[a-z2-7]{6}$/);
    expect(status.customResourceName).toBe(
      customResourceName('pg-restore', '0b7c8a0e-1111-4111-8111-111111111111', 1),
    );
  });

  it('gives a name that is stable for the same attempt and new for each attempt', () => {
    expect(newAttempt(restore(), 1, T0).customResourceName).toBe(
      newAttempt(restore(), 1, T3).customResourceName,
    );
    expect(newAttempt(restore(), 2, T0).customResourceName).not.toBe(
      newAttempt(restore(), 1, T0).customResourceName,
    );
    expect(newAttempt(restore({ uid: 'other-uid' }), 1, T0).customResourceName).not.toBe(
      newAttempt(restore(), 1, T0).customResourceName,
    );
  });

  it('keeps the name a DNS-1123 label of at most 63 characters for long restore names', () => {
    const name = newAttempt(restore({ name: 'x'.repeat(200) }), 3, T0).customResourceName ?? '';
    expect(name.length).toBeLessThanOrEqual(63);
    expect(name).toMatch(DNS1123_LABEL);
  });

  it('starts at Initializing with the attempt, start time and phase history', () => {
    const status = newAttempt(restore({ generation: 4 }), 2, T0);
    expect(status).toMatchObject({
      phase: 'Initializing',
      attempt: 2,
      startedAt: T0,
      observedGeneration: 4,
      phaseHistory: [{ phase: 'Initializing', enteredAt: T0 }],
    });
    expect(status.completedAt).toBeUndefined();
    expect(status.errorCode).toBeUndefined();
  });

  it('sets Ready False, Progressing True, Failed False', () => {
    const status = newAttempt(restore({ generation: 4 }), 1, T0);
    expect(statuses(status)).toEqual({ Ready: 'False', Progressing: 'True', Failed: 'False' });
    for (const c of status.conditions ?? []) {
      expect(c.lastTransitionTime).toBe(T0);
      expect(c.observedGeneration).toBe(4);
    }
  });

  it('records the recreate token the attempt was started for, and none when absent', () => {
    expect(newAttempt(restore({ token: 'try-2' }), 2, T0).observedRecreateToken).toBe('try-2');
    expect(newAttempt(restore(), 1, T0)).not.toHaveProperty('observedRecreateToken');
  });
});

describe('applyOutcome', () => {
  const start = (): RestoreStatus => newAttempt(restore({ generation: 1 }), 1, T0);

  it('advance moves the phase and appends it to the history', () => {
    const next = applyOutcome(start(), advance('Pending', 'backup resolved'), T1, 1);
    expect(next.phase).toBe('Pending');
    expect(next.phaseHistory).toEqual([
      { phase: 'Initializing', enteredAt: T0 },
      { phase: 'Pending', enteredAt: T1 },
    ]);
    expect(next.completedAt).toBeUndefined();
    expect(statuses(next)).toEqual({ Ready: 'False', Progressing: 'True', Failed: 'False' });
    expect(condition(next, 'Progressing')).toMatchObject({ reason: 'Pending', message: 'backup resolved' });
  });

  it('merges the outcome status fields into the status', () => {
    const next = applyOutcome(
      start(),
      advance('Pending', 'ok', { destination: { kind: 'StatefulSet', deploymentName: 'pg-2' } }),
      T1,
      1,
    );
    expect(next.destination).toEqual({ kind: 'StatefulSet', deploymentName: 'pg-2' });
    expect(next.customResourceName).toBe(start().customResourceName);
  });

  it('wait keeps the phase and the history, and carries the reason', () => {
    const current = applyOutcome(start(), advance('Pending', 'ok'), T1, 1);
    const next = applyOutcome(current, wait('WaitingForSlot', '20 of 20 slots in use'), T2, 1);
    expect(next.phase).toBe('Pending');
    expect(next.phaseHistory).toEqual(current.phaseHistory);
    expect(condition(next, 'Progressing')).toMatchObject({
      status: 'True',
      reason: 'WaitingForSlot',
      message: '20 of 20 slots in use',
    });
  });

  it('keeps lastTransitionTime of conditions whose status does not change', () => {
    const current = applyOutcome(start(), advance('Pending', 'ok'), T1, 1);
    const next = applyOutcome(current, wait('WaitingForSlot', 'busy'), T2, 1);
    for (const type of ['Ready', 'Progressing', 'Failed']) {
      expect(condition(next, type).lastTransitionTime).toBe(T0);
    }
  });

  it('a repeated identical wait yields a deeply equal status, so nothing is written', () => {
    const current = applyOutcome(start(), wait('WaitingForBackup', 'backup is InProgress'), T1, 1);
    const again = applyOutcome(current, wait('WaitingForBackup', 'backup is InProgress'), T2, 1);
    expect(isDeepStrictEqual(again, current)).toBe(true);
    expect(again).toStrictEqual(current);
  });

  it('a wait with a new message is a change', () => {
    const current = applyOutcome(start(), wait('WaitingForBackup', 'backup is InProgress'), T1, 1);
    const again = applyOutcome(current, wait('WaitingForBackup', '2 of 3 snapshots ready'), T2, 1);
    expect(isDeepStrictEqual(again, current)).toBe(false);
  });

  it('fail moves to Failed with error code, message and completedAt', () => {
    const current = applyOutcome(start(), advance('Pending', 'ok'), T1, 1);
    const next = applyOutcome(
      current,
      fail('DataServiceDeploymentNameAlreadyExist', 'StatefulSet pg already exists'),
      T2,
      1,
    );
    expect(next).toMatchObject({
      phase: 'Failed',
      errorCode: 'DataServiceDeploymentNameAlreadyExist',
      errorMessage: 'StatefulSet pg already exists',
      completedAt: T2,
      startedAt: T0,
    });
    expect(next.phaseHistory?.map((h) => [h.phase, h.enteredAt])).toEqual([
      ['Initializing', T0],
      ['Pending', T1],
      ['Failed', T2],
    ]);
  });

  it('fail sets Ready False (kept), Progressing False (moved) and Failed True (moved)', () => {
    const current = applyOutcome(start(), advance('Pending', 'ok'), T1, 1);
    const next = applyOutcome(current, fail('BackupNotFound', 'Backup pg-backup not found'), T2, 1);
    expect(statuses(next)).toEqual({ Ready: 'False', Progressing: 'False', Failed: 'True' });
    expect(condition(next, 'Ready').lastTransitionTime).toBe(T0);
    expect(condition(next, 'Progressing').lastTransitionTime).toBe(T2);
    expect(condition(next, 'Failed')).toMatchObject({
      lastTransitionTime: T2,
      reason: 'BackupNotFound',
      message: 'Backup pg-backup not found',
    });
  });

  it('advance to Successful sets completedAt and Ready True', () => {
    let status = start();
    const path = [
      'Pending',
      'RestoringCloudSnap',
      'RestoringDataServiceDeploymentCR',
      'RestoringDataServiceDeployment',
      'DataServiceDeploymentEnteringNormalMode',
    ] as const;
    for (const phase of path) status = applyOutcome(status, advance(phase, phase), T1, 1);
    const done = applyOutcome(status, advance('Successful', 'healthy'), T3, 1);
    expect(done.phase).toBe('Successful');
    expect(done.completedAt).toBe(T3);
    expect(done.errorCode).toBeUndefined();
    expect(done.phaseHistory?.map((h) => h.phase)).toEqual(['Initializing', ...path, 'Successful']);
    expect(statuses(done)).toEqual({ Ready: 'True', Progressing: 'False', Failed: 'False' });
    expect(condition(done, 'Ready')).toMatchObject({ reason: 'RestoreSucceeded', lastTransitionTime: T3 });
    expect(condition(done, 'Failed').lastTransitionTime).toBe(T0);
  });

  it('records the generation it was written for on the status and conditions', () => {
    const next = applyOutcome(start(), advance('Pending', 'ok'), T1, 7);
    expect(next.observedGeneration).toBe(7);
    for (const c of next.conditions ?? []) expect(c.observedGeneration).toBe(7);
  });

  it('does not mutate the current status', () => {
    const current = start();
    const before = structuredClone(current);
    applyOutcome(current, fail('RestoreInternalError', 'boom'), T1, 2);
    expect(current).toEqual(before);
  });
});

describe('phaseEnteredAt', () => {
  it.each<{ name: string; status: RestoreStatus; expected: string | undefined }>([
    {
      name: 'the entry of the current phase',
      status: {
        phase: 'Pending',
        phaseHistory: [
          { phase: 'Initializing', enteredAt: T0 },
          { phase: 'Pending', enteredAt: T1 },
        ],
      },
      expected: T1,
    },
    {
      name: 'the latest entry when a phase appears twice',
      status: {
        phase: 'Initializing',
        phaseHistory: [
          { phase: 'Initializing', enteredAt: T0 },
          { phase: 'Failed', enteredAt: T1 },
          { phase: 'Initializing', enteredAt: T2 },
        ],
      },
      expected: T2,
    },
    { name: 'undefined without a history', status: { phase: 'Pending' }, expected: undefined },
    {
      name: 'undefined when the phase is not in the history',
      status: { phase: 'Pending', phaseHistory: [{ phase: 'Initializing', enteredAt: T0 }] },
      expected: undefined,
    },
  ])('$name', ({ status, expected }) => {
    expect(phaseEnteredAt(status)).toBe(expected);
  });

  it('follows applyOutcome', () => {
    const status = applyOutcome(newAttempt(restore(), 1, T0), advance('Pending', 'ok'), T2, undefined);
    expect(phaseEnteredAt(status)).toBe(T2);
    expect(phaseEnteredAt(applyOutcome(status, wait('Busy', 'busy'), T3, undefined))).toBe(T2);
  });
});
