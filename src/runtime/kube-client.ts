import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import type * as https from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';
import { Agent, fetch, type Dispatcher } from 'undici';
import type { KubeList, KubeObject, Status, WatchEventType } from '../api/kubernetes.js';
import { ApiError, isNotFound, TerminalError } from './errors.js';
import { apiVersionOf, collectionPath, objectPath, resources, type ResourceType } from './resources.js';
import { currentTrace } from './trace.js';

export type Verb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete';

/** Called once per finished request; the metrics and the benchmarks count API traffic here. */
export type RequestObserver = (verb: Verb, resource: string, statusCode: number, seconds: number) => void;

export interface ListOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Page size; pages are followed until the list is complete. */
  limit?: number;
  /** Aborts the LIST (an informer bounds its LIST with a timeout). */
  signal?: AbortSignal;
}

export interface WatchOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  resourceVersion: string;
  timeoutSeconds?: number;
}

export type WatchHandler<T> = (type: WatchEventType, object: T | Status) => void;

export interface DeleteOptions {
  namespace?: string;
  propagationPolicy?: 'Foreground' | 'Background' | 'Orphan';
  preconditions?: { uid?: string; resourceVersion?: string };
}

interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
  signal?: AbortSignal;
  /** The answer as text, not JSON (a pod's log). */
  text?: boolean;
}

const JSON_CONTENT = 'application/json';
const MERGE_PATCH = 'application/merge-patch+json';
const APPLY_PATCH = 'application/apply-patch+yaml';

/** How long the credentials read from the kubeconfig are reused before they are read again. */
const CREDENTIAL_TTL_MS = 60_000;

/**
 * A small typed REST client for the Kubernetes API.
 *
 * It takes its server, TLS material and credentials from client-node's KubeConfig, but keeps one
 * connection pool for the process: client-node 2.x builds a new undici Agent (and so a new TLS
 * handshake) for every request. Credentials are re-read periodically so that rotated service
 * account tokens and exec plugins keep working.
 */
export class KubeClient {
  private readonly server: string;
  private readonly dispatcher: Dispatcher;
  private readonly watchDispatcher: Dispatcher;
  private headers: Record<string, string> = {};
  private headersReadAt = 0;

  private constructor(
    private readonly kubeConfig: KubeConfig,
    tls: https.RequestOptions,
    private readonly observe: RequestObserver | undefined,
    private readonly userAgent: string,
  ) {
    const cluster = kubeConfig.getCurrentCluster();
    if (cluster === null) {
      throw new Error('the kubeconfig has no current cluster');
    }
    this.server = cluster.server.replace(/\/+$/, '');
    this.dispatcher = new Agent({
      connect: {
        ca: tls.ca,
        cert: tls.cert,
        key: tls.key,
        rejectUnauthorized: tls.rejectUnauthorized,
        servername: tls.servername,
      },
      keepAliveTimeout: 30_000,
      connections: 32,
    });
    // A quiet watch sends nothing for minutes: undici's 5-minute body timeout would cut it with an
    // error. Watches are bounded by the server's timeoutSeconds and the informer's watchdog instead.
    this.watchDispatcher = this.dispatcher.compose(
      (dispatch) => (options, handler) => dispatch({ ...options, bodyTimeout: 0 }, handler),
    );
  }

  static async create(
    kubeConfig: KubeConfig,
    options: { observe?: RequestObserver; userAgent?: string } = {},
  ): Promise<KubeClient> {
    const tls: https.RequestOptions = {};
    await kubeConfig.applyToHTTPSOptions(tls);
    return new KubeClient(kubeConfig, tls, options.observe, options.userAgent ?? 'snapback');
  }

  /** Loads the kubeconfig the way kubectl does: $KUBECONFIG, ~/.kube/config, or in-cluster. */
  static async fromDefault(
    options: { observe?: RequestObserver; userAgent?: string } = {},
  ): Promise<KubeClient> {
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromDefault();
    return KubeClient.create(kubeConfig, options);
  }

  get config(): KubeConfig {
    return this.kubeConfig;
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }

