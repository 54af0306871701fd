// The table the informers pass cached objects through: the objects' content is unchanged, and the
// table stays bounded however many distinct strings go through it.

import { describe, expect, it } from '@jest/globals';
import { SharedStrings } from '../../../src/runtime/shared-strings.js';

const restore = (i: number) => ({
  apiVersion: 'snapback.dev/v1alpha1',
  kind: 'Restore',
  metadata: { name: `r-${i}`, namespace: 'demo', uid: `uid-${i}`, resourceVersion: String(i) },
  status: {
    phase: 'Successful',
    conditions: [{ type: 'Ready', status: 'True', reason: 'RestoreSucceeded', message: 'done' }],
    volumes: [{ pvcName: 'data-pg-0', phase: 'Bound' }, null, 3, true],
  },
});

describe('SharedStrings', () => {
  it('leaves what an object says as it was', () => {
    const table = new SharedStrings();
    expect(table.share(restore(1))).toEqual(restore(1));
    expect(table.share('a')).toBe('a');
    expect(table.share(null)).toBeNull();
    expect(table.share(7)).toBe(7);
  });

  it('holds each distinct string once, not the fields unique to an object, nor long strings', () => {
    const table = new SharedStrings(1_000, 10);
    table.share(restore(1));
    const once = table.size;
    table.share(restore(1));
    expect(table.size).toBe(once);
    // A second object adds only its name: its uid and resourceVersion are not held.
    table.share(restore(2));
    expect(table.size).toBe(once + 1);
    table.share({ message: 'longer than ten characters' });
    expect(table.size).toBe(once + 1);
  });

  it('stays within two generations however many distinct strings pass, keeping those in use', () => {
    const table = new SharedStrings(100);
    for (let i = 0; i < 10_000; i++) {
      table.share({ name: `object-${i}`, namespace: 'demo' });
      expect(table.size).toBeLessThan(200);
    }
    // 'demo' was seen every time: it is held still, so sharing it again adds nothing.
    const before = table.size;
    table.share('demo');
    expect(table.size).toBe(before);
  });
});
