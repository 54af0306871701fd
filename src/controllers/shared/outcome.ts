// What one step decided, the same three ways for every kind: advance to a phase, wait (a watch
// event or requeueAfterMs brings the object back), or fail for good with an error code. Waiting
// is the transient case; an error a step throws is retried by the shell and shown in status. Each
// kind's reconciler turns an outcome into exactly one status write.

import { ApiError, describeError } from '../../runtime/errors.js';
import { RETRYING } from './conditions.js';

export type Outcome<Phase extends string, Code extends string, Update> =
  /** The phase's work is done: move on. `reason` defaults to the phase. */
  | { type: 'advance'; to: Phase; reason?: string; message: string; status?: Update }
  /** Not done yet. */
  | { type: 'wait'; reason: string; message: string; status?: Update; requeueAfterMs?: number }
  /** It cannot succeed. */
  | { type: 'fail'; errorCode: Code; message: string; status?: Update };

export const advance = <Phase extends string, Update = never>(
  to: Phase,
  message: string,
  status?: Update,
  reason?: string,
): Outcome<Phase, never, Update> => ({
  type: 'advance',
  to,
  message,
  ...(status === undefined ? {} : { status }),
  ...(reason === undefined ? {} : { reason }),
});

export const wait = <Update = never>(
  reason: string,
  message: string,
  status?: Update,
  requeueAfterMs?: number,
): Outcome<never, never, Update> => ({
  type: 'wait',
  reason,
  message,
  ...(status === undefined ? {} : { status }),
  ...(requeueAfterMs === undefined ? {} : { requeueAfterMs }),
});

export const fail = <Code extends string, Update = never>(
  errorCode: Code,
  message: string,
  status?: Update,
): Outcome<never, Code, Update> => ({
  type: 'fail',
  errorCode,
  message,
  ...(status === undefined ? {} : { status }),
});

/**
 * What an error a step threw makes of an object that works toward a deadline: refused for good,
 * it fails with `refusedCode`, naming the refusal and then `advice`; anything else waits to be
 * retried with backoff, saying so, until the deadline has passed; then `timedOut`.
 */
export function outcomeOfError<Phase extends string, Code extends string, Update>(options: {
  err: unknown;
  refused: boolean;
  /** What was at work, e.g. "phase Pending" or "the backup". */
  what: string;
  refusedCode: Code;
  advice: string;
  pastDeadline: boolean;
  timedOut: (last: string) => Outcome<Phase, Code, Update>;
  status?: Update;
}): Outcome<Phase, Code, Update> {
  const cause = describeError(options.err);
  if (options.refused) {
    const refusal =
      options.err instanceof ApiError
        ? `the API server refused a request of ${options.what}`
        : `${options.what} cannot go on`;
    return fail(options.refusedCode, `${refusal}: ${cause}${options.advice}`, options.status);
  }
  if (options.pastDeadline) return options.timedOut(`retrying after ${cause}`);
  return wait(RETRYING, `retrying after an error: ${cause}`, options.status);
}
