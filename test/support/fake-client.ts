// An in-memory API server behind the ObjectClient seam, for unit tests of reconcilers and their
// steps (what controller-runtime's fake client is to Go operators). It keeps the semantics steps
// rely on: 404 and 409 as the real server answers them, resourceVersion preconditions, status
// kept apart from the rest of the object, generation, finalizers holding a deleted object back,
// and a write that changes nothing keeping its resourceVersion (OwnWrites depends on that).
//
// What it does not do: watches, generateName, defaulting or schema validation, admission,
// garbage collection of dependents (propagationPolicy is ignored), server-side apply, paging
// (ListOptions.limit is ignored). Every resource is treated as having a status subresource, as
// all the ones with a status the operator writes do.

import { constants } from 'node:os';
import { isDeepStrictEqual } from 'node:util';
import { errors } from 'undici';
import type { KubeObject, ObjectMeta, Status } from '../../src/api/kubernetes.js';
import type { Cache, Index } from '../../src/runtime/cache.js';
import type { ObjectClient } from '../../src/runtime/client.js';
import { ApiError } from '../../src/runtime/errors.js';
import { ObjectStore } from '../../src/runtime/informer.js';
import type { DeleteOptions, ListOptions, Verb } from '../../src/runtime/kube-client.js';
import { apiVersionOf, resources, type ResourceType } from '../../src/runtime/resources.js';

/** The verbs the seam sends, as KubeClient names them for metrics (replace is 'update'). */
export type FakeVerb = Exclude<Verb, 'watch'>;

/** One request the fake received, in the order received. Failed requests are recorded too. */
export interface FakeCall {
  verb: FakeVerb;
  plural: string;
  name?: string;
  namespace?: string;
  subresource?: 'status';
}

export interface FakeClientOptions {
  /** The clock for creationTimestamp and deletionTimestamp. Default: the wall clock. */
  now?: () => Date;
}

export interface FakeCacheOptions<T> {
  /** The informer's selection, as ListOptions takes it. */
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  indexes?: readonly Index<T>[];
}

/** An object as the fake keeps it: JSON, so that status and spec can be told apart generically. */
interface Stored {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  status?: unknown;
  [field: string]: unknown;
}

interface Failure {
  verb: FakeVerb;
  plural: string;
  error: unknown;
  remaining: number;
}

export class FakeClient implements ObjectClient {
  /** Every request, for assertions such as "no GET on the happy path". */
  readonly calls: FakeCall[] = [];
  private readonly now: () => Date;
  /** resource (plural.group) → key (namespace/name, or name) → object */
  private readonly resources = new Map<string, Map<string, Stored>>();
  private readonly failures: Failure[] = [];
  /** The etcd revision: one counter for all resources, as resourceVersions are. */
  private revision = 0;
  private uids = 0;
  /** namespace/pod -> its container's log, as the kubelet would serve it. */
  private readonly logs = new Map<string, string>();

  constructor(options: FakeClientOptions = {}) {
    this.now = options.now ?? ((): Date => new Date());
  }

  get<T extends KubeObject>(rt: ResourceType<T>, name: string, namespace?: string): Promise<T | undefined> {
    return settle(() => {
      const key = keyOf(rt, name, namespace);
      this.receive({ verb: 'get', plural: rt.plural, name, namespace });
      const stored = this.bucket(rt).get(key);
      return stored === undefined ? undefined : out(rt, stored);
    });
  }

  /** The last `tailLines` lines of a pod's log (setLog); undefined when the pod does not exist. */
  podLog(
    name: string,
    namespace: string,
    options: { container: string; tailLines: number },
  ): Promise<string | undefined> {
    return settle(() => {
      this.receive({ verb: 'get', plural: 'pods/log', name, namespace });
      if (this.bucket(resources.pods).get(keyOf(resources.pods, name, namespace)) === undefined)
        return undefined;
      const lines = (this.logs.get(`${namespace}/${name}`) ?? '').split('\n').filter((line) => line !== '');
      return lines
        .slice(-options.tailLines)
        .map((line) => `${line}\n`)
        .join('');
    });
  }

