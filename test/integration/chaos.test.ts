// Chaos: many restores advancing while the operator is SIGKILLed at random moments, while the
// API server restarts, while leadership moves to the other replica, and while another writer
// edits the restores. Every run is checked the same way: each restore Successful in its first
// attempt with the happy path in phaseHistory exactly once, no phase ever seen moving backwards by
// a watch that ran throughout, and exactly the objects the restores call for (one StatefulSet and
// one PVC per restore, owned by its attempt), nothing duplicated or orphaned. The random moments
// come from a seeded generator: SNAPBACK_CHAOS_SEED replays a run.

import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Registry } from 'prom-client';
import { labels } from '../../src/api/constants.js';
import type { Restore, RestorePhase } from '../../src/api/generated/types.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { pause } from '../../src/runtime/async.js';
import { Informer } from '../../src/runtime/informer.js';
import type { KubeClient } from '../../src/runtime/kube-client.js';
import { ApiError } from '../../src/runtime/errors.js';
import { resources } from '../../src/runtime/resources.js';
import { HAPPY_PATH, isTerminal } from '../../src/controllers/restore/transitions.js';
import { testLogger } from './runtime/support.js';
import {
  createTestNamespace,
  deleteTestNamespace,
  KUBECONFIG_PATH,
  REPO_ROOT,
  testClient,
  waitFor,
} from './support/cluster.js';
import { metricValue, startOperator, type RunningOperator } from './support/operator.js';
import { prng, seedFrom } from './support/random.js';
import {
  backupManifest,
  createRestores,
  deploySampleDataService,
  installCrds,
  waitForBackup,
} from './support/snapback.js';

const SEED = seedFrom('SNAPBACK_CHAOS_SEED', 20261124);
const random = prng(SEED);
const between = (lowMs: number, highMs: number): number => lowMs + random() * (highMs - lowMs);

let client: KubeClient;
const namespaces: string[] = [];
const operators: RunningOperator[] = [];
const watchers: PhaseWatch[] = [];
const report: Record<string, unknown> = { seed: SEED };

/**
 * Every phase each restore is seen in, in the order a watch delivers them; a watch that ran for the
 * whole run sees a backwards move however briefly it lasted.
 */
class PhaseWatch {
  readonly seen = new Map<string, RestorePhase[]>();
  private readonly informer: Informer<Restore>;

  constructor(namespace: string) {
    const metrics = createMetrics(new Registry());
    this.informer = new Informer(
      client,
      resources.restores,
      { namespace, backoffInitialMs: 100, backoffMaxMs: 1_000 },
      { logger: testLogger(`chaos-watch-${namespace}`), metrics: metrics.informer },
    );
    const record = (restore: Restore): void => {
      const phase = restore.status?.phase;
      if (phase === undefined) return;
      const name = restore.metadata.name ?? '';
      const phases = this.seen.get(name) ?? [];
      if (phases.at(-1) !== phase) phases.push(phase);
      this.seen.set(name, phases);
    };
    this.informer.on({ add: record, update: record });
  }

  async start(): Promise<void> {
    this.informer.start();
    await this.informer.waitForSync();
  }

  stop(): Promise<void> {
    return this.informer.stop();
  }

  /** Restores seen moving to an earlier phase of the happy path (or out of a terminal one). */
  regressions(): string[] {
    const found: string[] = [];
    for (const [name, phases] of this.seen) {
      phases.forEach((phase, i) => {
        const previous = phases[i - 1];
        if (previous === undefined) return;
        if (isTerminal(previous) || HAPPY_PATH.indexOf(phase) < HAPPY_PATH.indexOf(previous))
          found.push(`${name}: ${previous} -> ${phase}`);
      });
    }
    return found;
  }
}

interface Run {
  namespace: string;
  names: string[];
  watch: PhaseWatch;
}

interface Launched {
  run: Run;
  /** The operators started so far, the first `replicas` of them by launch(). */
  operators: RunningOperator[];
  /** Starts one more operator process on the run's Lease. */
  start: () => Promise<RunningOperator>;
}

/**
 * A namespace with a 1-replica data service, a phase watch, `replicas` operator processes on one
 * Lease, the Backup completed, and then `count` restores of it created.
 */
