// A BackupLocation's store as the controllers open it: its credentials and its key, read from a
// Secret in the operator's namespace, a client for its bucket, the codec of its records, and what
// a store error means in words a person can act on. The location check, backup records and the
// credential check all go through here.

import type { BackupLocation, BackupLocationReason, S3Location } from '../api/generated/types.js';
import type { Secret } from '../api/kubernetes.js';
import type { ObjectClient } from '../runtime/client.js';
import { errorMessage, isForbidden } from '../runtime/errors.js';
import { resources } from '../runtime/resources.js';
import { LOCATION_KEY_BYTES, RecordCodec } from './backup-record.js';
import { classifyStoreError, ObjectStore, type S3Credentials } from './object-store.js';

/** What opening a location's store takes. */
export interface StoreAccess {
  client: ObjectClient;
  /** Where credentials Secrets are read: the operator's namespace. */
  namespace: string;
}

export interface LocationCheck {
  reason: BackupLocationReason;
  message: string;
}

export const CREDENTIAL_KEYS = {
  accessKeyId: 'accessKeyId',
  secretAccessKey: 'secretAccessKey',
  /**
   * The location's key, the same on every cluster of the location and never in the bucket: 32
   * random bytes, base64 (`openssl rand -base64 32`). Records are signed with a key derived from it.
   */
  locationKey: 'locationKey',
} as const;

/** An open location: a client for its bucket and the codec of its records. */
export interface OpenLocation {
  store: ObjectStore;
  records: RecordCodec;
}
/** Optional: temporary credentials carry one. */
export const SESSION_TOKEN_KEY = 'sessionToken';

/** The credentials and key in the Secret, or what is missing from it. */
export function credentialsFrom(
  secret: Secret,
): { credentials: S3Credentials; locationKey: Buffer } | { missing: string[] } | { invalid: string } {
  const read = (key: string): string | undefined => {
    const encoded = secret.data?.[key];
    const value = encoded === undefined ? undefined : Buffer.from(encoded, 'base64').toString('utf8').trim();
    return value === '' ? undefined : value;
  };
  const missing = Object.values(CREDENTIAL_KEYS).filter((key) => read(key) === undefined);
  const accessKeyId = read(CREDENTIAL_KEYS.accessKeyId);
  const secretAccessKey = read(CREDENTIAL_KEYS.secretAccessKey);
  const locationKey = read(CREDENTIAL_KEYS.locationKey);
  if (accessKeyId === undefined || secretAccessKey === undefined || locationKey === undefined)
    return { missing };
  const key = Buffer.from(locationKey, 'base64');
  if (key.length < LOCATION_KEY_BYTES) {
    return {
      invalid: `${CREDENTIAL_KEYS.locationKey} holds ${key.length} bytes, not at least ${LOCATION_KEY_BYTES} random bytes in base64`,
    };
  }
  const sessionToken = read(SESSION_TOKEN_KEY);
  return {
    credentials: { accessKeyId, secretAccessKey, ...(sessionToken === undefined ? {} : { sessionToken }) },
    locationKey: key,
  };
}

async function readSecret(ctx: StoreAccess, name: string): Promise<Secret | string> {
  const where = `Secret ${ctx.namespace}/${name}`;
  try {
    return (await ctx.client.get(resources.secrets, name, ctx.namespace)) ?? `${where} does not exist`;
  } catch (err) {
    if (isForbidden(err)) return `the operator may not read ${where} (${errorMessage(err)})`;
    throw err;
  }
}

/** The location opened, or why it cannot be. Throws only on Kubernetes API errors. */
export async function openStore(
  ctx: StoreAccess,
  location: BackupLocation,
): Promise<OpenLocation | LocationCheck> {
  const name = location.spec.credentialsSecretName;
  const secret = await readSecret(ctx, name);
  const keys = Object.values(CREDENTIAL_KEYS).join(', ');
  if (typeof secret === 'string') {
    return {
      reason: 'CredentialsNotFound',
      message: `${secret}; create it in namespace ${ctx.namespace} with keys ${keys}.`,
    };
  }
  const found = credentialsFrom(secret);
  if ('missing' in found) {
    return {
      reason: 'CredentialsNotFound',
      message: `Secret ${ctx.namespace}/${name} has no ${found.missing.join(' or ')}; add the key(s)${found.missing.includes(CREDENTIAL_KEYS.locationKey) ? ` (${CREDENTIAL_KEYS.locationKey}: 32 random bytes in base64, the same on every cluster of this location)` : ''}.`,
    };
  }
  if ('invalid' in found) {
    return { reason: 'CredentialsNotFound', message: `Secret ${ctx.namespace}/${name}: ${found.invalid}.` };
  }
  return {
    store: new ObjectStore(location.spec.s3, found.credentials),
    records: new RecordCodec(found.locationKey),
  };
}

/** Says what an error of the location's store means and what to do about it. */
export function describeStoreError(ctx: StoreAccess, location: BackupLocation, err: unknown): LocationCheck {
  const { s3, credentialsSecretName } = location.spec;
  const { reason, code, detail } = classifyStoreError(err);
  const advice: Record<typeof reason, string> = {
    Unreachable: 'check spec.s3.endpoint and that the operator can reach it',
    InvalidCredentials: `the store refused the key in Secret ${ctx.namespace}/${credentialsSecretName}; fix ${CREDENTIAL_KEYS.accessKeyId} and ${CREDENTIAL_KEYS.secretAccessKey}`,
    BucketNotFound: 'create the bucket or fix spec.s3.bucket',
    AccessDenied:
      'grant the key s3:ListBucket, s3:GetObject, s3:PutObject and s3:DeleteObject on the bucket and prefix',
    StoreError: 'see the store logs',
  };
  return { reason, message: `${describeBucket(s3)}: ${code}: ${detail}; ${advice[reason]}.` };
}

export const describeBucket = (s3: S3Location): string =>
  `bucket "${s3.bucket}"${s3.prefix === undefined ? '' : ` (prefix ${s3.prefix})`} at ${s3.endpoint ?? `AWS S3 ${s3.region ?? 'us-east-1'}`}`;
