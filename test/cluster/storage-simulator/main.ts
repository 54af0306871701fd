// The storage simulator's process: `KUBECONFIG=... tsx test/cluster/storage-simulator/main.ts`.
// See README.md beside this file for what it simulates and the annotations it understands.

import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Registry } from 'prom-client';
import type {
  KubeObject,
  PersistentVolumeClaim,
  VolumeSnapshotContent,
} from '../../../src/api/kubernetes.js';
import { EventRecorder } from '../../../src/observability/events.js';
import { createLogger, type Logger, type LogLevel } from '../../../src/observability/logger.js';
import { createMetrics } from '../../../src/observability/metrics.js';
import { defineIndex } from '../../../src/runtime/cache.js';
import type { DependencyWatch } from '../../../src/runtime/controller.js';
import { objectKey, type Informer } from '../../../src/runtime/informer.js';
import { KubeClient } from '../../../src/runtime/kube-client.js';
import { ApiError } from '../../../src/runtime/errors.js';
import { Manager } from '../../../src/runtime/manager.js';
import { resources } from '../../../src/runtime/resources.js';
import { ensureClasses } from './classes.js';
import { CLASS_NAME, COMPONENT } from './constants.js';
import { Provisioner } from './provisioner.js';
import { claimClassName, claimDataSource } from './provisioning.js';
import { contentsByVolumeHandle, Snapshotter, volumesByHandle } from './snapshotter.js';
import { SnapshotStore } from './state.js';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const DEFAULT_STATE_DIR = resolve(REPO_ROOT, '.cache', 'cluster', 'storage-sim');

/** A start-up failure with the message to exit with. */
class FatalError extends Error {}

/** The message, with the cause of a network failure ("fetch failed" alone says little). */
function errorMessage(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  return err.cause instanceof Error ? `${err.message} (${err.cause.message})` : err.message;
}

function logLevel(value: string | undefined): LogLevel {
  const levels: readonly LogLevel[] = ['error', 'warn', 'info', 'debug'];
  const level = levels.find((l) => l === (value ?? 'info'));
  if (level === undefined)
    throw new FatalError(`SIM_LOG_LEVEL must be one of ${levels.join(', ')}, not "${value ?? ''}"`);
  return level;
}

function positiveInteger(name: string, fallback: number): number {
  const value = process.env[name];
  if (value === undefined || value === '') return fallback;
  if (!/^\d+$/.test(value)) throw new FatalError(`${name} must be a whole number, not "${value}"`);
  return Number(value);
}

/**
 * Creates the classes, retrying while the API server is not reachable yet or the snapshot CRDs
 * are not installed yet (up.sh may start the simulator while it installs them).
 */
async function ensureClassesUntil(client: KubeClient, deadline: number, log: Logger): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      const outcome = await ensureClasses(client);
      log.info('classes ensured', { name: CLASS_NAME, ...outcome });
      return;
    } catch (err) {
      const missingCrd = err instanceof ApiError && err.statusCode === 404;
      const why = missingCrd
        ? 'the VolumeSnapshot CRDs (snapshot.storage.k8s.io/v1) are not installed'
        : `the API server did not answer: ${errorMessage(err)}`;
      if (err instanceof ApiError && !missingCrd && err.statusCode < 500 && err.statusCode !== 429) {
        throw new FatalError(`cannot create the classes: ${errorMessage(err)}`);
      }
      if (Date.now() >= deadline) throw new FatalError(`giving up at start: ${why}`);
      log.info('waiting for the cluster', { attempt, reason: why });
      await new Promise((done) => setTimeout(done, Math.min(2000, 200 * attempt)));
    }
  }
}

function watch<T extends KubeObject>(
  informer: Informer<T>,
  toKeys: (obj: T) => string[],
): DependencyWatch<T> {
  return { informer, toKeys };
}

const claimsByClass = defineIndex<PersistentVolumeClaim>('storageClass', (claim) => {
  const name = claimClassName(claim);
  return name === undefined ? [] : [name];
});
const claimsBySnapshot = defineIndex<PersistentVolumeClaim>('snapshotSource', (claim) => {
  const source = claimDataSource(claim);
  return source.kind === 'snapshot' ? [`${source.ref.namespace}/${source.ref.name}`] : [];
});
const contentsBySnapshot = defineIndex<VolumeSnapshotContent>('snapshot', (content) => [
  `${content.spec.volumeSnapshotRef.namespace ?? ''}/${content.spec.volumeSnapshotRef.name ?? ''}`,
]);
const contentsByClass = defineIndex<VolumeSnapshotContent>('class', (content) =>
  content.spec.volumeSnapshotClassName === undefined ? [] : [content.spec.volumeSnapshotClassName],
);

