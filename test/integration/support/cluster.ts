// Access to the real test cluster (test/cluster/up.sh) for integration tests: a client, throwaway
// namespaces, and waiting for a condition with a message that names what was awaited.

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { dirname, resolve } from 'node:path';
import { inspect } from 'node:util';
import { fileURLToPath } from 'node:url';
import { KubeConfig } from '@kubernetes/client-node';
import { KubeClient } from '../../../src/runtime/kube-client.js';
import type { KubeObject } from '../../../src/api/kubernetes.js';
import { resources, type ResourceType } from '../../../src/runtime/resources.js';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

export const KUBECONFIG_PATH =
  process.env.SNAPBACK_TEST_KUBECONFIG ?? resolve(REPO_ROOT, '.cache', 'cluster', 'kubeconfig');

export interface Node extends KubeObject {
  spec?: { taints?: { key: string; value?: string; effect: string }[] };
  status?: {
    conditions?: { type: string; status: string }[];
    nodeInfo?: { kubeletVersion?: string; containerRuntimeVersion?: string };
  };
}

/** Nodes: the operator never reads them, so src/runtime/resources.ts has no entry. */
export const nodes: ResourceType<Node> = {
  group: '',
  version: 'v1',
  kind: 'Node',
  plural: 'nodes',
  namespaced: false,
};

export interface Deployment extends KubeObject {
  spec: { replicas?: number };
  status?: { readyReplicas?: number; availableReplicas?: number };
}

/** Deployments (the chart's operator): the operator never reads them either. */
export const deployments: ResourceType<Deployment> = {
  group: 'apps',
  version: 'v1',
  kind: 'Deployment',
  plural: 'deployments',
  namespaced: true,
};

/** Marks namespaces made by tests, so leftovers of crashed runs can be found and removed. */
export const TEST_NAMESPACE_LABEL = 'snapback.dev/test';

/** The second cluster of cross-cluster tests (test/cluster/up.sh with CLUSTER_NAME=peer). */
export const PEER_CLUSTER_NAME = 'peer';
export const PEER_KUBECONFIG_PATH = resolve(REPO_ROOT, '.cache', 'clusters', PEER_CLUSTER_NAME, 'kubeconfig');

/**
 * Starts the peer cluster unless it runs (make test starts it with the first; a single test file
 * run starts it here). Its storage simulator shares the first cluster's backend directory, so
 * snapshot handles of one cluster resolve in the other.
 */
export function ensurePeerCluster(): void {
  execFileSync(resolve(REPO_ROOT, 'test/cluster/up.sh'), {
    env: { ...process.env, CLUSTER_NAME: PEER_CLUSTER_NAME },
    stdio: ['ignore', 'ignore', 'inherit'],
    timeout: 300_000,
  });
}

export async function testClient(kubeconfig = KUBECONFIG_PATH): Promise<KubeClient> {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(kubeconfig);
  return KubeClient.create(kubeConfig, { userAgent: 'snapback-tests' });
}

let sharedClient: Promise<KubeClient> | undefined;

/** For the helpers called without a client: one per test file (jest isolates modules per file). */
function defaultClient(): Promise<KubeClient> {
  sharedClient ??= testClient();
  return sharedClient;
}

/** A DNS-1123 label: the prefix (cleaned, shortened) and a random suffix. */
export function uniqueName(prefix: string): string {
  const clean = prefix
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40);
  const suffix = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  return `${clean === '' ? 'test' : clean}-${suffix}`;
}

/** Creates a namespace with a unique name and the test label; returns its name. */
export async function createTestNamespace(prefix: string): Promise<string>;
export async function createTestNamespace(client: KubeClient, prefix: string): Promise<string>;
export async function createTestNamespace(
  clientOrPrefix: KubeClient | string,
  prefix?: string,
): Promise<string> {
  const client = typeof clientOrPrefix === 'string' ? await defaultClient() : clientOrPrefix;
  const name = uniqueName(typeof clientOrPrefix === 'string' ? clientOrPrefix : (prefix ?? 'test'));
  await client.create(resources.namespaces, {
    metadata: { name, labels: { [TEST_NAMESPACE_LABEL]: 'true' } },
  });
  return name;
}

/** Deletes the namespace in the background; the server removes what it holds. */
export async function deleteTestNamespace(name: string): Promise<void>;
export async function deleteTestNamespace(client: KubeClient, name: string): Promise<void>;
export async function deleteTestNamespace(clientOrName: KubeClient | string, name?: string): Promise<void> {
  const client = typeof clientOrName === 'string' ? await defaultClient() : clientOrName;
  const namespace = typeof clientOrName === 'string' ? clientOrName : name;
  if (namespace === undefined) throw new Error('deleteTestNamespace: no namespace name');
  await client.delete(resources.namespaces, namespace, { propagationPolicy: 'Background' });
}

/**
 * Polls `probe` until it returns a value other than undefined or false, and returns that value.
 * Probe errors are retried (the cluster may be catching up); on timeout the error names what was
 * awaited and the last probe error.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  timeoutMs = 60_000,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const cause =
        lastError === undefined
          ? ''
          : ` (last error: ${lastError instanceof Error ? lastError.message : inspect(lastError)})`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${cause}`);
    }
    await new Promise((done) => setTimeout(done, intervalMs));
  }
}
