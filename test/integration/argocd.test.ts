// Snapback driven from Git by Argo CD itself (test/integration/support/argocd.ts): the application
// controller and repo server of Argo CD v3.6.1, built from Go modules, syncing a Git repository
// served on loopback, with Snapback's health checks merged into argocd-cm as the README says.
// What only Argo CD can show: sync waves waiting on Snapback's health, health that reads Healthy
// only when the work is done, no drift from what the API server and the operator add, prunes that
// delete no more than they should, and the chart's CRDs upgraded through a sync.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { dump } from 'js-yaml';
import { API_VERSION, finalizers } from '../../src/api/constants.js';
import type { KubeObject } from '../../src/api/kubernetes.js';
import type { KubeClient } from '../../src/runtime/kube-client.js';
import { resources } from '../../src/runtime/resources.js';
import {
  applications,
  resourceOf,
  startArgoCd,
  type Application,
  type RunningArgoCd,
} from './support/argocd.js';
import {
  createTestNamespace,
  deleteTestNamespace,
  deployments,
  REPO_ROOT,
  testClient,
  uniqueName,
  waitFor,
} from './support/cluster.js';
import { kubectl } from './support/identity.js';
import {
  locationManifest,
  startObjectStore,
  waitForLocation,
  writeCredentials,
  type RunningObjectStore,
} from './support/object-store.js';
import { startOperator, type RunningOperator } from './support/operator.js';
import { imageRef, onRealNode } from './support/real-node.js';
import { installCrds, isHealthy, sampleStatefulSet, waitForRestore } from './support/snapback.js';

let client: KubeClient;
let argo: RunningArgoCd;
let store: RunningObjectStore;
let operator: RunningOperator;
let namespace: string;
let location: string;

// Unique per run: a cluster that ran the suite before may still hold objects tracked under a name.
const APP = uniqueName('restores');
const WAVE = 'argocd.argoproj.io/sync-wave';

/** One YAML document of Git, in a sync wave; namespaced objects get the Application's namespace. */
const gitYaml = (object: KubeObject & Record<string, unknown>, wave: number): string => {
  const { namespace: _dropped, ...metadata } = object.metadata;
  return dump(
    { ...object, metadata: { ...metadata, annotations: { ...metadata.annotations, [WAVE]: String(wave) } } },
    { noRefs: true },
  );
};

const restoreYaml = (name: string, destination: string, recreateToken?: string): string =>
  gitYaml(
    {
      apiVersion: API_VERSION,
      kind: 'Restore',
      metadata: { name },
      spec: {
        source: { backupName: 'pg-backup' },
        destination: { deploymentName: destination },
        ...(recreateToken === undefined ? {} : { recreateToken }),
      },
    },
    2,
  );

function applicationManifest(
  name: string,
  source: Record<string, unknown>,
  destination: string,
): Application {
  return {
    apiVersion: 'argoproj.io/v1alpha1',
    kind: 'Application',
    metadata: { name, namespace: argo.namespace },
    spec: {
      project: 'default',
      source: { repoURL: argo.git.url, targetRevision: 'main', ...source },
      destination: { server: 'https://kubernetes.default.svc', namespace: destination },
      syncPolicy: { automated: { prune: true, selfHeal: true } },
    },
  };
}

const application = async (name = APP): Promise<Application | undefined> =>
  client.get(applications, name, argo.namespace);

/** Waits until the Application has synced `revision` and satisfies `wanted`. */
async function waitForApplication(
  what: string,
  revision: string,
  wanted: (app: Application) => boolean,
  name = APP,
  timeoutMs = 180_000,
): Promise<Application> {
  return waitFor(
    `Application ${name}: ${what} at ${revision.slice(0, 7)}`,
    async () => {
      const app = await application(name);
      const synced =
        app?.status?.sync?.revision === revision &&
        app.status.operationState?.syncResult?.revision === revision;
      return synced && app.status?.operationState?.phase === 'Succeeded' && wanted(app) ? app : undefined;
    },
    timeoutMs,
    250,
  );
}