async function run(log: Logger, signal: AbortSignal): Promise<void> {
  const stateDir =
    process.env.SIM_STATE_DIR === undefined ? DEFAULT_STATE_DIR : resolve(process.env.SIM_STATE_DIR);
  const startTimeoutMs = positiveInteger('SIM_START_TIMEOUT_MS', 60_000);

  let client: KubeClient;
  try {
    client = await KubeClient.fromDefault({ userAgent: COMPONENT });
  } catch (err) {
    throw new FatalError(
      `cannot load the kubeconfig (KUBECONFIG=${process.env.KUBECONFIG ?? ''}): ${errorMessage(err)}`,
    );
  }
  let backend: SnapshotStore;
  try {
    backend = await SnapshotStore.open(stateDir);
    await access(resolve(stateDir, 'snapshots'), constants.W_OK);
  } catch (err) {
    throw new FatalError(`cannot use the state directory ${stateDir}: ${errorMessage(err)}`);
  }
  log.info('starting', {
    server: client.config.getCurrentCluster()?.server,
    stateDir,
    snapshots: (await backend.list()).length,
  });
  await ensureClassesUntil(client, Date.now() + startTimeoutMs, log);

  const manager = new Manager({ client, logger: log, metrics: createMetrics(new Registry()) });
  const claims = manager.informer(resources.persistentVolumeClaims);
  const volumes = manager.informer(resources.persistentVolumes);
  const storageClasses = manager.informer(resources.storageClasses);
  const snapshots = manager.informer(resources.volumeSnapshots);
  const contents = manager.informer(resources.volumeSnapshotContents);
  const snapshotClasses = manager.informer(resources.volumeSnapshotClasses);

  claims.addIndex(claimsByClass);
  claims.addIndex(claimsBySnapshot);
  volumes.addIndex(volumesByHandle);
  contents.addIndex(contentsBySnapshot);
  contents.addIndex(contentsByClass);
  contents.addIndex(contentsByVolumeHandle);

  const events = new EventRecorder(client, COMPONENT, `${hostname()}-${String(process.pid)}`, (err) => {
    log.warn('event not recorded', { error: errorMessage(err) });
  });
  const now = (): number => Date.now();
  const provisioner = new Provisioner({
    client,
    claims,
    volumes,
    storageClasses,
    snapshots,
    contents,
    backend,
    events,
    log,
    now,
  });
  const snapshotter = new Snapshotter({
    client,
    contents,
    snapshots,
    snapshotClasses,
    volumes,
    claims,
    backend,
    events,
    log,
    now,
  });
  const keys = (objects: KubeObject[]): string[] => objects.map(objectKey);

  manager.controller({
    name: 'sim-provisioner',
    reconcile: (key) => provisioner.reconcileClaim(key),
    primary: claims,
    workers: 2,
    watches: [
      watch(volumes, (pv) => {
        const ref = pv.spec.claimRef;
        return ref?.name === undefined ? [] : [`${ref.namespace ?? ''}/${ref.name}`];
      }),
      watch(storageClasses, (sc) => keys(claims.byIndex(claimsByClass, sc.metadata.name ?? ''))),
      watch(snapshots, (vs) => keys(claims.byIndex(claimsBySnapshot, objectKey(vs)))),
    ],
  });
  manager.controller({
    name: 'sim-reclaimer',
    reconcile: (key) => provisioner.reconcileVolume(key),
    primary: volumes,
  });
  manager.controller({
    name: 'sim-snapshotter',
    reconcile: (key) => snapshotter.reconcileContent(key),
    primary: contents,
    workers: 2,
    watches: [
      watch(snapshots, (vs) => {
        const bound = vs.status?.boundVolumeSnapshotContentName;
        return [
          ...(bound === undefined ? [] : [bound]),
          ...keys(contents.byIndex(contentsBySnapshot, objectKey(vs))),
        ];
      }),
      watch(snapshotClasses, (vsc) => keys(contents.byIndex(contentsByClass, vsc.metadata.name ?? ''))),
      watch(volumes, (pv) =>
        volumesByHandle.values(pv).flatMap((h) => keys(contents.byIndex(contentsByVolumeHandle, h))),
      ),
    ],
  });

  try {
    await manager.start(signal);
  } finally {
    await client.close();
  }
  log.info('stopped');
}

const log = createLogger({ level: 'info', defaultMeta: { component: COMPONENT } });
const stop = new AbortController();
for (const name of ['SIGINT', 'SIGTERM'] as const) {
  process.once(name, () => {
    log.info('shutting down', { signal: name });
    stop.abort();
  });
}

try {
  log.level = logLevel(process.env.SIM_LOG_LEVEL);
  await run(log, stop.signal);
} catch (err) {
  const message = err instanceof FatalError ? err.message : `unexpected failure: ${errorMessage(err)}`;
  log.error('fatal', { error: message });
  process.stderr.write(`storage simulator: ${message}\n`);
  process.exitCode = 1;
}
