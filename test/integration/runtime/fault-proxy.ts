// An HTTP proxy in front of the real API server that injects the faults a long-running watch
// meets in production: a connection cut, a stream that goes silent, a resourceVersion the server
// no longer has. Every other answer is the real server's: the proxy forwards, cuts or stalls. The
// expired resourceVersion is answered by the proxy itself, with the ERROR event a kube-apiserver
// sends for one (410 Expired): whether the real server still serves an old resourceVersion
// depends on its watch cache and on etcd's compaction, which made the test pass or fail by timing.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Agent, request, type RequestOptions } from 'node:https';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';

interface Watch {
  downstream: ServerResponse;
  upstream?: IncomingMessage;
  upstreamRequest: ReturnType<typeof request>;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection']);

export class FaultProxy {
  /** Paths (with query) of every watch request forwarded, in order. */
  readonly watchRequests: string[] = [];
  private readonly watches = new Set<Watch>();
  private expiredResourceVersion: string | undefined;

  private readonly server: Server;
  /** http://127.0.0.1:<port>, once listening. */
  url = '';

  private constructor(
    private readonly upstream: URL,
    private readonly upstreamOptions: RequestOptions,
  ) {
    this.server = createServer((req, res) => {
      this.forward(req, res);
    });
  }

  /** Starts a proxy to the cluster of `kubeConfig`, using its credentials upstream. */
  static async start(kubeConfig: KubeConfig): Promise<FaultProxy> {
    const cluster = kubeConfig.getCurrentCluster();
    if (cluster === null) throw new Error('the kubeconfig has no current cluster');
    const tls: RequestOptions = {};
    await kubeConfig.applyToHTTPSOptions(tls);
    const agent = new Agent({ keepAlive: true, ca: tls.ca, cert: tls.cert, key: tls.key });
    const proxy = new FaultProxy(new URL(cluster.server), {
      agent,
      headers: tls.headers ?? {},
      rejectUnauthorized: tls.rejectUnauthorized,
    });
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
    const { port } = proxy.server.address() as AddressInfo;
    proxy.url = `http://127.0.0.1:${port}`;
    return proxy;
  }

  /** A kubeconfig that reaches the API server through this proxy (which adds the credentials). */
  kubeConfig(): KubeConfig {
    const config = new KubeConfig();
    config.loadFromOptions({
      // Plain HTTP on loopback: client-node refuses an http:// server unless TLS checks are off.
      clusters: [{ name: 'proxy', server: this.url, skipTLSVerify: true }],
      users: [{ name: 'proxy' }],
      contexts: [{ name: 'proxy', cluster: 'proxy', user: 'proxy' }],
      currentContext: 'proxy',
    });
    return config;
  }

  /** The next watch request asks for this (long compacted) resourceVersion instead of its own, and gets 410. */
  expireNextWatch(resourceVersion = '1'): void {
    this.expiredResourceVersion = resourceVersion;
  }

  /** Cuts the connections of every running watch, as a node or load balancer going away does. */
  cutWatches(): number {
    const count = this.watches.size;
    for (const watch of this.watches) {
      watch.downstream.socket?.destroy();
      watch.upstreamRequest.destroy();
    }
    this.watches.clear();
    return count;
  }

  /** Stops passing data on every running watch; the connections stay open, silent. */
  stallWatches(): number {
    const count = this.watches.size;
    for (const watch of this.watches) {
      watch.upstream?.unpipe(watch.downstream);
      watch.upstream?.pause();
    }
    this.watches.clear();
    return count;
  }

  get runningWatches(): number {
    return this.watches.size;
  }

  async close(): Promise<void> {
    this.cutWatches();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => {
      this.server.close(() => {
        resolve();
      });
    });
  }

  private forward(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', this.upstream);
    const isWatch = url.searchParams.get('watch') === 'true';
    const expired = isWatch ? this.expiredResourceVersion : undefined;
    if (expired !== undefined) {
      url.searchParams.set('resourceVersion', expired);
      this.expiredResourceVersion = undefined;
    }
    if (isWatch) this.watchRequests.push(`${url.pathname}${url.search}`);
    if (expired !== undefined) {
      const status = {
        kind: 'Status',
        apiVersion: 'v1',
        status: 'Failure',
        message: `too old resource version: ${expired}`,
        reason: 'Expired',
        code: 410,
      };
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(`${JSON.stringify({ type: 'ERROR', object: status })}\n`);
      return;
    }
    const headers: Record<string, string | string[] | number> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (value !== undefined && !HOP_BY_HOP.has(name) && name !== 'host') headers[name] = value;
    }
    for (const [name, value] of Object.entries(this.upstreamOptions.headers ?? {})) {
      if (value !== undefined) headers[name] = value;
    }
    const upstreamRequest = request(
      url,
      { ...this.upstreamOptions, method: req.method, headers },
      (upstreamResponse) => {
        const responseHeaders: Record<string, string | string[]> = {};
        for (const [name, value] of Object.entries(upstreamResponse.headers)) {
          if (value !== undefined && !HOP_BY_HOP.has(name)) responseHeaders[name] = value;
        }
        res.writeHead(upstreamResponse.statusCode ?? 502, responseHeaders);
        // Watch events must reach the client as they come.
        res.flushHeaders();
        if (watch !== undefined) watch.upstream = upstreamResponse;
        upstreamResponse.pipe(res);
        upstreamResponse.on('error', () => res.destroy());
      },
    );
    const watch: Watch | undefined = isWatch ? { downstream: res, upstreamRequest } : undefined;
    if (watch !== undefined) {
      this.watches.add(watch);
      res.on('close', () => {
        this.watches.delete(watch);
        upstreamRequest.destroy();
      });
    }
    upstreamRequest.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.destroy();
    });
    req.pipe(upstreamRequest);
  }
}
