import { describe, expect, it } from '@jest/globals';
import { clusterUid } from '../../../src/runtime/cluster-identity.js';
import { resources } from '../../../src/runtime/resources.js';
import { apiError, FakeClient } from '../../support/fake-client.js';

describe('clusterUid', () => {
  it("is the kube-system namespace's UID, read once", async () => {
    const fake = new FakeClient();
    fake.seed(resources.namespaces, { metadata: { name: 'kube-system', uid: 'uid-east' } });
    const uid = clusterUid(fake);
    expect([await uid(), await uid()]).toEqual(['uid-east', 'uid-east']);
    expect(fake.calls.filter((call) => call.verb === 'get')).toHaveLength(1);
  });

  it('reads again after a read that failed', async () => {
    const fake = new FakeClient();
    fake.seed(resources.namespaces, { metadata: { name: 'kube-system', uid: 'uid-east' } });
    const err = apiError(503);
    fake.failNext('get', 'namespaces', err);
    const uid = clusterUid(fake);
    await expect(uid()).rejects.toBe(err);
    expect(await uid()).toBe('uid-east');
  });

  it('throws, naming the namespace, where there is no kube-system', async () => {
    await expect(clusterUid(new FakeClient())()).rejects.toThrow(/namespace kube-system does not exist/);
  });
});
