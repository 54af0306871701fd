// Acceptance tests of the local control plane built by test/cluster/up.sh: real API server,
// controllers and scheduler, kwok nodes, snapshot-controller, the storage simulator, and helm.

import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { KubeObject, StatefulSet } from '../../src/api/kubernetes.js';
import type { KubeClient } from '../../src/runtime/kube-client.js';
import { resources, type ResourceType } from '../../src/runtime/resources.js';
import { CLASS_NAME } from '../cluster/storage-simulator/constants.js';
import {
  createTestNamespace,
  deleteTestNamespace,
  KUBECONFIG_PATH,
  nodes,
  REPO_ROOT,
  testClient,
  waitFor,
} from './support/cluster.js';

const run = promisify(execFile);
const BIN = join(REPO_ROOT, '.cache', 'bin');

interface ConfigMap extends KubeObject {
  data?: Record<string, string>;
}
const configMaps: ResourceType<ConfigMap> = {
  group: '',
  version: 'v1',
  kind: 'ConfigMap',
  plural: 'configmaps',
  namespaced: true,
};

/**
 * The k8s.io/kubernetes version the control plane's wrapper module (test/cluster/modules/kubernetes,
 * which build.sh builds kube-apiserver and the rest from) requires. Other wrappers, Argo CD's
 * among them, link other client versions of their own, which say nothing of the cluster.
 */
async function pinnedKubernetesVersion(): Promise<string> {
  const text = await readFile(join(REPO_ROOT, 'test', 'cluster', 'modules', 'kubernetes', 'go.mod'), 'utf8');
  // Matches both `require k8s.io/kubernetes v1.x.y` and a line inside a require block; a
  // replace directive (`k8s.io/kubernetes => ...`) does not match.
  const versions = [...text.matchAll(/^\s*(?:require\s+)?k8s\.io\/kubernetes\s+(v\d+\.\d+\.\d+\S*)/gm)].map(
    (match) => match[1],
  );
  if (versions.length !== 1 || versions[0] === undefined) {
    throw new Error(
      `expected one k8s.io/kubernetes requirement in modules/kubernetes/go.mod, found ${versions.join(', ') || 'none'}`,
    );
  }
  return versions[0];
}

let client: KubeClient;

beforeAll(async () => {
  client = await testClient();
});

afterAll(async () => {
  await client.close();
});

describe('the test cluster', () => {
  it('has 3 Ready kwok nodes and the real node', async () => {
    const { items } = await client.list(nodes);
    const ready = items
      .filter((node) =>
        (node.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True'),
      )
      .map((node) => (node.metadata.labels?.type === 'kwok' ? 'kwok' : (node.metadata.name ?? '')));
    expect(ready.sort()).toEqual(['kwok', 'kwok', 'kwok', 'snapback-node']);
  });

  it('runs the Kubernetes version its wrapper module pins', async () => {
    const pinned = await pinnedKubernetesVersion();
    const { stdout } = await run(join(BIN, 'kubectl'), [
      '--kubeconfig',
      KUBECONFIG_PATH,
      'get',
      '--raw',
      '/version',
    ]);
    const version = JSON.parse(stdout) as { gitVersion?: string };
    expect(version.gitVersion).toBe(pinned);
  });

  describe('in a namespace', () => {
    let ns: string;

    beforeAll(async () => {
      ns = await createTestNamespace('cluster');
    });

    afterAll(async () => {
      await deleteTestNamespace(ns);
    });

    it('rolls out a StatefulSet with volumes through the real controllers, scheduler and kwok', async () => {
      const labels = { app: 'web' };
      const statefulSet: StatefulSet = {
        metadata: { name: 'web', namespace: ns },
        spec: {
          replicas: 3,
          serviceName: 'web',
          selector: { matchLabels: labels },
          template: {
            metadata: { labels },
            spec: {
              containers: [{ name: 'web', image: 'registry.k8s.io/pause:3.10' }],
              // kwok's fake nodes may carry its taint; the pods must land on them either way.
              tolerations: [{ key: 'kwok.x-k8s.io/node', operator: 'Exists', effect: 'NoSchedule' }],
            },
          },
          volumeClaimTemplates: [
            {
              metadata: { name: 'data' },
              spec: {
                accessModes: ['ReadWriteOnce'],
                storageClassName: CLASS_NAME,
                resources: { requests: { storage: '1Gi' } },
              },
            },
          ],
        },
      };
      await client.create(resources.statefulSets, statefulSet);
      await waitFor('StatefulSet web to have 3 ready replicas', async () => {
        const current = await client.get(resources.statefulSets, 'web', ns);
        return current?.status?.readyReplicas === 3 ? current : undefined;
      });
      const { items } = await client.list(resources.persistentVolumeClaims, { namespace: ns });
      const claims = items.filter((c) => /^data-web-\d$/.test(c.metadata.name ?? ''));
      expect(claims.map((c) => c.metadata.name).sort()).toEqual(['data-web-0', 'data-web-1', 'data-web-2']);
      expect(claims.every((c) => c.status?.phase === 'Bound')).toBe(true);

      await client.create(resources.volumeSnapshots, {
        metadata: { name: 'web-0', namespace: ns },
        spec: { source: { persistentVolumeClaimName: 'data-web-0' } },
      });
      const snapshot = await waitFor('VolumeSnapshot web-0 readyToUse', async () => {
        const current = await client.get(resources.volumeSnapshots, 'web-0', ns);
        return current?.status?.readyToUse === true ? current : undefined;
      });
      expect(snapshot.status?.boundVolumeSnapshotContentName).toBeDefined();
    });

    it('installs and uninstalls a chart with helm', async () => {
      const helmHome = await mkdtemp(join(tmpdir(), 'helm-'));
      const env = {
        ...process.env,
        HELM_CACHE_HOME: join(helmHome, 'cache'),
        HELM_CONFIG_HOME: join(helmHome, 'config'),
        HELM_DATA_HOME: join(helmHome, 'data'),
      };
      const helm = (...args: string[]) =>
        run(join(BIN, 'helm'), [...args, '--kubeconfig', KUBECONFIG_PATH, '--namespace', ns], { env });
      try {
        const chart = join(REPO_ROOT, 'test', 'integration', 'fixtures', 'charts', 'hello');
        await helm('install', 'greeter', chart, '--wait', '--timeout', '60s');
        const configMap = await client.get(configMaps, 'greeter-hello', ns);
        expect(configMap?.data?.greeting).toBe('hello from helm');

        await helm('uninstall', 'greeter', '--wait', '--timeout', '60s');
        expect(await client.get(configMaps, 'greeter-hello', ns)).toBeUndefined();
      } finally {
        await rm(helmHome, { recursive: true, force: true });
      }
    });
  });
});
