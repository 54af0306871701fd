// The pure parts of a BackupLocation check: what an S3 or socket error means, what a Secret
// holds, when the next check is due and what status a result makes.

import { describe, expect, it } from '@jest/globals';
import { S3ServiceException } from '@aws-sdk/client-s3';
import type { BackupLocation } from '../../../src/api/generated/types.js';
import { credentialsFrom } from '../../../src/storage/location-store.js';
import { statusFor, untilDue } from '../../../src/controllers/backuplocation/reconciler.js';
import { classifyStoreError, keyUnder } from '../../../src/storage/object-store.js';

const s3Error = (name: string, httpStatusCode: number): S3ServiceException =>
  new S3ServiceException({
    name,
    $fault: 'client',
    $metadata: { httpStatusCode },
    message: `${name} happened`,
  });

const socketError = (code: string): Error =>
  Object.assign(new Error(`connect ${code} 10.0.0.1:9000`), { code });

describe('classifyStoreError', () => {
  it.each([
    [socketError('ECONNREFUSED'), 'Unreachable', 'ECONNREFUSED'],
    [socketError('ENOTFOUND'), 'Unreachable', 'ENOTFOUND'],
    [Object.assign(new Error('timed out'), { name: 'TimeoutError' }), 'Unreachable', 'TimeoutError'],
    [s3Error('SignatureDoesNotMatch', 403), 'InvalidCredentials', 'SignatureDoesNotMatch'],
    [s3Error('InvalidAccessKeyId', 403), 'InvalidCredentials', 'InvalidAccessKeyId'],
    [s3Error('NoSuchBucket', 404), 'BucketNotFound', 'NoSuchBucket'],
    [s3Error('AccessDenied', 403), 'AccessDenied', 'AccessDenied'],
    [s3Error('SomethingNew', 403), 'AccessDenied', 'SomethingNew'],
    [s3Error('InternalError', 500), 'StoreError', 'InternalError'],
  ] as const)('%s is %s', (err, reason, code) => {
    expect(classifyStoreError(err)).toMatchObject({ reason, code });
  });

  it('reads the code of the first attempt of an AggregateError (a name with several addresses)', () => {
    const err = new AggregateError([socketError('ECONNREFUSED'), socketError('ECONNREFUSED')], '');
    expect(classifyStoreError(err)).toMatchObject({ reason: 'Unreachable', code: 'ECONNREFUSED' });
  });

  it('keeps the message as the detail', () => {
    expect(classifyStoreError(s3Error('NoSuchBucket', 404)).detail).toBe('NoSuchBucket happened');
    expect(classifyStoreError('a string').detail).toBe('Unknown');
  });
});

describe('keyUnder', () => {
  it('joins prefix and key with one slash, or leaves the key alone without a prefix', () => {
    expect(keyUnder('a/b', 'c')).toBe('a/b/c');
    expect(keyUnder(undefined, 'c')).toBe('c');
    expect(keyUnder('', 'c')).toBe('c');
  });
});

describe('credentialsFrom', () => {
  const encode = (value: string): string => Buffer.from(value).toString('base64');

  const KEY = Buffer.alloc(32, 1).toString('base64');

  it('decodes both keys, the location key and an optional session token, trimming the newline `echo` leaves', () => {
    const secret = {
      metadata: {},
      data: {
        accessKeyId: encode('AKIA\n'),
        secretAccessKey: encode('s3cr3t'),
        sessionToken: encode('tok'),
        locationKey: encode(`${KEY}\n`),
      },
    };
    expect(credentialsFrom(secret)).toEqual({
      credentials: { accessKeyId: 'AKIA', secretAccessKey: 's3cr3t', sessionToken: 'tok' },
      locationKey: Buffer.alloc(32, 1),
    });
  });

  it('names each missing or empty key', () => {
    expect(credentialsFrom({ metadata: {}, data: { accessKeyId: encode('') } })).toEqual({
      missing: ['accessKeyId', 'secretAccessKey', 'locationKey'],
    });
    expect(
      credentialsFrom({ metadata: {}, data: { accessKeyId: encode('AKIA'), locationKey: encode(KEY) } }),
    ).toEqual({
      missing: ['secretAccessKey'],
    });
  });

  it('refuses a location key shorter than 32 bytes', () => {
    const data = { accessKeyId: encode('A'), secretAccessKey: encode('s'), locationKey: encode('c2hvcnQ=') };
    expect(credentialsFrom({ metadata: {}, data })).toEqual({
      invalid: 'locationKey holds 5 bytes, not at least 32 random bytes in base64',
    });
  });
});

describe('the check schedule', () => {
  const now = new Date('2026-11-23T12:00:00Z');
  const location = (status: BackupLocation['status'], generation = 1): BackupLocation => ({
    metadata: { name: 'store', generation },
    spec: { s3: { bucket: 'b' }, credentialsSecretName: 'key', validationFrequencySeconds: 60 },
    ...(status === undefined ? {} : { status }),
  });

  it('is due at once for a new location or a changed spec', () => {
    expect(untilDue(location(undefined), now)).toBe(0);
    const checked = { observedGeneration: 1, lastValidationTime: '2026-11-23T11:59:50Z' };
    expect(untilDue(location(checked, 2), now)).toBe(0);
  });

  it('is due validationFrequencySeconds after the last check', () => {
    const checked = { observedGeneration: 1, lastValidationTime: '2026-11-23T11:59:50Z' };
    expect(untilDue(location(checked), now)).toBe(50_000);
  });

  it('makes Available or Unavailable status, moving Ready only when it changes', () => {
    const available = statusFor(
      location(undefined),
      { reason: 'Available', message: 'ok' },
      '2026-11-23T12:00:00Z',
    );
    expect(available).toMatchObject({ phase: 'Available', reason: 'Available', observedGeneration: 1 });
    const down = statusFor(
      location(available),
      { reason: 'Unreachable', message: 'down' },
      '2026-11-23T12:01:00Z',
    );
    expect(down.phase).toBe('Unavailable');
    expect(down.conditions).toEqual([
      {
        type: 'Ready',
        status: 'False',
        reason: 'Unreachable',
        message: 'down',
        lastTransitionTime: '2026-11-23T12:01:00Z',
      },
    ]);
    const stillDown = statusFor(
      location(down),
      { reason: 'Unreachable', message: 'down' },
      '2026-11-23T12:02:00Z',
    );
    expect(stillDown.conditions?.[0]?.lastTransitionTime).toBe('2026-11-23T12:01:00Z');
    expect(stillDown.lastValidationTime).toBe('2026-11-23T12:02:00Z');
  });
});
