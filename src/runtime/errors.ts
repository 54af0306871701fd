// What went wrong, and whether waiting can fix it: the one place that sorts errors of the
// Kubernetes API, of the network and of S3 into transient (retried with backoff, shown in status)
// and terminal (not retried: the object fails at once, naming the cause). controller-runtime's
// reconcile.TerminalError and CloudNativePG's isNetworkErrorRetryable are the models.

import type { Status } from '../api/kubernetes.js';

export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly reason: string,
    message: string,
    readonly status?: Status,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/**
 * A failure that retrying cannot fix. A reconcile that throws one is not requeued (a change of the
 * object or of what it watches brings it back) and is counted apart from transient errors.
 */
export class TerminalError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TerminalError';
  }
}

export const isNotFound = (err: unknown): boolean => err instanceof ApiError && err.statusCode === 404;
export const isConflict = (err: unknown): boolean => err instanceof ApiError && err.statusCode === 409;
export const isAlreadyExists = (err: unknown): boolean =>
  err instanceof ApiError && err.statusCode === 409 && err.reason === 'AlreadyExists';
export const isGone = (err: unknown): boolean => err instanceof ApiError && err.statusCode === 410;
export const isForbidden = (err: unknown): boolean => err instanceof ApiError && err.statusCode === 403;
/** 400 and 422: the API server refuses the object itself; sending it again changes nothing. */
export const isInvalid = (err: unknown): boolean =>
  err instanceof ApiError && (err.statusCode === 400 || err.statusCode === 422);

/**
 * API statuses that repeat for the same request: refused (400/422), forbidden by RBAC or by a
 * namespace being deleted (403), missing (404 on a write), not allowed (405), too large (413).
 * 401 is not among them: a rotated token is read again within a minute.
 */
const TERMINAL_API_STATUSES = new Set([400, 403, 404, 405, 413, 415, 422]);

/** Socket, DNS and timeout codes of Node, undici and the AWS SDK: the peer may answer next time. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'TimeoutError',
  'AbortError',
  'RequestTimeout',
  'RequestTimeoutException',
]);

/** S3 error names that say "later": throttling and the store's own trouble. */
const S3_TRANSIENT_CODES = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'InternalError',
  'ServiceUnavailable',
  'OperationAborted',
]);

interface ErrorFields {
  code?: unknown;
  name?: unknown;
  errors?: unknown;
  cause?: unknown;
  $metadata?: { httpStatusCode?: unknown };
}

const fieldsOf = (err: unknown): ErrorFields | undefined =>
  typeof err === 'object' && err !== null ? err : undefined;

/**
 * The most specific code an error carries: a socket code (also inside undici's "fetch failed"
 * cause or Node's AggregateError), else its name (S3 error codes are names), else 'Unknown'.
 */
export function errorCode(err: unknown): string {
  const fields = fieldsOf(err);
  if (fields === undefined) return 'Unknown';
  if (err instanceof ApiError) return `${err.statusCode}${err.reason === '' ? '' : ` ${err.reason}`}`;
  if (typeof fields.code === 'string' && fields.code !== '') return fields.code;
  if (Array.isArray(fields.errors) && fields.errors.length > 0) return errorCode(fields.errors[0]);
  if (fields.cause !== undefined) {
    const inner = errorCode(fields.cause);
    if (inner !== 'Unknown') return inner;
  }
  const name = fields.name;
  return typeof name === 'string' && name !== '' && name !== 'Error' && name !== 'TypeError'
    ? name
    : 'Unknown';
}

const httpStatusOf = (err: unknown): number | undefined => {
  if (err instanceof ApiError) return err.statusCode;
  const status = fieldsOf(err)?.$metadata?.httpStatusCode;
  return typeof status === 'number' ? status : undefined;
};

/** Whether the peer could not be reached or did not answer in time. */
export const isNetworkError = (err: unknown): boolean => NETWORK_CODES.has(errorCode(err));

/** Whether waiting and trying again can succeed: throttling, 5xx, timeouts, dropped connections. */
export function isTransient(err: unknown): boolean {
  if (err instanceof TerminalError) return false;
  const status = httpStatusOf(err);
  if (status !== undefined && (status === 408 || status === 429 || status >= 500)) return true;
  // A conflict is a lost race with another writer; the next read sees the winner.
  if (isConflict(err) && !isAlreadyExists(err)) return true;
  return isNetworkError(err) || S3_TRANSIENT_CODES.has(errorCode(err));
}

/** Whether the same call will fail the same way: a TerminalError or an API status that repeats. */
export function isTerminal(err: unknown): boolean {
  if (err instanceof TerminalError) return true;
  return err instanceof ApiError && TERMINAL_API_STATUSES.has(err.statusCode);
}

/** The message of anything thrown. */
export const errorMessage = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** `err` as an Error, to keep and throw later. */
export const asError = (err: unknown): Error => (err instanceof Error ? err : new Error(String(err)));

/** One line for a person: the code, then what the error says ("ECONNRESET: read ECONNRESET"). */
export function describeError(err: unknown): string {
  const code = errorCode(err);
  // Node's AggregateError (every address of a host refused) has an empty message of its own.
  const inner = fieldsOf(err)?.errors;
  const message =
    errorMessage(err) === '' && Array.isArray(inner) ? inner.map(errorMessage).join('; ') : errorMessage(err);
  if (code === 'Unknown' || message.includes(code)) return message;
  return `${code}: ${message}`;
}
