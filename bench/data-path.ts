// `make bench`, the data path: the data mover's full backup, full restore and incremental backup
// of real data against versitygw on loopback, beside restic (v0.18.1, built from Go modules: the
// engine Velero shipped before Kopia) doing the same to the same store, and the raw limits of this
// machine measured in the same run (reading the volume with tar, large-object PUT and GET).
// Printed as a table; bench/results/data-path.json and data-path-throughput.png.
//
//   node --import tsx bench/data-path.ts [--pg-scale 68] [--file-mib 1024]

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  cpSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  closeSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import type { MoverResult } from '../src/storage/data-mover.js';
import { REPO_ROOT } from '../test/integration/support/cluster.js';
import { startObjectStore } from '../test/integration/support/object-store.js';
import { Postgres } from '../test/integration/support/postgres.js';
import { freePort } from '../test/integration/support/process.js';
import { round } from './measure.js';
import { barChart } from './plot.js';
import { step } from './setup.js';
import { FigureTable } from './table.js';

const { values: args } = parseArgs({
  options: {
    'pg-scale': { type: 'string', default: '68' },
    'file-mib': { type: 'string', default: '1024' },
  },
});
const MiB = 1024 * 1024;
const BUCKET = 'data-path';
const RESTIC = join(REPO_ROOT, '.cache', 'bin', 'restic');
const NODE = join(REPO_ROOT, 'node_modules', '.bin', 'node');
const MOVER = join(REPO_ROOT, 'dist', 'src', 'main.js');
const work = join(REPO_ROOT, '.cache', 'bench-data');

/** Wall and CPU seconds of a command, from GNU time; its standard output. */
interface Timed {
  seconds: number;
  cpuSeconds: number;
  stdout: string;
}

function timed(command: string, commandArgs: string[], env: NodeJS.ProcessEnv): Promise<Timed> {
  const timesFile = join(work, 'time.txt');
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/time', ['-o', timesFile, '-f', '%e %U %S', command, ...commandArgs], {
      env,
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (data: Buffer) => (stdout += data.toString()));
    child.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) {
        reject(new Error(`${command} ${commandArgs.join(' ')} exited ${String(code)}: ${stderr}`));
        return;
      }
      const [wall, user, system] = readFileSync(timesFile, 'utf8').trim().split(/\s+/).map(Number);
      resolve({ seconds: wall ?? NaN, cpuSeconds: (user ?? NaN) + (system ?? NaN), stdout });
    });
  });
}

async function bytesUnder(root: string): Promise<number> {
  let bytes = 0;
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) bytes += statSync(join(entry.parentPath, entry.name)).size;
  }
  return bytes;
}

/** Bytes of 8 KiB blocks that differ between two copies of a directory (new files count whole). */
async function changedBytes(before: string, after: string): Promise<number> {
  const BLOCK = 8192;
  let changed = 0;
  for (const entry of await readdir(after, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    const old = join(before, relative(after, path));
    let oldFd: number | undefined;
    try {
      oldFd = openSync(old, 'r');
    } catch {
      changed += statSync(path).size;
      continue;
    }
    const newFd = openSync(path, 'r');
    const a = Buffer.alloc(BLOCK);
    const b = Buffer.alloc(BLOCK);
    for (let offset = 0; ; offset += BLOCK) {
      const read = readSync(newFd, a, 0, BLOCK, offset);
      if (read === 0) break;
      const readOld = readSync(oldFd, b, 0, BLOCK, offset);
      if (readOld !== read || !a.subarray(0, read).equals(b.subarray(0, read))) changed += read;
    }
    closeSync(newFd);
    closeSync(oldFd);
  }
  return changed;
}

/** Half random, half compressible: 1 MiB blocks of each, alternating. */
function writeMixedFile(path: string, mib: number): void {
  const fd = openSync(path, 'w');
  const text = Buffer.from(
    'x'
      .repeat(64)
      .concat('\n')
      .repeat(Math.ceil(MiB / 65)),
  ).subarray(0, MiB);
  for (let i = 0; i < mib; i++) {
    const block =
      i % 2 === 0 ? randomBytes(MiB) : Buffer.concat([Buffer.from(`block ${i} `), text]).subarray(0, MiB);
    writeFileSync(fd, block);
  }
  closeSync(fd);
}

interface EngineRun {
  backup: Timed & { storedBytes: number };
  restore: Timed;
}

interface DataSetRun {
  name: string;
  bytes: number;
  tar: Timed;
  snapback: EngineRun;
  restic: EngineRun;
}

const s3 = await startObjectStore('bench-data');
await s3.createBucket(BUCKET);
rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });

// No progress lines: the result is the last line of output.
const moverEnv = (prefix: string): NodeJS.ProcessEnv =>
  s3.moverEnv(BUCKET, prefix, { progressSeconds: 3600 });
