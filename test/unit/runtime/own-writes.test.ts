import { describe, expect, it } from '@jest/globals';
import type { KubeObject } from '../../../src/api/kubernetes.js';
import { OwnWrites } from '../../../src/runtime/own-writes.js';

const version = (resourceVersion: string): KubeObject => ({
  metadata: { namespace: 'ns', name: 'r1', resourceVersion },
});

describe('OwnWrites', () => {
  it('holds an object back while the cache still has the version a write replaced', () => {
    const writes = new OwnWrites();
    writes.wrote(version('10'), version('11'));
    expect(writes.behind('ns/r1', version('10'))).toBe(true);
    expect(writes.behind('ns/r1', version('10'))).toBe(true);
  });

  it('lets it through once the cache has moved on, and forgets the write', () => {
    const writes = new OwnWrites();
    writes.wrote(version('10'), version('11'));
    expect(writes.behind('ns/r1', version('11'))).toBe(false);
    // Forgotten: even the old version would now be reconciled (it can only come from a relist).
    expect(writes.behind('ns/r1', version('10'))).toBe(false);
  });

  it('lets it through when the cache has a later version than the write (a relist skipped ours)', () => {
    const writes = new OwnWrites();
    writes.wrote(version('10'), version('11'));
    expect(writes.behind('ns/r1', version('12'))).toBe(false);
  });

  it('lets a deleted object through and forgets it', () => {
    const writes = new OwnWrites();
    writes.wrote(version('10'), version('11'));
    expect(writes.behind('ns/r1', undefined)).toBe(false);
  });

  it('marks nothing for a write that changed nothing (the server kept the resourceVersion)', () => {
    const writes = new OwnWrites();
    writes.wrote(version('10'), version('10'));
    expect(writes.behind('ns/r1', version('10'))).toBe(false);
  });

  it('keeps objects apart by key', () => {
    const writes = new OwnWrites();
    writes.wrote(version('10'), version('11'));
    expect(
      writes.behind('ns/other', { metadata: { namespace: 'ns', name: 'other', resourceVersion: '10' } }),
    ).toBe(false);
  });
});
