import { describe, expect, it } from '@jest/globals';
import winston from 'winston';
import type { Lease } from '../../../src/api/kubernetes.js';
import {
  decide,
  LeaderElector,
  microTime,
  nextRecord,
  observe,
  recordOf,
  releasedRecord,
  renewDeadlinePassed,
  type LeaderElectionRecord,
  type LeaseClient,
} from '../../../src/runtime/leader-election.js';

const LEASE_MS = 15_000;

const held = (
  holderIdentity: string,
  renewTime: string,
  extra: Partial<LeaderElectionRecord> = {},
): LeaderElectionRecord => ({
  holderIdentity,
  leaseDurationSeconds: 15,
  acquireTime: '2030-01-01T00:00:00.000000Z',
  renewTime,
  leaseTransitions: 3,
  ...extra,
});

describe('leader election decisions', () => {
  it('judges expiry by when this candidate saw the record change, on its own clock', () => {
    const record = held('a', '2030-01-01T00:00:10.000000Z');
    const seen = observe(undefined, record, 1_000);
    expect(decide('b', seen, 1_000 + LEASE_MS - 1, LEASE_MS)).toBe('wait');
    expect(decide('b', seen, 1_000 + LEASE_MS, LEASE_MS)).toBe('acquire');
  });

  it('restarts the local clock when the holder renews, not when the same record is read again', () => {
    const first = observe(undefined, held('a', '2030-01-01T00:00:10.000000Z'), 1_000);
    const reread = observe(first, held('a', '2030-01-01T00:00:10.000000Z'), 9_000);
    expect(reread.observedAt).toBe(1_000);
    const renewed = observe(reread, held('a', '2030-01-01T00:00:12.000000Z'), 10_000);
    expect(renewed.observedAt).toBe(10_000);
    expect(decide('b', renewed, 1_000 + LEASE_MS, LEASE_MS)).toBe('wait');
    expect(decide('b', renewed, 10_000 + LEASE_MS, LEASE_MS)).toBe('acquire');
  });

  it('ignores skew of the server-side renewTime: a renewTime long past does not make the lease expired', () => {
    // The holder's clock is an hour behind: by wall clocks its lease looks long expired.
    const skewedPast = held('a', new Date(Date.now() - 3_600_000).toISOString());
    const seen = observe(undefined, skewedPast, 50_000);
    expect(decide('b', seen, 50_001, LEASE_MS)).toBe('wait');
    expect(decide('b', seen, 50_000 + LEASE_MS - 1, LEASE_MS)).toBe('wait');
  });

  it('ignores skew of the server-side renewTime: a renewTime in the future does not keep a dead holder', () => {
    const skewedFuture = held('a', new Date(Date.now() + 3_600_000).toISOString());
    const seen = observe(undefined, skewedFuture, 50_000);
    expect(decide('b', seen, 50_000 + LEASE_MS, LEASE_MS)).toBe('acquire');
  });

  it("uses the holder's leaseDurationSeconds, and its own only when the record has none", () => {
    const short = observe(undefined, held('a', 't1', { leaseDurationSeconds: 5 }), 0);
    expect(decide('b', short, 4_999, LEASE_MS)).toBe('wait');
    expect(decide('b', short, 5_000, LEASE_MS)).toBe('acquire');
    const unset = observe(undefined, held('a', 't1', { leaseDurationSeconds: 0 }), 0);
    expect(decide('b', unset, 5_000, LEASE_MS)).toBe('wait');
    expect(decide('b', unset, LEASE_MS, LEASE_MS)).toBe('acquire');
  });

  it('renews its own lease whatever the time, and acquires a released one at once', () => {
    const own = observe(undefined, held('me', 't1'), 0);
    expect(decide('me', own, 10 * LEASE_MS, LEASE_MS)).toBe('renew');
    const released = observe(undefined, held('', 't1', { leaseDurationSeconds: 1 }), 0);
    expect(decide('me', released, 0, LEASE_MS)).toBe('acquire');
  });

  it('keeps acquireTime and transitions on renew, counts a transition on takeover', () => {
    const now = new Date('2030-01-01T00:01:00.123Z');
    const mine = held('me', '2030-01-01T00:00:50.000000Z');
    const renewed = nextRecord(mine, 'me', now, 15);
    expect(renewed).toEqual({ ...mine, renewTime: '2030-01-01T00:01:00.123000Z' });

    const taken = nextRecord(held('other', '2030-01-01T00:00:40.000000Z'), 'me', now, 15);
    expect(taken).toEqual({
      holderIdentity: 'me',
      leaseDurationSeconds: 15,
      acquireTime: '2030-01-01T00:01:00.123000Z',
      renewTime: '2030-01-01T00:01:00.123000Z',
      leaseTransitions: 4,
    });
    expect(nextRecord(undefined, 'me', now, 15).leaseTransitions).toBe(0);
  });

  it('releases by clearing the holder with a one-second lease, keeping the transitions', () => {
    const now = new Date('2030-01-01T00:02:00.000Z');
    expect(releasedRecord(held('me', 't1'), now)).toEqual({
      holderIdentity: '',
      leaseDurationSeconds: 1,
      acquireTime: '2030-01-01T00:02:00.000000Z',
      renewTime: '2030-01-01T00:02:00.000000Z',
      leaseTransitions: 3,
    });
  });

  it('steps down once renewDeadline has passed since the last successful renew', () => {
    expect(renewDeadlinePassed(1_000, 10_999, 10_000)).toBe(false);
    expect(renewDeadlinePassed(1_000, 11_000, 10_000)).toBe(true);
  });

  it('reads a lease with unset fields as an unheld record', () => {
    const lease: Lease = { metadata: { name: 'l' }, spec: { holderIdentity: null, renewTime: null } };
    expect(recordOf(lease)).toEqual({
      holderIdentity: '',
      leaseDurationSeconds: 0,
      acquireTime: '',
      renewTime: '',
      leaseTransitions: 0,
    });
  });

  it('writes MicroTime with six fractional digits', () => {
    expect(microTime(new Date('2030-05-06T07:08:09.010Z'))).toBe('2030-05-06T07:08:09.010000Z');
  });
});

describe('LeaderElector configuration', () => {
  const client: LeaseClient = {
    get: () => Promise.reject(new Error('unused')),
    create: () => Promise.reject(new Error('unused')),
    replace: () => Promise.reject(new Error('unused')),
  };
  const logger = winston.createLogger({ silent: true });
  const make = (leaseDurationMs: number, renewDeadlineMs: number, retryPeriodMs: number): LeaderElector =>
    new LeaderElector(
      client,
      { namespace: 'ns', name: 'lease', identity: 'me', leaseDurationMs, renewDeadlineMs, retryPeriodMs },
      {},
      { logger },
    );

  it('refuses timings where a leader could lose the lease before it notices', () => {
    expect(() => make(10_000, 10_000, 2_000)).toThrow(/leaseDuration must be greater than renewDeadline/);
    expect(() => make(15_000, 2_000, 2_000)).toThrow(/renewDeadline must be greater than retryPeriod/);
    expect(make(15_000, 10_000, 2_000).isLeader()).toBe(false);
  });
});
