// Leader election between candidates on one real Lease: one leader at a time, takeover after a
// leader dies without releasing (lease expiry judged locally), immediate takeover after a release.

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  LeaderElector,
  microTime,
  type LeaderElectionOptions,
} from '../../../src/runtime/leader-election.js';
import type { KubeClient } from '../../../src/runtime/kube-client.js';
import { resources } from '../../../src/runtime/resources.js';
import { createTestNamespace, deleteTestNamespace, testClient, waitFor } from '../support/cluster.js';
import { sleep, testLogger } from './support.js';

const logger = testLogger('runtime-leader-election');
const LEASE_MS = 3000;
const RENEW_DEADLINE_MS = 2000;
const RETRY_MS = 500;

let client: KubeClient;
let ns: string;
const figures: Record<string, number> = {};

interface Candidate {
  identity: string;
  elector: LeaderElector;
  stop: AbortController;
  done: Promise<void>;
  startedAt?: number;
  stoppedAt?: number;
}

/** Identities leading right now, by their own account; more than one at once is a failure. */
const leading = new Set<string>();
let overlaps = 0;

function candidate(identity: string, lease: string, options: Partial<LeaderElectionOptions> = {}): Candidate {
  const stop = new AbortController();
  const self: Partial<Candidate> = { identity, stop };
  const elector = new LeaderElector(
    client,
    {
      namespace: ns,
      name: lease,
      identity,
      leaseDurationMs: LEASE_MS,
      renewDeadlineMs: RENEW_DEADLINE_MS,
      retryPeriodMs: RETRY_MS,
      ...options,
    },
    {
      onStartedLeading: () => {
        if (leading.size > 0) overlaps += 1;
        leading.add(identity);
        self.startedAt = performance.now();
      },
      onStoppedLeading: () => {
        leading.delete(identity);
        self.stoppedAt = performance.now();
      },
    },
    { logger },
  );
  return Object.assign(self, { elector, done: elector.run(stop.signal) }) as Candidate;
}

beforeAll(async () => {
  client = await testClient();
  ns = await createTestNamespace(client, 'leader');
});

afterAll(async () => {
  await deleteTestNamespace(client, ns);
  await client.close();
  console.log(`leader election figures: ${JSON.stringify(figures)}`);
});

describe('LeaderElector on a real Lease', () => {
  it('elects one leader, and replaces a dead one only after the lease expired', async () => {
    // Killed rather than stopped: the leader stops renewing and does not release.
    const a = candidate('candidate-a', 'election', { releaseOnCancel: false });
    const b = candidate('candidate-b', 'election', { releaseOnCancel: false });
    const first = await waitFor('a leader', async () =>
      Promise.resolve([a, b].find((c) => c.elector.isLeader())),
    );
    const second = first === a ? b : a;
    // Several renew periods with one leader only.
    await sleep(4 * RETRY_MS);
    expect(first.elector.isLeader()).toBe(true);
    expect(second.elector.isLeader()).toBe(false);
    const before = await client.get(resources.leases, 'election', ns);
    expect(before?.spec.holderIdentity).toBe(first.identity);

    first.stop.abort();
    const killedAt = performance.now();
    await first.done;
    await waitFor(
      'the takeover after expiry',
      async () => Promise.resolve(second.elector.isLeader()),
      3 * LEASE_MS,
    );
    const takeoverMs = (second.startedAt ?? 0) - killedAt;
    figures.takeoverAfterKillMs = Math.round(takeoverMs);
    // Never before the lease could have expired (the last renew was at most a retry period before
    // the kill), and within leaseDuration plus the candidate's polling.
    expect(takeoverMs).toBeGreaterThanOrEqual(LEASE_MS - RETRY_MS - 100);
    expect(takeoverMs).toBeLessThanOrEqual(LEASE_MS + 3 * RETRY_MS);
    const taken = await client.get(resources.leases, 'election', ns);
    expect(taken?.spec.holderIdentity).toBe(second.identity);
    expect(taken?.spec.leaseTransitions).toBe((before?.spec.leaseTransitions ?? 0) + 1);

    second.stop.abort();
    await second.done;
    expect(overlaps).toBe(0);
    expect(leading.size).toBe(0);
  });

  it('hands over at once when the leader releases the lease on shutdown', async () => {
    const c = candidate('candidate-c', 'handover');
    await waitFor('c to lead', async () => Promise.resolve(c.elector.isLeader()));
    const d = candidate('candidate-d', 'handover');
    await sleep(2 * RETRY_MS);
    expect(d.elector.isLeader()).toBe(false);

    c.stop.abort();
    const releasedAt = performance.now();
    await c.done;
    await waitFor('the takeover after release', async () => Promise.resolve(d.elector.isLeader()), LEASE_MS);
    figures.takeoverAfterReleaseMs = Math.round((d.startedAt ?? 0) - releasedAt);
    // Well before the lease would have expired.
    expect(figures.takeoverAfterReleaseMs).toBeLessThan(LEASE_MS - RETRY_MS);
    const lease = await client.get(resources.leases, 'handover', ns);
    expect(lease?.spec.holderIdentity).toBe('candidate-d');
    // client-go: the creator starts at 0, a release keeps the count, the next holder adds one.
    expect(lease?.spec.leaseTransitions).toBe(1);

    d.stop.abort();
    await d.done;
    const released = await client.get(resources.leases, 'handover', ns);
    expect(released?.spec.holderIdentity).toBe('');
    expect(released?.spec.leaseDurationSeconds).toBe(1);
    expect(overlaps).toBe(0);
  });

  it('steps down when another holder overwrites its lease and it cannot renew within the deadline', async () => {
    const leader = candidate('usurped', 'usurped-lease');
    await waitFor('the leader', async () => Promise.resolve(leader.elector.isLeader()));
    const lease = await client.get(resources.leases, 'usurped-lease', ns);
    if (lease === undefined) throw new Error('lease not found');
    const overwrittenAt = performance.now();
    await client.replace(resources.leases, {
      ...lease,
      spec: { ...lease.spec, holderIdentity: 'intruder', renewTime: microTime(new Date()) },
    });
    await leader.done;
    const stepDownMs = (leader.stoppedAt ?? 0) - overwrittenAt;
    figures.stepDownAfterLossMs = Math.round(stepDownMs);
    expect(leader.elector.isLeader()).toBe(false);
    expect(stepDownMs).toBeLessThanOrEqual(RENEW_DEADLINE_MS + 2 * RETRY_MS);
    // It did not release what it no longer held.
    expect((await client.get(resources.leases, 'usurped-lease', ns))?.spec.holderIdentity).toBe('intruder');
  });
});