  /** What a pod's container has written to its log so far. */
  setLog(namespace: string, name: string, text: string): void {
    this.logs.set(`${namespace}/${name}`, text);
  }

  /**
   * Label selectors: `a=b`, `a==b`, `a!=b`, `a`, `!a`, `a in (x,y)`, `a notin (x,y)`, joined by
   * commas (AND). Field selectors: `path=value`, `path!=value` on any dotted path of the object
   * (the real server only accepts a few fields per resource; the fake does not check which).
   */
  list<T extends KubeObject>(
    rt: ResourceType<T>,
    options: ListOptions = {},
  ): Promise<{ items: T[]; resourceVersion: string }> {
    return settle(() => {
      options.signal?.throwIfAborted();
      this.receive({ verb: 'list', plural: rt.plural, namespace: options.namespace });
      return {
        items: this.select(rt, options).map((obj) => out(rt, obj)),
        resourceVersion: String(this.revision),
      };
    });
  }

  create<T extends KubeObject>(rt: ResourceType<T>, object: T): Promise<T> {
    return settle(() => {
      const { name, namespace, generateName } = object.metadata;
      if (generateName !== undefined && name === undefined)
        throw new Error('FakeClient does not implement generateName');
      const key = keyOf(rt, name ?? '', namespace);
      this.receive({ verb: 'create', plural: rt.plural, name, namespace });
      if (name === undefined || name === '')
        throw invalid(rt, '', 'metadata.name: Required value: name or generateName is required');
      const bucket = this.bucket(rt);
      if (bucket.has(key)) throw resourceError(409, 'AlreadyExists', rt, name, 'already exists');
      const body = wire(object);
      if ((body.metadata.resourceVersion ?? '') !== '') {
        // The real server refuses this too; it usually means a fixture was created twice.
        throw apiError(500, 'InternalError', 'resourceVersion should not be set on objects to be created');
      }
      const { status: _dropped, ...rest } = body;
      const stored: Stored = {
        ...rest,
        apiVersion: apiVersionOf(rt),
        kind: rt.kind,
        metadata: normalizeMeta(rt, {
          ...body.metadata,
          uid: this.nextUid(),
          resourceVersion: this.nextRevision(),
          creationTimestamp: this.timestamp(),
          generation: 1,
          deletionTimestamp: undefined,
        }),
      };
      bucket.set(key, stored);
      return out(rt, stored);
    });
  }

  /** PUT: conditional on metadata.resourceVersion when it is set. */
  replace<T extends KubeObject>(rt: ResourceType<T>, object: T, subresource?: 'status'): Promise<T> {
    return settle(() => {
      const { name, namespace } = object.metadata;
      if (name === undefined) throw new Error(`replace ${rt.kind}: metadata.name is required`);
      const key = keyOf(rt, name, namespace);
      this.receive({ verb: 'update', plural: rt.plural, name, namespace, subresource });
      const stored = this.bucket(rt).get(key);
      if (stored === undefined) throw resourceError(404, 'NotFound', rt, name, 'not found');
      const body = wire(object);
      const expected = body.metadata.resourceVersion ?? '';
      if (expected !== '' && expected !== stored.metadata.resourceVersion) throw conflict(rt, name);
      return out(rt, this.update(rt, key, stored, body, subresource));
    });
  }

