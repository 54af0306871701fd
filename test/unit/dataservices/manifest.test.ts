import { describe, expect, it } from '@jest/globals';
import type { StatefulSet } from '../../../src/api/kubernetes.js';
import {
  mergeLabels,
  renameLabelValues,
  sanitize,
  sanitizeRecorded,
} from '../../../src/dataservices/manifest.js';

function liveStatefulSet(): StatefulSet {
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: {
      name: 'pg',
      namespace: 'demo',
      uid: '7c4e0c4a-0000-4000-8000-000000000000',
      resourceVersion: '12345',
      generation: 3,
      creationTimestamp: '2025-01-01T00:00:00Z',
      managedFields: [{ manager: 'kubectl', operation: 'Apply' }],
      ownerReferences: [{ apiVersion: 'v1', kind: 'Thing', name: 'owner', uid: 'u' }],
      finalizers: ['example.com/protect'],
      labels: {
        'app.kubernetes.io/name': 'postgresql',
        'app.kubernetes.io/instance': 'pg',
        'snapback.dev/project': 'payments',
        'snapback.dev/restore': 'old-restore',
        'snapback.dev/restore-attempt': 'restore-old-restore-abcdef',
        'snapback.dev/backup': 'old-backup',
      },
      annotations: {
        'kubectl.kubernetes.io/last-applied-configuration': '{"big":"json"}',
        'example.com/keep': 'yes',
        'snapback.dev/mode': 'normal',
      },
    },
    spec: {
      replicas: 3,
      serviceName: 'pg',
      selector: { matchLabels: { 'app.kubernetes.io/instance': 'pg' } },
      template: {
        metadata: { labels: { 'app.kubernetes.io/instance': 'pg' } },
        spec: { containers: [{ name: 'postgres', image: 'postgres:17' }] },
      },
    },
    status: { observedGeneration: 3, replicas: 3, readyReplicas: 3 },
  };
}

describe('sanitize', () => {
  it('drops the status', () => {
    expect(sanitize(liveStatefulSet())).not.toHaveProperty('status');
  });

  it.each([
    'uid',
    'resourceVersion',
    'generation',
    'creationTimestamp',
    'managedFields',
    'ownerReferences',
    'finalizers',
  ])('drops metadata.%s', (field) => {
    expect(sanitize(liveStatefulSet()).metadata).not.toHaveProperty(field);
  });

  it('keeps name, namespace and the spec', () => {
    const live = liveStatefulSet();
    const manifest = sanitize(live);
    expect(manifest.metadata.name).toBe('pg');
    expect(manifest.metadata.namespace).toBe('demo');
    expect(manifest.apiVersion).toBe('apps/v1');
    expect(manifest.kind).toBe('StatefulSet');
    expect(manifest.spec).toEqual(live.spec);
  });

  it('drops the last-applied annotation and keeps foreign annotations', () => {
    const annotations = sanitize(liveStatefulSet()).metadata.annotations ?? {};
    expect(annotations).not.toHaveProperty(['kubectl.kubernetes.io/last-applied-configuration']);
    expect(annotations['example.com/keep']).toBe('yes');
  });

  it("drops Argo CD's annotations, so a restored copy is not claimed by the original's Application", () => {
    const live = liveStatefulSet();
    live.metadata.annotations = {
      ...live.metadata.annotations,
      'argocd.argoproj.io/tracking-id': 'payments:apps/StatefulSet:demo/pg',
      'argocd.argoproj.io/sync-wave': '0',
    };
    expect(sanitize(live).metadata.annotations).toEqual({ 'example.com/keep': 'yes' });
  });

  it('drops the restore-mode annotation an earlier restore left', () => {
    expect(sanitize(liveStatefulSet()).metadata.annotations).not.toHaveProperty(['snapback.dev/mode']);
  });

  it('drops snapback.dev/* labels except snapback.dev/project', () => {
    expect(sanitize(liveStatefulSet()).metadata.labels).toEqual({
      'app.kubernetes.io/name': 'postgresql',
      'app.kubernetes.io/instance': 'pg',
      'snapback.dev/project': 'payments',
    });
  });

  it('keeps the annotations a user declares about the data service (image capabilities, TLS)', () => {
    // These describe the image and the service, not an earlier restore: a restored deployment
    // runs the same image, and a backup of it must record the same capabilities and TLS setting.
    const live = liveStatefulSet();
    live.metadata.annotations = {
      ...live.metadata.annotations,
      'snapback.dev/image-capabilities': 'pds_restore=v1',
      'snapback.dev/tls-enabled': 'true',
    };
    expect(sanitize(live).metadata.annotations).toMatchObject({
      'snapback.dev/image-capabilities': 'pds_restore=v1',
      'snapback.dev/tls-enabled': 'true',
    });
  });

  it('leaves out labels and annotations entirely when nothing is left of them', () => {
    const live = liveStatefulSet();
    live.metadata.labels = { 'snapback.dev/restore': 'r' };
    live.metadata.annotations = { 'kubectl.kubernetes.io/last-applied-configuration': '{}' };
    const metadata = sanitize(live).metadata;
    expect(metadata).not.toHaveProperty('labels');
    expect(metadata).not.toHaveProperty('annotations');
  });

  it('does not mutate its input, and shares no objects with it', () => {
    const live = liveStatefulSet();
    const before = structuredClone(live);
    const manifest = sanitize(live);
    expect(live).toEqual(before);
    (manifest.spec as StatefulSet['spec']).replicas = 99;
    expect(live.spec.replicas).toBe(3);
  });
});

describe('sanitizeRecorded', () => {
  it('drops what a record planted in the metadata, keeping labels and annotations', () => {
    const recorded = {
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: {
        name: 'pg',
        labels: { app: 'pg' },
        finalizers: ['example.com/never'],
        ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'x', uid: 'u' }],
      },
      spec: { replicas: 1 },
      status: { readyReplicas: 1 },
    };
    expect(sanitizeRecorded(recorded)).toEqual({
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: { name: 'pg', labels: { app: 'pg' } },
      spec: { replicas: 1 },
    });
  });

  it.each([undefined, 'x', ['a']])(
    'replaces metadata that is not a map (%p) with an empty one',
    (metadata) => {
      expect(sanitizeRecorded({ kind: 'StatefulSet', metadata }).metadata).toEqual({});
    },
  );
});

describe('renameLabelValues', () => {
  it.each<{ labels: Record<string, string> | undefined; expected: Record<string, string> | undefined }>([
    { labels: undefined, expected: undefined },
    { labels: {}, expected: {} },
    {
      labels: { instance: 'pg', name: 'postgresql', other: 'pg-0', pg: 'x' },
      expected: { instance: 'pg2', name: 'postgresql', other: 'pg-0', pg: 'x' },
    },
  ])('$labels', ({ labels, expected }) => {
    expect(renameLabelValues(labels, 'pg', 'pg2')).toEqual(expected);
  });
});

describe('mergeLabels', () => {
  it('merges left to right, skipping undefined, without touching the inputs', () => {
    const a = { x: '1', y: '1' };
    const b = { y: '2' };
    expect(mergeLabels(a, undefined, b)).toEqual({ x: '1', y: '2' });
    expect(a).toEqual({ x: '1', y: '1' });
    expect(mergeLabels()).toEqual({});
  });
});
