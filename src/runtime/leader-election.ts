// Leader election on a coordination.k8s.io/v1 Lease, with client-go's semantics.
//
// Clocks of different machines disagree, so a candidate never compares the server's renewTime to
// its own clock: it notes, on its own monotonic clock, when it last saw the lease record CHANGE,
// and takes the lease over only when the record has not changed for leaseDurationSeconds since.
// Writes carry the resourceVersion they read, so of two candidates racing only one wins (409).
//
// The decisions are pure functions of (record seen, local times), tested without a cluster; the
// LeaderElector class runs them against the API server.

import type { Logger } from 'winston';
import type { Lease } from '../api/kubernetes.js';
import type { LeaderMetrics } from './metrics.js';
import type { KubeClient } from './kube-client.js';
import { errorMessage, isAlreadyExists, isConflict } from './errors.js';
import { resources } from './resources.js';
import { pause } from './async.js';

export interface LeaderElectionRecord {
  /** Empty when nobody holds the lease (never held, or released). */
  holderIdentity: string;
  leaseDurationSeconds: number;
  acquireTime: string;
  renewTime: string;
  leaseTransitions: number;
}

/** The record as this candidate saw it last, and when (local monotonic ms) it last changed. */
export interface Observation {
  record: LeaderElectionRecord;
  observedAt: number;
}

export type Decision = 'acquire' | 'renew' | 'wait';

export function recordOf(lease: Lease): LeaderElectionRecord {
  const spec = lease.spec;
  return {
    holderIdentity: spec.holderIdentity ?? '',
    leaseDurationSeconds: spec.leaseDurationSeconds ?? 0,
    acquireTime: spec.acquireTime ?? '',
    renewTime: spec.renewTime ?? '',
    leaseTransitions: spec.leaseTransitions ?? 0,
  };
}

export function sameRecord(a: LeaderElectionRecord, b: LeaderElectionRecord): boolean {
  return (
    a.holderIdentity === b.holderIdentity &&
    a.leaseDurationSeconds === b.leaseDurationSeconds &&
    a.acquireTime === b.acquireTime &&
    a.renewTime === b.renewTime &&
    a.leaseTransitions === b.leaseTransitions
  );
}

/** Folds a freshly read record into the observation: the local clock restarts only on a change. */
export function observe(
  previous: Observation | undefined,
  record: LeaderElectionRecord,
  now: number,
): Observation {
  if (previous !== undefined && sameRecord(previous.record, record)) return previous;
  return { record, observedAt: now };
}

/**
 * What a candidate may do with the record it observed. The lease of another holder expires
 * leaseDurationSeconds (the holder's own figure, else ours) after this candidate saw it change.
 */
export function decide(
  identity: string,
  observation: Observation,
  now: number,
  defaultLeaseDurationMs: number,
): Decision {
  const { record, observedAt } = observation;
  if (record.holderIdentity === identity) return 'renew';
  if (record.holderIdentity === '') return 'acquire';
  const durationMs =
    record.leaseDurationSeconds > 0 ? record.leaseDurationSeconds * 1000 : defaultLeaseDurationMs;
  return now - observedAt >= durationMs ? 'acquire' : 'wait';
}

/** The record to write to acquire or renew; a change of holder counts a transition. */
export function nextRecord(
  current: LeaderElectionRecord | undefined,
  identity: string,
  now: Date,
  leaseDurationSeconds: number,
): LeaderElectionRecord {
  const time = microTime(now);
  if (current?.holderIdentity === identity) {
    return { ...current, leaseDurationSeconds, renewTime: time };
  }
  return {
    holderIdentity: identity,
    leaseDurationSeconds,
    acquireTime: time,
    renewTime: time,
    leaseTransitions: current === undefined ? 0 : current.leaseTransitions + 1,
  };
}

/**
 * The record a leader writes when it shuts down (client-go's ReleaseOnCancel): no holder, so
 * candidates take over at their next try instead of waiting for the lease to expire.
 */