  /** RFC 7386; a metadata.resourceVersion in the patch makes it conditional. */
  mergePatch<T extends KubeObject>(
    rt: ResourceType<T>,
    name: string,
    patch: object,
    options: { namespace?: string; subresource?: 'status'; fieldManager?: string } = {},
  ): Promise<T> {
    return settle(() => {
      const { namespace, subresource } = options;
      const key = keyOf(rt, name, namespace);
      this.receive({ verb: 'patch', plural: rt.plural, name, namespace, subresource });
      const stored = this.bucket(rt).get(key);
      if (stored === undefined) throw resourceError(404, 'NotFound', rt, name, 'not found');
      const body: unknown = wire(patch);
      if (!isRecord(body)) throw apiError(400, 'BadRequest', 'a merge patch must be a JSON object');
      const expected = isRecord(body.metadata) ? body.metadata.resourceVersion : undefined;
      if (typeof expected === 'string' && expected !== '' && expected !== stored.metadata.resourceVersion)
        throw conflict(rt, name);
      const merged = applyMergePatch(copy(stored), body) as Stored;
      if (!isRecord(merged.metadata)) merged.metadata = {};
      return out(rt, this.update(rt, key, stored, merged, subresource));
    });
  }

  /** False when already gone; an object with finalizers is only marked for deletion. */
  delete(rt: ResourceType, name: string, options: DeleteOptions = {}): Promise<boolean> {
    return settle(() => {
      const key = keyOf(rt, name, options.namespace);
      this.receive({ verb: 'delete', plural: rt.plural, name, namespace: options.namespace });
      const bucket = this.bucket(rt);
      const stored = bucket.get(key);
      if (stored === undefined) return false;
      const { uid, resourceVersion } = options.preconditions ?? {};
      if (uid !== undefined && uid !== stored.metadata.uid) {
        throw resourceError(
          409,
          'Conflict',
          rt,
          name,
          `Precondition failed: UID in precondition: ${uid}, UID in object meta: ${stored.metadata.uid ?? ''}`,
          false,
        );
      }
      if (resourceVersion !== undefined && resourceVersion !== stored.metadata.resourceVersion) {
        throw resourceError(
          409,
          'Conflict',
          rt,
          name,
          `Precondition failed: ResourceVersion in precondition: ${resourceVersion}, ` +
            `ResourceVersion in object meta: ${stored.metadata.resourceVersion ?? ''}`,
          false,
        );
      }
      if ((stored.metadata.finalizers ?? []).length === 0) {
        bucket.delete(key);
        this.nextRevision();
        return true;
      }
      // Already being deleted: a second DELETE changes nothing.
      if (stored.metadata.deletionTimestamp !== undefined) return true;
      const marked = copy(stored);
      marked.metadata.deletionTimestamp = this.timestamp();
      // The API server bumps generation when it marks an object for deletion.
      if ((marked.metadata.generation ?? 0) > 0)
        marked.metadata.generation = (marked.metadata.generation ?? 0) + 1;
      marked.metadata.resourceVersion = this.nextRevision();
      bucket.set(key, marked);
      return true;
    });
  }

  /**
   * Puts an object in as given, status and deletionTimestamp included (no request is recorded).
   * Missing server fields are filled in; a numeric resourceVersion given is kept, and later
   * writes get higher ones. Replaces an object of the same name.
   */
  seed<T extends KubeObject>(rt: ResourceType<T>, object: T): T {
    const body = wire(object);
    const { name, namespace, resourceVersion } = body.metadata;
    if (name === undefined || name === '') throw new Error(`seed ${rt.kind}: metadata.name is required`);
    const key = keyOf(rt, name, namespace);
    if (resourceVersion !== undefined && /^\d+$/.test(resourceVersion))
      this.revision = Math.max(this.revision, Number(resourceVersion));
    const stored: Stored = {
      ...body,
      apiVersion: apiVersionOf(rt),
      kind: rt.kind,
      metadata: normalizeMeta(rt, {
        ...body.metadata,
        uid: body.metadata.uid ?? this.nextUid(),
        resourceVersion: resourceVersion ?? this.nextRevision(),
        creationTimestamp: body.metadata.creationTimestamp ?? this.timestamp(),
        generation: body.metadata.generation ?? 1,
      }),
    };
    this.bucket(rt).set(key, stored);
    return out(rt, stored);
  }

