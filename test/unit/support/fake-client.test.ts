// The in-memory API server that reconciler unit tests run against: its answers have to be the
// real server's (404, 409, finalizers, status apart, resourceVersions), or tests pass for code
// that fails in a cluster.

import { describe, expect, it } from '@jest/globals';
import { errors } from 'undici';
import type { KubeObject, Secret } from '../../../src/api/kubernetes.js';
import {
  ApiError,
  errorCode,
  isAlreadyExists,
  isConflict,
  isInvalid,
  isNotFound,
  isTransient,
} from '../../../src/runtime/errors.js';
import { resources, type ResourceType } from '../../../src/runtime/resources.js';
import {
  FakeCache,
  FakeClient,
  apiError,
  connectionReset,
  fetchFailed,
  socketClosed,
  type FakeVerb,
} from '../../support/fake-client.js';
import { defineIndex } from '../../../src/runtime/cache.js';

interface Thing extends KubeObject {
  spec?: { size?: number; tags?: string[]; nested?: { a?: number; b?: number } };
  status?: { phase?: string; count?: number };
}

const things: ResourceType<Thing> = {
  group: 'test.dev',
  version: 'v1',
  kind: 'Thing',
  plural: 'things',
  namespaced: true,
};

const clusterThings: ResourceType<Thing> = {
  group: 'test.dev',
  version: 'v1',
  kind: 'ClusterThing',
  plural: 'clusterthings',
  namespaced: false,
};

const NOW = new Date('2030-01-02T03:04:05.678Z');
const STAMP = '2030-01-02T03:04:05Z';

const fake = (): FakeClient => new FakeClient({ now: () => NOW });

const thing = (name: string, extra: Partial<Thing> = {}, namespace = 'ns'): Thing => ({
  ...extra,
  metadata: { name, namespace, ...extra.metadata },
});

const names = (objs: KubeObject[]): string[] => objs.map((o) => o.metadata.name ?? '');

