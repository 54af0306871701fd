// Snapback as users run it: `helm install` of charts/snapback runs the operator from the image the
// project's Dockerfile describes (test/cluster/images), as two pods on the real node with leader
// election, and that operator backs up and restores a real PostgreSQL, rows compared.

import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { KubeClient } from '../../src/runtime/kube-client.js';
import { resources } from '../../src/runtime/resources.js';
import {
  createTestNamespace,
  deleteTestNamespace,
  deployments,
  REPO_ROOT,
  testClient,
  waitFor,
} from './support/cluster.js';
import { helm, kubectl } from './support/identity.js';
import {
  backUpAndRestore,
  imageRef,
  onRealNode,
  postgresWithRows,
  REAL_NODE,
  tableDigest,
} from './support/real-node.js';
import { installCrds } from './support/snapback.js';

let client: KubeClient;
let namespace: string;
let release: string;

beforeAll(async () => {
  client = await testClient();
  await installCrds(client);
  namespace = await createTestNamespace(client, 'helm-op');
  release = namespace;
  const [repository, tag] = imageRef('snapback').split(':');
  await helm(
    'install',
    release,
    join(REPO_ROOT, 'charts', 'snapback'),
    '--namespace',
    namespace,
    '--set',
    'crds.install=false',
    '--set',
    `image.repository=${repository ?? ''}`,
    '--set',
    `image.tag=${tag ?? ''}`,
    // Imported into containerd: no registry is reachable.
    '--set',
    'image.pullPolicy=Never',
    '--set',
    `operator.watchNamespace=${namespace}`,
    '--set',
    'operator.clusterName=helm',
    '--set-json',
    `nodeSelector=${JSON.stringify(onRealNode.nodeSelector)}`,
    '--set-json',
    `tolerations=${JSON.stringify(onRealNode.tolerations)}`,
    '--wait',
    '--timeout',
    '180s',
  );
}, 240_000);

afterAll(async () => {
  await helm('uninstall', release, '--namespace', namespace, '--wait');
  await deleteTestNamespace(client, namespace);
  await client.close();
});

describe('the operator installed with Helm', () => {
  it('runs two replicas from its image on the real node, non-root on a read-only root, one of them leading', async () => {
    const deployment = await client.get(deployments, `${release}-snapback`, namespace);
    expect(deployment?.status?.readyReplicas).toBe(2);
    const { items: pods } = await client.list(resources.pods, {
      namespace,
      labelSelector: 'app.kubernetes.io/name=snapback',
    });
    expect(pods).toHaveLength(2);
    for (const pod of pods) {
      const nodeName: unknown = pod.spec.nodeName;
      expect(nodeName).toBe(REAL_NODE);
      const [container] = pod.spec.containers;
      expect(container?.image).toBe(imageRef('snapback'));
      expect(container?.securityContext).toMatchObject({ readOnlyRootFilesystem: true });
      expect(pod.status?.containerStatuses?.[0]).toMatchObject({ ready: true, restartCount: 0 });
    }
    // The image's own user and entrypoint, as the Dockerfile sets them.
    const uid = await kubectl(
      '-n',
      namespace,
      'exec',
      pods[0]?.metadata.name ?? '',
      '--',
      'node',
      '-p',
      'process.getuid()',
    );
    expect(uid.trim()).toBe('65532');
    const holder = await waitFor('a leader', async () => {
      const leases = JSON.parse(await kubectl('-n', namespace, 'get', 'leases', '-o', 'json')) as {
        items: { spec?: { holderIdentity?: string } }[];
      };
      return leases.items
        .map((lease) => lease.spec?.holderIdentity)
        .find((id) => id !== undefined && id !== '');
    });
    expect(pods.map((pod) => pod.metadata.name).some((name) => holder.includes(name ?? '?'))).toBe(true);
  });

  it('backs up and restores a real PostgreSQL, rows and checksum equal', async () => {
    const { digest: before } = await postgresWithRows(client, namespace, 'pg', {
      table: 'ledger',
      rows: 2000,
    });
    const { restore, host } = await backUpAndRestore(client, namespace, {
      deployment: 'pg',
      copy: 'pg-copy',
    });
    expect(restore.status?.errorCode).toBeUndefined();
    expect(await tableDigest(host, 'ledger')).toEqual(before);
  });
});