  /** The stored object, without recording a request (for assertions). */
  peek<T extends KubeObject>(rt: ResourceType<T>, name: string, namespace?: string): T | undefined {
    const stored = this.bucket(rt).get(keyOf(rt, name, namespace));
    return stored === undefined ? undefined : out(rt, stored);
  }

  /** Every stored object of the resource, by key, without recording a request. */
  objects<T extends KubeObject>(rt: ResourceType<T>): T[] {
    return this.select(rt, {}).map((obj) => out(rt, obj));
  }

  /**
   * The next `times` requests with this verb on this resource throw `error` (after being
   * recorded, and without changing anything). Queued injections are used in order.
   */
  failNext(verb: FakeVerb, plural: string, error: unknown, times = 1): void {
    this.failures.push({ verb, plural, error, remaining: times });
  }

  clearCalls(): void {
    this.calls.length = 0;
  }

  /** A Cache that reads the current objects of the resource, as a synced informer would. */
  cache<T extends KubeObject>(rt: ResourceType<T>, options: FakeCacheOptions<NoInfer<T>> = {}): FakeCache<T> {
    return new FakeCache<T>(() => this.select(rt, options).map((obj) => out(rt, obj)), options.indexes);
  }

  /** The objects of a LIST, sorted by key as etcd returns them. */
  private select(
    rt: ResourceType,
    options: Pick<ListOptions, 'namespace' | 'labelSelector' | 'fieldSelector'>,
  ): Stored[] {
    const labelsMatch = labelMatcher(options.labelSelector ?? '');
    const fieldsMatch = fieldMatcher(options.fieldSelector ?? '');
    // Like the real client's collectionPath, a namespace means nothing for cluster-scoped resources.
    const namespace = rt.namespaced ? options.namespace : undefined;
    return [...this.bucket(rt)]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, obj]) => obj)
      .filter(
        (obj) =>
          (namespace === undefined || obj.metadata.namespace === namespace) &&
          labelsMatch(obj.metadata.labels ?? {}) &&
          fieldsMatch(obj),
      );
  }

  /** The common path of PUT and PATCH once the request's object is known. */
  private update(
    rt: ResourceType,
    key: string,
    stored: Stored,
    next: Stored,
    subresource: 'status' | undefined,
  ): Stored {
    let candidate: Stored;
    if (subresource === 'status') {
      // The status subresource takes status and nothing else.
      candidate = copy(stored);
      if (next.status === undefined) delete candidate.status;
      else candidate.status = next.status;
    } else {
      const { status: _ignored, ...rest } = next;
      const old = stored.metadata;
      candidate = {
        ...rest,
        apiVersion: apiVersionOf(rt),
        kind: rt.kind,
        // Fields the server owns come from the stored object, whatever the request says.
        metadata: normalizeMeta(rt, {
          ...next.metadata,
          name: old.name,
          namespace: old.namespace,
          uid: old.uid,
          resourceVersion: old.resourceVersion,
          creationTimestamp: old.creationTimestamp,
          deletionTimestamp: old.deletionTimestamp,
          generation: old.generation,
        }),
      };
      if (stored.status !== undefined) candidate.status = stored.status;
      if (old.deletionTimestamp !== undefined) {
        const added = (candidate.metadata.finalizers ?? []).filter(
          (f) => !(old.finalizers ?? []).includes(f),
        );
        if (added.length > 0) {
          throw invalid(
            rt,
            old.name ?? '',
            `metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, ` +
              `found new finalizers ${JSON.stringify(added)}`,
          );
        }
      }
      if (!isDeepStrictEqual(specOf(candidate), specOf(stored)))
        candidate.metadata.generation = (old.generation ?? 0) + 1;
    }
    // A write that changes nothing is not written: the object keeps its resourceVersion.
    if (isDeepStrictEqual(candidate, stored)) return stored;
    candidate.metadata.resourceVersion = this.nextRevision();
    const bucket = this.bucket(rt);
    // The last finalizer gone from an object marked for deletion: the server removes it.
    if (
      candidate.metadata.deletionTimestamp !== undefined &&
      (candidate.metadata.finalizers ?? []).length === 0
    )
      bucket.delete(key);
    else bucket.set(key, candidate);
    return candidate;
  }

  /** Records the request and throws an injected failure meant for it. */
  private receive(call: FakeCall): void {
    const recorded: FakeCall = { verb: call.verb, plural: call.plural };
    if (call.name !== undefined) recorded.name = call.name;
    if (call.namespace !== undefined) recorded.namespace = call.namespace;
    if (call.subresource !== undefined) recorded.subresource = call.subresource;
    this.calls.push(recorded);
    const index = this.failures.findIndex((f) => f.verb === call.verb && f.plural === call.plural);
    const failure = this.failures[index];
    if (failure === undefined) return;
    failure.remaining -= 1;
    if (failure.remaining <= 0) this.failures.splice(index, 1);
    throw failure.error;
  }

  private bucket(rt: ResourceType): Map<string, Stored> {
    const resource = qualified(rt);
    let bucket = this.resources.get(resource);
    if (bucket === undefined) {
      bucket = new Map();
      this.resources.set(resource, bucket);
    }
    return bucket;
  }

  private nextRevision(): string {
    this.revision += 1;
    return String(this.revision);
  }

  private nextUid(): string {
    this.uids += 1;
    return `00000000-0000-4000-8000-${String(this.uids).padStart(12, '0')}`;
  }

  /** RFC 3339 in seconds, as the API server writes timestamps. */
  private timestamp(): string {
    return this.now()
      .toISOString()
      .replace(/\.\d{3}Z$/, 'Z');
  }
}

