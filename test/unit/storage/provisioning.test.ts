// What a claim's ProvisioningFailed Events mean for a restore: progress while the provisioner
// retries a transient cause, a grace period for a lasting one, and a failure at once only for a
// cause the CSI driver calls the request's own fault.

import { describe, expect, it } from '@jest/globals';
import type { Event } from '../../../src/api/kubernetes.js';
import { isTransientProvisioningFailure, provisioningVerdict } from '../../../src/storage/provisioning.js';

const CLAIM = 'claim-uid-1';
const OTHER = 'claim-uid-2';
const T0 = Date.parse('2026-03-01T12:00:00Z');
const GRACE_MS = 300_000;
const at = (seconds: number): string => new Date(T0 + seconds * 1000).toISOString();
const now = (seconds: number): Date => new Date(T0 + seconds * 1000);

let names = 0;

/** A Warning ProvisioningFailed Event on the claim, first seen at `first` and last at `last` (seconds after T0). */
function failure(message: string, first: number, last = first, uid = CLAIM): Event {
  names += 1;
  return {
    metadata: { name: `data-0.${String(names)}`, namespace: 'ns', creationTimestamp: at(first) },
    involvedObject: { kind: 'PersistentVolumeClaim', namespace: 'ns', name: 'data-0', uid },
    type: 'Warning',
    reason: 'ProvisioningFailed',
    message,
    firstTimestamp: at(first),
    lastTimestamp: at(last),
    count: 1,
  };
}

const LASTING =
  'failed to provision volume with StorageClass "fast": rpc error: code = Internal desc = pool p1 is full';
const INVALID =
  'failed to provision volume with StorageClass "fast": rpc error: code = InvalidArgument desc = unknown parameter "tier"';

const TRANSIENT_MESSAGES = [
  [
    'connection reset',
    'failed to provision volume with StorageClass "fast": rpc error: code = Internal desc = connection reset',
  ],
  [
    'Error saving claim (the PV controller)',
    'Error saving claim: Put "https://10.96.0.1:443/api/v1/namespaces/ns/persistentvolumeclaims/data-0": read tcp 10.0.0.5:43210->10.96.0.1:443: read: connection reset by peer',
  ],
  [
    'code = Unavailable',
    'failed to provision volume with StorageClass "fast": rpc error: code = Unavailable desc = connection error',
  ],
  [
    'a conflict',
    'error syncing claim "ns/data-0": Operation cannot be fulfilled on persistentvolumeclaims "data-0": the object has been modified; please apply your changes to the latest version and try again',
  ],
  [
    'throttling',
    'failed to get target node: the server has received too many requests and has asked us to try again later (Too Many Requests)',
  ],
  ['a deadline', 'rpc error: code = DeadlineExceeded desc = context deadline exceeded'],
] as const;

describe('isTransientProvisioningFailure', () => {
  it.each(TRANSIENT_MESSAGES)('%s is transient', (_what, message) => {
    expect(isTransientProvisioningFailure(message)).toBe(true);
  });

  it.each([
    ['a full pool', LASTING],
    ['an invalid argument', INVALID],
    ['a missing class', 'storageclass.storage.k8s.io "fast" not found'],
  ])('%s is not', (_what, message) => {
    expect(isTransientProvisioningFailure(message)).toBe(false);
  });
});

