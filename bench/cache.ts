// Memory and start-up with many objects: finished Backups and Restores (copies of real ones, so
// their size is real) in one namespace, cached idle by Snapback, by a bare client-node ListWatch
// and by a client-go informer; the LIST response's size, and the time of a paged LIST.

import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { Backup, Restore } from '../src/api/generated/types.js';
import type { KubeObject } from '../src/api/kubernetes.js';
import type { KubeClient } from '../src/runtime/kube-client.js';
import { collectionPath, resources, type ResourceType } from '../src/runtime/resources.js';
import { REPO_ROOT } from '../test/integration/support/cluster.js';
import { metricValue } from '../test/integration/support/operator.js';
import { GO_BASELINE } from './baselines.js';
import { rawGet, residentBytes } from './measure.js';
import { drained, readCounters, startBenchOperator, summarize, type Identity } from './operator-run.js';

export interface CacheFigures {
  objects: number;
  /** Process start to caches synced. */
  syncSeconds: number;
  rssBytes: number;
  heapBytes: number;
}

export interface CacheLevel {
  objects: number;
  listBytes: number;
  pagedListSeconds: number;
  snapback: CacheFigures & { drainedSeconds: number; objectWrites: number };
  listWatch: CacheFigures;
  clientGo: CacheFigures;
}

/** Only what a user's object carries: no server-set identity, no managed fields. */
function copyOf<T extends KubeObject>(template: T, name: string, namespace: string): T {
  const { labels, annotations, finalizers } = template.metadata;
  return {
    ...template,
    metadata: {
      name,
      namespace,
      ...(labels === undefined ? {} : { labels }),
      ...(annotations === undefined ? {} : { annotations }),
      ...(finalizers === undefined ? {} : { finalizers }),
    },
  };
}

/** Runs `task` over `count` indexes, `concurrency` at a time. */
async function inParallel(
  count: number,
  concurrency: number,
  task: (i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) await task(next++);
    }),
  );
}

/**
 * Adds finished copies of the templates until the namespace holds `total` objects, half Backups
 * and half Restores; each copy's status says it is done and seen (observedGeneration), so an
 * operator that starts over them has nothing to write.
 */
export async function populate(
  admin: KubeClient,
  namespace: string,
  templates: { backup: Backup; restore: Restore },
  from: number,
  total: number,
): Promise<void> {
  type WithStatus = KubeObject & { status?: object };
  const kinds: [ResourceType<WithStatus>, WithStatus, string][] = [
    [resources.backups, templates.backup, 'b'],
    [resources.restores, templates.restore, 'r'],
  ];
  await inParallel((total - from) / 2, 64, async (i) => {
    const index = String(from / 2 + i).padStart(6, '0');
    for (const [rt, template, prefix] of kinds) {
      const created = await admin.create(rt, copyOf(template, `${prefix}-${index}`, namespace));
      const status = { ...template.status, observedGeneration: created.metadata.generation };
      await admin.replace(rt, { ...created, status }, 'status');
    }
  });
}

/** Runs a baseline cache process and parses the JSON figures it prints. */
async function cacheProcess(command: string, args: string[], kubeconfig: string): Promise<CacheFigures> {
  const child = spawn(command, args, {
    cwd: REPO_ROOT,
    env: { ...process.env, KUBECONFIG: kubeconfig, NODE_OPTIONS: '' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const out: string[] = [];
  child.stdout.on('data', (chunk: Buffer) => out.push(chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`${command} ${args.join(' ')} exited with ${code ?? 'a signal'}`);
  return JSON.parse(out.join('')) as CacheFigures;
}

async function snapbackCache(
  namespace: string,
  identity: Identity,
  objects: number,
): Promise<CacheLevel['snapback']> {
  const started = performance.now();
  const operator = await startBenchOperator(`bench-cache-${objects}`, namespace, identity, 600_000);
  const syncSeconds = (performance.now() - started) / 1000;
  await drained(operator, objects, 600_000);
  const drainedSeconds = (performance.now() - started) / 1000;
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  const heapBytes = metricValue(await operator.metrics(), 'nodejs_heap_size_used_bytes');
  const rssBytes = residentBytes(operator.pid);
  const { objectWrites } = summarize((await readCounters(operator)).requests, {});
  await operator.stop();
  return { objects, syncSeconds, drainedSeconds, rssBytes, heapBytes, objectWrites };
}

export async function measureCache(
  namespace: string,
  operatorClient: KubeClient,
  identity: Identity,
  objects: number,
): Promise<CacheLevel> {
  let listBytes = 0;
  for (const rt of [resources.backups, resources.restores]) {
    listBytes += Buffer.byteLength(await rawGet(collectionPath(rt, namespace)));
  }
  const listed = performance.now();
  await operatorClient.list(resources.backups, { namespace });
  await operatorClient.list(resources.restores, { namespace });
  const pagedListSeconds = (performance.now() - listed) / 1000;

  const node = join(REPO_ROOT, 'node_modules', '.bin', 'node');
  return {
    objects,
    listBytes,
    pagedListSeconds,
    snapback: await snapbackCache(namespace, identity, objects),
    listWatch: await cacheProcess(
      node,
      ['--expose-gc', '--import', 'tsx', 'bench/listwatch-cache.ts', namespace],
      identity.kubeconfig,
    ),
    clientGo: await cacheProcess(GO_BASELINE, ['cache', '-namespace', namespace], identity.kubeconfig),
  };
}
