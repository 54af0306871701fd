// Argo CD as its users run it, against the local cluster: the application controller and the repo
// server (the binary test/cluster/build.sh builds from Go modules), Redis from Debian, its CRDs
// from the same release, and a Git repository served on loopback by `git daemon`. Snapback's
// health checks are merged into argocd-cm with the README's own command. The processes run on
// the host, as Argo CD's own local development setup (its Procfile) runs them.

import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import type { KubeObject } from '../../../src/api/kubernetes.js';
import type { KubeClient } from '../../../src/runtime/kube-client.js';
import type { ResourceType } from '../../../src/runtime/resources.js';
import { resources } from '../../../src/runtime/resources.js';
import { createTestNamespace, deleteTestNamespace, KUBECONFIG_PATH, REPO_ROOT, waitFor } from './cluster.js';
import { kubectl } from './identity.js';
import { customResourceDefinitions } from './snapback.js';
import { freePort, startLogged, type LoggedProcess } from './process.js';

const run = promisify(execFile);
const BIN = join(REPO_ROOT, '.cache', 'bin');

export interface ResourceStatus {
  group?: string;
  kind: string;
  namespace?: string;
  name: string;
  status?: string;
  health?: { status?: string; message?: string };
}

export interface Application extends KubeObject {
  spec: Record<string, unknown>;
  operation?: Record<string, unknown>;
  status?: {
    sync?: { status?: string; revision?: string };
    health?: { status?: string; message?: string };
    reconciledAt?: string;
    resources?: ResourceStatus[];
    history?: { revision?: string; deployStartedAt?: string }[];
    operationState?: {
      phase?: string;
      message?: string;
      startedAt?: string;
      finishedAt?: string;
      syncResult?: { revision?: string; resources?: { kind: string; name: string; status?: string }[] };
    };
    conditions?: { type: string; message: string }[];
  };
}

export const applications: ResourceType<Application> = {
  group: 'argoproj.io',
  version: 'v1alpha1',
  kind: 'Application',
  plural: 'applications',
  namespaced: true,
};

const configMaps: ResourceType<KubeObject & { data?: Record<string, string> }> = {
  group: '',
  version: 'v1',
  kind: 'ConfigMap',
  plural: 'configmaps',
  namespaced: true,
};

const appProjects: ResourceType<KubeObject & { spec: Record<string, unknown> }> = {
  group: 'argoproj.io',
  version: 'v1alpha1',
  kind: 'AppProject',
  plural: 'appprojects',
  namespaced: true,
};

/** A Git repository served read-only by `git daemon`, with a work tree the test commits from. */
export interface GitRepository {
  /** git://127.0.0.1:<port>/snapback.git */
  url: string;
  /** Writes the files (path → content), removes the paths mapped to null, commits and pushes; returns the commit. */
  commit(message: string, files: Record<string, string | null>): Promise<string>;
  /** Copies a directory of the project into the work tree under `to` (committed by the next commit). */
  copyIn(from: string, to: string): Promise<void>;
}

export interface RunningArgoCd {
  /** Argo CD's namespace: its Applications, AppProject, argocd-cm and argocd-secret. */
  namespace: string;
  git: GitRepository;
  /** Asks the controller to compare again now (`hard`: regenerating the manifests, as `argocd app get --hard-refresh`). */
  refresh(app: string, kind?: 'normal' | 'hard'): Promise<void>;
  stop(): Promise<void>;
}

const git = async (cwd: string, ...args: string[]): Promise<string> =>
  (
    await run('git', ['-c', 'user.name=Snapback tests', '-c', 'user.email=tests@snapback.invalid', ...args], {
      cwd,
    })
  ).stdout.trim();

async function portOpen(port: number): Promise<boolean> {
  return new Promise((answer) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      answer(true);
    });
    socket.once('error', () => {
      answer(false);
    });
  });
}

async function serveRepository(root: string, processes: LoggedProcess[]): Promise<GitRepository> {
  const bare = join(root, 'repos', 'snapback.git');
  const work = join(root, 'work');
  mkdirSync(dirname(bare), { recursive: true });
  await run('git', ['init', '--bare', '--initial-branch=main', bare]);
  await run('git', ['clone', bare, work]);
  await git(work, 'checkout', '-b', 'main');
  const port = await freePort();
  const daemon = startLogged('argocd-git-daemon', 'git', [
    'daemon',
    '--reuseaddr',
    '--export-all',
    '--listen=127.0.0.1',
    `--port=${String(port)}`,
    `--base-path=${join(root, 'repos')}`,
    join(root, 'repos'),
  ]);
  processes.push(daemon);
  await waitFor('git daemon', async () => {
    daemon.assertRunning();
    return portOpen(port);
  });
  return {
    url: `git://127.0.0.1:${String(port)}/snapback.git`,
    async commit(message, files) {
      for (const [path, content] of Object.entries(files)) {
        const file = join(work, path);
        if (content === null) {
          rmSync(file, { force: true });
          continue;
        }
        mkdirSync(dirname(file), { recursive: true });
        writeFileSync(file, content);
      }
      await git(work, 'add', '--all');
      await git(work, 'commit', '--allow-empty', '-m', message);
      await git(work, 'push', 'origin', 'main');
      return git(work, 'rev-parse', 'HEAD');
    },
    async copyIn(from, to) {
      mkdirSync(join(work, to), { recursive: true });
      await run('cp', ['-R', `${from}/.`, join(work, to)]);
    },
  };
}

