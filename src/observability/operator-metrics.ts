// Domain metrics: restores and backups by phase (read from the caches at scrape time, so they are
// never out of step with what the operator sees) and how long each restore phase takes.

import { Gauge, Histogram, type Registry } from 'prom-client';
import type { Backup, Restore, RestorePhase } from '../api/generated/types.js';
import type { Cache } from '../controllers/shared/cache.js';
import type { RestoreObserver } from '../controllers/restore/reconciler.js';

const PHASE_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

function countByPhase(items: { status?: { phase?: string } }[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const item of items) {
    const phase = item.status?.phase ?? 'New';
    counts.set(phase, (counts.get(phase) ?? 0) + 1);
  }
  return counts;
}

export function registerOperatorMetrics(
  registry: Registry,
  caches: { restores: Cache<Restore>; backups: Cache<Backup> },
): RestoreObserver {
  const registers = [registry];
  const phaseDuration = new Histogram({
    name: 'snapback_restore_phase_duration_seconds',
    help: 'How long restores spent in each phase.',
    labelNames: ['phase'] as const,
    buckets: PHASE_BUCKETS,
    registers,
  });
  const gaugeOf = (name: string, help: string, items: () => { status?: { phase?: string } }[]) =>
    new Gauge({
      name,
      help,
      labelNames: ['phase'] as const,
      registers,
      collect() {
        this.reset();
        for (const [phase, count] of countByPhase(items())) this.set({ phase }, count);
      },
    });
  gaugeOf('snapback_restores', 'Restores by phase (New: not yet seen by the operator).', () =>
    caches.restores.list(),
  );
  gaugeOf('snapback_backups', 'Backups by phase (New: not yet seen by the operator).', () =>
    caches.backups.list(),
  );
  return {
    phaseFinished(phase: RestorePhase, seconds: number) {
      phaseDuration.observe({ phase }, seconds);
    },
  };
}
