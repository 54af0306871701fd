// A BackupLocation's store as the controllers open it: its credentials, read from a Secret in the
// operator's namespace, a client for its bucket, and what a store error means in words a person
// can act on. The location check, backup records and credential sync all go through here.

import type { BackupLocation, BackupLocationReason, S3Location } from '../api/generated/types.js';
import type { Secret } from '../api/kubernetes.js';
import type { ObjectClient } from '../runtime/client.js';
import { errorMessage, isForbidden } from '../runtime/errors.js';
import { resources } from '../runtime/resources.js';
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

export const CREDENTIAL_KEYS = { accessKeyId: 'accessKeyId', secretAccessKey: 'secretAccessKey' } as const;
/** Optional: temporary credentials carry one. */
export const SESSION_TOKEN_KEY = 'sessionToken';

/** The credentials in the Secret, or what is missing from it. */
export function credentialsFrom(secret: Secret): S3Credentials | { missing: string[] } {
  const read = (key: string): string | undefined => {
    const encoded = secret.data?.[key];
    const value = encoded === undefined ? undefined : Buffer.from(encoded, 'base64').toString('utf8').trim();
    return value === '' ? undefined : value;
  };
  const accessKeyId = read(CREDENTIAL_KEYS.accessKeyId);
  const secretAccessKey = read(CREDENTIAL_KEYS.secretAccessKey);
  const sessionToken = read(SESSION_TOKEN_KEY);
  if (accessKeyId === undefined || secretAccessKey === undefined) {
    const missing = Object.values(CREDENTIAL_KEYS).filter((key) => read(key) === undefined);
    return { missing };
  }
  return { accessKeyId, secretAccessKey, ...(sessionToken === undefined ? {} : { sessionToken }) };
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

/** A client for the location's store, or why there can be none. Throws only on Kubernetes API errors. */
export async function openStore(
  ctx: StoreAccess,
  location: BackupLocation,
): Promise<ObjectStore | LocationCheck> {
  const name = location.spec.credentialsSecretName;
  const secret = await readSecret(ctx, name);
  if (typeof secret === 'string') {
    return {
      reason: 'CredentialsNotFound',
      message: `${secret}; create it in namespace ${ctx.namespace} with keys ${CREDENTIAL_KEYS.accessKeyId} and ${CREDENTIAL_KEYS.secretAccessKey}.`,
    };
  }
  const credentials = credentialsFrom(secret);
  if ('missing' in credentials) {
    return {
      reason: 'CredentialsNotFound',
      message: `Secret ${ctx.namespace}/${name} has no ${credentials.missing.join(' or ')}; add the key(s).`,
    };
  }
  return new ObjectStore(location.spec.s3, credentials);
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