async function launch(
  prefix: string,
  count: number,
  { replicas = 1, lease = SHORT_LEASE, workers = 4 } = {},
): Promise<Launched> {
  const namespace = await createTestNamespace(client, prefix);
  namespaces.push(namespace);
  await deploySampleDataService(client, namespace, 'pg', 1);
  await client.create(resources.backups, backupManifest(namespace, 'pg-backup', 'pg'));
  const watch = new PhaseWatch(namespace);
  watchers.push(watch);
  await watch.start();
  const started: RunningOperator[] = [];
  const start = async (): Promise<RunningOperator> => {
    const process = await startOperator(`${prefix}-${namespace}-${started.length}`, {
      watchNamespace: namespace,
      workers,
      leaderElection: { leaseName: `snapback-chaos-${namespace}`, ...lease },
    });
    operators.push(process);
    started.push(process);
    return process;
  };
  for (let i = 0; i < replicas; i++) await start();
  await waitForBackup(client, namespace, 'pg-backup', 'Completed');
  const names = await createRestores(client, namespace, count);
  return { run: { namespace, names, watch }, operators: started, start };
}

/** How many of the restores are in each phase (unset: "(none)"). */
function countPhases(restores: readonly Restore[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const restore of restores) {
    const phase = restore.status?.phase ?? '(none)';
    counts[phase] = (counts[phase] ?? 0) + 1;
  }
  return counts;
}

async function phaseCounts(namespace: string): Promise<Record<string, number>> {
  return countPhases((await client.list(resources.restores, { namespace })).items);
}

/** What a restore is doing, for a failure message: phase, attempt and its Progressing condition. */
const describeRestore = (restore: Restore): string => {
  const progressing = restore.status?.conditions?.find((condition) => condition.type === 'Progressing');
  return `${restore.metadata.name ?? ''}: ${restore.status?.phase ?? '(no phase)'}, attempt ${restore.status?.attempt ?? '?'}, ${progressing?.reason ?? ''} ${progressing?.message ?? ''}`;
};

/**
 * Resolves once every restore is Successful and throws at once if one fails. On timeout the error
 * names the phases the rest are in, and what a few of them wait for.
 */
async function allSuccessful(run: Omit<Run, 'watch'>, timeoutMs: number): Promise<Restore[]> {
  const outcome = await waitFor<{ failed: Restore } | { items: Restore[] }>(
    `${run.names.length} restores in ${run.namespace} Successful`,
    async () => {
      const { items } = await client.list(resources.restores, { namespace: run.namespace });
      const failed = items.find((r) => r.status?.phase === 'Failed');
      if (failed !== undefined) return { failed };
      const left = items.filter((r) => r.status?.phase !== 'Successful');
      if (left.length === 0 && items.length === run.names.length) return { items };
      throw new Error(
        `${left.length} of ${items.length} not Successful: ${JSON.stringify(countPhases(items))}; ${left.slice(0, 5).map(describeRestore).join('; ')}`,
      );
    },
    timeoutMs,
    500,
  );
  if ('failed' in outcome)
    throw new Error(
      `restore Failed: ${describeRestore(outcome.failed)} ${outcome.failed.status?.errorCode ?? ''} ${outcome.failed.status?.errorMessage ?? ''}`,
    );
  return outcome.items;
}

