// The manager owns the informers and controllers of the process. Informers run on every replica,
// so a standby has warm caches and is ready; controllers run only on the leader. A leader that
// loses its lease stops and returns, and the caller exits so the process restarts clean (as
// controller-runtime does): a former leader must not keep acting on what it believed.

import type { Logger } from 'winston';
import type { KubeObject } from '../api/kubernetes.js';
import type { CheckResult, RuntimeMetrics } from './metrics.js';
import { Controller, type ControllerOptions } from './controller.js';
import { Informer, type InformerOptions, type ListWatchClient } from './informer.js';
import { LeaderElector, type LeaderElectionOptions, type LeaseClient } from './leader-election.js';
import type { ResourceType } from './resources.js';
import { errorMessage } from './errors.js';

export interface ManagerOptions {
  client: ListWatchClient & LeaseClient;
  logger: Logger;
  metrics: RuntimeMetrics;
  /** Absent: this process runs the controllers without electing a leader. */
  leaderElection?: LeaderElectionOptions;
  /** How long stop waits for reconciles in flight. Default 30 s. */
  gracefulShutdownMs?: number;
}

/** Why start() returned: the signal asked for it, or the lease was lost. */
export type StopReason = 'stopped' | 'leadership-lost';

/** What the manager does with an informer, whatever its object type. */
type ManagedInformer = Pick<
  Informer<KubeObject>,
  'start' | 'stop' | 'hasSynced' | 'waitForSync' | 'isHealthy' | 'resourceType'
>;

const untilAborted = (signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    signal.addEventListener(
      'abort',
      () => {
        resolve();
      },
      { once: true },
    );
  });

export class Manager {
  private readonly informers: ManagedInformer[] = [];
  private readonly controllers: Controller[] = [];
  private readonly log: Logger;
  private elector: LeaderElector | undefined;
  private controllersRunning = false;

  constructor(private readonly options: ManagerOptions) {
    this.log = options.logger.child({ component: 'manager' });
  }

  /** Creates an informer the manager starts and stops; share it between controllers. */
  informer<T extends KubeObject>(rt: ResourceType<T>, options: InformerOptions = {}): Informer<T> {
    const informer = new Informer<T>(this.options.client, rt, options, {
      logger: this.options.logger,
      metrics: this.options.metrics.informer,
    });
    this.informers.push(informer);
    return informer;
  }

  controller(options: Omit<ControllerOptions, 'logger' | 'metrics'>): Controller {
    const controller = new Controller({
      ...options,
      logger: this.options.logger,
      metrics: this.options.metrics,
    });
    this.controllers.push(controller);
    return controller;
  }

  isLeader(): boolean {
    return this.elector === undefined ? this.controllersRunning : this.elector.isLeader();
  }

  /** /readyz: caches are synced. A standby is ready too: it just does not lead. */
  readiness(): CheckResult {
    const waiting = this.informers.filter((i) => !i.hasSynced()).map((i) => i.resourceType.plural);
    return waiting.length === 0 ? undefined : `informers not synced: ${waiting.join(', ')}`;
  }

  /** /healthz: no informer's list-watch loop is stuck. */
  health(): CheckResult {
    const stuck = this.informers.filter((i) => !i.isHealthy()).map((i) => i.resourceType.plural);
    return stuck.length === 0 ? undefined : `informers stuck: ${stuck.join(', ')}`;
  }

  /**
   * Runs until the signal aborts ('stopped') or the lease is lost ('leadership-lost'; the caller
   * should exit non-zero). Either way controllers are stopped, waiting for reconciles in flight,
   * before the lease is released and the informers stop.
   */
  async start(signal: AbortSignal): Promise<StopReason> {
    for (const informer of this.informers) informer.start();
    try {
      try {
        const started = performance.now();
        await Promise.all(this.informers.map((i) => i.waitForSync(signal)));
        this.log.info('caches synced', {
          informers: this.informers.length,
          ms: Math.round(performance.now() - started),
        });
      } catch (err) {
        if (signal.aborted) return 'stopped';
        throw err;
      }
      if (this.options.leaderElection === undefined) {
        this.startControllers();
        await untilAborted(signal);
        await this.stopControllers();
        return 'stopped';
      }
      return await this.lead(signal, this.options.leaderElection);
    } finally {
      await Promise.all(this.informers.map((i) => i.stop()));
    }
  }

  private async lead(signal: AbortSignal, election: LeaderElectionOptions): Promise<StopReason> {
    // The elector gets its own signal: on shutdown, controllers stop before the lease is
    // released, so the next leader never overlaps with reconciles still running here.
    const electorStop = new AbortController();
    // Set from a callback; a holder object because TypeScript would narrow a plain `let`.
    const leadership = { lost: false };
    let wake: () => void = () => undefined;
    const ended = new Promise<void>((resolve) => {
      wake = resolve;
    });
    const onAbort = (): void => {
      wake();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    this.elector = new LeaderElector(
      this.options.client,
      election,
      {
        onStartedLeading: () => {
          this.startControllers();
        },
        onStoppedLeading: () => {
          if (!electorStop.signal.aborted) {
            leadership.lost = true;
            wake();
          }
        },
      },
      { logger: this.options.logger, metrics: this.options.metrics.leaderElection },
    );
    const running = this.elector.run(electorStop.signal);
    try {
      await Promise.race([ended, running.then(() => undefined)]);
      if (leadership.lost)
        this.log.error('leadership lost; shutting down so that the process restarts clean');
      await this.stopControllers();
    } finally {
      signal.removeEventListener('abort', onAbort);
      electorStop.abort();
      await running;
    }
    return leadership.lost ? 'leadership-lost' : 'stopped';
  }

  private startControllers(): void {
    if (this.controllersRunning) return;
    this.controllersRunning = true;
    for (const controller of this.controllers) controller.start();
  }

  private async stopControllers(): Promise<void> {
    if (!this.controllersRunning) return;
    const limit = this.options.gracefulShutdownMs ?? 30_000;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => {
        resolve('timeout');
      }, limit);
    });
    try {
      const outcome = await Promise.race([
        Promise.all(this.controllers.map((c) => c.stop())).then(() => 'stopped' as const),
        timedOut,
      ]);
      if (outcome === 'timeout')
        this.log.warn('reconciles still running after the graceful shutdown period', { limit });
    } catch (err) {
      this.log.error('stopping controllers failed', { error: errorMessage(err) });
    } finally {
      clearTimeout(timer);
    }
  }
}