/**
 * The read side of an informer over a fixed source. Objects are deep-frozen: an informer shares
 * its objects with every reader, so a reconciler that changes one in place has a bug, and here it
 * throws at once. `freeze()` keeps what the cache shows now until `thaw()`, as an informer whose
 * watch has not yet delivered the latest writes.
 */
export class FakeCache<T extends KubeObject> implements Cache<T> {
  private snapshot: ObjectStore<T> | undefined;

  constructor(
    private readonly source: () => T[],
    private readonly indexes: readonly Index<T>[] = [],
  ) {}

  get frozen(): boolean {
    return this.snapshot !== undefined;
  }

  get(key: string): T | undefined {
    return this.store().get(key);
  }

  list(): T[] {
    return this.store().list();
  }

  byIndex(index: Index<T>, value: string): T[] {
    return this.store().byIndex(index, value);
  }

  indexValues(index: Index<T>): string[] {
    return this.store().indexValues(index);
  }

  /** From now on the cache shows the objects as they are now (again, if it was frozen). */
  freeze(): void {
    this.snapshot = this.build();
  }

  thaw(): void {
    this.snapshot = undefined;
  }

  private store(): ObjectStore<T> {
    return this.snapshot ?? this.build();
  }

  // Rebuilt on every read: simple, and tests have few objects.
  private build(): ObjectStore<T> {
    const store = new ObjectStore<T>();
    for (const index of this.indexes) store.addIndex(index);
    for (const obj of this.source()) store.upsert(deepFreeze(obj));
    return store;
  }
}

const DEFAULT_REASONS: Readonly<Record<number, string>> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  405: 'MethodNotAllowed',
  409: 'Conflict',
  410: 'Expired',
  422: 'Invalid',
  429: 'TooManyRequests',
  500: 'InternalError',
  503: 'ServiceUnavailable',
  504: 'Timeout',
};

/** An ApiError as KubeClient makes it from the server's Status answer. */
export function apiError(
  statusCode: number,
  reason = DEFAULT_REASONS[statusCode] ?? '',
  message = `${reason === '' ? 'error' : reason} (HTTP ${statusCode})`,
  details?: Status['details'],
): ApiError {
  const status: Status = { kind: 'Status', status: 'Failure', code: statusCode, reason, message };
  if (details !== undefined) status.details = details;
  return new ApiError(statusCode, reason, message, status);
}

