// The Helm chart (charts/snapback) with the real helm binary: lint, templates with default and
// other values, bad values refused by values.schema.json, the operator's own config loader
// accepting what the chart renders, and an install, upgrade and uninstall on the local cluster
// after which the CRDs and users' Backups are still there.

import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { loadAll } from 'js-yaml';
import type { KubeObject } from '../../src/api/kubernetes.js';
import { resolveConfig } from '../../src/config.js';
import type { KubeClient } from '../../src/runtime/kube-client.js';
import { resources } from '../../src/runtime/resources.js';
import {
  createTestNamespace,
  deleteTestNamespace,
  deployments,
  KUBECONFIG_PATH,
  REPO_ROOT,
  testClient,
} from './support/cluster.js';
import { backupManifest, customResourceDefinitions } from './support/snapback.js';

const run = promisify(execFile);
const HELM = join(REPO_ROOT, '.cache', 'bin', 'helm');
const CHART = join(REPO_ROOT, 'charts', 'snapback');

type Manifest = KubeObject & { kind: string; spec?: Record<string, unknown>; data?: Record<string, string> };

async function helm(...args: string[]): Promise<string> {
  const { stdout } = await run(HELM, [...args, '--kubeconfig', KUBECONFIG_PATH], { cwd: REPO_ROOT });
  return stdout;
}

/** The one value without a default. */
const CLUSTER_NAME = 'operator.clusterName=chart-test';

/** `helm template` of the chart with its cluster name and --set values; the rendered objects. */
async function render(...sets: string[]): Promise<Manifest[]> {
  const out = await helm(
    'template',
    'snapback',
    CHART,
    '--namespace',
    'snapback-system',
    ...[CLUSTER_NAME, ...sets].flatMap((s) => ['--set', s]),
  );
  return loadAll(out).filter((doc): doc is Manifest => doc !== null && typeof doc === 'object');
}

const ofKind = (objects: Manifest[], kind: string): Manifest[] => objects.filter((o) => o.kind === kind);

