// The operator's production identity for tests and benchmarks: the Helm chart installed (its
// ServiceAccount, ClusterRole and Lease Role), and a kubeconfig holding a TokenRequest token of
// that ServiceAccount. Requests made with it are authorized by the chart's RBAC and queued by the
// API server's priority and fairness like a deployed operator's, unlike the admin's.

import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { dump, loadAll } from 'js-yaml';
import { KUBECONFIG_PATH, REPO_ROOT } from './cluster.js';

const run = promisify(execFile);
const BIN = join(REPO_ROOT, '.cache', 'bin');

export const kubectl = async (...args: string[]): Promise<string> =>
  (await run(join(BIN, 'kubectl'), ['--kubeconfig', KUBECONFIG_PATH, ...args])).stdout;

export const helm = async (...args: string[]): Promise<string> =>
  (await run(join(BIN, 'helm'), [...args, '--kubeconfig', KUBECONFIG_PATH])).stdout;

/**
 * Installs (or upgrades) the chart as `release` in `namespace` (CRDs left to the caller) and returns the path
 * of a kubeconfig for its ServiceAccount, valid for `hours`.
 */
export async function installChartIdentity(release: string, namespace: string, hours = 1): Promise<string> {
  await helm(
    'upgrade',
    '--install',
    release,
    join(REPO_ROOT, 'charts', 'snapback'),
    '--namespace',
    namespace,
    '--set',
    'crds.install=false',
  );
  const serviceAccount = `${release}-snapback`;
  const token = (
    await kubectl('create', 'token', serviceAccount, '-n', namespace, `--duration=${hours}h`)
  ).trim();
  const admin = loadAll(await kubectl('config', 'view', '--raw', '--minify', '-o', 'yaml'))[0] as {
    clusters: { name: string; cluster: Record<string, unknown> }[];
  };
  const cluster = admin.clusters[0];
  if (cluster === undefined) throw new Error('no cluster in the kubeconfig');
  const dir = join(REPO_ROOT, '.cache', 'test-logs');
  mkdirSync(dir, { recursive: true });
  const kubeconfig = join(dir, `${release}.kubeconfig`);
  writeFileSync(
    kubeconfig,
    dump({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [cluster],
      users: [{ name: serviceAccount, user: { token } }],
      contexts: [{ name: 'sa', context: { cluster: cluster.name, user: serviceAccount } }],
      'current-context': 'sa',
    }),
  );
  return kubeconfig;
}

export const uninstallChart = (release: string, namespace: string): Promise<string> =>
  helm('uninstall', release, '--namespace', namespace);