/** Installs Argo CD's CRDs (once per cluster) and starts its components in a new namespace. */
export async function startArgoCd(client: KubeClient): Promise<RunningArgoCd> {
  await kubectl('apply', '--server-side', '--force-conflicts', '-f', join(BIN, 'argocd-crds'));
  for (const crd of ['applications.argoproj.io', 'appprojects.argoproj.io'])
    await waitFor(`CRD ${crd} Established`, async () => {
      const current = await client.get(customResourceDefinitions, crd);
      return current?.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True');
    });
  const namespace = await createTestNamespace(client, 'argocd');
  const partOf = { 'app.kubernetes.io/part-of': 'argocd' };
  // The settings Argo CD reads, labelled as its settings informer selects them.
  await client.create(configMaps, {
    metadata: { name: 'argocd-cm', namespace, labels: partOf },
    data: {},
  });
  // The README's command, as a user runs it.
  await kubectl(
    '-n',
    namespace,
    'patch',
    'configmap',
    'argocd-cm',
    '--patch-file',
    join(REPO_ROOT, 'deploy/argocd/argocd-cm.yaml'),
  );
  await client.create(resources.secrets, {
    metadata: { name: 'argocd-secret', namespace, labels: partOf },
    stringData: { 'server.secretkey': randomBytes(32).toString('base64') },
  });
  // Argo CD's API server creates the default project on start; it is not run here.
  await client.create(appProjects, {
    apiVersion: 'argoproj.io/v1alpha1',
    kind: 'AppProject',
    metadata: { name: 'default', namespace },
    spec: {
      sourceRepos: ['*'],
      destinations: [{ server: '*', namespace: '*' }],
      clusterResourceWhitelist: [{ group: '*', kind: '*' }],
    },
  });

  const root = mkdtempSync(join(REPO_ROOT, '.cache', 'argocd-'));
  const processes: LoggedProcess[] = [];
  const stop = async () => {
    for (const server of processes.reverse()) await server.stop();
    rmSync(root, { recursive: true, force: true });
    await deleteTestNamespace(client, namespace);
  };
  try {
    const gitRepository = await serveRepository(root, processes);
    const redisPort = await freePort();
    const redis = startLogged('argocd-redis', 'redis-server', [
      '--port',
      String(redisPort),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      root,
    ]);
    processes.push(redis);
    await waitFor('Redis', async () => {
      redis.assertRunning();
      return portOpen(redisPort);
    });

    for (const dir of ['tls', 'ssh', 'gpg', 'home']) mkdirSync(join(root, dir), { recursive: true });
    const env = (binary: string): NodeJS.ProcessEnv => ({
      ...process.env,
      // helm (for Applications of a chart), the scripts Argo CD's image puts on its PATH, and git.
      PATH: `${join(BIN, 'argocd-tools')}:${BIN}:${process.env.PATH ?? ''}`,
      HOME: join(root, 'home'),
      ARGOCD_BINARY_NAME: binary,
      // The in-cluster destination is the cluster of $KUBECONFIG, as in Argo CD's Procfile.
      ARGOCD_FAKE_IN_CLUSTER: 'true',
      KUBECONFIG: KUBECONFIG_PATH,
      ARGOCD_TLS_DATA_PATH: join(root, 'tls'),
      ARGOCD_SSH_DATA_PATH: join(root, 'ssh'),
      ARGOCD_GNUPGHOME: join(root, 'gpg'),
      ARGOCD_GPG_ENABLED: 'false',
    });
    const redisAddress = `127.0.0.1:${String(redisPort)}`;
    const repoServerPort = await freePort();
    const repoServer = startLogged(
      'argocd-repo-server',
      join(BIN, 'argocd'),
      [
        '--address',
        '127.0.0.1',
        '--port',
        String(repoServerPort),
        '--metrics-port',
        String(await freePort()),
        '--redis',
        redisAddress,
        // Plain gRPC on loopback; the client CA flag defaults to a pod's mount path, which TLS off refuses.
        '--disable-tls',
        '--client-ca-path',
        '',
        // A new commit is seen at the next refresh, not three minutes later.
        '--revision-cache-expiration',
        '1s',
      ],
      { env: env('argocd-repo-server') },
    );
    processes.push(repoServer);
    await waitFor('argocd-repo-server', async () => {
      repoServer.assertRunning();
      return portOpen(repoServerPort);
    });
    const controllerMetrics = await freePort();
    const controller = startLogged(
      'argocd-application-controller',
      join(BIN, 'argocd'),
      [
        '--namespace',
        namespace,
        '--redis',
        redisAddress,
        '--repo-server',
        `127.0.0.1:${String(repoServerPort)}`,
        '--repo-server-plaintext',
        '--metrics-port',
        String(controllerMetrics),
        // Compare every 5 s instead of 3 min, so drift shows within a test; with no jitter, whose
        // default adds up to 60 s to each resync (a drift test once saw a single compare in 20 s).
        '--app-resync',
        '5',
        '--app-resync-jitter',
        '0',
        // Resource health in the Application's status, so `kubectl get application` shows it.
        '--persist-resource-health',
      ],
      { env: { ...env('argocd-application-controller'), HOSTNAME: 'argocd-application-controller-0' } },
    );
    processes.push(controller);
    await waitFor('argocd-application-controller', async () => {
      controller.assertRunning();
      const response = await fetch(`http://127.0.0.1:${String(controllerMetrics)}/metrics`).catch(
        () => undefined,
      );
      return response?.ok === true;
    });
    return {
      namespace,
      git: gitRepository,
      async refresh(app, kind = 'normal') {
        await client.mergePatch(
          applications,
          app,
          { metadata: { annotations: { 'argocd.argoproj.io/refresh': kind } } },
          { namespace },
        );
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The Application's entry for one resource in `status.resources`. */
export function resourceOf(
  app: Application | undefined,
  kind: string,
  name: string,
): ResourceStatus | undefined {
  return app?.status?.resources?.find((resource) => resource.kind === kind && resource.name === name);
}
