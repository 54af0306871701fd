// Baseline for the cache benchmarks: @kubernetes/client-node's own ListWatch informer, bare,
// caching the Backups and Restores of one namespace. Run with --expose-gc:
//
//   KUBECONFIG=... node --expose-gc --import tsx bench/listwatch-cache.ts NAMESPACE
//
// Prints {"objects","syncSeconds","rssBytes","heapBytes"} after a GC once both lists are cached.

import {
  CustomObjectsApi,
  KubeConfig,
  makeInformer,
  type KubernetesListObject,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { GROUP, VERSION } from '../src/api/constants.js';

const namespace = process.argv[2];
if (namespace === undefined) throw new Error('usage: listwatch-cache.ts NAMESPACE');
// From the first request: the seconds tsx spends compiling this file are not the informer's.
const started = performance.now();
const kubeConfig = new KubeConfig();
kubeConfig.loadFromDefault();
const api = kubeConfig.makeApiClient(CustomObjectsApi);

const informers = ['backups', 'restores'].map((plural) => {
  const informer = makeInformer<KubernetesObject>(
    kubeConfig,
    `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/${plural}`,
    async () =>
      (await api.listNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace,
        plural,
      })) as KubernetesListObject<KubernetesObject>,
  );
  informer.on('error', (err: unknown) => {
    console.error(`${plural} informer stopped:`, err);
    process.exit(1);
  });
  return informer;
});
await Promise.all(informers.map((informer) => informer.start()));
const syncSeconds = (performance.now() - started) / 1000;
await new Promise((resolve) => setTimeout(resolve, 2_000));
globalThis.gc?.();
const memory = process.memoryUsage();
const objects = informers.reduce((sum, informer) => sum + informer.list().length, 0);
console.log(JSON.stringify({ objects, syncSeconds, rssBytes: memory.rss, heapBytes: memory.heapUsed }));
await Promise.all(informers.map((informer) => informer.stop()));
process.exit(0);
