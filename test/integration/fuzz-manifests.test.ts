// Fuzzed Backup and Restore manifests against the real API server and operator: wrong types,
// missing and unknown fields, huge and unicode strings, bad names. Every one is either refused by
// the API server with a message, or accepted and brought by the operator to a terminal phase
// (Failed with an error code, or Successful/Completed). The operator never crashes. The seed is
// fixed, so a failure replays; the counts are printed.

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { KubeObject } from '../../src/api/kubernetes.js';
import type { KubeClient } from '../../src/runtime/kube-client.js';
import { ApiError } from '../../src/runtime/errors.js';
import { resources, type ResourceType } from '../../src/runtime/resources.js';
import { createTestNamespace, deleteTestNamespace, testClient, waitFor } from './support/cluster.js';
import { startOperator, type RunningOperator } from './support/operator.js';
import { prng, seedFrom } from './support/random.js';
import { backupManifest, deploySampleDataService, installCrds, waitForBackup } from './support/snapback.js';

const CASES = 120;
const SEED = seedFrom('SNAPBACK_FUZZ_SEED', 20261123);

let client: KubeClient;
let namespace: string;
let operator: RunningOperator;

const random = prng(SEED);
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;

const ODD_VALUES: readonly unknown[] = [
  '',
  'x'.repeat(70_000),
  'Ünïcödé-名前-🙂',
  'UPPER_case',
  '-leading-dash',
  'a'.repeat(64),
  42,
  -1,
  3.5,
  true,
  null,
  [],
  ['a'],
  {},
  { nested: { deeper: 'x' } },
];

/** Replaces, removes or adds one field somewhere in the object, at random. */
function mutate(value: unknown, depth = 0): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || depth > 4)
    return pick(ODD_VALUES);
  const object = { ...(value as Record<string, unknown>) };
  const keys = Object.keys(object);
  const action = random();
  if (keys.length === 0 || action < 0.15) {
    object[pick(['unknownField', 'spec', 'status', 'kind', '🙂'])] = pick(ODD_VALUES);
  } else if (action < 0.3) {
    const dropped = pick(keys);
    return Object.fromEntries(Object.entries(object).filter(([key]) => key !== dropped));
  } else {
    const key = pick(keys);
    object[key] = random() < 0.5 ? mutate(object[key], depth + 1) : pick(ODD_VALUES);
  }
  return object;
}

const validRestore = (name: string) => ({
  metadata: { name, namespace },
  spec: {
    source: { backupName: random() < 0.5 ? 'pg-backup' : 'no-such-backup' },
    destination: { deploymentName: `d-${name}`.slice(0, 40) },
    podSchedulingConfig: { nodeSelector: { zone: 'a' } },
  },
});
const validBackup = (name: string) => ({
  metadata: { name, namespace },
  spec: { deployment: { kind: 'StatefulSet', name: random() < 0.5 ? 'pg' : 'missing' } },
});

beforeAll(async () => {
  client = await testClient();
  await installCrds(client);
  namespace = await createTestNamespace(client, 'fuzz');
  // Short phase timeouts: a fuzzed nodeSelector no node matches must end in PhaseTimeout here.
  const timeout = 15;
  operator = await startOperator(`fuzz-${namespace}`, {
    watchNamespace: namespace,
    restore: {
      phaseTimeoutSeconds: {
        Initializing: timeout,
        Pending: timeout,
        RestoringCloudSnap: timeout,
        RestoringDataServiceDeploymentCR: timeout,
        RestoringDataServiceDeployment: timeout,
        DataServiceDeploymentEnteringNormalMode: timeout,
      },
    },
  });
  await deploySampleDataService(client, namespace, 'pg', 1);
  await client.create(resources.backups, backupManifest(namespace, 'pg-backup', 'pg'));
  await waitForBackup(client, namespace, 'pg-backup', 'Completed');
});

afterAll(async () => {
  await operator.stop();
  await deleteTestNamespace(client, namespace);
  await client.close();
});

type Outcome = 'failed' | 'succeeded';
/** What the test reads of a Backup or a Restore. */
type Tracked = KubeObject & { status?: { phase?: string; errorCode?: string } };

describe('fuzzed manifests', () => {
  it(`${CASES} are each refused with a message or end in a terminal phase; the operator survives`, async () => {
    const counts: Record<string, number> = {};
    const accepted: { rt: ResourceType<Tracked>; name: string; kind: string }[] = [];
    for (let i = 0; i < CASES; i++) {
      const isRestore = i % 2 === 0;
      const name = `fz-${i}`;
      let manifest = (isRestore ? validRestore(name) : validBackup(name)) as Record<string, unknown>;
      for (let m = 1 + Math.floor(random() * 3); m > 0; m--)
        manifest = mutate(manifest) as Record<string, unknown>;
      // Namespace and name stay ours, or the object would land elsewhere; a mutated name is kept
      // when it is a string (the server judges it).
      const metadata = (
        typeof manifest.metadata === 'object' && manifest.metadata !== null ? manifest.metadata : {}
      ) as Record<string, unknown>;
      const finalName = typeof metadata.name === 'string' && metadata.name !== '' ? metadata.name : name;
      manifest.metadata = { ...metadata, name: finalName, namespace };
      const rt: ResourceType<Tracked> = isRestore ? resources.restores : resources.backups;
      try {
        await client.create(rt, manifest as unknown as KubeObject);
        accepted.push({ rt, name: finalName, kind: isRestore ? 'Restore' : 'Backup' });
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        expect(err.statusCode).toBeGreaterThanOrEqual(400);
        expect(err.statusCode).toBeLessThan(500);
        expect(err.message.length).toBeGreaterThan(10);
        counts[`rejected ${err.statusCode}`] = (counts[`rejected ${err.statusCode}`] ?? 0) + 1;
      }
    }

    for (const { rt, name, kind } of accepted) {
      const outcome = await waitFor(
        `${kind} ${name} to reach a terminal phase`,
        async (): Promise<Outcome | undefined> => {
          const object = await client.get(rt, name, namespace);
          const phase = object?.status?.phase;
          if (phase === 'Failed') {
            expect(object?.status?.errorCode).toBeDefined();
            return 'failed';
          }
          return phase === 'Successful' || phase === 'Completed' ? 'succeeded' : undefined;
        },
        90_000,
      );
      counts[`${kind} ${outcome}`] = (counts[`${kind} ${outcome}`] ?? 0) + 1;
    }
    console.log(`fuzz (seed ${SEED}, ${CASES} manifests): ${JSON.stringify(counts)}`);

    const ready = await fetch(`http://127.0.0.1:${operator.port}/readyz`);
    expect(ready.status).toBe(200);
    expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(CASES);
    expect(accepted.length).toBeGreaterThan(0);
    expect(accepted.length).toBeLessThan(CASES);
  });
});
