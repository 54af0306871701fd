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

/** Writes a kubeconfig for the admin's cluster that authenticates as `user` with `token`; returns its path. */
async function tokenKubeconfig(file: string, user: string, token: string): Promise<string> {
  const admin = loadAll(await kubectl('config', 'view', '--raw', '--minify', '-o', 'yaml'))[0] as {
    clusters: { name: string; cluster: Record<string, unknown> }[];
  };
  const cluster = admin.clusters[0];
  if (cluster === undefined) throw new Error('no cluster in the kubeconfig');
  const dir = join(REPO_ROOT, '.cache', 'test-logs');
  mkdirSync(dir, { recursive: true });
  const kubeconfig = join(dir, `${file}.kubeconfig`);
  writeFileSync(
    kubeconfig,
    dump({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [cluster],
      users: [{ name: user, user: { token } }],
      contexts: [{ name: 'sa', context: { cluster: cluster.name, user } }],
      'current-context': 'sa',
    }),
  );
  return kubeconfig;
}

const tokenOf = async (serviceAccount: string, namespace: string, hours: number): Promise<string> =>
  (await kubectl('create', 'token', serviceAccount, '-n', namespace, `--duration=${hours}h`)).trim();

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
    '--set',
    `operator.clusterName=${release}`,
  );
  const serviceAccount = `${release}-snapback`;
  return tokenKubeconfig(release, serviceAccount, await tokenOf(serviceAccount, namespace, hours));
}

/**
 * A tenant as platform teams set one up: a ServiceAccount of `namespace` with the default `edit`
 * ClusterRole bound in that namespace only (Snapback's kinds reach it by the chart's aggregated
 * roles, so a chart must be installed). Returns the path of a kubeconfig holding a TokenRequest
 * token of it.
 */
export async function tenantIdentity(namespace: string, hours = 1): Promise<string> {
  const name = 'tenant';
  await kubectl('create', 'serviceaccount', name, '-n', namespace);
  await kubectl(
    'create',
    'rolebinding',
    `${name}-edit`,
    '-n',
    namespace,
    '--clusterrole=edit',
    `--serviceaccount=${namespace}:${name}`,
  );
  return tokenKubeconfig(
    `tenant-${namespace}`,
    `system:serviceaccount:${namespace}:${name}`,
    await tokenOf(name, namespace, hours),
  );
}

export const uninstallChart = (release: string, namespace: string): Promise<string> =>
  helm('uninstall', release, '--namespace', namespace);
