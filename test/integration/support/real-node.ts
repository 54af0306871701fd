// The local cluster's real node (test/cluster/node.sh): its names, the sample PostgreSQL on it,
// and psql from this machine against pod addresses (the pod bridge is this machine's).

import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadAll } from 'js-yaml';
import type { Pod, StatefulSet } from '../../../src/api/kubernetes.js';
import type { KubeClient } from '../../../src/runtime/kube-client.js';
import { resources } from '../../../src/runtime/resources.js';
import { REPO_ROOT, waitFor } from './cluster.js';
import type { Backup, Restore } from '../../../src/api/generated/types.js';
import { backupManifest, isHealthy, restoreManifest, waitForBackup, waitForRestore } from './snapback.js';

const run = promisify(execFile);

export const REAL_NODE = 'snapback-node';
export const REAL_NODE_TAINT = 'snapback.dev/real-node';
export const CSI_DRIVER = 'csi.snapback.test';
/** WaitForFirstConsumer, as most real drivers' classes. */
export const CSI_STORAGE_CLASS = 'snapback-csi';
export const CSI_IMMEDIATE_STORAGE_CLASS = 'snapback-csi-immediate';
export const CSI_SNAPSHOT_CLASS = 'snapback-csi';
export const CSI_DATA_DIR = join(REPO_ROOT, '.cache', 'cluster', 'node', 'csi-data');

/** The reference of an image test/cluster/images/build.sh made (and node.sh imported). */
export const imageRef = (name: 'postgres' | 'snapback' | 'sandbox'): string =>
  readFileSync(imageRefFile(name), 'utf8').trim();
export const imageRefFile = (name: 'postgres' | 'snapback' | 'sandbox'): string =>
  join(REPO_ROOT, '.cache', 'images', `${name}.ref`);

/** Scheduling onto the real node: its label, and tolerating its taint. */
export const onRealNode = {
  nodeSelector: { [REAL_NODE_TAINT]: 'true' },
  tolerations: [{ key: REAL_NODE_TAINT, operator: 'Exists', effect: 'NoSchedule' }],
};
/** This machine's address on the pod bridge: what pods reach it at (node.sh's BRIDGE_IP). */
export const BRIDGE_IP = '10.244.0.1';

/**
 * The StatefulSet of examples/sample-dataservice.yaml (the demo's real PostgreSQL), renamed into
 * `namespace`/`name`, with `replicas` and the volumes' StorageClass given.
 */
export function postgresStatefulSet(
  namespace: string,
  name: string,
  {
    replicas = 1,
    storageClassName = CSI_STORAGE_CLASS,
  }: { replicas?: number; storageClassName?: string } = {},
): StatefulSet {
  const docs = loadAll(readFileSync(join(REPO_ROOT, 'examples', 'sample-dataservice.yaml'), 'utf8'));
  const example = docs.find(
    (doc): doc is StatefulSet => (doc as { kind?: string } | null)?.kind === 'StatefulSet',
  );
  if (example === undefined) throw new Error('examples/sample-dataservice.yaml holds no StatefulSet');
  const selector = { 'app.kubernetes.io/name': 'postgresql', 'app.kubernetes.io/instance': name };
  const template = example.spec.template;
  return {
    ...example,
    metadata: { ...example.metadata, name, namespace, labels: { ...example.metadata.labels, ...selector } },
    spec: {
      ...example.spec,
      serviceName: name,
      replicas,
      selector: { matchLabels: selector },
      template: { ...template, metadata: { ...template.metadata, labels: selector } },
      volumeClaimTemplates: (example.spec.volumeClaimTemplates ?? []).map((claim) => ({
        ...claim,
        spec: { ...claim.spec, storageClassName },
      })),
    },
  };
}

/** Creates the StatefulSet and waits until every replica is ready (PostgreSQL answering). */
export async function deployPostgres(client: KubeClient, sts: StatefulSet): Promise<StatefulSet> {
  const { name = '', namespace = '' } = sts.metadata;
  const replicas = sts.spec.replicas ?? 1;
  await client.create(resources.statefulSets, sts);
  return waitFor(
    `PostgreSQL StatefulSet ${namespace}/${name} with ${replicas} ready replica(s)`,
    async () => {
      const current = await client.get(resources.statefulSets, name, namespace);
      return isHealthy(current, replicas) ? current : undefined;
    },
    180_000,
  );
}

