// The operator's HTTP endpoints: /metrics for Prometheus, /healthz (liveness) and /readyz
// (readiness) for the kubelet. Each probe runs named checks and answers 200 when all pass, 500
// otherwise, listing every check the way kube-apiserver does ("[+]informers ok").

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Logger } from 'winston';
import { errorMessage } from '../runtime/errors.js';
import type { CheckResult } from '../runtime/metrics.js';

export interface HealthCheck {
  name: string;
  check(): CheckResult | Promise<CheckResult>;
}

export interface ObservabilityServerOptions {
  port: number;
  /** Defaults to all interfaces: the kubelet and Prometheus reach the pod IP. */
  host?: string;
  registry: Registry;
  healthz: HealthCheck[];
  readyz: HealthCheck[];
  logger: Logger;
}

async function runChecks(checks: HealthCheck[]): Promise<{ ok: boolean; body: string }> {
  const lines: string[] = [];
  let ok = true;
  for (const probe of checks) {
    let problem: CheckResult;
    try {
      problem = await probe.check();
    } catch (err) {
      problem = errorMessage(err);
    }
    if (problem === undefined) {
      lines.push(`[+]${probe.name} ok`);
    } else {
      ok = false;
      lines.push(`[-]${probe.name} failed: ${problem}`);
    }
  }
  lines.push(ok ? 'ok' : 'failed');
  return { ok, body: `${lines.join('\n')}\n` };
}

export class ObservabilityServer {
  private readonly server: Server;

  constructor(private readonly options: ObservabilityServerOptions) {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        options.logger.error('observability endpoint failed', { path: req.url, error: err });
        if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' });
        res.end('internal error\n');
      });
    });
  }

  /** Listens and resolves with the bound port (useful with port 0). */
  async start(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port, this.options.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    return (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    if (!this.server.listening) return;
    const closed = new Promise<void>((resolve, reject) => {
      this.server.close((err) => {
        if (err === undefined) resolve();
        else reject(err);
      });
    });
    // Scrapers keep connections alive; close() alone would wait for them.
    this.server.closeAllConnections();
    await closed;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const probes: Record<string, HealthCheck[]> = {
      '/healthz': this.options.healthz,
      '/readyz': this.options.readyz,
    };
    const known = path === '/metrics' || path in probes;
    if (!known) {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('not found\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'Content-Type': 'text/plain', Allow: 'GET, HEAD' });
      res.end('method not allowed\n');
      return;
    }
    if (path === '/metrics') {
      const text = await this.options.registry.metrics();
      res.writeHead(200, { 'Content-Type': this.options.registry.contentType });
      res.end(text);
      return;
    }
    const { ok, body } = await runChecks(probes[path] ?? []);
    res.writeHead(ok ? 200 : 500, { 'Content-Type': 'text/plain; charset=utf-8' });
    res.end(body);
  }
}
