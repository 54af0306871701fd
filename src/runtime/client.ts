// The narrow client seam reconcilers and their steps depend on: the verbs they use, nothing of
// how requests travel. KubeClient implements it against the API server; test/support's fake
// implements it in memory, so steps are unit-tested without a cluster.

import type { KubeClient } from './kube-client.js';

export type ObjectClient = Pick<
  KubeClient,
  'get' | 'list' | 'create' | 'mergePatch' | 'replace' | 'delete' | 'podLog'
>;
