// The Grafana dashboard of the Helm chart queries only metrics the operator really registers,
// through the dashboard's data source variable.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { Registry } from 'prom-client';
import type { Backup, BackupLocation, BackupSchedule, Restore } from '../../../src/api/generated/types.js';
import type { Cache } from '../../../src/runtime/cache.js';
import { createMetrics } from '../../../src/observability/metrics.js';
import { registerOperatorMetrics } from '../../../src/observability/operator-metrics.js';

interface Panel {
  title: string;
  datasource: { uid: string };
  targets: { expr: string; datasource: { uid: string } }[];
}

const dashboard = JSON.parse(readFileSync('charts/snapback/dashboards/snapback.json', 'utf8')) as {
  panels: Panel[];
};

function emptyCache<T>(): Cache<T> {
  return { get: () => undefined, list: () => [], byIndex: () => [], indexValues: () => [] };
}

async function registeredNames(): Promise<Set<string>> {
  const registry = new Registry();
  createMetrics(registry);
  registerOperatorMetrics(registry, {
    restores: emptyCache<Restore>(),
    backups: emptyCache<Backup>(),
    locations: emptyCache<BackupLocation>(),
    schedules: emptyCache<BackupSchedule>(),
  });
  return new Set((await registry.getMetricsAsJSON()).map((metric) => metric.name));
}

describe('the Grafana dashboard', () => {
  it('queries only metrics the operator registers', async () => {
    const names = await registeredNames();
    expect(dashboard.panels.length).toBeGreaterThanOrEqual(8);
    for (const panel of dashboard.panels) {
      for (const { expr } of panel.targets) {
        const used = [...expr.matchAll(/\bsnapback_\w+/g)].map((m) =>
          m[0].replace(/_(bucket|sum|count)$/, ''),
        );
        expect({ panel: panel.title, used: used.length > 0 }).toEqual({ panel: panel.title, used: true });
        for (const name of used)
          expect({ panel: panel.title, name, registered: names.has(name) }).toMatchObject({
            registered: true,
          });
      }
    }
  });

  it('reads from the data source the user picks', () => {
    for (const panel of dashboard.panels) {
      expect(panel.datasource.uid).toBe('${datasource}');
      for (const target of panel.targets) expect(target.datasource.uid).toBe('${datasource}');
    }
  });
});
