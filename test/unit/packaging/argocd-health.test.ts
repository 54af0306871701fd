// The Argo CD health checks of deploy/argocd/argocd-cm.yaml, run by a real Lua interpreter
// (wasmoon: Lua compiled to WebAssembly) on Restores and Backups in every phase, and on
// BackupLocations and BackupSchedules in every state.

import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { load } from 'js-yaml';
import { LuaFactory, type LuaEngine } from 'wasmoon';
import { BACKUP_LOCATION_PHASES, BACKUP_PHASES, RESTORE_PHASES } from '../../../src/api/crds.js';
import { REASONS } from '../../../src/controllers/backupschedule/status.js';

interface Health {
  status: string;
  message: string;
}

const { data } = load(readFileSync('deploy/argocd/argocd-cm.yaml', 'utf8')) as {
  data: Record<string, string>;
};
const restoreCheck = data['resource.customizations.health.snapback.dev_Restore'] ?? '';
const backupCheck = data['resource.customizations.health.snapback.dev_Backup'] ?? '';
const locationCheck = data['resource.customizations.health.snapback.dev_BackupLocation'] ?? '';
const scheduleCheck = data['resource.customizations.health.snapback.dev_BackupSchedule'] ?? '';

let lua: LuaEngine;

beforeAll(async () => {
  lua = await new LuaFactory().createEngine();
});

afterAll(() => {
  lua.global.close();
});

async function health(script: string, obj: object): Promise<Health> {
  lua.global.set('obj', obj);
  return (await lua.doString(script)) as Health;
}

describe('Restore health', () => {
  it('is Progressing before the operator has seen it', async () => {
    expect(await health(restoreCheck, { spec: {} })).toMatchObject({ status: 'Progressing' });
  });

  it.each(RESTORE_PHASES.filter((phase) => phase !== 'Successful' && phase !== 'Failed'))(
    'is Progressing in %s, naming the phase',
    async (phase) => {
      expect(await health(restoreCheck, { status: { phase } })).toEqual({
        status: 'Progressing',
        message: phase,
      });
    },
  );

  it('is Healthy when Successful', async () => {
    const obj = { status: { phase: 'Successful', destination: { deploymentName: 'pg-restored' } } };
    expect(await health(restoreCheck, obj)).toEqual({
      status: 'Healthy',
      message: 'Restored into pg-restored',
    });
  });

  it('is Degraded when Failed, with the error code and message', async () => {
    const obj = {
      status: { phase: 'Failed', errorCode: 'BackupNotFound', errorMessage: 'Backup db/x does not exist.' },
    };
    expect(await health(restoreCheck, obj)).toEqual({
      status: 'Degraded',
      message: 'BackupNotFound: Backup db/x does not exist.',
    });
  });
});

describe('Backup health', () => {
  it.each(BACKUP_PHASES.map((phase) => [phase]))('maps %s', async (phase) => {
    const obj = { status: { phase, volumes: [{}, {}], errorCode: 'SnapshotFailed', errorMessage: 'quota' } };
    const expected = {
      Completed: 'Healthy',
      Failed: 'Degraded',
      InProgress: 'Progressing',
      Deleting: 'Progressing',
    }[phase];
    expect((await health(backupCheck, obj)).status).toBe(expected);
  });

  it('counts the volumes of a Completed backup and names the failure of a Failed one', async () => {
    expect(
      (await health(backupCheck, { status: { phase: 'Completed', volumes: [{}, {}, {}] } })).message,
    ).toBe('Backed up 3 volume(s)');
    expect(
      (await health(backupCheck, { status: { phase: 'Failed', errorCode: 'SnapshotFailed' } })).message,
    ).toBe('SnapshotFailed: ');
  });
});

describe('BackupLocation health', () => {
  it('is Progressing before the first check', async () => {
    expect(await health(locationCheck, { spec: {} })).toMatchObject({ status: 'Progressing' });
  });

  it.each(BACKUP_LOCATION_PHASES.map((phase) => [phase]))(
    'maps %s, with the reason and message',
    async (phase) => {
      const obj = { status: { phase, reason: 'Unreachable', message: 'check spec.s3.endpoint' } };
      expect(await health(locationCheck, obj)).toEqual({
        status: { Available: 'Healthy', Unavailable: 'Degraded' }[phase],
        message: 'Unreachable: check spec.s3.endpoint',
      });
    },
  );
});

describe('BackupSchedule health', () => {
  it('is Progressing before the operator has seen it', async () => {
    expect(await health(scheduleCheck, { spec: {} })).toMatchObject({ status: 'Progressing' });
  });

  it.each(Object.values(REASONS).map((reason) => [reason]))('maps Ready reason %s', async (reason) => {
    const obj = {
      status: {
        conditions: [
          { type: 'Other', reason: 'Ignored' },
          { type: 'Ready', reason, message: 'why' },
        ],
      },
    };
    const expected =
      reason === 'Suspended' ? 'Suspended' : reason === 'InvalidSchedule' ? 'Degraded' : 'Healthy';
    expect(await health(scheduleCheck, obj)).toEqual({ status: expected, message: `${reason}: why` });
  });
});
