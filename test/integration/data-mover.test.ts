// The data mover as its pods run it (`main.ts mover ...`, a process of its own) against versitygw:
// a real PostgreSQL data directory (initdb, pgbench) backed up to the bucket and restored into an
// empty directory, where PostgreSQL starts again and the rows match; a mover SIGKILLed mid-upload
// resumes without storing anything twice; a damaged or deleted pack and a wrong key each fail the
// restore, naming the object or the key.

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MoverResult } from '../../src/storage/data-mover.js';
import { REPO_ROOT } from './support/cluster.js';
import { LOCATION_KEY, startObjectStore, type RunningObjectStore } from './support/object-store.js';
import { Postgres, uid } from './support/postgres.js';
import { freePort, LOG_DIR } from './support/process.js';

const BUCKET = 'mover';
let s3: RunningObjectStore;
let work: string;

beforeAll(async () => {
  s3 = await startObjectStore('mover');
  await s3.createBucket(BUCKET);
  work = mkdtempSync(join(tmpdir(), 'snapback-mover-'));
  chmodSync(work, 0o755);
});
afterAll(async () => {
  await s3.stop();
  rmSync(work, { recursive: true, force: true });
});

const moverEnv = (prefix: string, locationKey = LOCATION_KEY): NodeJS.ProcessEnv =>
  s3.moverEnv(BUCKET, prefix, { locationKey, progressSeconds: 0.2 });

interface MoverRun {
  code: number | null;
  result: MoverResult;
  progressLines: number;
}

/** Runs the mover as a process; `killWhen` SIGKILLs it once a progress line satisfies it. */
function mover(
  args: string[],
  env: NodeJS.ProcessEnv,
  killWhen?: (progress: { bytesTransferred: number }) => boolean,
): Promise<MoverRun & { killed: boolean }> {
  const node = join(REPO_ROOT, 'node_modules/.bin/node');
  const child = spawn(node, ['--import', 'tsx', 'src/main.ts', 'mover', ...args], { cwd: REPO_ROOT, env });
  let output = '';
  let killed = false;
  let progressLines = 0;
  child.stdout.on('data', (data: Buffer) => {
    output += data.toString();
    const lines = output.split('\n').filter((line) => line.startsWith('{"progress"'));
    progressLines = lines.length;
    const last = lines.at(-1);
    if (killWhen !== undefined && !killed && last !== undefined) {
      const { progress } = JSON.parse(last) as { progress: { bytesTransferred: number } };
      if (killWhen(progress)) {
        killed = true;
        child.kill('SIGKILL');
      }
    }
  });
  let errors = '';
  child.stderr.on('data', (data: Buffer) => (errors += data.toString()));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => {
      writeFileSync(join(LOG_DIR, `mover-${args[0] ?? ''}-${Date.now()}.log`), `${output}\n${errors}`);
      const last = output.trim().split('\n').at(-1) ?? '';
      let result: MoverResult;
      try {
        result = JSON.parse(last) as MoverResult;
      } catch {
        if (!killed) {
          reject(new Error(`mover exited ${String(code)} without a result: ${errors}`));
          return;
        }
        result = { error: { code: 'StoreError', message: 'killed' } };
      }
      resolve({ code, result, progressLines, killed });
    });
  });
}

function done(run: MoverRun): Exclude<MoverResult, { error: unknown }> {
  if ('error' in run.result) throw new Error(`mover failed: ${JSON.stringify(run.result.error)}`);
  return run.result;
}

/** Files of the bucket's posix directory under `prefix`, for damaging them behind the store's back. */
function bucketFiles(prefix: string): string[] {
  const root = join(s3.root, BUCKET, prefix);
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name));
}