const resticEnv = (prefix: string): NodeJS.ProcessEnv => ({
  ...process.env,
  RESTIC_REPOSITORY: `s3:${s3.endpoint}/${BUCKET}/${prefix}`,
  RESTIC_PASSWORD: 'bench',
  AWS_ACCESS_KEY_ID: s3.accessKeyId,
  AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
  RESTIC_CACHE_DIR: join(work, 'restic-cache'),
});

function moverResult(run: Timed): Exclude<MoverResult, { error: unknown }> {
  const result = JSON.parse(run.stdout.trim().split('\n').at(-1) ?? '{}') as MoverResult;
  if ('error' in result) throw new Error(`mover failed: ${JSON.stringify(result.error)}`);
  return result;
}

async function snapbackBackup(
  prefix: string,
  dir: string,
  manifest: string,
): Promise<Timed & { storedBytes: number }> {
  const before = await s3.storedBytes(BUCKET, prefix);
  const run = await timed(NODE, [MOVER, 'mover', 'backup', dir, manifest], moverEnv(prefix));
  moverResult(run);
  return { ...run, storedBytes: (await s3.storedBytes(BUCKET, prefix)) - before };
}

async function resticBackup(prefix: string, dir: string): Promise<Timed & { storedBytes: number }> {
  const before = await s3.storedBytes(BUCKET, prefix);
  const run = await timed(RESTIC, ['backup', '--quiet', '--json', dir], resticEnv(prefix));
  return { ...run, storedBytes: (await s3.storedBytes(BUCKET, prefix)) - before };
}

async function runDataSet(name: string, dir: string): Promise<DataSetRun> {
  const bytes = await bytesUnder(dir);
  step(`${name}: ${round(bytes / MiB)} MiB; tar to /dev/null`);
  // Through a pipe: GNU tar does not read files it writes to /dev/null itself.
  const tar = await timed('bash', ['-c', `tar -cf - -C '${dir}' . | cat > /dev/null`], process.env);
  step(`${name}: Snapback backup and restore`);
  const snapBackup = await snapbackBackup(`snapback-${name}`, dir, `${name}/0`);
  const snapTarget = join(work, `${name}-snapback-restored`);
  mkdirSync(snapTarget);
  const snapRestore = await timed(
    NODE,
    [MOVER, 'mover', 'restore', `${name}/0`, snapTarget],
    moverEnv(`snapback-${name}`),
  );
  moverResult(snapRestore);
  rmSync(snapTarget, { recursive: true, force: true });
  step(`${name}: restic backup and restore`);
  await timed(RESTIC, ['init', '--quiet'], resticEnv(`restic-${name}`));
  const resticFull = await resticBackup(`restic-${name}`, dir);
  const resticTarget = join(work, `${name}-restic-restored`);
  const resticRestore = await timed(
    RESTIC,
    ['restore', 'latest', '--quiet', '--target', resticTarget],
    resticEnv(`restic-${name}`),
  );
  rmSync(resticTarget, { recursive: true, force: true });
  return {
    name,
    bytes,
    tar,
    snapback: { backup: snapBackup, restore: snapRestore },
    restic: { backup: resticFull, restore: resticRestore },
  };
}

/** Large-object PUT and GET of 4 × 256 MiB at once, from memory and to nowhere. */
async function objectLimits(): Promise<{ putMBps: number; getMBps: number }> {
  const body = randomBytes(256 * MiB);
  const keys = [0, 1, 2, 3].map((i) => `raw/${i}`);
  let started = Date.now();
  await Promise.all(keys.map((Key) => s3.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key, Body: body }))));
  const putSeconds = (Date.now() - started) / 1000;
  started = Date.now();
  await Promise.all(
    keys.map(async (Key) => {
      const response = await s3.s3.send(new GetObjectCommand({ Bucket: BUCKET, Key }));
      let bytes = 0;
      for await (const chunk of response.Body as AsyncIterable<Buffer>) bytes += chunk.length;
      if (bytes !== body.length) throw new Error(`GET ${Key}: ${bytes} of ${body.length} bytes`);
    }),
  );
  const getSeconds = (Date.now() - started) / 1000;
  const total = (keys.length * body.length) / 1e6;
  return { putMBps: total / putSeconds, getMBps: total / getSeconds };
}

step('raw limit: large-object PUT and GET against versitygw on loopback');
const limits = await objectLimits();

step(`data set: PostgreSQL, pgbench scale ${args['pg-scale']}`);
const pg = Postgres.init(join(work, 'pgdata'), await freePort());
pg.start();
pg.pgbench(['-i', '-s', args['pg-scale'], '-q']);
pg.stop();
const pgRun = await runDataSet('postgres', pg.dataDir);