describe('the chart rendered', () => {
  it('passes helm lint', async () => {
    expect(await helm('lint', CHART, '--set', CLUSTER_NAME)).toMatch(
      /1 chart\(s\) linted, 0 chart\(s\) failed/,
    );
  });

  it('ships the CRDs of crds/, kept on uninstall and on deletion or prune by Argo CD', async () => {
    const objects = await render();
    const fromChart = ofKind(objects, 'CustomResourceDefinition');
    const fromRepo = readdirSync(join(REPO_ROOT, 'crds')).map(
      (file) => loadAll(readFileSync(join(REPO_ROOT, 'crds', file), 'utf8'))[0] as Manifest,
    );
    expect(fromChart.map((crd) => crd.metadata.annotations)).toEqual(
      fromChart.map(() => ({
        'helm.sh/resource-policy': 'keep',
        'argocd.argoproj.io/sync-options': 'Delete=false,Prune=false',
      })),
    );
    const withoutAnnotations = (crd: Manifest) => ({
      ...crd,
      metadata: { ...crd.metadata, annotations: undefined },
    });
    const byName = (a: Manifest, b: Manifest) => (a.metadata.name ?? '').localeCompare(b.metadata.name ?? '');
    expect(fromChart.map(withoutAnnotations).sort(byName)).toEqual(
      fromRepo.map(withoutAnnotations).sort(byName),
    );
    expect(ofKind(await render('crds.install=false'), 'CustomResourceDefinition')).toEqual([]);
  });

  it('runs 2 hardened replicas with leader election, configured in a way the operator accepts', async () => {
    const objects = await render();
    const [deployment] = ofKind(objects, 'Deployment');
    const spec = deployment?.spec as {
      replicas: number;
      template: {
        spec: { securityContext: object; containers: { securityContext: object; resources: object }[] };
      };
    };
    expect(spec.replicas).toBe(2);
    expect(spec.template.spec.securityContext).toMatchObject({
      runAsNonRoot: true,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(spec.template.spec.containers[0]?.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
    expect(spec.template.spec.containers[0]?.resources).toMatchObject({ limits: { memory: '512Mi' } });
    const [configMap] = ofKind(objects, 'ConfigMap');
    const config = resolveConfig(configMap?.data?.['config.yaml'], { POD_NAME: 'snapback-0' });
    expect(config.leaderElection).toMatchObject({
      enabled: true,
      namespace: 'snapback-system',
      leaseName: 'snapback',
    });
    expect(config.watchNamespace).toBe('');
    expect(ofKind(objects, 'PodDisruptionBudget')).toHaveLength(1);
    expect(ofKind(objects, 'ServiceMonitor')).toEqual([]);
  });

  it('renders the optional parts and settings when asked', async () => {
    const objects = await render(
      'metrics.serviceMonitor.enabled=true',
      'metrics.prometheusRule.enabled=true',
      'metrics.dashboard.enabled=true',
      'operator.watchNamespace=databases',
      'operator.logLevel=debug',
      'operator.maxConcurrentRestores=3',
      'restorabilityMatrix.dataServices[0].name=postgresql',
      'restorabilityMatrix.dataServices[0].conditions[0].imageCapabilities.pds_restore=v1',
    );
    expect(ofKind(objects, 'ServiceMonitor')).toHaveLength(1);
    const dashboard = ofKind(objects, 'ConfigMap').find(
      (cm) => cm.metadata.labels?.grafana_dashboard === '1',
    );
    expect(JSON.parse(dashboard?.data?.['snapback.json'] ?? '{}')).toMatchObject({ uid: 'snapback' });
    const [rule] = ofKind(objects, 'PrometheusRule');
    expect(JSON.stringify(rule?.spec)).toMatch(/SnapbackNoLeader.*/);
    const [matrix] = ofKind(objects, 'RestorabilityMatrix');
    expect(matrix?.metadata.name).toBe('default');
    const configMap = ofKind(objects, 'ConfigMap').find((cm) => cm.data?.['config.yaml'] !== undefined);
    const config = resolveConfig(configMap?.data?.['config.yaml'], {});
    expect(config).toMatchObject({
      watchNamespace: 'databases',
      logLevel: 'debug',
      restore: { maxConcurrentRestores: 3 },
    });
  });

  it.each([
    ['replicaCount=0', /replicaCount/],
    ['operator.logLevel=loud', /logLevel/],
    ['operator.watchNamespace=Not_A_Namespace', /watchNamespace/],
    ['operator.phaseTimeoutSeconds.Pending=0', /Pending/],
    ['metrics.port=80', /port/],
    ['surprise=1', /surprise/],
    ['operator.clusterName=', /clusterName/],
    ['operator.clusterName=Two Words', /clusterName/],
  ])('refuses %s, naming the value', async (set, field) => {
    const error = await render(set).then(
      () => undefined,
      (err: unknown) => err as { stderr?: string },
    );
    expect(error?.stderr).toMatch(/values don't meet the specifications of the schema/);
    expect(error?.stderr).toMatch(field);
  });
});

describe('the kustomize base (deploy/base)', () => {
  const KUBECTL = join(REPO_ROOT, '.cache', 'bin', 'kubectl');

  it('holds the chart rendered with its defaults (make deploy-manifests)', async () => {
    const rendered = await helm(
      'template',
      'snapback',
      CHART,
      '--namespace',
      'snapback-system',
      '--set',
      'crds.install=false',
      // The base leaves clusterName for each install to set: the operator refuses to start without.
      '--skip-schema-validation',
    );
    const committed = readFileSync(join(REPO_ROOT, 'deploy', 'base', 'snapback.yaml'), 'utf8');
    expect(committed.slice(committed.indexOf('\n') + 1)).toBe(rendered);
  });

  it('builds the same CRDs and RBAC as the chart, and the API server accepts it', async () => {
    const { stdout } = await run(KUBECTL, ['kustomize', join(REPO_ROOT, 'deploy', 'base')]);
    const built = loadAll(stdout) as Manifest[];
    const chart = await render();
    const pick = (objects: Manifest[], kinds: string[]) =>
      objects
        .filter((o) => kinds.includes(o.kind))
        .map((o) => ({ ...o, metadata: { name: o.metadata.name, namespace: o.metadata.namespace } }))
        .sort((a, b) =>
          `${a.kind}/${a.metadata.name ?? ''}`.localeCompare(`${b.kind}/${b.metadata.name ?? ''}`),
        );
    const compared = ['CustomResourceDefinition', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding'];
    expect(pick(built, compared)).toEqual(pick(chart, compared));
    // The namespace is part of the base; a server dry run cannot create what the rest lives in.
    await run(KUBECTL, ['--kubeconfig', KUBECONFIG_PATH, 'create', 'namespace', 'snapback-system']).catch(
      (err: unknown) => {
        if (!String((err as { stderr?: string }).stderr).includes('AlreadyExists')) throw err;
      },
    );
    const { stdout: applied } = await run(KUBECTL, [
      '--kubeconfig',
      KUBECONFIG_PATH,
      'apply',
      '--server-side',
      '--force-conflicts',
      '--dry-run=server',
      '-k',
      join(REPO_ROOT, 'deploy', 'base'),
    ]);
    expect(applied).toMatch(/deployment.apps\/snapback serverside-applied \(server dry run\)/);
  });
});

describe('the chart on the cluster', () => {
  let client: KubeClient;
  let namespace: string;
  let users: string;

  beforeAll(async () => {
    client = await testClient();
    namespace = await createTestNamespace(client, 'helm-snapback');
    users = await createTestNamespace(client, 'helm-users');
  });

  afterAll(async () => {
    await deleteTestNamespace(client, namespace);
    await deleteTestNamespace(client, users);
    await client.close();
  });

  it("installs, upgrades and uninstalls; the CRDs and users' Backups survive", async () => {
    const release = `sb-${namespace.slice(-8)}`;
    // --take-ownership: the suite installed the CRDs before, as a cluster upgraded from a plain
    // `kubectl apply` install has them.
    await helm(
      'install',
      release,
      CHART,
      '--namespace',
      namespace,
      '--take-ownership',
      '--set',
      CLUSTER_NAME,
    );
    const deployment = await client.get(deployments, `${release}-snapback`, namespace);
    expect(deployment?.spec).toMatchObject({ replicas: 2 });
    const status = await helm('status', release, '--namespace', namespace);
    expect(status).toMatch(/STATUS: deployed/);
    await client.create(resources.backups, backupManifest(users, 'keep-me', 'db'));

    // The next version of the chart changes the Backup schema: the upgrade must bring it to the cluster.
    const next = await mkdtemp(join(tmpdir(), 'snapback-chart-'));
    await cp(CHART, next, { recursive: true });
    const crdTemplate = join(next, 'templates', 'crds', 'backups.snapback.dev.yaml');
    const original = 'The VolumeSnapshotClass to snapshot with.';
    await writeFile(
      crdTemplate,
      (await readFile(crdTemplate, 'utf8')).replace(original, `Upgraded. ${original}`),
    );
    // --force-conflicts: the CRDs' fields were last applied by the suite's own field manager.
    await helm(
      'upgrade',
      release,
      next,
      '--namespace',
      namespace,
      '--force-conflicts',
      '--set',
      CLUSTER_NAME,
      '--set',
      'operator.logLevel=debug',
    );
    await rm(next, { recursive: true });
    expect(await helm('history', release, '--namespace', namespace)).toMatch(/2\s+.*deployed/);
    const upgraded = await client.get(customResourceDefinitions, 'backups.snapback.dev');
    expect(JSON.stringify(upgraded)).toContain(`Upgraded. ${original}`);

    await helm('uninstall', release, '--namespace', namespace);
    const crd = await client.get(customResourceDefinitions, 'backups.snapback.dev');
    expect(crd?.metadata.deletionTimestamp).toBeUndefined();
    expect(await client.get(resources.backups, 'keep-me', users)).toBeDefined();
  });
});
