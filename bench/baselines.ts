// Baselines measured in the same run, as the same ServiceAccount as the operator:
//   ceiling     a minimal loop of the operator's status writes (PUT restores/status, resourceVersion
//               from the last response, no reads), swept over concurrency 1..64;
//   round trip  one status write to the watch event that reports it, on an idle server;
//   client-go   Go informer and workqueue controllers doing the same restore and backup workflows
//               with the same writes (bench/go/restore.go, bench/go/backup.go).

import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Restore } from '../src/api/generated/types.js';
import { HAPPY_PATH } from '../src/controllers/restore/transitions.js';
import type { KubeClient } from '../src/runtime/kube-client.js';
import { resources } from '../src/runtime/resources.js';
import { createTestNamespace, REPO_ROOT } from '../test/integration/support/cluster.js';
import { createRestores } from '../test/integration/support/snapback.js';
import { distribution, type Distribution } from './measure.js';
import { backedUpNamespace, measureWorkflow, type WorkflowFigures } from './restores.js';
import type { Identity } from './operator-run.js';
import { watchArrivals } from './watch.js';

export interface CeilingPoint {
  concurrency: number;
  writesPerSecond: number;
  conflicts: number;
}

/** Restores that nothing reconciles (no operator watches their namespace): objects to write to. */
async function idleRestores(client: KubeClient, prefix: string, count: number): Promise<Restore[]> {
  const namespace = await createTestNamespace(client, prefix);
  const names = await createRestores(client, namespace, count, 'none');
  const { items } = await client.list(resources.restores, { namespace });
  return items.filter((r) => names.includes(r.metadata.name ?? ''));
}

const withPhase = (restore: Restore, step: number): Restore => ({
  ...restore,
  status: { ...restore.status, phase: HAPPY_PATH[step % HAPPY_PATH.length] ?? 'Initializing' },
});

export async function ceilingSweep(
  admin: KubeClient,
  operatorClient: KubeClient,
  writesPerLevel: number,
): Promise<CeilingPoint[]> {
  const levels = [1, 2, 4, 8, 16, 32, 64];
  const objects = await idleRestores(admin, 'bench-ceiling', 256);
  const points: CeilingPoint[] = [];
  let step = 0;
  for (const concurrency of levels) {
    let remaining = writesPerLevel;
    let conflicts = 0;
    const started = performance.now();
    // Worker w owns objects w, w+c, w+2c, ...: no two writers share an object, so no 409s.
    await Promise.all(
      Array.from({ length: concurrency }, async (_, worker) => {
        const own = objects.map((_, i) => i).filter((i) => i % concurrency === worker);
        for (let k = 0; remaining > 0; k++) {
          remaining -= 1;
          const index = own[k % own.length] ?? 0;
          const current = objects[index] as Restore;
          try {
            objects[index] = await operatorClient.replace(
              resources.restores,
              withPhase(current, ++step),
              'status',
            );
          } catch (err) {
            conflicts += 1;
            if (conflicts > writesPerLevel / 10) throw err;
          }
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    points.push({ concurrency, writesPerSecond: writesPerLevel / seconds, conflicts });
  }
  return points;
}

/** Status write to watch event arrival, one write at a time, as the operator's identity. */
export async function watchRoundTrip(
  admin: KubeClient,
  operatorClient: KubeClient,
  samples: number,
): Promise<{ latencyMs: Distribution; samplesMs: number[] }> {
  let [restore] = await idleRestores(admin, 'bench-roundtrip', 1);
  if (restore === undefined) throw new Error('no restore to write to');
  const arrived = new Map<string, number>();
  let waiting: { resourceVersion: string; resolve: () => void } | undefined;
  const watch = await watchArrivals(
    operatorClient,
    resources.restores,
    restore.metadata.namespace,
    (object, at) => {
      const version = object.metadata.resourceVersion ?? '';
      arrived.set(version, at);
      if (waiting?.resourceVersion === version) waiting.resolve();
    },
  );
  const latencies: number[] = [];
  try {
    for (let i = 0; i < samples; i++) {
      const sent = performance.now();
      restore = await operatorClient.replace(resources.restores, withPhase(restore, i), 'status');
      const version = restore.metadata.resourceVersion ?? '';
      if (!arrived.has(version)) {
        await new Promise<void>((resolve) => {
          waiting = { resourceVersion: version, resolve };
        });
      }
      latencies.push((arrived.get(version) ?? Number.NaN) - sent);
    }
  } finally {
    await watch.stop();
  }
  return { latencyMs: distribution(latencies), samplesMs: latencies };
}

export interface GoRun extends WorkflowFigures {
  /** Mutating calls, as the Go controller counted them. */
  writes: number;
  conflicts: number;
}

export const GO_BASELINE = join(REPO_ROOT, '.cache', 'bin', 'snapback-bench-go');

/** The Go baseline running one controller over `namespace`, as the operator's identity. */
export interface GoController {
  pid: number;
  /** SIGTERM, then the mutating calls it counted. */
  stop(): Promise<{ writes: number; conflicts: number }>;
}

export async function startGoController(
  command: 'reconcile' | 'backup',
  namespace: string,
  identity: Identity,
): Promise<GoController> {
  const child = spawn(GO_BASELINE, [command, '-namespace', namespace, '-workers', '8'], {
    env: { ...process.env, KUBECONFIG: identity.kubeconfig },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stdout: string[] = [];
  child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const stderr = createInterface({ input: child.stderr });
  await new Promise<void>((resolve, reject) => {
    stderr.on('line', (line) => {
      if (line === 'ready') resolve();
      else process.stderr.write(`snapback-bench-go: ${line}\n`);
    });
    void exited.then((code) => {
      reject(new Error(`snapback-bench-go exited with ${code ?? 'a signal'} before it was ready`));
    });
  });
  return {
    pid: child.pid ?? 0,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
      return JSON.parse(stdout.join('')) as { writes: number; conflicts: number };
    },
  };
}

/**
 * The client-go controller taking `count` restores through the same workflow (bench/go/restore.go),
 * from a Backup Snapback made and then left: Snapback is stopped before the Go controller starts.
 */
export async function goReconciler(admin: KubeClient, identity: Identity, count: number): Promise<GoRun> {
  const { namespace, operator } = await backedUpNamespace(admin, identity, `bench-go-${count}`);
  await operator.stop();
  const controller = await startGoController('reconcile', namespace, identity);
  const { names: _, ...figures } = await measureWorkflow(admin, namespace, controller.pid, count);
  return { ...figures, ...(await controller.stop()) };
}