step('incremental: pgbench changes about 1% of the database');
const copy = join(work, 'pgdata-before');
cpSync(pg.dataDir, copy, { recursive: true });
pg.start();
const accounts = Number(args['pg-scale']) * 100_000;
// Each transaction updates one account row (and a teller, a branch, a history row).
pg.pgbench(['-n', '-c', '2', '-t', String(Math.round(accounts / 200))]);
pg.stop();
const changed = await changedBytes(copy, pg.dataDir);
rmSync(copy, { recursive: true, force: true });
const incrementalSnapback = await snapbackBackup('snapback-postgres', pg.dataDir, 'postgres/1');
const incrementalRestic = await resticBackup('restic-postgres', pg.dataDir);

step(`data set: one file of ${args['file-mib']} MiB, half random, half compressible`);
const fileDir = join(work, 'file');
mkdirSync(fileDir);
writeMixedFile(join(fileDir, 'mixed.bin'), Number(args['file-mib']));
const fileRun = await runDataSet('file', fileDir);

await s3.stop();
rmSync(work, { recursive: true, force: true });

const table = new FigureTable();
const mbps = (bytes: number, seconds: number): number => bytes / 1e6 / seconds;
const perGB = (cpu: number, bytes: number): number => cpu / (bytes / 1e9);
table.add('raw: large-object PUT, MB/s (4 at once)', limits.putMBps);
table.add('raw: large-object GET, MB/s (4 at once)', limits.getMBps);
for (const run of [pgRun, fileRun]) {
  const at = `${run.name} (${round(run.bytes / 1e6)} MB)`;
  table.add(`${at}: tar read, MB/s`, mbps(run.bytes, run.tar.seconds));
  table.add(
    `${at}: full backup, MB/s`,
    mbps(run.bytes, run.snapback.backup.seconds),
    mbps(run.bytes, run.restic.backup.seconds),
    'of restic',
  );
  table.add(
    `${at}: full restore, MB/s`,
    mbps(run.bytes, run.snapback.restore.seconds),
    mbps(run.bytes, run.restic.restore.seconds),
    'of restic',
  );
  table.add(
    `${at}: backup CPU-s per GB`,
    perGB(run.snapback.backup.cpuSeconds, run.bytes),
    perGB(run.restic.backup.cpuSeconds, run.bytes),
    'of restic',
  );
  table.add(
    `${at}: restore CPU-s per GB`,
    perGB(run.snapback.restore.cpuSeconds, run.bytes),
    perGB(run.restic.restore.cpuSeconds, run.bytes),
    'of restic',
  );
  table.add(
    `${at}: stored, MB`,
    run.snapback.backup.storedBytes / 1e6,
    run.restic.backup.storedBytes / 1e6,
    'of restic',
  );
}
table.add('incremental: changed bytes (8 KiB blocks), MB', changed / 1e6);
table.add(
  'incremental: uploaded, MB',
  incrementalSnapback.storedBytes / 1e6,
  changed / 1e6,
  'of the changed bytes',
);
table.add(
  'incremental: uploaded, MB, against restic',
  incrementalSnapback.storedBytes / 1e6,
  incrementalRestic.storedBytes / 1e6,
  'of restic',
);
table.add('incremental: seconds', incrementalSnapback.seconds, incrementalRestic.seconds, 'of restic');
table.print('Snapback data mover against restic v0.18.1, versitygw on loopback (page cache warm for both)');

const results = join(REPO_ROOT, 'bench', 'results');
mkdirSync(results, { recursive: true });
const stamp = new Date().toISOString();
writeFileSync(
  join(results, 'data-path.json'),
  `${JSON.stringify(
    {
      at: stamp,
      limits,
      runs: [pgRun, fileRun].map(({ tar, snapback, restic, name, bytes }) => ({
        name,
        bytes,
        tar,
        snapback,
        restic,
      })),
      incremental: { changedBytes: changed, snapback: incrementalSnapback, restic: incrementalRestic },
      table: table.rows,
    },
    (key, value: unknown) => (key === 'stdout' ? undefined : value),
    2,
  )}\n`,
);
barChart(join(results, 'data-path-throughput.png'), 'Data path throughput, MB/s, against the raw limits', [
  { label: 'PUT (raw)', value: limits.putMBps, group: 'raw' },
  { label: 'GET (raw)', value: limits.getMBps, group: 'raw' },
  ...[pgRun, fileRun].flatMap((run) => [
    { label: `${run.name}: tar`, value: mbps(run.bytes, run.tar.seconds), group: 'raw' },
    { label: `${run.name}: backup`, value: mbps(run.bytes, run.snapback.backup.seconds), group: 'Snapback' },
    { label: `${run.name}: backup`, value: mbps(run.bytes, run.restic.backup.seconds), group: 'restic' },
    {
      label: `${run.name}: restore`,
      value: mbps(run.bytes, run.snapback.restore.seconds),
      group: 'Snapback',
    },
    { label: `${run.name}: restore`, value: mbps(run.bytes, run.restic.restore.seconds), group: 'restic' },
  ]),
]);
console.log(`\nResults: bench/results/data-path.json, data-path-throughput.png (${stamp})`);