/** The error a promise rejects with. */
async function failure(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

describe('create', () => {
  it('assigns the server fields, sets apiVersion and kind, and drops status', async () => {
    const client = fake();
    const created = await client.create(things, thing('a', { spec: { size: 1 }, status: { phase: 'Done' } }));
    expect(created).toEqual({
      apiVersion: 'test.dev/v1',
      kind: 'Thing',
      metadata: {
        name: 'a',
        namespace: 'ns',
        uid: expect.any(String),
        resourceVersion: '1',
        creationTimestamp: STAMP,
        generation: 1,
      },
      spec: { size: 1 },
    });
    expect(client.peek(things, 'a', 'ns')).toEqual(created);
  });

  it('counts resourceVersions across resources and gives every object its own uid', async () => {
    const client = fake();
    const a = await client.create(things, thing('a'));
    const secret = await client.create(resources.secrets, { metadata: { name: 's', namespace: 'ns' } });
    const b = await client.create(things, thing('b'));
    expect([a, secret, b].map((o) => o.metadata.resourceVersion)).toEqual(['1', '2', '3']);
    expect(new Set([a, secret, b].map((o) => o.metadata.uid)).size).toBe(3);
  });

  it('keeps a cluster-scoped object without a namespace', async () => {
    const client = fake();
    const created = await client.create(clusterThings, thing('c', {}, 'ignored'));
    expect(created.metadata.namespace).toBeUndefined();
    expect(client.peek(clusterThings, 'c')).toBeDefined();
  });

  it('answers 409 AlreadyExists for a taken name and leaves the object alone', async () => {
    const client = fake();
    await client.create(things, thing('a', { spec: { size: 1 } }));
    const err = await failure(client.create(things, thing('a', { spec: { size: 2 } })));
    expect(isAlreadyExists(err)).toBe(true);
    expect(err).toMatchObject({ message: 'things.test.dev "a" already exists' });
    expect(client.peek(things, 'a', 'ns')?.spec).toEqual({ size: 1 });
  });

  it.each([
    ['without a namespace', { metadata: { name: 'a' } }, /a namespace is required/],
    ['without a name', { metadata: { namespace: 'ns' } }, /name or generateName is required/],
    ['with a resourceVersion', thing('a', { metadata: { resourceVersion: '7' } }), /should not be set/],
  ])('refuses an object %s', async (_what, object: Thing, message) => {
    const client = fake();
    await expect(client.create(things, object)).rejects.toThrow(message);
    expect(client.objects(things)).toEqual([]);
  });
});

describe('get', () => {
  it('returns a copy: changing it changes nothing stored', async () => {
    const client = fake();
    client.seed(things, thing('a', { spec: { size: 1 } }));
    const got = await client.get(things, 'a', 'ns');
    if (got?.spec === undefined) throw new Error('expected a spec');
    got.spec.size = 99;
    expect((await client.get(things, 'a', 'ns'))?.spec).toEqual({ size: 1 });
  });

  it('returns undefined for a missing object, in another namespace too', async () => {
    const client = fake();
    client.seed(things, thing('a'));
    expect(await client.get(things, 'b', 'ns')).toBeUndefined();
    expect(await client.get(things, 'a', 'other')).toBeUndefined();
  });

  it('finds a cluster-scoped object by name and needs a namespace for a namespaced one', async () => {
    const client = fake();
    client.seed(clusterThings, { metadata: { name: 'c' } });
    expect((await client.get(clusterThings, 'c'))?.metadata.name).toBe('c');
    await expect(client.get(things, 'a')).rejects.toThrow(/a namespace is required/);
  });
});

describe('list', () => {
  const labelled = (): FakeClient => {
    const client = fake();
    client.seed(things, thing('a', { metadata: { labels: { app: 'web', tier: 'front' } } }));
    client.seed(things, thing('b', { metadata: { labels: { app: 'web' } } }));
    client.seed(things, thing('c', { metadata: { labels: { app: 'db', tier: 'back' } } }));
    client.seed(things, thing('d'));
    return client;
  };

  it.each([
    ['', ['a', 'b', 'c', 'd']],
    ['app=web', ['a', 'b']],
    ['app==web', ['a', 'b']],
    ['app!=web', ['c', 'd']],
    ['tier', ['a', 'c']],
    ['!tier', ['b', 'd']],
    ['app=web,tier', ['a']],
    ['app=web, !tier', ['b']],
    ['app in (web,db)', ['a', 'b', 'c']],
    ['app notin (web)', ['c', 'd']],
    ['app in (web, db),tier=back', ['c']],
    ['app=', []],
  ])('label selector %j matches %j', async (labelSelector, expected) => {
    const { items } = await labelled().list(things, { labelSelector });
    expect(names(items)).toEqual(expected);
  });

  it.each(['app=web=x', 'a b', '=x', 'app,', 'app in web', '!'])(
    'answers 400 for the malformed label selector %j',
    async (labelSelector) => {
      const err = await failure(labelled().list(things, { labelSelector }));
      expect(err).toMatchObject({ statusCode: 400, reason: 'BadRequest' });
    },
  );

  it.each([
    ['metadata.name=b', ['b']],
    ['metadata.name!=b', ['a', 'c']],
    ['metadata.namespace==other', ['c']],
    ['spec.size=2', ['b']],
    ['metadata.name!=a,spec.size=2', ['b']],
  ])('field selector %j matches %j', async (fieldSelector, expected) => {
    const client = fake();
    client.seed(things, thing('a', { spec: { size: 1 } }));
    client.seed(things, thing('b', { spec: { size: 2 } }));
    client.seed(things, thing('c', {}, 'other'));
    expect(names((await client.list(things, { fieldSelector })).items)).toEqual(expected);
  });

  it('lists one namespace, or all sorted by namespace/name; cluster-scoped lists ignore a namespace', async () => {
    const client = fake();
    client.seed(things, thing('z', {}, 'a-ns'));
    client.seed(things, thing('b', {}, 'ns'));
    client.seed(things, thing('a', {}, 'ns'));
    client.seed(clusterThings, { metadata: { name: 'c' } });
    expect(names((await client.list(things, { namespace: 'ns' })).items)).toEqual(['a', 'b']);
    expect(names((await client.list(things)).items)).toEqual(['z', 'a', 'b']);
    expect(names((await client.list(clusterThings, { namespace: 'ns' })).items)).toEqual(['c']);
  });

  it("answers with the latest resourceVersion, a deletion's included", async () => {
    const client = fake();
    await client.create(things, thing('a'));
    await client.create(things, thing('b'));
    expect((await client.list(things)).resourceVersion).toBe('2');
    await client.delete(things, 'b', { namespace: 'ns' });
    expect((await client.list(things)).resourceVersion).toBe('3');
  });

  it('rejects when its signal has aborted', async () => {
    await expect(fake().list(things, { signal: AbortSignal.abort() })).rejects.toThrow();
  });
});

describe('replace', () => {
  const seeded = (): { client: FakeClient; stored: Thing } => {
    const client = fake();
    const stored = client.seed(
      things,
      thing('a', { metadata: { labels: { x: '1' } }, spec: { size: 1 }, status: { phase: 'Running' } }),
    );
    return { client, stored };
  };

  it.each([
    [
      'a stale resourceVersion',
      409,
      'Conflict',
      (t: Thing): Thing => ({ ...t, metadata: { ...t.metadata, resourceVersion: '0' } }),
    ],
    [
      'a missing object',
      404,
      'NotFound',
      (t: Thing): Thing => ({ ...t, metadata: { ...t.metadata, name: 'nope' } }),
    ],
  ])('answers %s with %i %s', async (_what, statusCode, reason, change) => {
    const { client, stored } = seeded();
    const err = await failure(client.replace(things, change(stored)));
    expect(err).toMatchObject({ statusCode, reason });
    expect(client.peek(things, 'a', 'ns')).toEqual(stored);
  });

  it('says what a conflict says on the real server', async () => {
    const { client, stored } = seeded();
    const err = await failure(
      client.replace(things, { ...stored, metadata: { ...stored.metadata, resourceVersion: '0' } }),
    );
    expect(isConflict(err) && !isAlreadyExists(err)).toBe(true);
    expect(err).toMatchObject({ message: expect.stringContaining('the object has been modified') });
  });

  it('replaces spec and metadata, keeps status, and bumps generation and resourceVersion', async () => {
    const { client, stored } = seeded();
    const written = await client.replace(things, {
      ...stored,
      metadata: { ...stored.metadata, labels: { y: '2' } },
      spec: { size: 2 },
      status: { phase: 'Lost' },
    });
    expect(written.spec).toEqual({ size: 2 });
    expect(written.metadata.labels).toEqual({ y: '2' });
    expect(written.status).toEqual({ phase: 'Running' });
    expect(written.metadata.generation).toBe(2);
    expect(Number(written.metadata.resourceVersion)).toBeGreaterThan(Number(stored.metadata.resourceVersion));
    expect(client.peek(things, 'a', 'ns')).toEqual(written);
  });

  it('keeps generation when only metadata changes, and the server fields whatever the request says', async () => {
    const { client, stored } = seeded();
    const written = await client.replace(things, {
      ...stored,
      metadata: {
        ...stored.metadata,
        labels: { y: '2' },
        uid: 'forged',
        creationTimestamp: 'never',
        generation: 9,
      },
    });
    expect(written.metadata).toMatchObject({
      generation: 1,
      uid: stored.metadata.uid,
      creationTimestamp: stored.metadata.creationTimestamp,
    });
  });

  it("takes only status through the 'status' subresource", async () => {
    const { client, stored } = seeded();
    const written = await client.replace(
      things,
      {
        ...stored,
        metadata: { ...stored.metadata, labels: {} },
        spec: { size: 5 },
        status: { phase: 'Done' },
      },
      'status',
    );
    expect(written).toMatchObject({
      spec: { size: 1 },
      status: { phase: 'Done' },
      metadata: { labels: { x: '1' } },
    });
    expect(written.metadata.generation).toBe(1);
    expect(written.metadata.resourceVersion).not.toBe(stored.metadata.resourceVersion);
  });

  it('writes nothing for a request that changes nothing: the resourceVersion stays', async () => {
    const { client, stored } = seeded();
    expect(await client.replace(things, stored)).toEqual(stored);
    expect(await client.replace(things, stored, 'status')).toEqual(stored);
    expect((await client.list(things)).resourceVersion).toBe(stored.metadata.resourceVersion);
  });

  it('is unconditional without a resourceVersion', async () => {
    const { client, stored } = seeded();
    const { resourceVersion: _rv, ...metadata } = stored.metadata;
    expect((await client.replace(things, { ...stored, metadata, spec: { size: 3 } })).spec).toEqual({
      size: 3,
    });
  });
});

describe('mergePatch', () => {
  const seeded = (extra: Partial<Thing> = {}): { client: FakeClient; stored: Thing } => {
    const client = fake();
    const stored = client.seed(
      things,
      thing('a', {
        spec: { size: 1, tags: ['a', 'b'], nested: { a: 1 } },
        status: { phase: 'Running' },
        ...extra,
      }),
    );
    return { client, stored };
  };

  it.each([
    ['null removes a member', { spec: { size: null } }, { tags: ['a', 'b'], nested: { a: 1 } }],
    ['an array replaces the array', { spec: { tags: ['c'] } }, { size: 1, tags: ['c'], nested: { a: 1 } }],
    ['objects merge', { spec: { nested: { b: 2 } } }, { size: 1, tags: ['a', 'b'], nested: { a: 1, b: 2 } }],
    ['null removes an object', { spec: { nested: null, size: 2 } }, { size: 2, tags: ['a', 'b'] }],
  ])('RFC 7386: %s', async (_what, patch, spec) => {
    const { client } = seeded();
    const patched = await client.mergePatch(things, 'a', patch, { namespace: 'ns' });
    expect(patched.spec).toEqual(spec);
    expect(patched.metadata.generation).toBe(2);
  });

  it.each([
    [
      'a stale resourceVersion',
      409,
      'Conflict',
      'a',
      { metadata: { resourceVersion: '0' }, spec: { size: 2 } },
    ],
    ['a missing object', 404, 'NotFound', 'nope', { spec: { size: 2 } }],
  ])('answers %s with %i %s', async (_what, statusCode, reason, name, patch) => {
    const { client, stored } = seeded();
    const err = await failure(client.mergePatch(things, name, patch, { namespace: 'ns' }));
    expect(err).toMatchObject({ statusCode, reason });
    expect(client.peek(things, 'a', 'ns')).toEqual(stored);
  });

  it('applies a patch carrying the current resourceVersion', async () => {
    const { client, stored } = seeded();
    const patch = { metadata: { resourceVersion: stored.metadata.resourceVersion }, spec: { size: 2 } };
    expect((await client.mergePatch(things, 'a', patch, { namespace: 'ns' })).spec?.size).toBe(2);
  });

  it("ignores status without the subresource, and takes only status with 'status'", async () => {
    const { client } = seeded();
    const main = await client.mergePatch(things, 'a', { status: { phase: 'Lost' } }, { namespace: 'ns' });
    expect(main.status).toEqual({ phase: 'Running' });
    const status = await client.mergePatch(
      things,
      'a',
      { spec: { size: 9 }, status: { count: 3 } },
      { namespace: 'ns', subresource: 'status' },
    );
    expect(status).toMatchObject({ spec: { size: 1 }, status: { phase: 'Running', count: 3 } });
    expect(status.metadata.generation).toBe(1);
  });

  it('drops labels emptied by the patch, as the server serializes them', async () => {
    const { client } = seeded({ metadata: { name: 'a', namespace: 'ns', labels: { x: '1' } } });
    const patched = await client.mergePatch(
      things,
      'a',
      { metadata: { labels: { x: null } } },
      { namespace: 'ns' },
    );
    expect(patched.metadata.labels).toBeUndefined();
  });

  it('removes an object marked for deletion once its last finalizer goes', async () => {
    const { client } = seeded({ metadata: { name: 'a', namespace: 'ns', finalizers: ['f1', 'f2'] } });
    expect(await client.delete(things, 'a', { namespace: 'ns' })).toBe(true);
    await client.mergePatch(things, 'a', { metadata: { finalizers: ['f2'] } }, { namespace: 'ns' });
    expect(client.peek(things, 'a', 'ns')?.metadata.finalizers).toEqual(['f2']);
    const last = await client.mergePatch(things, 'a', { metadata: { finalizers: [] } }, { namespace: 'ns' });
    expect(last.metadata.deletionTimestamp).toBe(STAMP);
    expect(await client.get(things, 'a', 'ns')).toBeUndefined();
  });

  it('keeps an object without deletionTimestamp when its finalizers go', async () => {
    const { client } = seeded({ metadata: { name: 'a', namespace: 'ns', finalizers: ['f1'] } });
    await client.mergePatch(things, 'a', { metadata: { finalizers: null } }, { namespace: 'ns' });
    expect(client.peek(things, 'a', 'ns')?.metadata.finalizers).toBeUndefined();
  });

  it('refuses a new finalizer on an object being deleted (422)', async () => {
    const { client } = seeded({ metadata: { name: 'a', namespace: 'ns', finalizers: ['f1'] } });
    await client.delete(things, 'a', { namespace: 'ns' });
    const err = await failure(
      client.mergePatch(things, 'a', { metadata: { finalizers: ['f1', 'f2'] } }, { namespace: 'ns' }),
    );
    expect(isInvalid(err)).toBe(true);
  });
});

describe('delete', () => {
  it.each([
    ['a missing object', false, thing('other'), {}],
    ['an object', true, thing('a'), {}],
    [
      'an object whose uid matches the precondition',
      true,
      thing('a', { metadata: { uid: 'u1' } }),
      { uid: 'u1' },
    ],
  ])('answers %s with %s', async (_what, result, object, preconditions) => {
    const client = fake();
    client.seed(things, object);
    expect(await client.delete(things, 'a', { namespace: 'ns', preconditions })).toBe(result);
    expect(client.peek(things, 'a', 'ns')).toBeUndefined();
  });

  it.each([
    ['uid', { uid: 'u2' }],
    ['resourceVersion', { resourceVersion: '0' }],
  ])(
    'answers 409 on a %s precondition that does not hold, and keeps the object',
    async (_what, preconditions) => {
      const client = fake();
      client.seed(things, thing('a', { metadata: { uid: 'u1' } }));
      const err = await failure(client.delete(things, 'a', { namespace: 'ns', preconditions }));
      expect(err).toMatchObject({
        statusCode: 409,
        reason: 'Conflict',
        message: expect.stringContaining('Precondition failed'),
      });
      expect(client.peek(things, 'a', 'ns')).toBeDefined();
    },
  );

  it('marks an object with finalizers for deletion: deletionTimestamp, generation, resourceVersion', async () => {
    const client = fake();
    const stored = client.seed(things, thing('a', { metadata: { finalizers: ['f'] } }));
    expect(await client.delete(things, 'a', { namespace: 'ns' })).toBe(true);
    const marked = client.peek(things, 'a', 'ns');
    expect(marked?.metadata).toMatchObject({ deletionTimestamp: STAMP, generation: 2, finalizers: ['f'] });
    expect(marked?.metadata.resourceVersion).not.toBe(stored.metadata.resourceVersion);
    // A second DELETE of an object being deleted changes nothing.
    expect(await client.delete(things, 'a', { namespace: 'ns' })).toBe(true);
    expect(client.peek(things, 'a', 'ns')).toEqual(marked);
  });
});

describe('failure injection and the call record', () => {
  const calls: [FakeVerb, (client: FakeClient) => Promise<unknown>][] = [
    ['get', (c) => c.get(things, 'a', 'ns')],
    ['list', (c) => c.list(things, { namespace: 'ns' })],
    ['create', (c) => c.create(things, thing('b'))],
    ['update', (c) => c.replace(things, thing('a', { spec: { size: 2 } }))],
    ['patch', (c) => c.mergePatch(things, 'a', { spec: { size: 2 } }, { namespace: 'ns' })],
    ['delete', (c) => c.delete(things, 'a', { namespace: 'ns' })],
  ];

  it.each(calls)(
    '%s: the next call throws the injected error and changes nothing; the one after works',
    async (verb, call) => {
      const client = fake();
      client.seed(things, thing('a', { spec: { size: 1 } }));
      const before = client.objects(things);
      const injected = apiError(503);
      client.failNext(verb, 'things', injected);
      expect(await failure(call(client))).toBe(injected);
      expect(client.objects(things)).toEqual(before);
      await call(client);
      expect(client.calls.map((c) => c.verb)).toEqual([verb, verb]);
    },
  );

  it('fails as many times as asked, only for its verb and resource, injections in order', async () => {
    const client = fake();
    const first = fetchFailed();
    const second = apiError(500);
    client.failNext('get', 'things', first, 2);
    client.failNext('get', 'things', second);
    expect(await client.get(resources.secrets, 'a', 'ns')).toBeUndefined();
    await expect(client.list(things)).resolves.toBeDefined();
    expect(await failure(client.get(things, 'a', 'ns'))).toBe(first);
    expect(await failure(client.get(things, 'a', 'ns'))).toBe(first);
    expect(await failure(client.get(things, 'a', 'ns'))).toBe(second);
    expect(await client.get(things, 'a', 'ns')).toBeUndefined();
  });

  it('records every request, with name, namespace and subresource when it has them', async () => {
    const client = fake();
    client.seed(things, thing('a'));
    client.peek(things, 'a', 'ns');
    client.objects(things);
    client.cache(things).list();
    expect(client.calls).toEqual([]);

    await client.list(things);
    await client.get(things, 'a', 'ns');
    await client.replace(things, thing('a', { status: { phase: 'Done' } }), 'status');
    await client.mergePatch(things, 'a', { spec: { size: 1 } }, { namespace: 'ns' });
    await client.delete(things, 'a', { namespace: 'ns' });
    expect(client.calls).toEqual([
      { verb: 'list', plural: 'things' },
      { verb: 'get', plural: 'things', name: 'a', namespace: 'ns' },
      { verb: 'update', plural: 'things', name: 'a', namespace: 'ns', subresource: 'status' },
      { verb: 'patch', plural: 'things', name: 'a', namespace: 'ns' },
      { verb: 'delete', plural: 'things', name: 'a', namespace: 'ns' },
    ]);
    client.clearCalls();
    expect(client.calls).toEqual([]);
  });
});

describe('seed', () => {
  it('stores status and deletionTimestamp as given and fills in the server fields', () => {
    const client = fake();
    const seeded = client.seed(
      things,
      thing('a', { metadata: { deletionTimestamp: STAMP, finalizers: ['f'] }, status: { phase: 'Done' } }),
    );
    expect(seeded).toMatchObject({
      apiVersion: 'test.dev/v1',
      kind: 'Thing',
      status: { phase: 'Done' },
      metadata: { deletionTimestamp: STAMP, generation: 1, creationTimestamp: STAMP, resourceVersion: '1' },
    });
    expect(seeded.metadata.uid).toEqual(expect.any(String));
  });

  it('keeps a resourceVersion given, and later writes get higher ones', async () => {
    const client = fake();
    client.seed(things, thing('a', { metadata: { resourceVersion: '41' } }));
    expect(client.peek(things, 'a', 'ns')?.metadata.resourceVersion).toBe('41');
    expect((await client.create(things, thing('b'))).metadata.resourceVersion).toBe('42');
  });

  it('replaces an object of the same name', () => {
    const client = fake();
    client.seed(things, thing('a', { spec: { size: 1 } }));
    client.seed(things, thing('a', { spec: { size: 2 } }));
    expect(client.objects(things).map((t) => t.spec)).toEqual([{ size: 2 }]);
  });
});

describe('cache', () => {
  const byTag = defineIndex<Thing>('tag', (t) => t.spec?.tags ?? []);

  it("reads the fake's current objects, by key, list and index", async () => {
    const client = fake();
    const cache = client.cache(things, { indexes: [byTag] });
    client.seed(things, thing('a', { spec: { tags: ['x'] } }));
    expect(cache.get('ns/a')?.metadata.name).toBe('a');
    await client.create(things, thing('b', { spec: { tags: ['x', 'y'] } }));
    expect(names(cache.list())).toEqual(['a', 'b']);
    expect(names(cache.byIndex(byTag, 'x'))).toEqual(['a', 'b']);
    expect(names(cache.byIndex(byTag, 'y'))).toEqual(['b']);
    await client.delete(things, 'a', { namespace: 'ns' });
    expect(cache.get('ns/a')).toBeUndefined();
    expect(() =>
      cache.byIndex(
        defineIndex<Thing>('nope', () => []),
        'x',
      ),
    ).toThrow(/no index named nope/);
  });

  it("holds only the informer's selection; cluster-scoped objects are keyed by name", () => {
    const client = fake();
    client.seed(things, thing('a', { metadata: { labels: { app: 'web' } } }));
    client.seed(things, thing('b'));
    client.seed(things, thing('c', { metadata: { labels: { app: 'web' } } }, 'other'));
    client.seed(clusterThings, { metadata: { name: 'k' } });
    expect(names(client.cache(things, { namespace: 'ns', labelSelector: 'app' }).list())).toEqual(['a']);
    expect(client.cache(clusterThings).get('k')?.metadata.name).toBe('k');
  });

  it('lags while frozen, as an informer whose watch is behind, and catches up when thawed', async () => {
    const client = fake();
    const before = client.seed(things, thing('a', { spec: { size: 1 } }));
    const cache = client.cache(things);
    cache.freeze();
    expect(cache.frozen).toBe(true);
    const after = await client.mergePatch(things, 'a', { spec: { size: 2 } }, { namespace: 'ns' });
    await client.create(things, thing('b'));
    expect(cache.get('ns/a')).toEqual(before);
    expect(names(cache.list())).toEqual(['a']);
    cache.thaw();
    expect(cache.get('ns/a')).toEqual(after);
    expect(names(cache.list())).toEqual(['a', 'b']);
  });

  it('hands out frozen objects: a reconciler changing a cached object in place fails at once', () => {
    const client = fake();
    client.seed(things, thing('a', { spec: { size: 1 } }));
    const cached = client.cache(things).get('ns/a');
    expect(() => {
      if (cached?.spec !== undefined) cached.spec.size = 2;
    }).toThrow(TypeError);
    expect(client.peek(things, 'a', 'ns')?.spec?.size).toBe(1);
  });

  it('also works over a fixed list of objects', () => {
    const cache = new FakeCache<Secret>(() => [{ metadata: { name: 's', namespace: 'ns' } }]);
    expect(cache.get('ns/s')?.metadata.name).toBe('s');
  });
});

describe('error helpers', () => {
  it.each([
    [404, 'NotFound', isNotFound],
    [409, 'Conflict', isConflict],
    [422, 'Invalid', isInvalid],
    [500, 'InternalError', isTransient],
  ])('apiError(%i) is %s, as KubeClient reports it', (statusCode, reason, predicate) => {
    const err = apiError(statusCode);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ statusCode, reason, status: { kind: 'Status', code: statusCode, reason } });
    expect(predicate(err)).toBe(true);
  });

  it('apiError takes a reason and a message', () => {
    const err = apiError(409, 'AlreadyExists', 'taken');
    expect(isAlreadyExists(err)).toBe(true);
    expect(err.message).toBe('taken');
  });

  it.each([
    ['a connection reset', 'ECONNRESET', connectionReset()],
    ['a closed socket', 'UND_ERR_SOCKET', socketClosed()],
    ['fetch failed after a reset', 'ECONNRESET', fetchFailed()],
    ['fetch failed on a closed socket', 'UND_ERR_SOCKET', fetchFailed(socketClosed())],
  ])('%s is a transient network error with code %s', (_what, code, err) => {
    expect(errorCode(err)).toBe(code);
    expect(isTransient(err)).toBe(true);
  });

  it('are shaped as Node and undici make them', () => {
    expect(connectionReset()).toMatchObject({
      message: 'read ECONNRESET',
      syscall: 'read',
      errno: expect.any(Number),
    });
    expect(socketClosed()).toBeInstanceOf(errors.SocketError);
    const failed = fetchFailed();
    expect(failed).toBeInstanceOf(TypeError);
    expect(failed.message).toBe('fetch failed');
    expect(failed.cause).toMatchObject({ code: 'ECONNRESET' });
  });
});
