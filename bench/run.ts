// `make bench`: every benchmark on the bench cluster (scripts/bench.sh starts it), a table of the
// figures beside their baselines, JSON in bench/results/, and two charts as PNG.
//
//   node --import tsx bench/run.ts [--restores 100,1000] [--backups 1000] [--cached 10000,100000]

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { createTestNamespace, REPO_ROOT } from '../test/integration/support/cluster.js';
import { ceilingSweep, goReconciler, watchRoundTrip, type CeilingPoint, type GoRun } from './baselines.js';
import { MINIMUM_BACKUP_WRITES, runBackups, type BackupFigures, type BackupRun } from './backups.js';
import { measureCache, populate, type CacheLevel } from './cache.js';
import { round } from './measure.js';
import { FigureTable } from './table.js';
import { cdf, latencyChart, throughputChart } from './plot.js';
import { MINIMUM_EVENTS, minimumWritesPerRestore, runRestores, type RestoreRun } from './restores.js';
import { benchCluster, step } from './setup.js';

const { values: args } = parseArgs({
  options: {
    restores: { type: 'string', default: '100,1000' },
    backups: { type: 'string', default: '1000' },
    cached: { type: 'string', default: '10000,100000' },
    'ceiling-writes': { type: 'string', default: '3000' },
  },
});
const list = (text: string): number[] => text.split(',').filter(Boolean).map(Number);
const restoreCounts = list(args.restores);
const cachedCounts = list(args.cached);
const backupCounts = list(args.backups);

const { admin, identity, operatorClient, kubernetesVersion } = await benchCluster();

step('write-to-watch round trip on the idle server');
const roundTrip = await watchRoundTrip(admin, operatorClient, 300);
step('status write ceiling over concurrency 1..64');
const ceiling: CeilingPoint[] = await ceilingSweep(admin, operatorClient, Number(args['ceiling-writes']));
const go: GoRun[] = [];
const snapback: RestoreRun[] = [];
for (const count of restoreCounts) {
  step(`client-go controller, same work: ${count} restores`);
  go.push(await goReconciler(admin, identity, count));
  step(`Snapback: ${count} restores`);
  snapback.push(await runRestores(admin, identity, count));
}
const largest = snapback.at(-1);
if (largest === undefined) throw new Error('--restores named no run');

const cacheNamespace = await createTestNamespace(admin, 'bench-cache');
const cache: CacheLevel[] = [];
let populated = 0;
for (const objects of [0, ...cachedCounts]) {
  step(`caches with ${objects} Backups and Restores`);
  await populate(admin, cacheNamespace, largest.samples, populated, objects);
  populated = objects;
  cache.push(await measureCache(cacheNamespace, operatorClient, identity, objects));
}
// Last: what the backups leave behind (claims, volumes, snapshots in thousands) stays out of the
// cache figures.
const backups: BackupRun[] = [];
for (const count of backupCounts) {
  step(`backups of ${count} StatefulSets with 3 volumes: client-go controller, then Snapback`);
  backups.push(await runBackups(admin, identity, count));
}

// ---- Figures, ratios and the table.
const minimum = minimumWritesPerRestore(1);
const ceilingBest = ceiling.reduce((best, p) => (p.writesPerSecond > best.writesPerSecond ? p : best));
const perRestore = (run: { restores: number }, n: number): number => n / run.restores;
const statusWrites = (run: RestoreRun): number => run.requests.byVerbAndResource['update restores'] ?? 0;
const verb = (run: RestoreRun, name: string): number => perRestore(run, run.requests.byVerb[name] ?? 0);
const bytesPerObject = (level: CacheLevel, pick: (l: CacheLevel) => number): number => {
  const empty = cache[0];
  return empty === undefined || level.objects === 0
    ? Number.NaN
    : (pick(level) - pick(empty)) / level.objects;
};