describe('a PostgreSQL data directory through the bucket', () => {
  let source: Postgres;
  let before: string;

  beforeAll(async () => {
    source = Postgres.init(join(work, 'pg-source'), await freePort());
  });

  it('comes back whole: PostgreSQL starts on the restored directory and the rows match', async () => {
    source.start();
    source.pgbench(['-i', '-s', '4', '-q']);
    before = source.fingerprint();
    source.stop();
    expect(before).toMatch(/^400000:[0-9a-f]{32}$/);

    const backup = done(await mover(['backup', source.dataDir, 'pg/0'], moverEnv('pg')));
    expect(backup.progress.bytesDone).toBe(backup.progress.bytesTotal);
    expect(backup.progress.files).toBeGreaterThan(900);

    const target = join(work, 'pg-restored');
    mkdirSync(target);
    const restored = done(await mover(['restore', 'pg/0', target], moverEnv('pg')));
    expect(restored.progress.bytesDone).toBe(backup.progress.bytesTotal);
    // PostgreSQL checks both before it starts.
    expect(statSync(target).mode & 0o777).toBe(0o700);
    expect(statSync(target).uid).toBe(uid('postgres'));
    const copy = new Postgres(target, await freePort());
    copy.start();
    try {
      expect(copy.fingerprint()).toBe(before);
    } finally {
      copy.stop();
    }

    const verified = done(await mover(['verify', 'pg/0'], moverEnv('pg')));
    expect(verified.progress.bytesDone).toBe(backup.progress.bytesTotal);
  });

  it('after a small change, sends about the changed bytes only', async () => {
    source.start();
    source.pgbench(['-t', '200', '-c', '2', '-n']);
    source.stop();
    const sentBefore = await s3.storedBytes(BUCKET, 'pg/repository/packs/');
    const second = done(await mover(['backup', source.dataDir, 'pg/1'], moverEnv('pg')));
    const sent = (await s3.storedBytes(BUCKET, 'pg/repository/packs/')) - sentBefore;
    expect(second.progress.chunksReused).toBeGreaterThan(second.progress.chunksNew);
    // 400 transactions touch a few hundred 8 KiB pages and the WAL: a few MB, not the 60 MB volume.
    expect(sent).toBeLessThan(second.progress.bytesTotal / 4);
  });
});

describe('a mover SIGKILLed mid-upload', () => {
  it('resumes: every chunk stored once, the volume restored whole', async () => {
    const volume = join(work, 'big');
    mkdirSync(volume);
    const data = randomBytes(96 * 1024 * 1024);
    writeFileSync(join(volume, 'random'), data);
    const killedRun = await mover(
      ['backup', volume, 'big/0'],
      moverEnv('big'),
      (p) => p.bytesTransferred > 0,
    );
    expect(killedRun.killed).toBe(true);
    const partly = await s3.storedBytes(BUCKET, 'big/repository/packs/');
    expect(partly).toBeGreaterThan(0);
    expect(partly).toBeLessThan(data.length);

    const resumed = done(await mover(['backup', volume, 'big/0'], moverEnv('big')));
    expect(resumed.progress.chunksReused).toBeGreaterThan(0);
    // Random data does not compress: what is stored is one copy, plus framing and headers.
    const stored = await s3.storedBytes(BUCKET, 'big/repository/packs/');
    expect(stored).toBeGreaterThanOrEqual(data.length);
    expect(stored).toBeLessThan(data.length * 1.01);

    const target = join(work, 'big-restored');
    mkdirSync(target);
    done(await mover(['restore', 'big/0', target], moverEnv('big')));
    expect(readFileSync(join(target, 'random')).equals(data)).toBe(true);
  });
});

describe('a restore fails, naming the cause', () => {
  beforeAll(async () => {
    const volume = join(work, 'small');
    mkdirSync(volume);
    writeFileSync(join(volume, 'table'), randomBytes(3 * 1024 * 1024));
    done(await mover(['backup', volume, 'small/0'], moverEnv('small')));
  });

  const restoreInto = async (name: string, env = moverEnv('small')): Promise<MoverRun> => {
    const target = join(work, name);
    mkdirSync(target);
    return mover(['restore', 'small/0', target], env);
  };

  it('with another location key: WrongKey', async () => {
    const run = await restoreInto('wrong-key', moverEnv('small', randomBytes(32).toString('base64')));
    expect(run.code).toBe(1);
    expect(run.result).toMatchObject({ error: { code: 'WrongKey', message: expect.stringMatching(/key/) } });
  });

  it('a pack damaged in the bucket: ObjectCorrupt with its key', async () => {
    const [pack] = bucketFiles('small/repository/packs');
    if (pack === undefined) throw new Error('no pack in the bucket');
    const bytes = readFileSync(pack);
    const original = Buffer.from(bytes);
    bytes[100] = (bytes[100] ?? 0) ^ 0xff;
    writeFileSync(pack, bytes);
    try {
      const run = await restoreInto('damaged');
      expect(run.code).toBe(1);
      const key = pack.slice(join(s3.root, BUCKET, 'small').length + 1);
      expect(run.result).toMatchObject({ error: { code: 'ObjectCorrupt', object: key } });
    } finally {
      writeFileSync(pack, original);
    }
  });

  it('a pack deleted from the bucket: ObjectMissing with its key', async () => {
    const [pack] = bucketFiles('small/repository/packs');
    if (pack === undefined) throw new Error('no pack in the bucket');
    rmSync(pack);
    const run = await restoreInto('missing');
    expect(run.code).toBe(1);
    const key = pack.slice(join(s3.root, BUCKET, 'small').length + 1);
    expect(run.result).toMatchObject({ error: { code: 'ObjectMissing', object: key } });
  });
});
