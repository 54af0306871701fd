// Bad manifests are rejected by the API server itself (OpenAPI schema and CEL rules of crds/),
// with a message that names the field, and nothing is stored. No operator runs here: the
// rejection must not depend on it.

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Backup, Restore, RestorabilityMatrix } from '../../src/api/generated/types.js';
import type { KubeClient } from '../../src/runtime/kube-client.js';
import { ApiError } from '../../src/runtime/errors.js';
import { resources } from '../../src/runtime/resources.js';
import { createTestNamespace, deleteTestNamespace, testClient } from './support/cluster.js';
import { installCrds } from './support/snapback.js';

let client: KubeClient;
let namespace: string;

beforeAll(async () => {
  client = await testClient();
  await installCrds(client);
  namespace = await createTestNamespace(client, 'api-validation');
});

afterAll(async () => {
  await deleteTestNamespace(client, namespace);
  await client.close();
});

/** Creates the object and returns the API server's rejection; fails when it was accepted. */
async function rejection(create: () => Promise<unknown>): Promise<ApiError> {
  try {
    await create();
  } catch (err) {
    if (err instanceof ApiError) return err;
    throw err;
  }
  throw new Error('the API server accepted the object');
}

const restore = (name: string, spec: unknown): Restore =>
  ({ metadata: { name, namespace }, spec }) as Restore;
const backup = (name: string, spec: unknown): Backup => ({ metadata: { name, namespace }, spec }) as Backup;

describe('the API server rejects bad Restores', () => {
  it.each<[string, string, unknown, RegExp]>([
    ['no source', 'no-source', {}, /spec\.source: Required value/],
    [
      'both backupName and backupRef',
      'both-sources',
      { source: { backupName: 'b', backupRef: { namespace: 'x', name: 'b' } } },
      /spec\.source: Invalid value.*exactly one of backupName or backupRef must be set/,
    ],
    [
      'neither backupName nor backupRef',
      'no-backup',
      { source: { cloudSnapId: 'snap-1' } },
      /spec\.source: Invalid value.*exactly one of backupName or backupRef must be set/,
    ],
    [
      'a backupRef without its namespace',
      'ref-no-namespace',
      { source: { backupRef: { name: 'b' } } },
      /spec\.source\.backupRef\.namespace: Required value/,
    ],
    [
      'a backup name that is not a DNS subdomain',
      'bad-backup-name',
      { source: { backupName: 'Not_A_Name' } },
      /spec\.source\.backupName: Invalid value/,
    ],
    [
      'a destination name over 52 characters',
      'long-destination',
      { source: { backupName: 'b' }, destination: { deploymentName: 'd'.repeat(53) } },
      /spec\.destination\.deploymentName: Too long/,
    ],
    [
      'a destination name with capitals',
      'capital-destination',
      { source: { backupName: 'b' }, destination: { deploymentName: 'MyDb' } },
      /spec\.destination\.deploymentName: Invalid value/,
    ],
    [
      'an unknown toleration operator',
      'bad-toleration',
      { source: { backupName: 'b' }, podSchedulingConfig: { tolerations: [{ key: 'k', operator: 'Near' }] } },
      /spec\.podSchedulingConfig\.tolerations\[0\]\.operator: Unsupported value: "Near"/,
    ],
    [
      'an empty cloudSnapId',
      'empty-cloudsnap',
      { source: { backupName: 'b', cloudSnapId: '' } },
      /spec\.source\.cloudSnapId: Invalid value.*at least 1/,
    ],
  ])('%s', async (_case, name, spec, message) => {
    const err = await rejection(() => client.create(resources.restores, restore(name, spec)));
    expect(err.statusCode).toBe(422);
    expect(err.message).toMatch(message);
    expect(await client.get(resources.restores, name, namespace)).toBeUndefined();
  });

  it('a name over 63 characters, which labels could not carry', async () => {
    const name = `r${'x'.repeat(63)}`;
    const err = await rejection(() =>
      client.create(resources.restores, restore(name, { source: { backupName: 'b' } })),
    );
    expect(err.statusCode).toBe(422);
    expect(err.message).toMatch(/metadata\.name must be at most 63 characters/);
  });

  it('a change of source or destination once created', async () => {
    const created = await client.create(
      resources.restores,
      restore('immutable', { source: { backupName: 'b' }, destination: { deploymentName: 'd' } }),
    );
    const changedSource = await rejection(() =>
      client.mergePatch(
        resources.restores,
        'immutable',
        { spec: { source: { backupName: 'other' } } },
        { namespace },
      ),
    );
    expect(changedSource.message).toMatch(/spec\.source: Invalid value.*source is immutable/);
    const changedDestination = await rejection(() =>
      client.mergePatch(
        resources.restores,
        'immutable',
        { spec: { destination: { deploymentName: 'e' } } },
        { namespace },
      ),
    );
    expect(changedDestination.message).toMatch(/spec\.destination: Invalid value.*destination is immutable/);
    const removedDestination = await rejection(() =>
      client.mergePatch(resources.restores, 'immutable', { spec: { destination: null } }, { namespace }),
    );
    expect(removedDestination.message).toMatch(/destination cannot be removed once set/);
    const stored = await client.get(resources.restores, 'immutable', namespace);
    expect(stored?.spec).toEqual(created.spec);
  });
});

describe('the API server rejects bad Backups', () => {
  it.each<[string, string, unknown, RegExp]>([
    ['no deployment', 'no-deployment', {}, /spec\.deployment: Required value/],
    [
      'a deployment kind Snapback has no adapter for',
      'bad-kind',
      { deployment: { kind: 'Deployment', name: 'db' } },
      /spec\.deployment\.kind: Unsupported value: "Deployment"/,
    ],
    [
      'a deployment without a name',
      'no-name',
      { deployment: { kind: 'StatefulSet' } },
      /spec\.deployment\.name: Required value/,
    ],
  ])('%s', async (_case, name, spec, message) => {
    const err = await rejection(() => client.create(resources.backups, backup(name, spec)));
    expect(err.statusCode).toBe(422);
    expect(err.message).toMatch(message);
    expect(await client.get(resources.backups, name, namespace)).toBeUndefined();
  });

  it('a change of spec once created', async () => {
    await client.create(resources.backups, backup('immutable', { deployment: { name: 'db' } }));
    const err = await rejection(() =>
      client.mergePatch(
        resources.backups,
        'immutable',
        { spec: { deployment: { name: 'other' } } },
        { namespace },
      ),
    );
    expect(err.message).toMatch(/spec: Invalid value.*spec is immutable/);
  });
});

describe('the API server rejects bad RestorabilityMatrices', () => {
  it('any name but "default"', async () => {
    const matrix: RestorabilityMatrix = { metadata: { name: 'mine' }, spec: { dataServices: [] } };
    const err = await rejection(() => client.create(resources.restorabilityMatrices, matrix));
    expect(err.statusCode).toBe(422);
    expect(err.message).toMatch(/the operator reads only the RestorabilityMatrix named "default"/);
  });
});