export async function podIP(client: KubeClient, namespace: string, pod: string): Promise<string> {
  return waitFor(`the address of pod ${namespace}/${pod}`, async () => {
    const current: Pod | undefined = await client.get(resources.pods, pod, namespace);
    return current?.status?.podIP;
  });
}

/** Runs SQL with this machine's psql against a pod's PostgreSQL; the unaligned output. */
export async function psql(host: string, sql: string): Promise<string> {
  const { stdout } = await run(
    'psql',
    ['--host', host, '--username', 'postgres', '--no-psqlrc', '-v', 'ON_ERROR_STOP=1', '-At', '-c', sql],
    { env: { ...process.env, PGCONNECT_TIMEOUT: '5' } },
  );
  return stdout.trim();
}

export interface TableDigest {
  rows: number;
  /** md5 over every row, in key order. */
  checksum: string;
}

/** Creates table `name` with `rows` rows of varied text and flushes it to disk (CHECKPOINT). */
export async function fillTable(host: string, name: string, rows: number): Promise<void> {
  await psql(
    host,
    `CREATE TABLE ${name} (id integer PRIMARY KEY, payload text NOT NULL);
     INSERT INTO ${name} SELECT i, md5(i::text) || repeat(chr(65 + i % 26), i % 50) FROM generate_series(1, ${rows}) AS i;
     CHECKPOINT;`,
  );
}

/** The query of a table's digest, and its answer read. */
export const digestQuery = (name: string): string =>
  `SELECT count(*) || ' ' || md5(coalesce(string_agg(id || ':' || payload, ',' ORDER BY id), '')) FROM ${name}`;
export function readDigest(out: string): TableDigest {
  const [rows = '', checksum = ''] = out.trim().split(' ');
  return { rows: Number(rows), checksum };
}

export async function tableDigest(host: string, name: string): Promise<TableDigest> {
  return readDigest(await psql(host, digestQuery(name)));
}

/** A psql that answers within the wait: PostgreSQL in the pod accepts connections. */
export async function waitForPostgres(host: string): Promise<void> {
  await waitFor(`PostgreSQL at ${host}`, () =>
    psql(host, 'SELECT 1').then(
      (out) => out === '1',
      () => false,
    ),
  );
}

/** A PostgreSQL `name` on the real node with `rows` rows in table `table`: its address and digest. */
export async function postgresWithRows(
  client: KubeClient,
  namespace: string,
  name: string,
  { table, rows, replicas = 1 }: { table: string; rows: number; replicas?: number },
): Promise<{ host: string; digest: TableDigest }> {
  await deployPostgres(client, postgresStatefulSet(namespace, name, { replicas }));
  const host = await podIP(client, namespace, `${name}-0`);
  await waitForPostgres(host);
  await fillTable(host, table, rows);
  return { host, digest: await tableDigest(host, table) };
}

/**
 * Backs StatefulSet `deployment` up as `<deployment>-backup`, runs `afterBackup`, restores it into
 * `copy` and returns the Backup, the Successful Restore and the restored database's address.
 */
export async function backUpAndRestore(
  client: KubeClient,
  namespace: string,
  { deployment, copy, afterBackup }: { deployment: string; copy: string; afterBackup?: () => Promise<void> },
): Promise<{ backup: Backup; restore: Restore; host: string }> {
  const backupName = `${deployment}-backup`;
  await client.create(resources.backups, backupManifest(namespace, backupName, deployment));
  const backup = await waitForBackup(client, namespace, backupName, 'Completed');
  await afterBackup?.();
  await client.create(
    resources.restores,
    restoreManifest(namespace, `${copy}-restore`, {
      source: { backupName },
      destination: { deploymentName: copy },
    }),
  );
  const restore = await waitForRestore(client, namespace, `${copy}-restore`, 'Successful', 240_000);
  const host = await podIP(client, namespace, `${copy}-0`);
  await waitForPostgres(host);
  return { backup, restore, host };
}
