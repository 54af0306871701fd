// What a claim's ProvisioningFailed Events mean for a restore. The external-provisioner (and the
// PV controller, for "Error saving claim") records one on every failed attempt and tries again
// with backoff, so an Event is progress to show, not a verdict. A volume fails only on a cause the
// CSI driver reports as the request's own fault, or once it has kept failing past a grace period
// that the restore's status names.

import type { Event } from '../api/kubernetes.js';

export type ProvisioningVerdict =
  | { kind: 'none' }
  /** Failing, retried; `giveUpAt` when the grace period ends (absent: the cause is transient). */
  | { kind: 'retrying'; message: string; giveUpAt?: string }
  | { kind: 'failed'; message: string };

/**
 * Messages of attempts that failed for a reason outside the request: the API server or the driver
 * briefly unreachable, throttled, or a cache behind (a conflict, a snapshot not seen yet).
 */
const TRANSIENT = [
  /connection (reset|refused)/i,
  /broken pipe|\bEOF\b|i\/o timeout|TLS handshake timeout/i,
  /timed? ?out|deadline exceeded/i,
  /code = (Unavailable|DeadlineExceeded|Aborted|ResourceExhausted|Canceled)\b/,
  /the object has been modified/i,
  /too many requests|rate limit|throttl/i,
  /etcdserver|the server is currently unable|service unavailable|internal error occurred/i,
];

/** gRPC codes by which a CSI driver says the request itself is wrong: the retries fail the same. */
const FINAL = /code = (InvalidArgument|OutOfRange|Unimplemented)\b/;

const timeOf = (event: Event): number =>
  Date.parse(event.firstTimestamp ?? event.eventTime ?? event.metadata.creationTimestamp ?? '');

const lastTimeOf = (event: Event): number =>
  Date.parse(
    event.lastTimestamp ??
      event.series?.lastObservedTime ??
      event.eventTime ??
      event.metadata.creationTimestamp ??
      '',
  );

export const isTransientProvisioningFailure = (message: string): boolean =>
  TRANSIENT.some((pattern) => pattern.test(message));

/** The verdict on the Warning ProvisioningFailed Events of the claim with `claimUid`. */
export function provisioningVerdict(
  events: readonly Event[],
  claimUid: string,
  now: Date,
  graceMs: number,
): ProvisioningVerdict {
  const failures = events
    .filter(
      (event) =>
        event.type === 'Warning' &&
        event.reason === 'ProvisioningFailed' &&
        event.involvedObject.uid === claimUid,
    )
    .sort((a, b) => lastTimeOf(a) - lastTimeOf(b));
  const latest = failures.at(-1);
  if (latest === undefined) return { kind: 'none' };
  if (FINAL.test(latest.message)) return { kind: 'failed', message: latest.message };
  if (isTransientProvisioningFailure(latest.message)) return { kind: 'retrying', message: latest.message };
  const lasting = failures.filter((event) => !isTransientProvisioningFailure(event.message));
  const since = Math.min(...lasting.map(timeOf).filter((time) => !Number.isNaN(time)));
  const giveUpAt = Number.isFinite(since) ? since + graceMs : now.getTime() + graceMs;
  if (now.getTime() >= giveUpAt) {
    return {
      kind: 'failed',
      message: `${latest.message} (failing since ${new Date(since).toISOString()}, retried for ${Math.round(graceMs / 1000)}s)`,
    };
  }
  return { kind: 'retrying', message: latest.message, giveUpAt: new Date(giveUpAt).toISOString() };
}
