// The one place errors are sorted into transient (retried, shown in status) and terminal (the
// object fails at once, naming the cause): every error shape the operator meets, from the
// Kubernetes API, Node's sockets, undici, the AWS SDK and its own TerminalError.

import { describe, expect, it } from '@jest/globals';
import {
  ApiError,
  describeError,
  errorCode,
  errorMessage,
  isTerminal,
  isTransient,
  TerminalError,
} from '../../../src/runtime/errors.js';
import { apiError, connectionReset, fetchFailed } from '../../support/fake-client.js';

/** A socket error as Node reports it: the code is also in the message. */
const socketError = (code: string, message: string): NodeJS.ErrnoException =>
  Object.assign(new Error(message), { code });

/** An error shaped as the AWS SDK v3 throws them: the S3 code is the name, the HTTP status in $metadata. */
const awsError = (name: string, message: string, httpStatusCode?: number): Error =>
  Object.assign(new Error(message), {
    name,
    $fault: 'server',
    ...(httpStatusCode === undefined ? {} : { $metadata: { httpStatusCode } }),
  });

const conflictMessage =
  'Operation cannot be fulfilled on backups.snapback.dev "b": the object has been modified; please apply your changes to the latest version and try again';

interface Row {
  what: string;
  err: unknown;
  transient: boolean;
  terminal: boolean;
  code: string;
  described: string;
}

