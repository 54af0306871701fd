// Shared pieces of the runtime integration tests: a ConfigMap resource, a logger writing to
// .cache/test-logs, and reading counters from a metrics registry.

import { createWriteStream, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { KubeObject } from '../../../src/api/kubernetes.js';
import { createLogger, type Logger } from '../../../src/observability/logger.js';
import type { ResourceType } from '../../../src/runtime/resources.js';
import { REPO_ROOT } from '../support/cluster.js';

export interface ConfigMap extends KubeObject {
  data?: Record<string, string>;
}

export const configMaps: ResourceType<ConfigMap> = {
  group: '',
  version: 'v1',
  kind: 'ConfigMap',
  plural: 'configmaps',
  namespaced: true,
};

/**
 * On every ConfigMap a runtime test makes; informers select it, so that the kube-root-ca.crt the
 * cluster puts in each namespace stays out of their caches.
 */
export const TEST_OBJECT_LABEL = 'snapback.dev/runtime-test';

/** A debug logger writing to .cache/test-logs/<name>.log, to read after a failure. */
export function testLogger(name: string): Logger {
  const dir = join(REPO_ROOT, '.cache', 'test-logs');
  mkdirSync(dir, { recursive: true });
  return createLogger({
    level: 'debug',
    stream: createWriteStream(join(dir, `${name}.log`), { flags: 'a' }),
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