export function releasedRecord(current: LeaderElectionRecord, now: Date): LeaderElectionRecord {
  const time = microTime(now);
  return {
    holderIdentity: '',
    leaseDurationSeconds: 1,
    acquireTime: time,
    renewTime: time,
    leaseTransitions: current.leaseTransitions,
  };
}

/** A leader that has not renewed for renewDeadline must step down before its lease can expire. */
export function renewDeadlinePassed(lastRenewAt: number, now: number, renewDeadlineMs: number): boolean {
  return now - lastRenewAt >= renewDeadlineMs;
}

/** metav1.MicroTime wants exactly six fractional digits. */
export function microTime(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export interface LeaderElectionOptions {
  namespace: string;
  /** The Lease's name. */
  name: string;
  /** Unique per process: pod name plus a random suffix. */
  identity: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  /** Give the lease up when run() is cancelled. Default true. */
  releaseOnCancel?: boolean;
}

export interface LeaderCallbacks {
  onStartedLeading?(): void;
  /** Called once leadership ends: lost, or given up on cancel. */
  onStoppedLeading?(): void;
  /** The lease holder changed (to this process or another one). */
  onNewLeader?(identity: string): void;
}

export interface LeaderElectorDeps {
  logger: Logger;
  metrics?: LeaderMetrics;
  /** Local monotonic clock in ms. */
  now?: () => number;
}

export type LeaseClient = Pick<KubeClient, 'get' | 'create' | 'replace'>;

/** client-go's JitterFactor for the acquire retries. */
const JITTER = 0.2;

/** A call, not a property read: TypeScript keeps `signal.aborted` narrowed across awaits (TS#9998). */
const cancelled = (signal: AbortSignal): boolean => signal.aborted;

/** The API calls take no signal: a hung one is abandoned (it then only holds a socket). */
async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`${what} took longer than ${ms} ms`));
    }, ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export class LeaderElector {
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly now: () => number;
  private readonly log: Logger;
  private observation: Observation | undefined;
  /** The lease as last written or read, for the resourceVersion of the next write. */
  private lease: Lease | undefined;
  private leading = false;
  private reportedLeader = '';

  constructor(
    private readonly client: LeaseClient,
    private readonly options: LeaderElectionOptions,
    private readonly callbacks: LeaderCallbacks,
    private readonly deps: LeaderElectorDeps,
  ) {
    this.leaseDurationMs = options.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = options.retryPeriodMs ?? 2_000;
    this.now = deps.now ?? (() => performance.now());
    this.log = deps.logger.child({
      lease: `${options.namespace}/${options.name}`,
      identity: options.identity,
    });
    if (options.identity === '') throw new Error('leader election: identity must not be empty');
    if (this.leaseDurationMs <= this.renewDeadlineMs) {
      throw new Error('leader election: leaseDuration must be greater than renewDeadline');
    }
    if (this.renewDeadlineMs <= this.retryPeriodMs * (1 + JITTER)) {
      throw new Error(`leader election: renewDeadline must be greater than retryPeriod × ${1 + JITTER}`);
    }
  }

  isLeader(): boolean {
    return this.leading;
  }

  /**
   * Campaigns until this process leads, then renews until the signal aborts (the lease is then
   * released unless releaseOnCancel is false) or renewing fails for renewDeadline. Resolves when
   * leadership has ended, or when the signal aborts before it began.
   */
  async run(signal: AbortSignal): Promise<void> {
    this.log.info('campaigning for the lease');
    while (!cancelled(signal) && !(await this.tryAcquireOrRenew(this.renewDeadlineMs))) {
      await pause(this.retryPeriodMs * (1 + Math.random() * JITTER), signal);
    }
    if (cancelled(signal)) return;
    this.setLeading(true);
    this.log.info('started leading');
    this.callbacks.onStartedLeading?.();

    let lastRenewAt = this.now();
    while (!cancelled(signal)) {
      await pause(this.retryPeriodMs, signal);
      if (cancelled(signal)) break;
      const remaining = this.renewDeadlineMs - (this.now() - lastRenewAt);
      if (remaining > 0 && (await this.tryAcquireOrRenew(remaining))) {
        lastRenewAt = this.now();
      } else if (renewDeadlinePassed(lastRenewAt, this.now(), this.renewDeadlineMs)) {
        this.log.error('could not renew the lease within the renew deadline; stepping down', {
          renewDeadlineMs: this.renewDeadlineMs,
        });
        break;
      }
    }
    this.setLeading(false);
    if (cancelled(signal) && (this.options.releaseOnCancel ?? true)) await this.release();
    this.log.info('stopped leading');
    this.callbacks.onStoppedLeading?.();
  }

  /** One read-decide-write round; true when this process holds the lease afterwards. */
  private async tryAcquireOrRenew(timeoutMs: number): Promise<boolean> {
    const { namespace, name, identity } = this.options;
    const leaseDurationSeconds = Math.ceil(this.leaseDurationMs / 1000);
    try {
      const lease = await withTimeout(
        this.client.get(resources.leases, name, namespace),
        timeoutMs,
        'reading the lease',
      );
      if (lease === undefined) {
        const record = nextRecord(undefined, identity, new Date(), leaseDurationSeconds);
        const created = await withTimeout(
          this.client.create(resources.leases, { metadata: { name, namespace }, spec: record }),
          timeoutMs,
          'creating the lease',
        );
        this.holding(created, record);
        return true;
      }
      const record = recordOf(lease);
      this.observation = observe(this.observation, record, this.now());
      this.reportLeader(record.holderIdentity);
      if (decide(identity, this.observation, this.now(), this.leaseDurationMs) === 'wait') return false;
      const next = nextRecord(record, identity, new Date(), leaseDurationSeconds);
      const updated = await withTimeout(
        this.client.replace(resources.leases, { ...lease, spec: { ...lease.spec, ...next } }),
        timeoutMs,
        'writing the lease',
      );
      if (next.holderIdentity !== record.holderIdentity) {
        this.log.info('took the lease over', {
          from: record.holderIdentity,
          transitions: next.leaseTransitions,
        });
      }
      this.holding(updated, next);
      return true;
    } catch (err) {
      if (isConflict(err) || isAlreadyExists(err)) {
        this.log.debug('another candidate wrote the lease first', { error: errorMessage(err) });
      } else {
        this.log.warn('could not acquire or renew the lease', { error: errorMessage(err) });
      }
      return false;
    }
  }

  private holding(lease: Lease, record: LeaderElectionRecord): void {
    this.lease = lease;
    this.observation = { record, observedAt: this.now() };
    this.reportLeader(record.holderIdentity);
  }

  private async release(): Promise<void> {
    const lease = this.lease;
    if (lease === undefined || this.observation?.record.holderIdentity !== this.options.identity) return;
    const record = releasedRecord(this.observation.record, new Date());
    try {
      await withTimeout(
        this.client.replace(resources.leases, { ...lease, spec: { ...lease.spec, ...record } }),
        this.renewDeadlineMs,
        'releasing the lease',
      );
      this.observation = { record, observedAt: this.now() };
      this.log.info('released the lease');
    } catch (err) {
      // Not fatal: the others take over once the lease expires.
      this.log.warn('could not release the lease', { error: errorMessage(err) });
    }
  }

  private setLeading(leading: boolean): void {
    this.leading = leading;
    this.deps.metrics?.leader.set(leading ? 1 : 0);
  }

  private reportLeader(identity: string): void {
    if (identity === '' || identity === this.reportedLeader) return;
    this.reportedLeader = identity;
    this.log.info('new leader observed', { leader: identity });
    this.callbacks.onNewLeader?.(identity);
  }
}
