// Backup records: what goes in, the checksum that guards it, and every way a damaged record is
// refused with the key and the reason.

import { describe, expect, it } from '@jest/globals';
import type { Backup, BackupStatus } from '../../../src/api/generated/types.js';
import {
  CorruptRecordError,
  parseRecordKey,
  recordKey,
  RecordCodec,
  recordOf,
  UnauthenticatedRecordError,
} from '../../../src/storage/backup-record.js';

const LOCATION_KEY = Buffer.alloc(32, 7);
const codec = new RecordCodec(LOCATION_KEY);

const backup: Backup = {
  metadata: {
    name: 'pg-backup',
    namespace: 'shop',
    uid: 'uid-1',
    creationTimestamp: '2026-11-23T10:00:00Z',
    labels: { team: 'db' },
    resourceVersion: '42',
  },
  spec: { deployment: { name: 'pg' }, backupLocation: 'primary' },
};
const completed: BackupStatus = {
  phase: 'Completed',
  cloudSnapId: 'snap-1',
  volumes: [
    { pvcName: 'data-pg-0', volumeSnapshotName: 'pg-backup-data', cloudSnapId: 'snap-1', sizeBytes: 1024 },
  ],
  fileSize: 1024,
  manifest: { apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: 'pg' } },
  conditions: [{ type: 'Ready', status: 'True', reason: 'Completed', message: '', lastTransitionTime: 'x' }],
  record: { location: 'old', key: 'old' },
};

describe('a backup record', () => {
  it('holds metadata, spec and the completed status, without conditions, its own reference or resourceVersion', () => {
    const record = recordOf(backup, completed, { name: 'cluster-a', uid: 'uid-cluster-a' });
    const { resourceVersion: _, ...kept } = backup.metadata;
    expect(record).toEqual({
      format: 'snapback.dev/backup-record/v1',
      cluster: 'cluster-a',
      clusterUid: 'uid-cluster-a',
      metadata: kept,
      spec: backup.spec,
      status: {
        phase: 'Completed',
        cloudSnapId: 'snap-1',
        volumes: completed.volumes,
        fileSize: 1024,
        manifest: completed.manifest,
      },
    });
  });

  it('is keyed by source cluster, namespace and name', () => {
    expect(recordKey('cluster-a', 'shop', 'pg-backup')).toBe('backups/cluster-a/shop/pg-backup.json');
  });

  it('decodes to what was encoded, with the same checksum', () => {
    const record = recordOf(backup, completed, { name: 'cluster-a', uid: 'uid-cluster-a' });
    const { body, checksum } = codec.encode(record);
    expect(checksum).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(codec.decode('k', body)).toEqual({ record, checksum });
  });

  it('has a checksum independent of key order', () => {
    const record = recordOf(backup, completed, { name: 'cluster-a', uid: 'uid-cluster-a' });
    const { status, ...rest } = record;
    const reordered = { status, ...rest };
    expect(Object.keys(reordered)[0]).toBe('status');
    expect(codec.encode(reordered).checksum).toBe(codec.encode(record).checksum);
  });

  it.each([
    [
      'an altered snapshot handle',
      (body: string) => body.replace('"snap-1"', '"snap-2"'),
      /checksum .* does not match/,
    ],
    ['a truncated body', (body: string) => body.slice(0, body.length / 2), /not JSON/],
    ['no checksum', (body: string) => body.replace('"checksum"', '"sum"'), /no checksum or record/],
    ['another format', (body: string) => body.replace('backup-record/v1', 'backup-record/v9'), /format .*v9/],
  ])('is refused with %s', (_what, damage, reason) => {
    const { body } = codec.encode(recordOf(backup, completed, { name: 'cluster-a', uid: 'uid-cluster-a' }));
    const decode = (): unknown => codec.decode('backups/a/shop/pg.json', damage(body));
    expect(decode).toThrow(CorruptRecordError);
    expect(decode).toThrow(reason);
    expect(decode).toThrow(/backups\/a\/shop\/pg\.json/);
  });

  it.each([
    [
      'a manifest without kind',
      { manifest: { apiVersion: 'apps/v1', metadata: { name: 'pg' } } },
      /status\.manifest: must have required property 'kind'/,
    ],
    [
      'a phase this operator does not know',
      { phase: 'Archived' },
      /status\.phase: must be equal to one of the allowed values/,
    ],
    ['a size that is not a number', { fileSize: 'big' }, /status\.fileSize: must be integer/],
  ] as const)(
    'is refused, checksum and all, with %s (it would not fit the Backup schema)',
    (_what, change, reason) => {
      const { body } = codec.encode(
        recordOf(backup, { ...completed, ...change } as BackupStatus, {
          name: 'cluster-a',
          uid: 'uid-cluster-a',
        }),
      );
      const decode = (): unknown => codec.decode('backups/a/shop/pg.json', body);
      expect(decode).toThrow(CorruptRecordError);
      expect(decode).toThrow(reason);
    },
  );
});

