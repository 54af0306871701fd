// The S3 side of a BackupLocation: a client for its bucket and prefix, the check that the store
// can be used, and the translation of S3 and network errors into a reason a person can act on.

import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ServiceException,
} from '@aws-sdk/client-s3';
import type { BackupLocationReason, S3Location } from '../api/generated/types.js';
import { errorCode, isNetworkError } from '../runtime/errors.js';

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** What can be wrong with a store, as BackupLocation status.reason says it. */
export type StoreProblem = Exclude<BackupLocationReason, 'Available' | 'CredentialsNotFound'>;

export interface ClassifiedError {
  reason: StoreProblem;
  /** The store's own code or the socket error's, e.g. NoSuchBucket or ECONNREFUSED. */
  code: string;
  detail: string;
}

/** A socket that never answers must not hold a reconcile worker for long. */
const CONNECT_TIMEOUT_MS = 5_000;
const REQUEST_TIMEOUT_MS = 15_000;

const CREDENTIAL_CODES = new Set([
  // versitygw's name for an access key it does not know (AWS says InvalidAccessKeyId).
  'XAdminUserNotFound',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'InvalidToken',
  'ExpiredToken',
  'InvalidSecurity',
  'AuthorizationHeaderMalformed',
]);
const BUCKET_CODES = new Set(['NoSuchBucket']);
const DENIED_CODES = new Set(['AccessDenied', 'AllAccessDisabled', 'Forbidden']);

/** Sorts an error from the S3 client into what it means for the location. */
export function classifyStoreError(err: unknown): ClassifiedError {
  const code = errorCode(err);
  const status = (err as Partial<S3ServiceException> | null)?.$metadata?.httpStatusCode;
  const detail = err instanceof Error && err.message !== '' ? err.message : code;
  if (isNetworkError(err)) return { reason: 'Unreachable', code, detail };
  if (CREDENTIAL_CODES.has(code)) return { reason: 'InvalidCredentials', code, detail };
  if (BUCKET_CODES.has(code)) return { reason: 'BucketNotFound', code, detail };
  if (DENIED_CODES.has(code) || status === 403) return { reason: 'AccessDenied', code, detail };
  return { reason: 'StoreError', code, detail };
}

/** Keys under the location's prefix. */
export function keyUnder(prefix: string | undefined, key: string): string {
  return prefix === undefined || prefix === '' ? key : `${prefix}/${key}`;
}

export class ObjectStore {
  private readonly client: S3Client;

  constructor(
    private readonly location: S3Location,
    credentials: S3Credentials,
  ) {
    this.client = new S3Client({
      ...(location.endpoint === undefined ? {} : { endpoint: location.endpoint }),
      region: location.region ?? 'us-east-1',
      forcePathStyle: location.forcePathStyle ?? false,
      credentials,
      maxAttempts: 2,
      // Objects are sealed (AES-256-GCM) and the transport is TCP or TLS: the SDK's own CRC32 over
      // every body, in JavaScript, only cost time (profiled in bench/data-path.ts).
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: {
        connectionTimeout: CONNECT_TIMEOUT_MS,
        requestTimeout: REQUEST_TIMEOUT_MS,
        throwOnRequestTimeout: true,
      },
    });
  }

  /**
   * Proves the store usable for backups: the bucket can be listed under the prefix, and an object
   * can be written there and deleted again. `writer` keeps two clusters' probes apart.
   */
  async probe(writer: string): Promise<void> {
    await this.client.send(
      new ListObjectsV2Command({
        Bucket: this.location.bucket,
        Prefix: keyUnder(this.location.prefix, ''),
        MaxKeys: 1,
      }),
    );
    const key = `.snapback/probes/${writer}`;
    await this.put(key, new Date().toISOString());
    await this.delete(key);
  }

  /** Writes `body` under `key` (relative to the prefix); a second write replaces the first. */
  async put(key: string, body: string | Uint8Array): Promise<void> {
    await this.client.send(
      new PutObjectCommand({
        Bucket: this.location.bucket,
        Key: keyUnder(this.location.prefix, key),
        Body: body,
        ContentType: typeof body === 'string' ? 'application/json' : 'application/octet-stream',
      }),
    );
  }

  /** The object's bytes, or a range of them (`suffix`: the last bytes); undefined when there is none. */
  async getBytes(
    key: string,
    range?: { offset: number; length: number } | { suffix: number },
  ): Promise<Buffer | undefined> {
    const header =
      range === undefined
        ? undefined
        : 'suffix' in range
          ? `bytes=-${range.suffix}`
          : `bytes=${range.offset}-${range.offset + range.length - 1}`;
    try {
      const response = await this.client.send(
        new GetObjectCommand({
          Bucket: this.location.bucket,
          Key: keyUnder(this.location.prefix, key),
          ...(header === undefined ? {} : { Range: header }),
        }),
      );
      const bytes = (await response.Body?.transformToByteArray()) ?? new Uint8Array();
      // A view, not a copy: a restore reads gigabytes through here.
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    } catch (err) {
      if ((err as { name?: unknown }).name === 'NoSuchKey') return undefined;
      throw err;
    }
  }

  /** The object under `key` as text, or undefined when there is none. */
  async get(key: string): Promise<string | undefined> {
    try {
      const response = await this.client.send(
        new GetObjectCommand({ Bucket: this.location.bucket, Key: keyUnder(this.location.prefix, key) }),
      );
      return await response.Body?.transformToString('utf8');
    } catch (err) {
      if ((err as { name?: unknown }).name === 'NoSuchKey') return undefined;
      throw err;
    }
  }

  /** Every key under `keyPrefix` (relative to the location's prefix, as returned), page by page. */
  async list(keyPrefix: string): Promise<string[]> {
    const under = keyUnder(this.location.prefix, '');
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({
          Bucket: this.location.bucket,
          Prefix: keyUnder(this.location.prefix, keyPrefix),
          ...(token === undefined ? {} : { ContinuationToken: token }),
        }),
      );
      for (const object of page.Contents ?? []) {
        if (object.Key !== undefined) keys.push(object.Key.slice(under.length));
      }
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
    return keys;
  }

  /** Deletes the object under `key`; deleting one that is gone succeeds. */
  async delete(key: string): Promise<void> {
    await this.client.send(
      new DeleteObjectCommand({ Bucket: this.location.bucket, Key: keyUnder(this.location.prefix, key) }),
    );
  }

  close(): void {
    this.client.destroy();
  }
}