const healthy = (app: Application): boolean =>
  app.status?.sync?.status === 'Synced' && app.status.health?.status === 'Healthy';

beforeAll(async () => {
  client = await testClient();
  await installCrds(client);
  namespace = await createTestNamespace(client, 'gitops');
  store = await startObjectStore('gitops');
  await store.createBucket('gitops');
  await writeCredentials(client, namespace, 'store-key', store.accessKeyId, store.secretAccessKey);
  location = uniqueName('gitops');
  // Argo CD first: an operator started before it failed to start would outlive the file, and
  // reconcile the next files' BackupLocations (cluster-scoped) as its own.
  argo = await startArgoCd(client);
  operator = await startOperator(`argocd-${namespace}`, { watchNamespace: namespace, namespace });
}, 180_000);

afterAll(async () => {
  await argo.stop();
  await operator.stop();
  await client.delete(resources.backupLocations, location).catch(() => undefined);
  await store.stop();
  await deleteTestNamespace(client, namespace);
  await client.close();
});

describe('Argo CD syncing Snapback resources from Git', () => {
  let firstRevision: string;

  it('syncs a data service, a BackupLocation, a Backup and a Restore in waves, Healthy only once the Restore is Successful', async () => {
    firstRevision = await argo.git.commit('a data service, its backup and a restore', {
      'restores/statefulset.yaml': gitYaml(
        { apiVersion: 'apps/v1', kind: 'StatefulSet', ...sampleStatefulSet(namespace, 'pg', 2) },
        0,
      ),
      'restores/location.yaml': gitYaml(
        {
          ...locationManifest(store, location, 'gitops', { validationFrequencySeconds: 5 }),
        },
        0,
      ),
      'restores/backup.yaml': gitYaml(
        {
          apiVersion: API_VERSION,
          kind: 'Backup',
          metadata: { name: 'pg-backup' },
          spec: { deployment: { kind: 'StatefulSet', name: 'pg' }, backupLocation: location },
        },
        1,
      ),
      'restores/restore.yaml': restoreYaml('pg-restore', 'pg-restored'),
    });
    await client.create(applications, applicationManifest(APP, { path: 'restores' }, namespace));

    // Argo CD's view and Snapback's, side by side, every 250 ms until the Application is Healthy.
    const samples: {
      health?: string;
      sync?: string;
      operation?: string;
      restoreHealth?: string;
      restore?: string;
    }[] = [];
    const app = await waitFor(
      'the Application Healthy',
      async () => {
        const [current, restore] = await Promise.all([
          application(),
          client.get(resources.restores, 'pg-restore', namespace),
        ]);
        samples.push({
          health: current?.status?.health?.status,
          sync: current?.status?.sync?.status,
          operation: current?.status?.operationState?.phase,
          restoreHealth: resourceOf(current, 'Restore', 'pg-restore')?.health?.status,
          restore: restore?.status?.phase,
        });
        return current !== undefined &&
          healthy(current) &&
          current.status?.operationState?.phase === 'Succeeded'
          ? current
          : undefined;
      },
      240_000,
      250,
    );

    const restore = await waitForRestore(client, namespace, 'pg-restore', 'Successful');
    const unfinished = (sample: (typeof samples)[number]) =>
      sample.restore !== undefined && sample.restore !== 'Successful';
    // Argo CD's health of the Restore: Progressing while it runs, Healthy only once Successful.
    expect(samples.filter((sample) => sample.restoreHealth === 'Healthy' && unfinished(sample))).toEqual([]);
    expect(samples.some((sample) => sample.restoreHealth === 'Progressing' && unfinished(sample))).toBe(true);
    // The Application's: Argo CD counts only what it has compared, so between waves, and until it
    // has compared again after the sync, it may read Healthy with the Restore still Missing to it.
    // Once it reads Synced (the Restore compared), Healthy only with the Restore Successful.
    expect(
      samples.filter(
        (sample) => sample.sync === 'Synced' && sample.health === 'Healthy' && unfinished(sample),
      ),
    ).toEqual([]);
    expect(samples.some((sample) => sample.health === 'Progressing' && unfinished(sample))).toBe(true);
    // Synced at once: once the sync is over and compared, never OutOfSync again (and no second sync).
    const synced = samples.findIndex(
      (sample) => sample.operation === 'Succeeded' && sample.sync === 'Synced',
    );
    expect(synced).toBeGreaterThanOrEqual(0);
    expect(samples.slice(synced).filter((sample) => sample.sync !== 'Synced')).toEqual([]);
    expect(app.status?.history).toHaveLength(1);
    expect(app.status?.sync?.revision).toBe(firstRevision);

    // The waves waited on Snapback's health: the Restore was made only once the Backup was Completed.
    const backup = await client.get(resources.backups, 'pg-backup', namespace);
    const seconds = (time: string | undefined) => Math.floor(Date.parse(time ?? '') / 1000);
    expect(seconds(restore.metadata.creationTimestamp)).toBeGreaterThanOrEqual(
      seconds(backup?.status?.completionTime),
    );
    expect(resourceOf(app, 'Restore', 'pg-restore')?.health).toEqual({
      status: 'Healthy',
      message: 'Restored into pg-restored',
    });
    expect(resourceOf(app, 'Backup', 'pg-backup')?.health?.status).toBe('Healthy');
    expect(resourceOf(app, 'BackupLocation', location)?.health?.status).toBe('Healthy');
    await waitForLocation(client, location, 'Available');
  });

  it.each([
    ['default diffing', undefined],
    ['server-side diff', 'ServerSideDiff=true'],
  ])(
    'stays Synced with no further sync after the operator wrote status, finalizers and more (%s)',
    async (_mode, compareOptions) => {
      if (compareOptions !== undefined)
        await client.mergePatch(
          applications,
          APP,
          { metadata: { annotations: { 'argocd.argoproj.io/compare-options': compareOptions } } },
          { namespace: argo.namespace },
        );
      await argo.refresh(APP, 'hard');
      const before = await waitForApplication('Synced and Healthy', firstRevision, healthy);
      // What the operator adds is there to be diffed against Git.
      const backup = await client.get(resources.backups, 'pg-backup', namespace);
      const restore = await client.get(resources.restores, 'pg-restore', namespace);
      expect(backup?.metadata.finalizers).toContain(finalizers.backup);
      expect(restore?.metadata.finalizers).toContain(finalizers.restore);
      expect(restore?.status?.phase).toBe('Successful');

      // 20 s at a 5 s resync, and a hard refresh half way: several full comparisons.
      const reconciled = new Set<string>();
      const deadline = Date.now() + 20_000;
      let refreshed = false;
      while (Date.now() < deadline) {
        const app = await application();
        expect(app?.status?.sync?.status).toBe('Synced');
        expect(app?.status?.health?.status).toBe('Healthy');
        expect(app?.status?.operationState?.startedAt).toBe(before.status?.operationState?.startedAt);
        reconciled.add(app?.status?.reconciledAt ?? '');
        if (!refreshed && deadline - Date.now() < 10_000) {
          await argo.refresh(APP, 'hard');
          refreshed = true;
        }
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
      expect(reconciled.size).toBeGreaterThanOrEqual(3);
      const after = await application();
      expect(after?.status?.history).toHaveLength(1);
      // Argo CD changed no spec of the objects it manages (the single history entry: it synced once).
      const generations = await Promise.all([
        client.get(resources.backups, 'pg-backup', namespace),
        client.get(resources.restores, 'pg-restore', namespace),
        client.get(resources.statefulSets, 'pg', namespace),
      ]);
      expect(generations.map((object) => object?.metadata.generation)).toEqual([1, 1, 1]);
    },
    120_000,
  );

  it('shows a failed Restore Degraded with its errorMessage, and a new recreateToken in Git starts a new attempt', async () => {
    // A deployment of the name the Restore will want, made outside Git.
    // The sample data service with no replicas: no pods, no claims, only the name.
    await client.create(resources.statefulSets, sampleStatefulSet(namespace, 'taken', 0));
    const failing = await argo.git.commit('a restore into a name that is taken', {
      'restores/restore-taken.yaml': restoreYaml('pg-restore-taken', 'taken'),
    });
    await argo.refresh(APP);
    const degraded = await waitForApplication(
      'Degraded',
      failing,
      (app) => app.status?.health?.status === 'Degraded',
    );
    const failed = await client.get(resources.restores, 'pg-restore-taken', namespace);
    expect(failed?.status?.phase).toBe('Failed');
    expect(failed?.status?.errorCode).toBe('DataServiceDeploymentNameAlreadyExist');
    expect(degraded.status?.sync?.status).toBe('Synced');
    expect(resourceOf(degraded, 'Restore', 'pg-restore-taken')?.health).toEqual({
      status: 'Degraded',
      message: `DataServiceDeploymentNameAlreadyExist: ${failed?.status?.errorMessage ?? ''}`,
    });

    // The fix the message names: remove the deployment, change spec.recreateToken, in Git.
    await client.delete(resources.statefulSets, 'taken', { namespace });
    await waitFor(
      'StatefulSet taken gone',
      async () => (await client.get(resources.statefulSets, 'taken', namespace)) === undefined,
    );
    const retry = await argo.git.commit('try the restore again', {
      'restores/restore-taken.yaml': restoreYaml('pg-restore-taken', 'taken', 'retry-1'),
    });
    await argo.refresh(APP);
    await waitForApplication('Healthy again', retry, healthy, APP, 240_000);
    const retried = await waitForRestore(client, namespace, 'pg-restore-taken', 'Successful');
    expect(retried.status).toMatchObject({ attempt: 2, observedRecreateToken: 'retry-1' });
    expect(isHealthy(await client.get(resources.statefulSets, 'taken', namespace), 2)).toBe(true);
  }, 300_000);

  it('prunes a Restore deleted from Git and keeps the deployment it restored, which Argo CD never takes for its own', async () => {
    const restored = await client.get(resources.statefulSets, 'pg-restored', namespace);
    expect(
      Object.keys(restored?.metadata.annotations ?? {}).filter((key) =>
        key.startsWith('argocd.argoproj.io/'),
      ),
    ).toEqual([]);
    const pruned = await argo.git.commit('the restore is done: remove it', { 'restores/restore.yaml': null });
    await argo.refresh(APP);
    const app = await waitForApplication('pruned', pruned, healthy);
    await waitFor(
      'Restore pg-restore pruned',
      async () => (await client.get(resources.restores, 'pg-restore', namespace)) === undefined,
    );
    expect(resourceOf(app, 'Restore', 'pg-restore')).toBeUndefined();
    expect(
      app.status?.resources?.filter((resource) => resource.kind === 'StatefulSet').map((r) => r.name),
    ).toEqual(['pg']);
    const kept = await client.get(resources.statefulSets, 'pg-restored', namespace);
    expect(kept?.metadata.uid).toBe(restored?.metadata.uid);
    expect(isHealthy(kept, 2)).toBe(true);
    for (const claim of ['data-pg-restored-0', 'data-pg-restored-1'])
      expect((await client.get(resources.persistentVolumeClaims, claim, namespace))?.status?.phase).toBe(
        'Bound',
      );
  }, 240_000);
});

describe('Argo CD installing Snapback from its chart', () => {
  let installNamespace: string;
  const INSTALL = uniqueName('snapback');
  const restoresCrd = 'restores.snapback.dev';
  const queuedAtOf = async (): Promise<unknown> => {
    const schema = await kubectl(
      'get',
      'crd',
      restoresCrd,
      '-o',
      'jsonpath={.spec.versions[0].schema.openAPIV3Schema.properties.status.properties.queuedAt}',
    );
    return schema === '' ? undefined : JSON.parse(schema);
  };

  beforeAll(async () => {
    installNamespace = await createTestNamespace(client, 'gitops-install');
  });

  afterAll(async () => {
    // The CRDs are shared by every suite: put them back as the suites install them.
    await installCrds(client);
    await deleteTestNamespace(client, installNamespace);
  });

  it('installs the operator, upgrades a CRD schema through a sync, and leaves the CRDs when the Application is deleted', async () => {
    // The chart of an earlier release, whose Restore CRD has no status.queuedAt.
    await argo.git.copyIn(join(REPO_ROOT, 'charts', 'snapback'), 'chart');
    const template = join(REPO_ROOT, 'charts', 'snapback', 'templates', 'crds', `${restoresCrd}.yaml`);
    const current = readFileSync(template, 'utf8');
    const older = current.replace(/\n( +)queuedAt:\n(?:\1 .*\n)+/, '\n');
    expect(older).not.toEqual(current);
    const first = await argo.git.commit('snapback chart, an earlier release', {
      [`chart/templates/crds/${restoresCrd}.yaml`]: older,
    });
    const [repository, tag] = imageRef('snapback').split(':');
    const install = applicationManifest(
      INSTALL,
      {
        path: 'chart',
        helm: {
          releaseName: installNamespace,
          valuesObject: {
            image: { repository, tag, pullPolicy: 'Never' },
            operator: { clusterName: 'argocd', watchNamespace: installNamespace },
            nodeSelector: onRealNode.nodeSelector,
            tolerations: onRealNode.tolerations,
          },
        },
      },
      installNamespace,
    );
    await client.create(applications, {
      ...install,
      // Deleting the Application deletes what it installed (the CRDs excepted, as the chart says).
      metadata: { ...install.metadata, finalizers: ['resources-finalizer.argocd.argoproj.io'] },
    });
    await waitForApplication('installed', first, healthy, INSTALL, 240_000);
    const operatorDeployment = `${installNamespace}-snapback`;
    expect((await client.get(deployments, operatorDeployment, installNamespace))?.status?.readyReplicas).toBe(
      2,
    );
    expect(await queuedAtOf()).toBeUndefined();

    const upgrade = await argo.git.commit('snapback chart, this release', {
      [`chart/templates/crds/${restoresCrd}.yaml`]: current,
    });
    await argo.refresh(INSTALL);
    await waitForApplication('upgraded', upgrade, healthy, INSTALL, 240_000);
    expect(await queuedAtOf()).toMatchObject({ type: 'string', format: 'date-time' });

    await client.delete(applications, INSTALL, { namespace: argo.namespace });
    await waitFor(
      'the Application and what it installed gone',
      async () => {
        const [app, deployment] = await Promise.all([
          application(INSTALL),
          client.get(deployments, operatorDeployment, installNamespace),
        ]);
        return app === undefined && deployment === undefined;
      },
      120_000,
    );
    // Every Backup and Restore of the cluster lives in these.
    const crds = await kubectl('get', 'crd', '-l', 'app.kubernetes.io/part-of=snapback', '-o', 'name');
    expect(crds.trim().split('\n').sort()).toEqual(
      [
        'backuplocations',
        'backups',
        'backupschedules',
        'referencegrants',
        'restorabilitymatrices',
        'restores',
      ].map((plural) => `customresourcedefinition.apiextensions.k8s.io/${plural}.snapback.dev`),
    );
    expect(await client.get(resources.restores, 'pg-restore-taken', namespace)).toBeDefined();
  }, 600_000);
});
