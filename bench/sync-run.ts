// `make bench`, backup sync: imports of another cluster's records beside the baseline of a plain
// import loop, printed as a table and written to bench/results/sync.json.
//
//   node --import tsx bench/sync-run.ts [--records 1000]

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT } from '../test/integration/support/cluster.js';
import { benchCluster, step } from './setup.js';
import { runSync } from './sync.js';
import { FigureTable } from './table.js';

const { values: args } = parseArgs({ options: { records: { type: 'string', default: '1000' } } });
const records = Number(args.records);

const { admin, identity, operatorClient, kubernetesVersion } = await benchCluster();
step(`backup sync: ${records} records`);
const run = await runSync(admin, identity, records);

const table = new FigureTable();
const perImport = (n: number): number => n / run.records;
table.add(
  `sync N=${records}: imports/s`,
  run.importsPerSecond,
  run.baseline.importsPerSecond,
  'of a plain import loop',
);
table.add(
  `sync N=${records}: location created → all Completed, s`,
  run.seconds,
  run.baseline.seconds,
  'of the loop',
);
table.add(
  `sync N=${records}: object writes per import`,
  perImport(run.requests.objectWrites),
  run.baseline.writesPerImport,
  'of create + status',
);
table.add(`sync N=${records}: requests per import, all`, perImport(run.requests.total));
for (const name of ['get', 'create', 'update', 'patch'])
  table.add(`sync N=${records}:   ${name} per import`, perImport(run.requests.byVerb[name] ?? 0));
table.add(`sync N=${records}: 409 conflicts`, run.requests.conflicts);
table.add(`sync N=${records}: operator CPU-ms per import`, perImport(run.operatorCpuSeconds * 1000));
table.add(`sync N=${records}: record size, bytes`, run.recordBytes);
table.add(
  `sync N=${records}: steady state, object writes in ${run.steady.seconds}s`,
  run.steady.objectWrites,
  Number.NaN,
  `${run.steady.locationStatusWrites} of them the location's status (check, lastSyncTime)`,
);
table.add(`sync N=${records}: records deleted → imports gone, s`, run.removalSeconds);
table.print(`Snapback backup sync on Kubernetes ${kubernetesVersion} (kwok control plane)`);

const results = join(REPO_ROOT, 'bench', 'results');
mkdirSync(results, { recursive: true });
const stamp = new Date().toISOString();
writeFileSync(
  join(results, 'sync.json'),
  `${JSON.stringify({ at: stamp, kubernetes: kubernetesVersion, sync: run, table: table.rows }, null, 2)}\n`,
);
console.log(`\nResults: bench/results/sync.json (${stamp})`);
await operatorClient.close();
await admin.close();
