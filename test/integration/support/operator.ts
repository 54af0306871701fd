// Runs the real operator as a child process for integration tests: its own configuration, its
// own log file, killed with SIGKILL when a test wants a crash rather than a shutdown.

import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dump } from 'js-yaml';
import type { OperatorConfig } from '../../../src/config.js';
import { KUBECONFIG_PATH, REPO_ROOT } from './cluster.js';
import { freePort, LOG_DIR, startLogged } from './process.js';
import { imageRef, imageRefFile, onRealNode } from './real-node.js';

type Overrides = {
  [K in keyof OperatorConfig]?: OperatorConfig[K] extends object
    ? Partial<OperatorConfig[K]>
    : OperatorConfig[K];
};

export interface RunningOperator {
  readonly name: string;
  readonly port: number;
  readonly logFile: string;
  /** The process id (CPU time and RSS are read from /proc). */
  readonly pid: number;
  /** SIGKILL: the process gets no chance to clean up, as in a node crash. */
  kill(): Promise<void>;
  /** SIGTERM and wait: a graceful shutdown. */
  stop(): Promise<void>;
  /** Text of /metrics. */
  metrics(): Promise<string>;
  /** Whether the process is still running (it exits by itself when it loses its lease). */
  running(): boolean;
}

/** Starts the operator and resolves once /readyz answers 200 (caches synced). */
export async function startOperator(
  name: string,
  overrides: Overrides = {},
  /** Another identity than the cluster admin's, e.g. a ServiceAccount token's. */
  kubeconfig: string = KUBECONFIG_PATH,
  /** How long the caches may take to sync (a benchmark's 100k objects take minutes). */
  readyWithinMs = 60_000,
): Promise<RunningOperator> {
  mkdirSync(LOG_DIR, { recursive: true });
  const port = await freePort();
  const configFile = join(LOG_DIR, `${name}.config.yaml`);
  const config = {
    clusterName: 'test',
    workers: 4,
    logLevel: 'debug',
    ...overrides,
    restore: {
      // A storage failure the tests inject is meant to fail its restore within the test's time.
      provisioningFailureGraceSeconds: 3,
      // Each test file works in a namespace of its own; sharing across namespaces is tenancy.test.ts's.
      maxConcurrentRestoresPerNamespace: 20,
      ...overrides.restore,
    },
    // The real node runs the data movers, from the operator's image as node.sh imported it.
    mover: {
      image: existsSync(imageRefFile('snapback')) ? imageRef('snapback') : '',
      imagePullPolicy: 'Never',
      ...onRealNode,
      ...overrides.mover,
    },
    httpPort: port,
    leaderElection: {
      enabled: true,
      namespace:
        overrides.watchNamespace === undefined || overrides.watchNamespace === ''
          ? 'default'
          : overrides.watchNamespace,
      leaseName: `snapback-${name}`,
      identity: `${name}-${Date.now()}`,
      leaseDurationSeconds: 4,
      renewDeadlineSeconds: 3,
      retryPeriodSeconds: 1,
      ...overrides.leaderElection,
    },
  };
  writeFileSync(configFile, dump(config));
  // Node itself with tsx as a loader, not the tsx wrapper: the wrapper runs Node as a child, so a
  // SIGKILL to the wrapper would leave the operator running. The benchmarks run the compiled
  // operator instead (SNAPBACK_OPERATOR_ENTRY=dist/src/main.js), as the image does.
  const node = join(REPO_ROOT, 'node_modules/.bin/node');
  const compiled = process.env.SNAPBACK_OPERATOR_ENTRY;
  const entry = compiled === undefined ? ['--import', 'tsx', 'src/main.ts'] : [compiled];
  const child = startLogged(name, node, [...entry, '--config', configFile], {
    env: { ...process.env, KUBECONFIG: kubeconfig, NODE_OPTIONS: '' },
  });
  const { logFile } = child;
  const deadline = Date.now() + readyWithinMs;
  for (;;) {
    child.assertRunning();
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`)
      .then((r) => r.ok)
      .catch(() => false);
    if (ready) break;
    if (Date.now() > deadline) {
      await child.kill();
      throw new Error(
        `operator ${name} did not become ready within ${readyWithinMs / 1000}s; see ${logFile}`,
      );
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    name,
    port,
    logFile,
    pid: child.pid,
    kill: child.kill,
    stop: child.stop,
    async metrics() {
      const response = await fetch(`http://127.0.0.1:${port}/metrics`);
      return response.text();
    },
    running: child.running,
  };
}

/**
 * The sum of a metric's samples in a Prometheus text exposition, over the samples whose labels
 * include every pair in `labels` (all samples when none are given).
 */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  const wanted = Object.entries(labels).map(([label, value]) => `${label}="${value}"`);
  return text
    .split('\n')
    .filter((line) => line.startsWith(`${name} `) || line.startsWith(`${name}{`))
    .filter((line) => wanted.every((pair) => line.includes(pair)))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}
