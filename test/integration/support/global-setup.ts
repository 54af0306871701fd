// Jest globalSetup of the integration project: stop at once, with instructions, when the test
// cluster is not there, instead of letting every test time out against it.
//
// Jest hands this file to Node untransformed (Node strips the types), so it cannot import the
// project's TypeScript modules through their `.js` names: it repeats cluster.ts's path rule.

import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';

const TIMEOUT_MS = 10_000;

export default async function globalSetup(): Promise<void> {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
  const kubeconfig = process.env.SNAPBACK_TEST_KUBECONFIG ?? resolve(root, '.cache', 'cluster', 'kubeconfig');
  const start = 'Start it with test/cluster/up.sh, or point SNAPBACK_TEST_KUBECONFIG at another cluster.';
  if (!existsSync(kubeconfig)) {
    throw new Error(`No test cluster: ${kubeconfig} does not exist. ${start}`);
  }
  const config = new KubeConfig();
  config.loadFromFile(kubeconfig);
  const core = config.makeApiClient(CoreV1Api);
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      core.readNamespace({ name: 'default' }),
      new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => {
          reject(new Error(`no answer within ${TIMEOUT_MS} ms`));
        }, TIMEOUT_MS);
      }),
    ]);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(`The test cluster of ${kubeconfig} does not answer (${reason}). ${start}`, {
      cause: err,
    });
  } finally {
    clearTimeout(timer);
  }
}