describe('a record whose names would break an import', () => {
  const CLUSTER = { name: 'cluster-a', uid: 'uid-cluster-a' };
  const withBackup = (change: { metadata?: Partial<Backup['metadata']>; spec?: Partial<Backup['spec']> }) =>
    codec.encode(
      recordOf(
        {
          ...backup,
          metadata: { ...backup.metadata, ...change.metadata },
          spec: { ...backup.spec, ...change.spec },
        },
        completed,
        CLUSTER,
      ),
    ).body;

  it.each([
    [
      'a cluster name with a space',
      codec.encode(recordOf(backup, completed, { ...CLUSTER, name: 'two words' })).body,
      /cluster "two words" is not a DNS label/,
    ],
    [
      'no cluster identity',
      codec.encode(recordOf(backup, completed, { ...CLUSTER, uid: '' })).body,
      /clusterUid is missing/,
    ],
    [
      'a namespace that is not a DNS label',
      withBackup({ metadata: { namespace: 'Shop_1' } }),
      /metadata\.namespace "Shop_1" is not a DNS label/,
    ],
    [
      'a deployment name too long for a label',
      withBackup({ spec: { deployment: { name: `pg.${'x'.repeat(70)}` } } }),
      /spec\.deployment\.name ".*" is not a valid label value/,
    ],
    [
      'a project label that is not a label value',
      withBackup({ metadata: { labels: { 'snapback.dev/project': 'a b' } } }),
      /label snapback\.dev\/project "a b" is not a valid label value/,
    ],
  ])('is refused alone with %s, checksum and all', (_what, body, reason) => {
    const decode = (): unknown => codec.decode('backups/a/shop/pg.json', body);
    expect(decode).toThrow(CorruptRecordError);
    expect(decode).toThrow(reason);
  });
});

describe('a record signed under the location key', () => {
  const record = recordOf(backup, completed, { name: 'cluster-a', uid: 'uid-cluster-a' });

  it('carries an HMAC-SHA256 signature that another key does not verify', () => {
    const { body } = codec.encode(record);
    expect(JSON.parse(body)).toMatchObject({
      signature: expect.stringMatching(/^hmac-sha256:[0-9a-f]{64}$/),
    });
    const other = new RecordCodec(Buffer.alloc(32, 8));
    expect(() => other.decode('k', body)).toThrow(UnauthenticatedRecordError);
    expect(() => other.decode('k', body)).toThrow(
      /backup record k is not signed with this location's key: its signature does not verify/,
    );
  });

  it('refuses a record planted by someone who can write the bucket: checksum recomputed, no key', () => {
    // What the bucket lets anyone with write access do: change the record, recompute the sha256.
    const planted = { ...record, status: { ...record.status, cloudSnapId: 'attacker-handle' } };
    const { body } = codec.encode(record);
    const envelope = JSON.parse(body) as { checksum: string; signature: string };
    const forged = JSON.stringify({ ...envelope, checksum: codec.encode(planted).checksum, record: planted });
    expect(() => codec.decode('k', forged)).toThrow(UnauthenticatedRecordError);
    const unsigned = JSON.stringify({ checksum: envelope.checksum, record });
    expect(() => codec.decode('k', unsigned)).toThrow(/it has no signature/);
  });

  it('needs a location key of at least 32 bytes', () => {
    expect(() => new RecordCodec(Buffer.alloc(16))).toThrow(/at least 32 bytes, this one 16/);
  });
});

describe('record keys', () => {
  it('parse back into the source they were made from', () => {
    expect(parseRecordKey(recordKey('east', 'shop', 'pg-backup'))).toEqual({
      cluster: 'east',
      namespace: 'shop',
      name: 'pg-backup',
    });
  });

  it.each([
    'backups/east/shop.json',
    'backups/east/shop/pg/extra.json',
    'backups/east/shop/pg.txt',
    'other/a/b/c.json',
  ])('%s is not a record key', (key) => {
    expect(parseRecordKey(key)).toBeUndefined();
  });
});
