// The StorageClass of a claim: the one it names, else the cluster's default as Kubernetes picks it.

import { describe, expect, it } from '@jest/globals';
import { resources } from '../../../src/runtime/resources.js';
import { storageClassOf } from '../../../src/storage/storage-classes.js';
import { claim, storageClass } from '../../support/builders.js';
import { FakeClient } from '../../support/fake-client.js';

function classes(...items: ReturnType<typeof storageClass>[]) {
  const fake = new FakeClient();
  for (const item of items) fake.seed(resources.storageClasses, item);
  return fake.cache(resources.storageClasses);
}

const nameOf = (found: ReturnType<typeof storageClassOf>): string | undefined => found?.metadata.name;

describe('storageClassOf', () => {
  it('takes the class the claim names, default or not', () => {
    const cache = classes(storageClass('fast'), storageClass('standard', { isDefault: true }));
    expect(nameOf(storageClassOf(claim('data', { storageClassName: 'fast' }), cache))).toBe('fast');
  });

  it('finds nothing for a class that does not exist, and none for storageClassName ""', () => {
    const cache = classes(storageClass('standard', { isDefault: true }));
    expect(storageClassOf(claim('data', { storageClassName: 'fast' }), cache)).toBeUndefined();
    expect(storageClassOf(claim('data', { storageClassName: '' }), cache)).toBeUndefined();
  });

  it('takes the newest default class for a claim that names none, then the first by name', () => {
    const cache = classes(
      storageClass('old', { isDefault: true, creationTimestamp: '2030-01-01T00:00:00Z' }),
      storageClass('b-new', { isDefault: true, creationTimestamp: '2030-02-01T00:00:00Z' }),
      storageClass('a-new', { isDefault: true, creationTimestamp: '2030-02-01T00:00:00Z' }),
      storageClass('newest', { creationTimestamp: '2030-03-01T00:00:00Z' }),
    );
    expect(nameOf(storageClassOf(claim('data'), cache))).toBe('a-new');
  });

  it('reads the beta default annotation too', () => {
    const beta = storageClass('legacy');
    beta.metadata.annotations = { 'storageclass.beta.kubernetes.io/is-default-class': 'true' };
    expect(nameOf(storageClassOf(claim('data'), classes(beta)))).toBe('legacy');
  });

  it('finds nothing for a claim that names none when no class is the default', () => {
    expect(storageClassOf(claim('data'), classes(storageClass('fast')))).toBeUndefined();
  });
});