const table = new FigureTable();
const row = table.add.bind(table);
row('write→watch round trip p50, ms (idle)', roundTrip.latencyMs.p50);
row('write→watch round trip p99, ms (idle)', roundTrip.latencyMs.p99);
row(`status write ceiling, writes/s (c=${ceilingBest.concurrency})`, ceilingBest.writesPerSecond);
snapback.forEach((run, i) => {
  const goRun = go[i];
  const n = run.restores;
  const writes = perRestore(run, run.requests.objectWrites);
  row(`N=${n} restores/s`, run.restoresPerSecond, goRun?.restoresPerSecond, 'of client-go, same work');
  row(
    `N=${n} restores/s`,
    run.restoresPerSecond,
    ceilingBest.writesPerSecond / minimum.total,
    'of ceiling ÷ minimum writes',
  );
  row(`N=${n} object writes per restore`, writes, minimum.total, 'of design minimum');
  if (goRun !== undefined)
    row(`N=${n} object writes per restore`, writes, perRestore(goRun, goRun.writes), 'of client-go');
  const events = perRestore(run, run.requests.byVerbAndResource['create events'] ?? 0);
  row(`N=${n} Events created per restore`, events, MINIMUM_EVENTS, 'of the start and the end');
  row(
    `N=${n} mutating calls per restore, Events included`,
    writes + events,
    minimum.total + MINIMUM_EVENTS,
    'of stated minimum (design + 2 Events)',
  );
  row(`N=${n} requests per restore, all`, perRestore(run, run.requests.total));
  for (const name of ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'])
    row(`N=${n}   ${name} per restore`, verb(run, name));
  row(`N=${n} 409 conflicts per restore`, perRestore(run, run.requests.conflicts));
  row(
    `N=${n} server-counted requests (SA flow)`,
    run.serverRequests,
    run.requests.total,
    'of client-counted',
  );
  row(`N=${n} status writes/s`, statusWrites(run) / run.seconds, ceilingBest.writesPerSecond, 'of ceiling');
  row(`N=${n} event→phase p50, ms`, run.latencyMs.all.p50, goRun?.latencyMs.all.p50, 'of client-go');
  row(`N=${n} event→phase p99, ms`, run.latencyMs.all.p99, goRun?.latencyMs.all.p99, 'of client-go');
  row(`N=${n} event→phase p50, ms`, run.latencyMs.all.p50, roundTrip.latencyMs.p50, 'of round trip');
  row(`N=${n} event→phase p99, ms`, run.latencyMs.all.p99, roundTrip.latencyMs.p99, 'of round trip');
  for (const trigger of ['volumeBound', 'restoreModeReady', 'normalModeReady'] as const)
    row(
      `N=${n}   ${trigger} p50/p99, ms`,
      run.latencyMs[trigger].p50,
      goRun?.latencyMs[trigger].p50,
      `of client-go; p99 ${round(run.latencyMs[trigger].p99)} against ${round(goRun?.latencyMs[trigger].p99 ?? Number.NaN)}`,
    );
  row(
    `N=${n} operator CPU-s per restore`,
    perRestore(run, run.cpuSeconds.operator ?? 0),
    goRun === undefined ? Number.NaN : perRestore(goRun, goRun.cpuSeconds.operator ?? 0),
    'of client-go',
  );
  for (const [process, seconds] of Object.entries(run.cpuSeconds).filter(([p]) => p !== 'operator'))
    row(`N=${n}   ${process} CPU-s per restore`, perRestore(run, seconds));
  const busy = Object.values(run.cpuSeconds).reduce((a, b) => a + b, 0) / run.seconds;
  row(`N=${n} cores busy (operator and cluster)`, busy, availableParallelism(), 'of the cores');
  for (const [phase, time] of Object.entries(run.phaseMs))
    row(`N=${n}   time in ${phase} p50, ms`, time.p50, Number.NaN, `p99 ${round(time.p99)}`);
  // The operator's account of each transition: queue wait, reconcile, API calls within it.
  for (const [phase, parts] of Object.entries(run.transitions))
    for (const [part, time] of Object.entries(parts))
      row(`N=${n}   → ${phase}: ${part} p50, ms`, time.p50, Number.NaN, `p99 ${round(time.p99)}`);
  for (const [change, perRestore] of Object.entries(run.statusChangesPerRestore))
    row(`N=${n}   status changes per restore: ${change}`, perRestore);
  row(
    `N=${n} no-op resync: object writes`,
    run.resync.objectWrites,
    Number.NaN,
    `over ${run.resync.reconciles} reconciles`,
  );
});
for (const { go: goRun, snapback: run } of backups) {
  const n = run.backups;
  const per = (value: number): number => value / n;
  row(`N=${n} backups/s`, run.backupsPerSecond, goRun.backupsPerSecond, 'of client-go, same work');
  for (const [what, pick] of [
    ['snapshots ready → Completed', (f: BackupFigures) => f.snapshotsReadyToCompletedMs],
    ['created → Completed', (f: BackupFigures) => f.createdToCompletedMs],
  ] as const) {
    row(`N=${n} backups ${what} p50, ms`, pick(run).p50, pick(goRun).p50, 'of client-go');
    row(`N=${n} backups ${what} p99, ms`, pick(run).p99, pick(goRun).p99, 'of client-go');
  }
  const events = per(run.requests.byVerbAndResource['create events'] ?? 0);
  row(`N=${n} object writes per backup`, per(run.writes), per(goRun.writes), 'of client-go');
  row(`N=${n} object writes per backup`, per(run.writes), MINIMUM_BACKUP_WRITES, 'of design minimum');
  row(`N=${n} Events created per backup`, events, MINIMUM_EVENTS, 'of the start and the end');
  row(
    `N=${n} mutating calls per backup, Events included`,
    per(run.writes) + events,
    MINIMUM_BACKUP_WRITES + MINIMUM_EVENTS,
    'of stated minimum (design + 2 Events)',
  );
  row(`N=${n} 409 conflicts per backup`, per(run.requests.conflicts));
  row(
    `N=${n} server-counted requests per backup`,
    per(run.serverRequests),
    per(goRun.serverRequests),
    'of client-go',
  );
  for (const name of ['get', 'list', 'create', 'update', 'patch'])
    row(`N=${n}   ${name} per backup`, per(run.requests.byVerb[name] ?? 0));
  row(
    `N=${n} operator CPU-s per backup`,
    per(run.cpuSeconds.operator ?? 0),
    per(goRun.cpuSeconds.operator ?? 0),
    'of client-go',
  );
}
for (const level of cache.filter((l) => l.objects > 0)) {
  const k = level.objects;
  row(`${k} cached: LIST response, bytes/object`, level.listBytes / k);
  row(
    `${k} cached: Snapback RSS, MB`,
    level.snapback.rssBytes / 2 ** 20,
    level.listWatch.rssBytes / 2 ** 20,
    'of ListWatch',
  );
  row(
    `${k} cached: Snapback RSS, MB`,
    level.snapback.rssBytes / 2 ** 20,
    level.clientGo.rssBytes / 2 ** 20,
    'of client-go',
  );
  for (const [name, pick] of [
    ['RSS', (l: CacheLevel, tool: 'snapback' | 'listWatch' | 'clientGo') => l[tool].rssBytes],
    ['heap', (l: CacheLevel, tool: 'snapback' | 'listWatch' | 'clientGo') => l[tool].heapBytes],
  ] as const) {
    const snap = bytesPerObject(level, (l) => pick(l, 'snapback'));
    row(
      `${k} cached: ${name} bytes/object, Snapback`,
      snap,
      bytesPerObject(level, (l) => pick(l, 'listWatch')),
      'of ListWatch',
    );
    row(
      `${k} cached: ${name} bytes/object, Snapback`,
      snap,
      bytesPerObject(level, (l) => pick(l, 'clientGo')),
      'of client-go',
    );
  }
  row(`${k} cached: start → synced, s`, level.snapback.syncSeconds, level.pagedListSeconds, 'of paged LIST');
  row(
    `${k} cached: start → queue drained, s`,
    level.snapback.drainedSeconds,
    level.pagedListSeconds,
    'of paged LIST',
  );
  row(
    `${k} cached: ListWatch / client-go synced, s`,
    level.listWatch.syncSeconds,
    level.clientGo.syncSeconds,
    'ListWatch of client-go',
  );
  row(`${k} cached: writes at start-up`, level.snapback.objectWrites);
}
const [small, large] = cache.filter((l) => l.objects > 0);
if (small !== undefined && large !== undefined) {
  const factor = large.objects / small.objects;
  row(
    `start→drained ${large.objects}/${small.objects} ratio`,
    large.snapback.drainedSeconds / small.snapback.drainedSeconds,
    large.pagedListSeconds / small.pagedListSeconds,
    `of paged LIST's ratio (objects ×${factor})`,
  );
}

table.print(`Snapback benchmarks on Kubernetes ${kubernetesVersion} (kwok control plane)`);

const results = join(REPO_ROOT, 'bench', 'results');
mkdirSync(results, { recursive: true });
const stamp = new Date().toISOString();
writeFileSync(
  join(results, 'results.json'),
  `${JSON.stringify(
    {
      at: stamp,
      kubernetes: kubernetesVersion,
      minimumWritesPerRestore: minimum,
      minimumEventsPerRestore: MINIMUM_EVENTS,
      roundTrip: roundTrip.latencyMs,
      ceiling,
      go: go.map(({ latencySamplesMs: _, ...run }) => run),
      snapback: snapback.map(({ latencySamplesMs: _, samples: __, ...run }) => run),
      minimumWritesPerBackup: MINIMUM_BACKUP_WRITES,
      backups,
      cache,
      table: table.rows,
    },
    null,
    2,
  )}\n`,
);
latencyChart(join(results, 'latency.png'), [
  {
    label: `Snapback event → next phase write (N=${largest.restores})`,
    points: cdf(largest.latencySamplesMs, 0.1),
  },
  ...(go.at(-1) === undefined
    ? []
    : [
        {
          label: `client-go, same work, event → next phase write (N=${go.at(-1)?.restores ?? 0})`,
          points: cdf(go.at(-1)?.latencySamplesMs ?? [], 0.1),
        },
      ]),
  { label: 'status write → watch event, idle server', points: cdf(roundTrip.samplesMs, 0.1), dashed: true },
]);
const largestGo = go.at(-1);
throughputChart(join(results, 'throughput.png'), [
  {
    label: 'ceiling: minimal status write loop',
    points: ceiling.map((p) => [p.concurrency, p.writesPerSecond]),
  },
  ...(largestGo === undefined
    ? []
    : [
        {
          label: `client-go controller, same work, N=${largestGo.restores} (8 workers)`,
          // Its status writes: every write but the finalizer, the PVC, the StatefulSet and the patch.
          points: [
            [1, (largestGo.writes - 4 * largestGo.restores) / largestGo.seconds],
            [64, (largestGo.writes - 4 * largestGo.restores) / largestGo.seconds],
          ] as [number, number][],
          dashed: true,
        },
      ]),
  {
    label: `Snapback status writes, N=${largest.restores} (8 workers)`,
    points: [
      [1, statusWrites(largest) / largest.seconds],
      [64, statusWrites(largest) / largest.seconds],
    ],
    dashed: true,
  },
]);
console.log(`\nResults: bench/results/results.json, latency.png, throughput.png (${stamp})`);
await operatorClient.close();
await admin.close();