const rows: Row[] = [
  {
    what: 'ApiError 408',
    err: apiError(408, 'Timeout', 'the request timed out'),
    transient: true,
    terminal: false,
    code: '408 Timeout',
    described: '408 Timeout: the request timed out',
  },
  {
    what: 'ApiError 409 Conflict (a lost race)',
    err: apiError(409, 'Conflict', conflictMessage),
    transient: true,
    terminal: false,
    code: '409 Conflict',
    described: `409 Conflict: ${conflictMessage}`,
  },
  {
    what: 'ApiError 409 AlreadyExists',
    err: apiError(409, 'AlreadyExists', 'volumesnapshots.snapshot.storage.k8s.io "s" already exists'),
    transient: false,
    terminal: false,
    code: '409 AlreadyExists',
    described: '409 AlreadyExists: volumesnapshots.snapshot.storage.k8s.io "s" already exists',
  },
  {
    what: 'ApiError 429',
    err: apiError(429, 'TooManyRequests', 'the server has received too many requests'),
    transient: true,
    terminal: false,
    code: '429 TooManyRequests',
    described: '429 TooManyRequests: the server has received too many requests',
  },
  {
    what: 'ApiError 500',
    err: apiError(500, 'InternalError', 'Internal error occurred: etcdserver: leader changed'),
    transient: true,
    terminal: false,
    code: '500 InternalError',
    described: '500 InternalError: Internal error occurred: etcdserver: leader changed',
  },
  {
    what: 'ApiError 503',
    err: apiError(503, 'ServiceUnavailable', 'the server is currently unable to handle the request'),
    transient: true,
    terminal: false,
    code: '503 ServiceUnavailable',
    described: '503 ServiceUnavailable: the server is currently unable to handle the request',
  },
  {
    what: 'ApiError 504',
    err: apiError(504, 'Timeout', 'the server was unable to return a response in the time allotted'),
    transient: true,
    terminal: false,
    code: '504 Timeout',
    described: '504 Timeout: the server was unable to return a response in the time allotted',
  },
  {
    what: 'ApiError 400',
    err: apiError(400, 'BadRequest', 'unable to parse requirement'),
    transient: false,
    terminal: true,
    code: '400 BadRequest',
    described: '400 BadRequest: unable to parse requirement',
  },
  {
    what: 'ApiError 403',
    err: apiError(403, 'Forbidden', 'volumesnapshots is forbidden: User "sa" cannot create resource'),
    transient: false,
    terminal: true,
    code: '403 Forbidden',
    described: '403 Forbidden: volumesnapshots is forbidden: User "sa" cannot create resource',
  },
  {
    what: 'ApiError 404',
    err: apiError(404, 'NotFound', 'backups.snapback.dev "b" not found'),
    transient: false,
    terminal: true,
    code: '404 NotFound',
    described: '404 NotFound: backups.snapback.dev "b" not found',
  },
  {
    what: 'ApiError 422',
    err: apiError(422, 'Invalid', 'Backup "b" is invalid: spec.deployment.name: Required value'),
    transient: false,
    terminal: true,
    code: '422 Invalid',
    described: '422 Invalid: Backup "b" is invalid: spec.deployment.name: Required value',
  },
  {
    // A rotated token is read again: neither retried as a blip nor final.
    what: 'ApiError 401',
    err: apiError(401, 'Unauthorized', 'Unauthorized'),
    transient: false,
    terminal: false,
    code: '401 Unauthorized',
    described: '401 Unauthorized: Unauthorized',
  },
  {
    what: 'ApiError without a reason',
    err: new ApiError(502, '', 'bad gateway'),
    transient: true,
    terminal: false,
    code: '502',
    described: '502: bad gateway',
  },
  {
    what: "undici's fetch failed with an ECONNRESET cause",
    err: fetchFailed(connectionReset()),
    transient: true,
    terminal: false,
    code: 'ECONNRESET',
    described: 'ECONNRESET: fetch failed',
  },
  {
    what: 'a bare ECONNRESET',
    err: connectionReset(),
    transient: true,
    terminal: false,
    code: 'ECONNRESET',
    described: 'read ECONNRESET',
  },
  {
    what: 'an AggregateError of ECONNREFUSED (every address of a name refused)',
    err: new AggregateError(
      [
        socketError('ECONNREFUSED', 'connect ECONNREFUSED 10.0.0.1:443'),
        socketError('ECONNREFUSED', 'connect ECONNREFUSED 10.0.0.2:443'),
      ],
      'all addresses refused',
    ),
    transient: true,
    terminal: false,
    code: 'ECONNREFUSED',
    described: 'ECONNREFUSED: all addresses refused',
  },
  {
    what: 'fetch failed with an AggregateError cause',
    err: fetchFailed(new AggregateError([socketError('EHOSTUNREACH', 'connect EHOSTUNREACH')], 'x')),
    transient: true,
    terminal: false,
    code: 'EHOSTUNREACH',
    described: 'EHOSTUNREACH: fetch failed',
  },
  {
    what: 'a DOMException TimeoutError (AbortSignal.timeout)',
    err: new DOMException('The operation was aborted due to timeout', 'TimeoutError'),
    transient: true,
    terminal: false,
    code: 'TimeoutError',
    described: 'TimeoutError: The operation was aborted due to timeout',
  },
  {
    what: 'a DOMException AbortError',
    err: new DOMException('This operation was aborted', 'AbortError'),
    transient: true,
    terminal: false,
    code: 'AbortError',
    described: 'AbortError: This operation was aborted',
  },
  {
    what: 'S3 SlowDown (503)',
    err: awsError('SlowDown', 'Please reduce your request rate.', 503),
    transient: true,
    terminal: false,
    code: 'SlowDown',
    described: 'SlowDown: Please reduce your request rate.',
  },
  {
    what: 'S3 NoSuchKey (404): not an API 404, nothing to retry nor to fail for good',
    err: awsError('NoSuchKey', 'The specified key does not exist.', 404),
    transient: false,
    terminal: false,
    code: 'NoSuchKey',
    described: 'NoSuchKey: The specified key does not exist.',
  },
  {
    what: 'S3 InternalError without $metadata',
    err: awsError('InternalError', 'We encountered an internal error. Please try again.'),
    transient: true,
    terminal: false,
    code: 'InternalError',
    described: 'InternalError: We encountered an internal error. Please try again.',
  },
  {
    what: 'S3 AccessDenied (403): the store refuses, not the API server',
    err: awsError('AccessDenied', 'Access Denied', 403),
    transient: false,
    terminal: false,
    code: 'AccessDenied',
    described: 'AccessDenied: Access Denied',
  },
  {
    what: 'a TerminalError',
    err: new TerminalError('not a storage quantity: "lots"'),
    transient: false,
    terminal: true,
    code: 'TerminalError',
    described: 'TerminalError: not a storage quantity: "lots"',
  },
  {
    what: 'a TerminalError caused by a transient error: terminal wins',
    err: new TerminalError('gave up', { cause: apiError(503, 'ServiceUnavailable', 'unavailable') }),
    transient: false,
    terminal: true,
    code: '503 ServiceUnavailable',
    described: '503 ServiceUnavailable: gave up',
  },
  {
    what: 'a plain Error',
    err: new Error('something odd'),
    transient: false,
    terminal: false,
    code: 'Unknown',
    described: 'something odd',
  },
  {
    what: 'a plain TypeError',
    err: new TypeError("Cannot read properties of undefined (reading 'x')"),
    transient: false,
    terminal: false,
    code: 'Unknown',
    described: "Cannot read properties of undefined (reading 'x')",
  },
  {
    what: 'a thrown string',
    err: 'boom',
    transient: false,
    terminal: false,
    code: 'Unknown',
    described: 'boom',
  },
  {
    what: 'undefined',
    err: undefined,
    transient: false,
    terminal: false,
    code: 'Unknown',
    described: 'undefined',
  },
];

