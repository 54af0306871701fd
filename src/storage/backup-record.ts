// A Backup's record in its location: what another cluster needs to restore it (metadata, the
// deployment's manifest, snapshot handles and sizes), with a checksum over the content so that a
// record damaged in the store is refused, never imported; a signature (HMAC-SHA256 under a key
// derived from the location's key, which the bucket never holds) so that a record anyone with
// write access to the bucket planted is refused too; and a record that this operator's Backup
// schema would not take (another version's, or a writer's bug) is refused the same way.

import { createHash, createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { labels as LABELS } from '../api/constants.js';
import { backupCrd } from '../api/crds.js';
import { DNS1123_LABEL } from '../api/schema.js';
import type { Backup, BackupSpec, BackupStatus } from '../api/generated/types.js';
import { compileValidator } from '../api/validation.js';

export const RECORD_FORMAT = 'snapback.dev/backup-record/v1';

/** A cluster as records name it: its clusterName, and the UID of its kube-system namespace. */
export interface ClusterIdentity {
  name: string;
  uid: string;
}

export interface BackupRecord {
  format: typeof RECORD_FORMAT;
  /** The cluster the backup was taken on (the operator's clusterName). */
  cluster: string;
  /** That cluster's identity: two clusters given one name still differ here. */
  clusterUid: string;
  metadata: {
    name: string;
    namespace: string;
    uid: string;
    creationTimestamp?: string;
    labels?: Record<string, string>;
  };
  spec: BackupSpec;
  /** The Completed status, without the record's own reference and the conditions. */
  status: Omit<BackupStatus, 'record' | 'conditions'>;
}

export class CorruptRecordError extends Error {
  constructor(
    readonly key: string,
    detail: string,
    what = 'is corrupt',
  ) {
    super(`backup record ${key} ${what}: ${detail}`);
    this.name = 'CorruptRecordError';
  }
}

/** A record whole and unaltered by accident, but not signed with this location's key. */
export class UnauthenticatedRecordError extends CorruptRecordError {
  constructor(key: string, detail: string) {
    super(key, detail, "is not signed with this location's key");
    this.name = 'UnauthenticatedRecordError';
  }
}

/** The length of a location key: 32 random bytes. */
export const LOCATION_KEY_BYTES = 32;

/** JSON with object keys sorted, so that equal content always hashes the same. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export function checksumOf(record: BackupRecord): string {
  return `sha256:${createHash('sha256').update(canonical(record)).digest('hex')}`;
}

/** Where a backup's record lives under the location's prefix: one key per source cluster, namespace and name. */
export function recordKey(cluster: string, namespace: string, name: string): string {
  return `${RECORDS_PREFIX}${cluster}/${namespace}/${name}.json`;
}

/** Where every record lives, under the location's prefix. */
export const RECORDS_PREFIX = 'backups/';

export interface RecordSource {
  cluster: string;
  namespace: string;
  name: string;
}

/** The source a record key names (the inverse of recordKey), or undefined for any other key. */
export function parseRecordKey(key: string): RecordSource | undefined {
  const match = /^backups\/([^/]+)\/([^/]+)\/([^/]+)\.json$/.exec(key);
  if (match === null) return undefined;
  const [, cluster = '', namespace = '', name = ''] = match;
  return { cluster, namespace, name };
}

/** The record of a Completed backup taken on `cluster`. */
export function recordOf(backup: Backup, status: BackupStatus, cluster: ClusterIdentity): BackupRecord {
  const { record: _record, conditions: _conditions, ...kept } = status;
  const { name = '', namespace = '', uid = '', creationTimestamp, labels } = backup.metadata;
  return {
    format: RECORD_FORMAT,
    cluster: cluster.name,
    clusterUid: cluster.uid,
    metadata: {
      name,
      namespace,
      uid,
      ...(creationTimestamp === undefined ? {} : { creationTimestamp }),
      ...(labels === undefined ? {} : { labels }),
    },
    spec: backup.spec,
    status: kept,
  };
}

const schemaOf = (part: 'spec' | 'status') => {
  const schema = backupCrd.schema.properties?.[part];
  if (schema === undefined) throw new Error(`the Backup schema has no ${part}`);
  return compileValidator(schema);
};
const validators = { spec: schemaOf('spec'), status: schemaOf('status') };

const PROJECT_LABEL = LABELS.project;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/;
const DNS_LABEL = new RegExp(DNS1123_LABEL);

/**
 * What is wrong with the fields an import turns into names and label values: one record that
 * breaks them must be refused alone, not stop the sync of the whole location.
 */
function identityProblems(record: BackupRecord): string[] {
  const problems: string[] = [];
  const isString = (value: unknown): value is string => typeof value === 'string';
  if (!isString(record.cluster) || record.cluster.length > 63 || !DNS_LABEL.test(record.cluster))
    problems.push(`cluster ${JSON.stringify(record.cluster)} is not a DNS label`);
  if (!isString(record.clusterUid) || record.clusterUid === '')
    problems.push('clusterUid is missing: the record does not say which cluster wrote it');
  const { name, namespace, labels } = (record.metadata as BackupRecord['metadata'] | undefined) ?? {};
  if (!isString(namespace) || namespace.length > 63 || !DNS_LABEL.test(namespace))
    problems.push(`metadata.namespace ${JSON.stringify(namespace)} is not a DNS label`);
  if (!isString(name) || name === '') problems.push('metadata.name is missing');
  const deployment = (record.spec as BackupSpec | undefined)?.deployment.name;
  if (isString(deployment) && !LABEL_VALUE.test(deployment))
    problems.push(`spec.deployment.name ${JSON.stringify(deployment)} is not a valid label value`);
  const project = labels?.[PROJECT_LABEL];
  if (project !== undefined && !LABEL_VALUE.test(project))
    problems.push(`label ${PROJECT_LABEL} ${JSON.stringify(project)} is not a valid label value`);
  return problems;
}

/**
 * Encodes and decodes the records of one location, signed under a key derived from the location's
 * key (HKDF, so the same location key can serve other purposes without one use revealing another).
 */
export class RecordCodec {
  private readonly signingKey: Buffer;

  constructor(locationKey: Buffer) {
    if (locationKey.length < LOCATION_KEY_BYTES)
      throw new Error(
        `a location key has at least ${LOCATION_KEY_BYTES} bytes, this one ${locationKey.length}`,
      );
    this.signingKey = Buffer.from(hkdfSync('sha256', locationKey, Buffer.alloc(0), RECORD_FORMAT, 32));
  }

  private signatureOf(record: BackupRecord): string {
    return `hmac-sha256:${createHmac('sha256', this.signingKey).update(canonical(record)).digest('hex')}`;
  }

  encode(record: BackupRecord): { body: string; checksum: string } {
    const checksum = checksumOf(record);
    const signature = this.signatureOf(record);
    return { body: `${JSON.stringify({ checksum, signature, record }, null, 2)}\n`, checksum };
  }

  /**
   * The record in `body`, read from `key`. Throws CorruptRecordError unless it is whole and
   * unaltered, UnauthenticatedRecordError unless it was signed with this location's key.
   */
  decode(key: string, body: string): { record: BackupRecord; checksum: string } {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch (err) {
      throw new CorruptRecordError(key, `not JSON (${(err as Error).message})`);
    }
    const envelope = parsed as { checksum?: unknown; signature?: unknown; record?: unknown } | null;
    if (
      typeof envelope?.checksum !== 'string' ||
      typeof envelope.record !== 'object' ||
      envelope.record === null
    )
      throw new CorruptRecordError(key, 'no checksum or record');
    const format = (envelope.record as { format?: unknown }).format;
    if (format !== RECORD_FORMAT)
      throw new CorruptRecordError(key, `format ${String(format)}, expected ${RECORD_FORMAT}`);
    const record = envelope.record as BackupRecord;
    const actual = checksumOf(record);
    if (actual !== envelope.checksum)
      throw new CorruptRecordError(
        key,
        `checksum ${actual} does not match the recorded ${envelope.checksum}`,
      );
    // Authenticated before anything in it is looked at further: a checksum anyone can recompute.
    if (typeof envelope.signature !== 'string')
      throw new UnauthenticatedRecordError(key, 'it has no signature');
    const expected = Buffer.from(this.signatureOf(record));
    const given = Buffer.from(envelope.signature);
    if (given.length !== expected.length || !timingSafeEqual(given, expected))
      throw new UnauthenticatedRecordError(
        key,
        'its signature does not verify (written with another key, or not by a Snapback cluster of this location)',
      );
    const problems = [
      ...identityProblems(record),
      ...(['spec', 'status'] as const).flatMap((part) =>
        validators[part](record[part]).errors.map((error) => `${part}.${error}`),
      ),
    ];
    if (problems.length > 0)
      throw new CorruptRecordError(
        key,
        `it does not fit the Backup schema: ${problems.slice(0, 3).join('; ')}`,
      );
    return { record, checksum: actual };
  }
}