/** The checks every chaos run ends with. */
async function expectCleanOutcome(run: Run, restores: Restore[]): Promise<void> {
  expect(restores.map((r) => r.metadata.name).sort()).toEqual([...run.names].sort());
  const wrong = restores
    .filter((r) => {
      const phases = (r.status?.phaseHistory ?? []).map((entry) => entry.phase);
      return r.status?.attempt !== 1 || JSON.stringify(phases) !== JSON.stringify(HAPPY_PATH);
    })
    .map(
      (r) =>
        `${r.metadata.name ?? ''}: attempt ${r.status?.attempt ?? '?'}, ${JSON.stringify(r.status?.phaseHistory)}`,
    );
  expect(wrong).toEqual([]);
  expect(run.watch.regressions()).toEqual([]);
  expect([...run.watch.seen.keys()].sort()).toEqual([...run.names].sort());

  const { namespace } = run;
  const byDestination = new Map(restores.map((r) => [`pg-${r.metadata.name ?? ''}`, r]));
  const { items: sets } = await client.list(resources.statefulSets, { namespace });
  expect(sets.map((s) => s.metadata.name).sort()).toEqual(['pg', ...byDestination.keys()].sort());
  for (const set of sets) {
    const restore = byDestination.get(set.metadata.name ?? '');
    if (restore === undefined) continue;
    expect({ name: set.metadata.name, uid: set.metadata.uid }).toEqual({
      name: set.metadata.name,
      uid: restore.status?.destination?.deploymentUid,
    });
  }
  const { items: claims } = await client.list(resources.persistentVolumeClaims, { namespace });
  expect(claims.map((c) => c.metadata.name).sort()).toEqual(
    ['data-pg-0', ...[...byDestination.keys()].map((d) => `data-${d}-0`)].sort(),
  );
  const orphans = claims
    .filter((claim) => claim.metadata.name !== 'data-pg-0')
    .filter((claim) => {
      const restore = byDestination.get((claim.metadata.name ?? '').replace(/^data-|-0$/g, ''));
      return claim.metadata.labels?.[labels.restoreAttempt] !== restore?.status?.customResourceName;
    })
    .map((claim) => claim.metadata.name);
  expect(orphans).toEqual([]);
  // The backup's one snapshot and nothing more: restores in the same namespace read it directly.
  const { items: snapshots } = await client.list(resources.volumeSnapshots, { namespace });
  expect(snapshots).toHaveLength(1);
}

beforeAll(async () => {
  client = await testClient();
  await installCrds(client);
});

afterAll(async () => {
  await Promise.all(operators.filter((o) => o.running()).map((o) => o.stop()));
  await Promise.all(watchers.map((w) => w.stop()));
  for (const namespace of namespaces) await deleteTestNamespace(client, namespace);
  console.log(`chaos: ${JSON.stringify(report)}`);
  await client.close();
});

/** SIGKILLs per run, each at a random moment 0.5 to 4 s after the last process became ready. */
const KILLS = 12;

// Short leases, so that each new process takes over soon after the SIGKILL of the last one.
const SHORT_LEASE = { leaseDurationSeconds: 3, renewDeadlineSeconds: 2, retryPeriodSeconds: 1 };