/** What Node reports when the peer resets the connection (errno as libuv gives it). */
export function connectionReset(): NodeJS.ErrnoException {
  return Object.assign(new Error('read ECONNRESET'), {
    code: 'ECONNRESET',
    errno: -constants.errno.ECONNRESET,
    syscall: 'read',
  });
}

/** undici's error for a connection the server closed before answering (e.g. a restarting API server). */
export function socketClosed(): Error {
  return new errors.SocketError('other side closed');
}

/** What undici's fetch (and so KubeClient) throws when the request never got an answer. */
export function fetchFailed(cause: unknown = connectionReset()): TypeError {
  return new TypeError('fetch failed', { cause });
}

// --- internals ------------------------------------------------------------------------------

/** Runs a request's work as the real client does: every failure is a rejected promise. */
function settle<R>(work: () => R): Promise<R> {
  return new Promise<R>((resolve) => {
    resolve(work());
  });
}

function keyOf(rt: ResourceType, name: string, namespace: string | undefined): string {
  if (!rt.namespaced) return name;
  // The real client's objectPath throws the same before sending anything.
  if (namespace === undefined) throw new Error(`${rt.kind} ${name}: a namespace is required`);
  return `${namespace}/${name}`;
}

/** The resource as the server names it in messages: "backups.snapback.dev", "secrets". */
function qualified(rt: ResourceType): string {
  return rt.group === '' ? rt.plural : `${rt.plural}.${rt.group}`;
}

function resourceError(
  statusCode: number,
  reason: string,
  rt: ResourceType,
  name: string,
  what: string,
  prefix = true,
): ApiError {
  const message = prefix ? `${qualified(rt)} "${name}" ${what}` : what;
  return apiError(statusCode, reason, message, { name, kind: rt.plural });
}

function conflict(rt: ResourceType, name: string): ApiError {
  return resourceError(
    409,
    'Conflict',
    rt,
    name,
    `Operation cannot be fulfilled on ${qualified(rt)} "${name}": the object has been modified; ` +
      'please apply your changes to the latest version and try again',
    false,
  );
}

function invalid(rt: ResourceType, name: string, cause: string): ApiError {
  return resourceError(422, 'Invalid', rt, name, `${rt.kind} "${name}" is invalid: ${cause}`, false);
}

/** The request body as the server receives it: JSON, so undefined fields and Dates are gone. */
function wire(value: object): Stored {
  return JSON.parse(JSON.stringify(value)) as Stored;
}

/**
 * A deep copy through JSON, which is all the fake stores. Not structuredClone: under jest that
 * makes objects of another realm, whose prototypes make isDeepStrictEqual see a change in a
 * write that changes nothing.
 */
function copy<V>(value: V): V {
  return JSON.parse(JSON.stringify(value)) as V;
}

/** A copy for the caller; `rt` only carries the object type. */
function out<T extends KubeObject>(_rt: ResourceType<T>, stored: Stored): T {
  return copy(stored) as unknown as T;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** RFC 7386: objects merge, null removes a member, anything else (arrays too) replaces. */
function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (!isRecord(patch)) return patch;
  const result: Record<string, unknown> = isRecord(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) Reflect.deleteProperty(result, key);
    else result[key] = applyMergePatch(result[key], value);
  }
  return result;
}

/** What generation counts: everything but metadata and status. */
function specOf(obj: Stored): Record<string, unknown> {
  const { metadata: _metadata, status: _status, ...rest } = obj;
  return rest;
}

/**
 * Drops undefined fields and the empty lists and maps ObjectMeta omits when serialized, so that
 * objects compare as the server's JSON would; cluster-scoped objects have no namespace.
 */
