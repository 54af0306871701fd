import { describe, expect, it } from '@jest/globals';
import type { Capabilities, RestorabilityMatrix } from '../../../src/api/generated/types.js';
import {
  evaluateRestorability,
  imageCapabilitiesOf,
  parseCapabilities,
} from '../../../src/dataservices/capabilities.js';

describe('parseCapabilities', () => {
  it.each<{ value: string | undefined; expected: Capabilities }>([
    { value: undefined, expected: {} },
    { value: '', expected: {} },
    { value: '  ,  , ', expected: {} },
    { value: 'pds_restore=v1', expected: { pds_restore: 'v1' } },
    { value: ' pds_restore = v1 ,  other=v2 ', expected: { pds_restore: 'v1', other: 'v2' } },
    { value: 'a=b=c', expected: { a: 'b=c' } },
    { value: 'query=x=1,y=2', expected: { query: 'x=1', y: '2' } },
    { value: 'flag', expected: { flag: '' } },
    { value: '=v1', expected: {} },
    { value: 'a=1,a=2', expected: { a: '2' } },
  ])('"$value"', ({ value, expected }) => {
    expect(parseCapabilities(value)).toEqual(expected);
  });

  it('reads the snapback.dev/image-capabilities annotation of an object', () => {
    expect(
      imageCapabilitiesOf({
        metadata: { annotations: { 'snapback.dev/image-capabilities': 'pds_restore=v1' } },
      }),
    ).toEqual({ pds_restore: 'v1' });
    expect(imageCapabilitiesOf({ metadata: {} })).toEqual({});
  });
});

const matrix: RestorabilityMatrix = {
  metadata: { name: 'default' },
  spec: {
    dataServices: [
      {
        name: 'postgresql',
        conditions: [
          { backupCapabilities: { backup: 'v2' }, imageCapabilities: { pds_restore: 'v2' } },
          { backupCapabilities: { backup: 'v1' }, imageCapabilities: { pds_restore: 'v1' } },
        ],
      },
      { name: 'redis', conditions: [{}] },
      { name: 'kafka', conditions: [{ backupCapabilities: {}, imageCapabilities: {} }] },
      { name: 'mysql', conditions: [] },
    ],
  },
};

const input = (overrides: Partial<Parameters<typeof evaluateRestorability>[0]> = {}) => ({
  matrix,
  dataServiceName: 'postgresql',
  backupCapabilities: { backup: 'v1' },
  imageCapabilities: { pds_restore: 'v1' },
  strict: false,
  ...overrides,
});