describe('chaos', () => {
  it('200 restores finish while the operator is killed with SIGKILL at random moments', async () => {
    const { run, operators: first, start } = await launch('chaos-kill', 200, { workers: 8 });
    const { namespace, names } = run;
    let current = first[0] as RunningOperator;

    const done = new AbortController();
    // 200 restores take about 200 s on an idle 2-core machine (storage and pods, not the operator:
    // see the benchmarks) and longer beside the rest of the suite: the wait leaves room for both.
    const finished = allSuccessful(run, 540_000).finally(() => {
      done.abort();
    });
    const kills: { afterMs: number; phases: Record<string, number> }[] = [];
    // In the report before the wait, so that a run that times out shows where its kills landed.
    report.kill = { restores: names.length, kills };
    const started = performance.now();
    for (let kill = 0; kill < KILLS; kill++) {
      const afterMs = Math.round(between(500, 4_000));
      await pause(afterMs, done.signal);
      if (done.signal.aborted) break;
      await current.kill();
      kills.push({ afterMs, phases: await phaseCounts(namespace) });
      current = await start();
    }
    const restores = await finished;
    report.kill = { restores: names.length, seconds: (performance.now() - started) / 1000, kills };
    // The kills landed while restores were in flight, not before or after the work.
    const inFlight = kills.filter((kill) =>
      Object.entries(kill.phases).some(([phase, n]) => n > 0 && !isTerminal(phase as RestorePhase)),
    );
    expect(inFlight.length).toBeGreaterThanOrEqual(5);
    await expectCleanOutcome(run, restores);
  }, 600_000);

  it('restores finish across a restart of the API server, with no restart of the operator', async () => {
    // client-go's lease timings: a few seconds without the API server does not cost the lease.
    const lease = { leaseDurationSeconds: 15, renewDeadlineSeconds: 10, retryPeriodSeconds: 2 };
    const { run, operators: started } = await launch('chaos-apiserver', 40, { lease });
    const { namespace, names } = run;
    const running = started[0] as RunningOperator;
    await waitFor('restores in flight', async () => {
      const counts = await phaseCounts(namespace);
      return (counts.Successful ?? 0) >= 1 && (counts.Successful ?? 0) < names.length;
    });
    const before = await phaseCounts(namespace);
    const restart = await promisify(execFile)(
      join(REPO_ROOT, 'test/cluster/restart-apiserver.sh'),
      ['--kill', '--down-seconds', '2', '--settle-seconds', '30'],
      {
        env: { ...process.env, KUBECONFIG: KUBECONFIG_PATH },
      },
    );
    report.apiserverRestart = `${restart.stdout}${restart.stderr}`.trim().split('\n');
    const restores = await allSuccessful(run, 180_000);
    expect(running.running()).toBe(true);
    const scraped = await running.metrics();
    const reconnects = metricValue(scraped, 'snapback_informer_restarts_total');
    report.apiserver = { restores: names.length, phasesAtRestart: before, informerRestarts: reconnects };
    expect(reconnects).toBeGreaterThan(0);
    await expectCleanOutcome(run, restores);
  }, 240_000);

  it('restores finish when the leader is killed and the other replica takes over mid-run', async () => {
    const { run, operators: pair } = await launch('chaos-failover', 60, { replicas: 2 });
    const { namespace, names } = run;
    await waitFor('a third of the restores Successful', async () => {
      const done = (await phaseCounts(namespace)).Successful ?? 0;
      return done >= names.length / 3 && done < names.length;
    });
    const leaders = await Promise.all(
      pair.map(async (o) => metricValue(await o.metrics(), 'snapback_leader')),
    );
    const leader = pair[leaders.indexOf(1)];
    const standby = pair[leaders.indexOf(0)];
    if (leader === undefined || standby === undefined)
      throw new Error(`no single leader: ${JSON.stringify(leaders)}`);
    const phases = await phaseCounts(namespace);
    await leader.kill();
    const restores = await allSuccessful(run, 180_000);
    expect(metricValue(await standby.metrics(), 'snapback_leader')).toBe(1);
    report.failover = { restores: names.length, phasesAtKill: phases };
    await expectCleanOutcome(run, restores);
  }, 240_000);

  it('no status is lost while another writer edits the restores as they advance', async () => {
    const { run, operators: started } = await launch('chaos-writers', 30);
    const { namespace, names } = run;
    const running = started[0] as RunningOperator;
    const done = new AbortController();
    const finished = allSuccessful(run, 180_000).finally(() => {
      done.abort();
    });

    // Two kinds of editor: read-modify-write with the resourceVersion (kubectl edit, retrying
    // on 409), and a blind merge patch (kubectl label). Each restore's last edit must survive.
    const lastEdit = new Map<string, number>();
    let edits = 0;
    let editorConflicts = 0;
    const editLabel = 'chaos.snapback.dev/edit';
    while (!done.signal.aborted) {
      await Promise.all(
        names.map(async (name) => {
          const value = edits++;
          if (random() < 0.5) {
            await client.mergePatch(
              resources.restores,
              name,
              { metadata: { labels: { [editLabel]: String(value) } } },
              { namespace },
            );
          } else {
            for (;;) {
              const restore = await client.get(resources.restores, name, namespace);
              if (restore === undefined) throw new Error(`restore ${name} vanished`);
              restore.metadata.labels = { ...restore.metadata.labels, [editLabel]: String(value) };
              try {
                await client.replace(resources.restores, restore);
                break;
              } catch (err) {
                if (!(err instanceof ApiError && err.statusCode === 409)) throw err;
                editorConflicts += 1;
              }
            }
          }
          lastEdit.set(name, value);
        }),
      );
    }
    const restores = await finished;
    const operatorConflicts = metricValue(await running.metrics(), 'snapback_api_requests_total', {
      resource: 'restores',
      code: '409',
    });
    report.writers = { restores: names.length, edits, editorConflicts, operatorConflicts };
    expect(edits).toBeGreaterThanOrEqual(names.length * 3);
    const { items: edited } = await client.list(resources.restores, { namespace });
    const labelsNow = Object.fromEntries(
      edited.map((r) => [r.metadata.name ?? '', r.metadata.labels?.[editLabel]]),
    );
    expect(labelsNow).toEqual(Object.fromEntries(names.map((name) => [name, String(lastEdit.get(name))])));
    await expectCleanOutcome(run, restores);
  }, 240_000);
});