function normalizeMeta(rt: ResourceType, meta: ObjectMeta): ObjectMeta {
  const result: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(meta)) {
    if (value === undefined) continue;
    if (Array.isArray(value) && value.length === 0) continue;
    if (isRecord(value) && Object.keys(value).length === 0) continue;
    result[key] = value;
  }
  if (!rt.namespaced) Reflect.deleteProperty(result, 'namespace');
  return result;
}

function deepFreeze<V>(value: V): V {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

type LabelTest = (labels: Readonly<Record<string, string>>) => boolean;

const LABEL_KEY = '[A-Za-z0-9][A-Za-z0-9._/-]*';
const LABEL_VALUE = '[A-Za-z0-9._-]*';
const EQUALITY = new RegExp(`^(${LABEL_KEY})\\s*(==|=|!=)\\s*(${LABEL_VALUE})$`);
const SET = new RegExp(`^(${LABEL_KEY})\\s+(in|notin)\\s*\\(([^()]*)\\)$`);
const EXISTS = new RegExp(`^(${LABEL_KEY})$`);
const NOT_EXISTS = new RegExp(`^!\\s*(${LABEL_KEY})$`);

/** A label selector as the API server parses it; a malformed one is a 400, as there. */
function labelMatcher(selector: string): LabelTest {
  const tests = splitRequirements(selector).map(labelRequirement);
  return (labels) => tests.every((test) => test(labels));
}

function labelRequirement(requirement: string): LabelTest {
  const has = (labels: Readonly<Record<string, string>>, key: string): boolean => Object.hasOwn(labels, key);
  let match = EQUALITY.exec(requirement);
  if (match !== null) {
    const [, key = '', op, value = ''] = match;
    // `a!=b` also matches objects without the label a, as in Kubernetes.
    return op === '!='
      ? (labels) => labels[key] !== value
      : (labels) => has(labels, key) && labels[key] === value;
  }
  match = SET.exec(requirement);
  if (match !== null) {
    const [, key = '', op, list = ''] = match;
    const values = list.split(',').map((v) => v.trim());
    if (values.some((v) => !new RegExp(`^${LABEL_VALUE}$`).test(v))) throw badSelector(requirement);
    return op === 'in'
      ? (labels) => has(labels, key) && values.includes(labels[key] ?? '')
      : (labels) => !has(labels, key) || !values.includes(labels[key] ?? '');
  }
  match = EXISTS.exec(requirement);
  if (match !== null) {
    const [, key = ''] = match;
    return (labels) => has(labels, key);
  }
  match = NOT_EXISTS.exec(requirement);
  if (match !== null) {
    const [, key = ''] = match;
    return (labels) => !has(labels, key);
  }
  throw badSelector(requirement);
}

function fieldMatcher(selector: string): (obj: Stored) => boolean {
  const tests = splitRequirements(selector).map((requirement) => {
    const match = /^([A-Za-z0-9._-]+)\s*(==|=|!=)\s*(.*)$/.exec(requirement);
    if (match === null) throw badSelector(requirement);
    const [, path = '', op, value = ''] = match;
    return (obj: Stored): boolean => (fieldValue(obj, path) === value) === (op !== '!=');
  });
  return (obj) => tests.every((test) => test(obj));
}

function fieldValue(obj: Stored, path: string): string {
  let value: unknown = obj;
  for (const part of path.split('.')) value = isRecord(value) ? value[part] : undefined;
  return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean'
    ? String(value)
    : '';
}

/** Splits at the commas between requirements, not those inside `in (a,b)`. */
function splitRequirements(selector: string): string[] {
  if (selector.trim() === '') return [];
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < selector.length; i++) {
    const c = selector[i];
    if (c === '(') depth += 1;
    else if (c === ')') depth -= 1;
    else if (c === ',' && depth === 0) {
      parts.push(selector.slice(start, i).trim());
      start = i + 1;
    }
  }
  parts.push(selector.slice(start).trim());
  return parts;
}

function badSelector(requirement: string): ApiError {
  return apiError(400, 'BadRequest', `unable to parse requirement: ${JSON.stringify(requirement)}`);
}