describe('evaluateRestorability', () => {
  it.each([
    { name: 'not listed', matrix },
    { name: 'no matrix at all', matrix: undefined },
  ])('allows a data service absent from the matrix when not strict ($name)', ({ matrix: m }) => {
    const verdict = evaluateRestorability(input({ matrix: m, dataServiceName: 'cassandra' }));
    expect(verdict.compatible).toBe(true);
    expect(verdict.reason).toContain('"cassandra"');
  });

  it.each([
    { name: 'not listed', matrix },
    { name: 'no matrix at all', matrix: undefined },
  ])('refuses a data service absent from the matrix in strict mode ($name)', ({ matrix: m }) => {
    const verdict = evaluateRestorability(input({ matrix: m, dataServiceName: 'cassandra', strict: true }));
    expect(verdict.compatible).toBe(false);
    expect(verdict.reason).toContain('"cassandra"');
    expect(verdict.reason).toContain('strict');
  });

  it('refuses a deployment without a data service name in strict mode', () => {
    expect(evaluateRestorability(input({ dataServiceName: undefined, strict: true })).compatible).toBe(false);
  });

  it.each<{ backup: Capabilities; image: Capabilities; condition: number }>([
    { backup: { backup: 'v1' }, image: { pds_restore: 'v1' }, condition: 2 },
    { backup: { backup: 'v2' }, image: { pds_restore: 'v2' }, condition: 1 },
    { backup: { backup: 'v1', extra: 'x' }, image: { pds_restore: 'v1', more: 'y' }, condition: 2 },
  ])(
    'is compatible when one condition of several is satisfied: $backup / $image',
    ({ backup, image, condition }) => {
      const verdict = evaluateRestorability(input({ backupCapabilities: backup, imageCapabilities: image }));
      expect(verdict).toEqual({
        compatible: true,
        reason: `satisfies condition ${condition} for "postgresql"`,
      });
    },
  );

  it.each<{ backup: Capabilities; image: Capabilities }>([
    { backup: { backup: 'v1' }, image: { pds_restore: 'v2' } },
    { backup: { backup: 'v2' }, image: { pds_restore: 'v1' } },
    { backup: {}, image: { pds_restore: 'v1' } },
    { backup: { backup: 'v1' }, image: {} },
  ])('is refused when no condition is satisfied: $backup / $image', ({ backup, image }) => {
    const verdict = evaluateRestorability(
      input({ backupCapabilities: backup, imageCapabilities: image, strict: true }),
    );
    expect(verdict.compatible).toBe(false);
    expect(verdict.reason).toContain('data service "postgresql"');
    expect(verdict.reason).toContain('none of the 2 conditions');
  });

  it('names the capabilities it was given when refusing', () => {
    const verdict = evaluateRestorability(input({ imageCapabilities: { pds_restore: 'v9' } }));
    expect(verdict.reason).toContain('{backup: v1}');
    expect(verdict.reason).toContain('{pds_restore: v9}');
  });

  it.each(['redis', 'kafka'])('an empty condition of %s matches everything', (name) => {
    const verdict = evaluateRestorability(
      input({ dataServiceName: name, backupCapabilities: {}, imageCapabilities: {} }),
    );
    expect(verdict.compatible).toBe(true);
  });

  it('a listed data service with no conditions is never restorable', () => {
    const verdict = evaluateRestorability(input({ dataServiceName: 'mysql' }));
    expect(verdict.compatible).toBe(false);
    expect(verdict.reason).toContain('"mysql"');
    expect(verdict.reason).toMatch(/none of the 0 conditions .*, which accepts nothing$/);
  });

  it('says what the matrix would accept when refusing', () => {
    const verdict = evaluateRestorability(input({ imageCapabilities: { pds_restore: 'v9' } }));
    expect(verdict.reason).toBe(
      'backup capabilities {backup: v1} with image capabilities {pds_restore: v9} satisfy none of the 2 conditions for data service "postgresql" in RestorabilityMatrix "default", which accepts: backup {backup: v2} with image {pds_restore: v2}; backup {backup: v1} with image {pds_restore: v1}',
    );
  });

  it.each<{ count: number; listed: number; more: string }>([
    { count: 5, listed: 5, more: '' },
    { count: 6, listed: 5, more: '; and 1 more' },
    { count: 40, listed: 5, more: '; and 35 more' },
  ])('lists at most 5 accepted conditions of $count', ({ count, listed, more }) => {
    const conditions = Array.from({ length: count }, (_, index) => ({
      backupCapabilities: { backup: `v${index}`, format: 'tar' },
      imageCapabilities: { pds_restore: `v${index}` },
    }));
    const verdict = evaluateRestorability(
      input({
        matrix: {
          metadata: { name: 'default' },
          spec: { dataServices: [{ name: 'postgresql', conditions }] },
        },
        backupCapabilities: { backup: 'v99' },
      }),
    );
    const accepts = conditions
      .slice(0, listed)
      .map((_, index) => `backup {backup: v${index}, format: tar} with image {pds_restore: v${index}}`)
      .join('; ');
    expect(verdict.compatible).toBe(false);
    expect(verdict.reason).toContain(`none of the ${count} conditions`);
    expect(verdict.reason.endsWith(`, which accepts: ${accepts}${more}`)).toBe(true);
  });

  it('shows a side a condition leaves out as {}', () => {
    const verdict = evaluateRestorability(
      input({
        matrix: {
          metadata: { name: 'default' },
          spec: {
            dataServices: [{ name: 'pg', conditions: [{ imageCapabilities: { pds_restore: 'v9' } }] }],
          },
        },
        dataServiceName: 'pg',
      }),
    );
    expect(verdict.reason).toMatch(/, which accepts: backup \{\} with image \{pds_restore: v9\}$/);
  });
});
