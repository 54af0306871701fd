import { describe, expect, it } from '@jest/globals';
import { boundedName, childName, customResourceName, shortHash } from '../../src/naming.js';

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

describe('customResourceName', () => {
  it('is "restore-" + name + "-" + a short id', () => {
    const name = customResourceName('pg-nightly', 'f3b0c2a4-0000-4000-8000-000000000001', 1);
    expect(name).toMatch(/^restore-pg-nightly-[a-z2-7]{6}$/);
  });

  it('is stable for the same restore and attempt, and new for each attempt', () => {
    const uid = '7d9e4c1e-1111-4111-8111-111111111111';
    expect(customResourceName('db', uid, 1)).toBe(customResourceName('db', uid, 1));
    expect(customResourceName('db', uid, 2)).not.toBe(customResourceName('db', uid, 1));
    expect(customResourceName('db', 'another-uid', 1)).not.toBe(customResourceName('db', uid, 1));
  });

  it('cuts long names to 63 characters, never the short id', () => {
    const long = 'a'.repeat(63);
    const name = customResourceName(long, 'uid-1', 1);
    expect(name.length).toBe(63);
    expect(name).toMatch(DNS1123_LABEL);
    expect(name.endsWith(`-${shortHash(['uid-1', '1'], 6)}`)).toBe(true);
    expect(customResourceName(long, 'uid-1', 2).slice(-6)).not.toBe(name.slice(-6));
  });

  it('turns odd characters into a valid DNS-1123 label', () => {
    for (const odd of ['db.prod.eu', 'UPPER', 'a--b', 'x.', 'ends-', '1.2.3']) {
      const name = customResourceName(odd, 'uid', 1);
      expect(name).toMatch(DNS1123_LABEL);
      expect(name.length).toBeLessThanOrEqual(63);
      expect(name.startsWith('restore-')).toBe(true);
    }
  });

  it('does not leave a dash where the name was cut', () => {
    // 54 characters fill the room exactly up to a dash.
    const name = customResourceName(`${'b'.repeat(47)}-cccccccc`, 'u', 1);
    expect(name).toMatch(DNS1123_LABEL);
    expect(name).not.toContain('--');
  });
});

describe('boundedName and childName', () => {
  it('keep names within the limit and distinct per index and owner', () => {
    const a = childName('x'.repeat(80), 'uid-a', 'data-' + 'y'.repeat(80), 0);
    const b = childName('x'.repeat(80), 'uid-a', 'data-' + 'y'.repeat(80), 1);
    const c = childName('x'.repeat(80), 'uid-b', 'data-' + 'y'.repeat(80), 0);
    for (const name of [a, b, c]) {
      expect(name.length).toBeLessThanOrEqual(63);
      expect(name).toMatch(DNS1123_LABEL);
    }
    expect(new Set([a, b, c]).size).toBe(3);
  });

  it('honours a smaller maximum', () => {
    expect(boundedName('p', 'm'.repeat(100), 's', 20)).toHaveLength(20);
  });
});
