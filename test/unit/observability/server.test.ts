import { afterEach, describe, expect, it } from '@jest/globals';
import { Registry } from 'prom-client';
import winston from 'winston';
import { createMetrics } from '../../../src/observability/metrics.js';
import { ObservabilityServer } from '../../../src/observability/server.js';
import type { CheckResult } from '../../../src/runtime/metrics.js';

describe('ObservabilityServer', () => {
  let server: ObservabilityServer | undefined;

  afterEach(async () => {
    await server?.stop();
    server = undefined;
  });

  async function serve(ready: () => CheckResult): Promise<string> {
    const metrics = createMetrics(new Registry());
    metrics.api.observe('get', 'restores', 200, 0.02);
    metrics.api.observe('watch', 'restores', 200, 300);
    metrics.leaderElection.leader.set(1);
    server = new ObservabilityServer({
      port: 0,
      host: '127.0.0.1',
      registry: metrics.registry,
      healthz: [{ name: 'informers', check: () => undefined }],
      readyz: [
        { name: 'informers-synced', check: ready },
        { name: 'async', check: () => Promise.resolve(undefined) },
      ],
      logger: winston.createLogger({ silent: true }),
    });
    const port = await server.start();
    return `http://127.0.0.1:${port}`;
  }

  it('serves the metrics of its registry', async () => {
    const base = await serve(() => undefined);
    const response = await fetch(`${base}/metrics`);
    expect(response.status).toBe(200);
    const text = await response.text();
    expect(text).toContain('snapback_api_requests_total{verb="get",resource="restores",code="200"} 1');
    expect(text).toContain('snapback_api_requests_total{verb="watch",resource="restores",code="200"} 1');
    expect(text).toContain('snapback_api_request_duration_seconds_count{verb="get",resource="restores"} 1');
    expect(text).not.toContain('snapback_api_request_duration_seconds_count{verb="watch"');
    expect(text).toContain('snapback_leader 1');
    expect(text).toContain('process_cpu_user_seconds_total');
  });

  it('answers the probes with their checks, 500 and the reason when one fails', async () => {
    let problem: CheckResult = 'informers not synced: restores';
    const base = await serve(() => problem);
    const notReady = await fetch(`${base}/readyz`);
    expect(notReady.status).toBe(500);
    expect(await notReady.text()).toBe(
      '[-]informers-synced failed: informers not synced: restores\n[+]async ok\nfailed\n',
    );
    problem = undefined;
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    const healthy = await fetch(`${base}/healthz`);
    expect(healthy.status).toBe(200);
    expect(await healthy.text()).toBe('[+]informers ok\nok\n');
  });

  it('turns a check that throws into a failure', async () => {
    const base = await serve(() => {
      throw new Error('check exploded');
    });
    const response = await fetch(`${base}/readyz`);
    expect(response.status).toBe(500);
    expect(await response.text()).toContain('[-]informers-synced failed: check exploded');
  });

  it('answers 404 to unknown paths and 405 to other methods', async () => {
    const base = await serve(() => undefined);
    expect((await fetch(`${base}/nope`)).status).toBe(404);
    expect((await fetch(`${base}/metrics`, { method: 'POST' })).status).toBe(405);
  });
});
