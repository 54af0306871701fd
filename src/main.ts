// The operator process (or, with the argument `mover`, the data mover): configuration, logging, metrics and probes, then the manager until
// SIGTERM (graceful: reconciles in flight finish, the lease is released) or a lost lease (exit 1,
// so the process restarts clean).

import { Registry } from 'prom-client';
import { ConfigError, loadConfig } from './config.js';
import { createLogger } from './observability/logger.js';
import { createMetrics } from './observability/metrics.js';
import { ObservabilityServer } from './observability/server.js';
import { buildOperator } from './operator.js';
import { KubeClient } from './runtime/kube-client.js';

async function main(): Promise<number> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      return 2;
    }
    throw err;
  }
  const logger = createLogger({ level: config.logLevel, defaultMeta: { component: 'snapback' } });
  const registry = new Registry();
  const metrics = createMetrics(registry);
  const client = await KubeClient.fromDefault({
    observe: metrics.api.observe,
    userAgent: 'snapback-operator',
  });
  const manager = buildOperator({ client, config, logger, metrics });
  const server = new ObservabilityServer({
    port: config.httpPort,
    registry,
    logger,
    healthz: [{ name: 'informers', check: () => manager.health() }],
    readyz: [{ name: 'caches', check: () => manager.readiness() }],
  });
  await server.start();

  const stop = new AbortController();
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      logger.info(`${signal} received; shutting down`);
      stop.abort();
    });
  }
  logger.info('starting', {
    watchNamespace: config.watchNamespace === '' ? '(all)' : config.watchNamespace,
    leaderElection: config.leaderElection.enabled,
    identity: config.leaderElection.identity,
    httpPort: config.httpPort,
  });
  const reason = await manager.start(stop.signal);
  await server.stop();
  await client.close();
  logger.info('stopped', { reason });
  return reason === 'leadership-lost' ? 1 : 0;
}

// `main.js mover ...`: the data mover's pods run the same image (src/mover.ts).
const run =
  process.argv[2] === 'mover'
    ? import('./mover.js').then(({ runMover }) => runMover(process.argv.slice(3)))
    : main();
run.then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  },
);
