// What every benchmark program starts with on the bench cluster: an admin client, the CRDs, and
// the chart's ServiceAccount as the operator's identity.

import { KubeConfig } from '@kubernetes/client-node';
import { KubeClient } from '../src/runtime/kube-client.js';
import { isAlreadyExists } from '../src/runtime/errors.js';
import { resources } from '../src/runtime/resources.js';
import { testClient } from '../test/integration/support/cluster.js';
import { installChartIdentity, kubectl } from '../test/integration/support/identity.js';
import { installCrds } from '../test/integration/support/snapback.js';
import type { Identity } from './operator-run.js';

export interface BenchCluster {
  admin: KubeClient;
  identity: Identity;
  /** A client with the operator's identity, for baselines that must pay what it pays. */
  operatorClient: KubeClient;
  kubernetesVersion: string;
}

export async function benchCluster(): Promise<BenchCluster> {
  const admin = await testClient();
  await installCrds(admin);
  // A fixed namespace, so that a second run on a kept cluster (SNAPBACK_KEEP_CLUSTER) upgrades the
  // release instead of clashing with its cluster-scoped RBAC.
  const namespace = 'snapback-bench';
  await admin.create(resources.namespaces, { metadata: { name: namespace } }).catch((err: unknown) => {
    if (!isAlreadyExists(err)) throw err;
  });
  const identity: Identity = { kubeconfig: await installChartIdentity('bench', namespace, 6), namespace };
  const operatorConfig = new KubeConfig();
  operatorConfig.loadFromFile(identity.kubeconfig);
  const operatorClient = await KubeClient.create(operatorConfig, { userAgent: 'snapback-bench' });
  const version = JSON.parse(await kubectl('version', '-o', 'json')) as {
    serverVersion: { gitVersion: string };
  };
  return { admin, identity, operatorClient, kubernetesVersion: version.serverVersion.gitVersion };
}

export const step = (what: string): void => {
  console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${what}`);
};