describe('error classification', () => {
  it.each(rows)('$what', ({ err, transient, terminal, code, described }) => {
    expect({
      transient: isTransient(err),
      terminal: isTerminal(err),
      code: errorCode(err),
      described: describeError(err),
    }).toEqual({ transient, terminal, code, described });
  });

  it('never calls an error both transient and terminal', () => {
    for (const { what, err } of rows) {
      expect({ what, both: isTransient(err) && isTerminal(err) }).toEqual({ what, both: false });
    }
  });

  it('covers every API status the operator meets with exactly one verdict or none', () => {
    const verdict = (status: number): string => {
      const err = apiError(status);
      return isTransient(err) ? 'transient' : isTerminal(err) ? 'terminal' : 'neither';
    };
    expect(
      Object.fromEntries(
        [400, 401, 403, 404, 405, 408, 409, 410, 413, 415, 422, 429, 500, 502, 503, 504].map((s) => [
          s,
          verdict(s),
        ]),
      ),
    ).toEqual({
      400: 'terminal',
      401: 'neither',
      403: 'terminal',
      404: 'terminal',
      405: 'terminal',
      408: 'transient',
      409: 'transient',
      410: 'neither',
      413: 'terminal',
      415: 'terminal',
      422: 'terminal',
      429: 'transient',
      500: 'transient',
      502: 'transient',
      503: 'transient',
      504: 'transient',
    });
  });

  // Node's own AggregateError (net's autoSelectFamily, every address of a name refused) has an
  // empty message; what went wrong is only in its errors. describeError then says
  // "ECONNREFUSED: ", without the addresses a person would check.
  it("names what Node's AggregateError with an empty message holds", () => {
    const err = Object.assign(
      new AggregateError(
        [
          socketError('ECONNREFUSED', 'connect ECONNREFUSED ::1:443'),
          socketError('ECONNREFUSED', 'connect ECONNREFUSED 10.0.0.1:443'),
        ],
        '',
      ),
      { code: 'ECONNREFUSED' },
    );
    expect(describeError(err)).toContain('connect ECONNREFUSED ::1:443');
  });

  it('reads the message of anything thrown', () => {
    expect(errorMessage(new Error('m'))).toBe('m');
    expect(errorMessage(42)).toBe('42');
  });
});