describe('provisioningVerdict', () => {
  it('is none without events, and without ProvisioningFailed Warnings of the claim', () => {
    expect(provisioningVerdict([], CLAIM, now(0), GRACE_MS)).toEqual({ kind: 'none' });
    const normal = { ...failure(LASTING, 0), type: 'Normal' as const };
    const otherReason = { ...failure(LASTING, 0), reason: 'ExternalProvisioning' };
    expect(provisioningVerdict([normal, otherReason], CLAIM, now(10), GRACE_MS)).toEqual({ kind: 'none' });
  });

  it.each(TRANSIENT_MESSAGES)(
    'a transient latest failure (%s) is retried without a deadline',
    (_what, message) => {
      // Failing for far longer than the grace period changes nothing: the provisioner retries.
      const events = [failure(message, 0, 3_000)];
      expect(provisioningVerdict(events, CLAIM, now(3_600), GRACE_MS)).toStrictEqual({
        kind: 'retrying',
        message,
      });
    },
  );

  it('a lasting failure younger than the grace period is retried until first failure + grace', () => {
    const events = [failure(LASTING, 0, 20), failure(LASTING, 30, 60)];
    expect(provisioningVerdict(events, CLAIM, now(90), GRACE_MS)).toStrictEqual({
      kind: 'retrying',
      message: LASTING,
      giveUpAt: at(300),
    });
  });

  it('the grace period runs from the first lasting failure, not from transient ones before it', () => {
    const events = [failure(TRANSIENT_MESSAGES[0][1], -600, -500), failure(LASTING, 100, 120)];
    expect(provisioningVerdict(events, CLAIM, now(200), GRACE_MS)).toStrictEqual({
      kind: 'retrying',
      message: LASTING,
      giveUpAt: at(400),
    });
  });

  it('a lasting failure older than the grace period fails, saying since when and for how long', () => {
    const events = [failure(LASTING, 0, 250), failure(LASTING, 260, 299)];
    const verdict = provisioningVerdict(events, CLAIM, now(301), GRACE_MS);
    expect(verdict).toEqual({
      kind: 'failed',
      message: `${LASTING} (failing since ${at(0)}, retried for 300s)`,
    });
    // At the very moment the grace period ends it has ended.
    expect(provisioningVerdict(events, CLAIM, now(300), GRACE_MS).kind).toBe('failed');
    expect(provisioningVerdict(events, CLAIM, now(299), GRACE_MS).kind).toBe('retrying');
  });

  it('InvalidArgument fails at once, with the message as the driver wrote it', () => {
    expect(provisioningVerdict([failure(INVALID, 0)], CLAIM, now(1), GRACE_MS)).toStrictEqual({
      kind: 'failed',
      message: INVALID,
    });
  });

  it.each(['OutOfRange', 'Unimplemented'])('code = %s fails at once too', (code) => {
    const message = `rpc error: code = ${code} desc = no`;
    expect(provisioningVerdict([failure(message, 0)], CLAIM, now(1), GRACE_MS)).toStrictEqual({
      kind: 'failed',
      message,
    });
  });

  it("ignores another claim's events", () => {
    const events = [failure(INVALID, 0, 0, OTHER), failure(LASTING, -1_000, -900, OTHER)];
    expect(provisioningVerdict(events, CLAIM, now(10), GRACE_MS)).toEqual({ kind: 'none' });
    // And the other claim's older lasting failure does not start this claim's grace period.
    const mixed = [...events, failure(LASTING, 5, 5)];
    expect(provisioningVerdict(mixed, CLAIM, now(10), GRACE_MS)).toStrictEqual({
      kind: 'retrying',
      message: LASTING,
      giveUpAt: at(305),
    });
  });

  it('a transient latest failure after a lasting one is retried, whatever the lasting one says', () => {
    const transient = TRANSIENT_MESSAGES[2][1];
    const events = [failure(LASTING, 0, 500), failure(transient, 600, 700)];
    expect(provisioningVerdict(events, CLAIM, now(800), GRACE_MS)).toStrictEqual({
      kind: 'retrying',
      message: transient,
    });
    // Also after an InvalidArgument: only the latest attempt's cause decides.
    const afterInvalid = [failure(INVALID, 0, 10), failure(transient, 20, 30)];
    expect(provisioningVerdict(afterInvalid, CLAIM, now(40), GRACE_MS)).toStrictEqual({
      kind: 'retrying',
      message: transient,
    });
  });

  it('takes the latest failure by time, not by list order', () => {
    const transient = TRANSIENT_MESSAGES[0][1];
    const events = [failure(INVALID, 50, 60), failure(transient, 0, 10)];
    expect(provisioningVerdict(events, CLAIM, now(70), GRACE_MS)).toStrictEqual({
      kind: 'failed',
      message: INVALID,
    });
  });

  it('reads events.k8s.io events by eventTime and series', () => {
    const event: Event = {
      ...failure(LASTING, 0),
      firstTimestamp: undefined,
      lastTimestamp: undefined,
      eventTime: at(10),
      series: { count: 4, lastObservedTime: at(100) },
    };
    const transient: Event = { ...failure(TRANSIENT_MESSAGES[0][1], 50, 50) };
    // The series was last seen after the transient failure: it is the latest, and its grace
    // period runs from its eventTime.
    expect(provisioningVerdict([event, transient], CLAIM, now(110), GRACE_MS)).toStrictEqual({
      kind: 'retrying',
      message: LASTING,
      giveUpAt: at(310),
    });
  });
});