  async get<T extends KubeObject>(
    rt: ResourceType<T>,
    name: string,
    namespace?: string,
  ): Promise<T | undefined> {
    // An empty name would make the path a collection's: the server would answer a LIST.
    if (name === '') throw new TerminalError(`get ${rt.kind}: the name is empty`);
    try {
      return await this.request<T>('get', rt, 'GET', objectPath(rt, name, namespace));
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** The last `tailLines` lines of a pod's container's log; undefined when the pod is gone. */
  async podLog(
    name: string,
    namespace: string,
    options: { container: string; tailLines: number },
  ): Promise<string | undefined> {
    try {
      const path = objectPath(resources.pods, name, namespace, 'log');
      // Counted apart from the pods' own reads: RBAC grants the subresource apart.
      return await this.request<string>('get', { ...resources.pods, plural: 'pods/log' }, 'GET', path, {
        query: { container: options.container, tailLines: options.tailLines },
        text: true,
      });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** Lists every page and returns the items with the list's resourceVersion. */
  async list<T extends KubeObject>(
    rt: ResourceType<T>,
    options: ListOptions = {},
  ): Promise<{ items: T[]; resourceVersion: string }> {
    const items: T[] = [];
    let continueToken: string | undefined;
    let resourceVersion = '';
    do {
      const page = await this.request<KubeList<T>>('list', rt, 'GET', collectionPath(rt, options.namespace), {
        query: {
          labelSelector: options.labelSelector,
          fieldSelector: options.fieldSelector,
          limit: options.limit ?? 500,
          continue: continueToken,
        },
        signal: options.signal,
      });
      for (const item of page.items) items.push(item);
      resourceVersion = page.metadata.resourceVersion ?? resourceVersion;
      continueToken = page.metadata.continue === '' ? undefined : page.metadata.continue;
    } while (continueToken !== undefined);
    return { items, resourceVersion };
  }

  async create<T extends KubeObject>(
    rt: ResourceType<T>,
    object: T,
    fieldManager = this.userAgent,
  ): Promise<T> {
    const body = { ...object, apiVersion: apiVersionOf(rt), kind: rt.kind };
    return this.request<T>('create', rt, 'POST', collectionPath(rt, object.metadata.namespace), {
      body,
      query: { fieldManager },
    });
  }

  /**
   * JSON merge patch (RFC 7386). Include metadata.resourceVersion in the patch for optimistic
   * concurrency: the server then answers 409 Conflict if the object changed since it was read.
   */
  async mergePatch<T extends KubeObject>(
    rt: ResourceType<T>,
    name: string,
    patch: object,
    options: { namespace?: string; subresource?: 'status'; fieldManager?: string } = {},
  ): Promise<T> {
    return this.request<T>(
      'patch',
      rt,
      'PATCH',
      objectPath(rt, name, options.namespace, options.subresource),
      {
        body: patch,
        contentType: MERGE_PATCH,
        query: { fieldManager: options.fieldManager ?? this.userAgent },
      },
    );
  }

  /** Server-side apply: the server merges the fields this manager owns. */
  async apply<T extends KubeObject>(
    rt: ResourceType<T>,
    object: T,
    options: { fieldManager?: string; force?: boolean; subresource?: 'status' } = {},
  ): Promise<T> {
    const name = object.metadata.name;
    if (name === undefined) throw new Error(`apply ${rt.kind}: metadata.name is required`);
    const body = { ...object, apiVersion: apiVersionOf(rt), kind: rt.kind };
    return this.request<T>(
      'patch',
      rt,
      'PATCH',
      objectPath(rt, name, object.metadata.namespace, options.subresource),
      {
        body,
        contentType: APPLY_PATCH,
        query: { fieldManager: options.fieldManager ?? this.userAgent, force: options.force ?? true },
      },
    );
  }

  /** Full replacement (PUT); the object's resourceVersion makes it conditional. */
  async replace<T extends KubeObject>(rt: ResourceType<T>, object: T, subresource?: 'status'): Promise<T> {
    const name = object.metadata.name;
    if (name === undefined) throw new Error(`replace ${rt.kind}: metadata.name is required`);
    const body = { ...object, apiVersion: apiVersionOf(rt), kind: rt.kind };
    return this.request<T>(
      'update',
      rt,
      'PUT',
      objectPath(rt, name, object.metadata.namespace, subresource),
      {
        body,
      },
    );
  }

  /** Deletes the object; false when it was already gone. */
  async delete(rt: ResourceType, name: string, options: DeleteOptions = {}): Promise<boolean> {
    try {
      await this.request<unknown>('delete', rt, 'DELETE', objectPath(rt, name, options.namespace), {
        body: {
          apiVersion: 'v1',
          kind: 'DeleteOptions',
          propagationPolicy: options.propagationPolicy,
          preconditions: options.preconditions,
        },
      });
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  /**
   * Streams watch events until the server closes the watch (resolves) or it fails (rejects;
   * an expired resourceVersion arrives as an ERROR event carrying a 410 Status, which the
   * caller turns into a relist). Aborting the signal ends it quietly.
   */
  async watch<T extends KubeObject>(
    rt: ResourceType<T>,
    options: WatchOptions,
    onEvent: WatchHandler<T>,
    signal: AbortSignal,
  ): Promise<void> {
    const started = performance.now();
    const url = this.url(collectionPath(rt, options.namespace), {
      watch: true,
      allowWatchBookmarks: true,
      resourceVersion: options.resourceVersion,
      labelSelector: options.labelSelector,
      fieldSelector: options.fieldSelector,
      timeoutSeconds: options.timeoutSeconds,
    });
    let input: Readable | undefined;
    // Counted once the server answers (a watch may then run for many minutes), or when it fails.
    let observed = false;
    const observe = (statusCode: number): void => {
      if (observed) return;
      observed = true;
      this.observe?.('watch', rt.plural, statusCode, (performance.now() - started) / 1000);
    };
    try {
      const response = await fetch(url, {
        method: 'GET',
        headers: await this.requestHeaders(undefined),
        dispatcher: this.watchDispatcher,
        signal,
      });
      observe(response.status);
      if (!response.ok || response.body === null) {
        throw this.errorFrom(response.status, await response.text());
      }
      input = Readable.fromWeb(response.body);
      const lines = createInterface({ input, crlfDelay: Infinity });
      for await (const line of lines) {
        if (line.trim() === '') continue;
        const event = JSON.parse(line) as { type: WatchEventType; object: T | Status };
        onEvent(event.type, event.object);
      }
    } catch (err) {
      if (signal.aborted) return;
      throw err;
    } finally {
      // When onEvent throws, nobody reads the stream any more: close it now, or the caller's
      // later abort makes it emit an error event that no one listens to (an uncaught exception).
      input?.destroy();
      observe(0);
    }
  }

  private url(path: string, query: RequestOptions['query'] = {}): string {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      if (value !== undefined) params.set(key, String(value));
    }
    const search = params.toString();
    return `${this.server}${path}${search === '' ? '' : `?${search}`}`;
  }

  private async requestHeaders(contentType: string | undefined): Promise<Record<string, string>> {
    const now = Date.now();
    if (now - this.headersReadAt > CREDENTIAL_TTL_MS) {
      const options: https.RequestOptions = {};
      await this.kubeConfig.applyToHTTPSOptions(options);
      const headers: Record<string, string> = {};
      for (const [key, value] of Object.entries(options.headers ?? {})) {
        if (value !== undefined) headers[key] = String(value);
      }
      this.headers = headers;
      this.headersReadAt = now;
    }
    const headers: Record<string, string> = {
      ...this.headers,
      Accept: JSON_CONTENT,
      'User-Agent': this.userAgent,
    };
    if (contentType !== undefined) headers['Content-Type'] = contentType;
    return headers;
  }

  private async request<R>(
    verb: Verb,
    rt: ResourceType,
    method: string,
    path: string,
    options: RequestOptions = {},
  ): Promise<R> {
    const started = performance.now();
    let statusCode = 0;
    try {
      const hasBody = options.body !== undefined;
      const response = await fetch(this.url(path, options.query), {
        method,
        headers: await this.requestHeaders(hasBody ? (options.contentType ?? JSON_CONTENT) : undefined),
        body: hasBody ? JSON.stringify(options.body) : undefined,
        dispatcher: this.dispatcher,
        signal: options.signal,
      });
      statusCode = response.status;
      const text = await response.text();
      if (!response.ok) throw this.errorFrom(response.status, text);
      if (options.text === true) return text as R;
      return (text === '' ? undefined : JSON.parse(text)) as R;
    } finally {
      const seconds = (performance.now() - started) / 1000;
      this.observe?.(verb, rt.plural, statusCode, seconds);
      const trace = currentTrace();
      if (trace !== undefined) trace.apiMs += seconds * 1000;
    }
  }

  private errorFrom(statusCode: number, text: string): ApiError {
    let status: Status | undefined;
    try {
      status = JSON.parse(text) as Status;
    } catch {
      status = undefined;
    }
    const message = status?.message ?? (text === '' ? `HTTP ${statusCode}` : text.slice(0, 500));
    return new ApiError(statusCode, status?.reason ?? '', message, status);
  }
}
