// This cluster's identity: the UID of its kube-system namespace, which is made with the cluster and
// lives as long as it does (the convention of Velero, Kasten and the cluster-api). A clusterName
// is what an admin typed; two clusters given the same one still differ here.

import type { ObjectClient } from './client.js';
import { resources } from './resources.js';

/** Reads the identity once; a read that fails (a 5xx, a reset) is tried again on the next call. */
export function clusterUid(client: ObjectClient): () => Promise<string> {
  let known: string | undefined;
  return async () => {
    if (known !== undefined) return known;
    const namespace = await client.get(resources.namespaces, 'kube-system');
    const uid = namespace?.metadata.uid;
    if (uid === undefined)
      throw new Error('namespace kube-system does not exist, so this cluster has no identity');
    known = uid;
    return uid;
  };
}
