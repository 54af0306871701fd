import { describe, expect, it } from '@jest/globals';
import type { PersistentVolumeClaimSpec, StatefulSet } from '../../../src/api/kubernetes.js';
import type { RestoreTarget } from '../../../src/dataservices/adapter.js';
import type { Manifest } from '../../../src/dataservices/manifest.js';
import { statefulSetAdapter as adapter } from '../../../src/dataservices/statefulset.js';

const MODE = 'snapback.dev/mode';

const dataClaim: PersistentVolumeClaimSpec = {
  accessModes: ['ReadWriteOnce'],
  storageClassName: 'fast',
  resources: { requests: { storage: '1Gi' } },
};
const walClaim: PersistentVolumeClaimSpec = {
  accessModes: ['ReadWriteOnce'],
  storageClassName: 'slow',
  volumeMode: 'Filesystem',
  resources: { requests: { storage: '5Gi' } },
};

function statefulSet(
  overrides: { replicas?: number; templates?: string[]; serviceName?: string } = {},
): StatefulSet {
  const claims: Record<string, PersistentVolumeClaimSpec> = { data: dataClaim, wal: walClaim };
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: {
      name: 'pg',
      namespace: 'demo',
      labels: { 'app.kubernetes.io/name': 'postgresql', 'app.kubernetes.io/instance': 'pg', tier: 'db' },
      annotations: { 'example.com/note': 'kept' },
    },
    spec: {
      replicas: overrides.replicas ?? 3,
      serviceName: overrides.serviceName ?? 'pg',
      selector: {
        matchLabels: { 'app.kubernetes.io/name': 'postgresql', 'app.kubernetes.io/instance': 'pg' },
      },
      template: {
        metadata: {
          labels: { 'app.kubernetes.io/name': 'postgresql', 'app.kubernetes.io/instance': 'pg' },
          annotations: { 'example.com/pod': 'kept' },
        },
        spec: {
          containers: [{ name: 'postgres', image: 'postgres:17' }],
          nodeSelector: { disk: 'ssd' },
          tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'db', effect: 'NoSchedule' }],
          affinity: { podAntiAffinity: { preferred: true } },
          topologySpreadConstraints: [{ maxSkew: 1, topologyKey: 'zone' }],
        },
      },
      volumeClaimTemplates: (overrides.templates ?? ['data']).map((name) => ({
        metadata: { name },
        spec: claims[name] ?? dataClaim,
      })),
    },
  };
}

const manifestOf = (sts: StatefulSet): Manifest => adapter.capture(sts);

const target = (extra: Partial<RestoreTarget> = {}): RestoreTarget => ({
  name: 'pg-restored',
  namespace: 'copy',
  labels: { 'snapback.dev/restore': 'r1', 'snapback.dev/restore-attempt': 'restore-r1-abcdef' },
  ...extra,
});

describe('volumeClaimNames', () => {
  it.each([
    { replicas: 1, templates: ['data'], expected: ['data-pg-0'] },
    { replicas: 3, templates: ['data'], expected: ['data-pg-0', 'data-pg-1', 'data-pg-2'] },
    {
      replicas: 2,
      templates: ['data', 'wal'],
      expected: ['data-pg-0', 'wal-pg-0', 'data-pg-1', 'wal-pg-1'],
    },
    { replicas: 0, templates: ['data'], expected: [] },
    { replicas: 2, templates: [], expected: [] },
  ])('$replicas replicas x $templates', ({ replicas, templates, expected }) => {
    expect(adapter.volumeClaimNames(statefulSet({ replicas, templates }))).toEqual(expected);
  });

  it('takes one replica when replicas is not set', () => {
    const sts = statefulSet();
    delete sts.spec.replicas;
    expect(adapter.volumeClaimNames(sts)).toEqual(['data-pg-0']);
  });
});

describe('replicas and image', () => {
  it('reads them from the manifest', () => {
    const manifest = manifestOf(statefulSet({ replicas: 5 }));
    expect(adapter.replicas(manifest)).toBe(5);
    expect(adapter.image(manifest)).toBe('postgres:17');
  });
});

describe('planVolumes', () => {
  it('maps each backed-up PVC to the PVC the new StatefulSet will mount', () => {
    const manifest = manifestOf(statefulSet({ replicas: 2 }));
    expect(adapter.planVolumes(manifest, ['data-pg-0', 'data-pg-1'], 'pg-restored')).toEqual([
      {
        sourcePvcName: 'data-pg-0',
        pvcName: 'data-pg-restored-0',
        claim: expect.objectContaining(dataClaim),
      },
      {
        sourcePvcName: 'data-pg-1',
        pvcName: 'data-pg-restored-1',
        claim: expect.objectContaining(dataClaim),
      },
    ]);
  });

  it('uses the claim template of each PVC with several templates', () => {
    const manifest = manifestOf(statefulSet({ replicas: 1, templates: ['data', 'wal'] }));
    const plans = adapter.planVolumes(manifest, ['wal-pg-0', 'data-pg-0'], 'new');
    expect(plans.map((plan) => [plan.sourcePvcName, plan.pvcName])).toEqual([
      ['wal-pg-0', 'wal-new-0'],
      ['data-pg-0', 'data-new-0'],
    ]);
    expect(plans[0]?.claim).toMatchObject({ storageClassName: 'slow', volumeMode: 'Filesystem' });
    expect(plans[0]?.claim.resources).toEqual({ requests: { storage: '5Gi' } });
    expect(plans[1]?.claim).toMatchObject({ storageClassName: 'fast' });
  });

  it.each([
    ['another StatefulSet', 'data-mysql-0'],
    ['a non-numeric ordinal', 'data-pg-restored-0'],
    ['no ordinal', 'data-pg-'],
    ['an unknown template', 'logs-pg-0'],
    ['a bare name', 'pg'],
  ])('ignores a PVC of %s (%s)', (_, pvc) => {
    const manifest = manifestOf(statefulSet({ templates: ['data', 'wal'] }));
    expect(adapter.planVolumes(manifest, [pvc], 'pg2')).toEqual([]);
  });

  it('tells apart templates whose names share a prefix', () => {
    const sts = statefulSet({ replicas: 1 });
    sts.spec.volumeClaimTemplates = [
      { metadata: { name: 'data' }, spec: dataClaim },
      { metadata: { name: 'data-pg' }, spec: walClaim },
    ];
    const plans = adapter.planVolumes(manifestOf(sts), ['data-pg-pg-0', 'data-pg-0'], 'x');
    expect(plans.map((plan) => [plan.pvcName, plan.claim.storageClassName])).toEqual([
      ['data-pg-x-0', 'slow'],
      ['data-x-0', 'fast'],
    ]);
  });
});

describe('render', () => {
  it('names the new StatefulSet and puts it in the target namespace', () => {
    const sts = adapter.render(manifestOf(statefulSet()), target());
    expect(sts.apiVersion).toBe('apps/v1');
    expect(sts.kind).toBe('StatefulSet');
    expect(sts.metadata.name).toBe('pg-restored');
    expect(sts.metadata.namespace).toBe('copy');
  });

  it('runs one replica in restore mode, annotated on the object and the pod template', () => {
    const sts = adapter.render(manifestOf(statefulSet({ replicas: 3 })), target());
    expect(sts.spec.replicas).toBe(1);
    expect(adapter.mode(sts)).toBe('restore');
    expect(sts.metadata.annotations).toEqual({ 'example.com/note': 'kept', [MODE]: 'restore' });
    expect(sts.spec.template.metadata?.annotations).toEqual({ 'example.com/pod': 'kept', [MODE]: 'restore' });
  });

  it('renames label values equal to the old name in labels, selector and pod template', () => {
    const sts = adapter.render(manifestOf(statefulSet()), target());
    const renamed = { 'app.kubernetes.io/name': 'postgresql', 'app.kubernetes.io/instance': 'pg-restored' };
    expect(sts.spec.selector.matchLabels).toEqual(renamed);
    expect(sts.spec.template.metadata?.labels).toEqual({ ...renamed, ...target().labels });
    expect(sts.metadata.labels).toMatchObject({ ...renamed, tier: 'db' });
  });

  it('labels the pods with the target labels, over any a previous restore left in the manifest', () => {
    const source = statefulSet();
    const previous = { 'snapback.dev/restore': 'old', 'snapback.dev/restore-attempt': 'restore-old-123456' };
    const restoredBefore = {
      ...source,
      spec: {
        ...source.spec,
        template: {
          ...source.spec.template,
          metadata: { labels: { ...source.spec.template.metadata?.labels, ...previous } },
        },
      },
    };
    const sts = adapter.render(manifestOf(restoredBefore), target());
    expect(sts.spec.template.metadata?.labels).toMatchObject(target().labels);
    expect(sts.spec.selector.matchLabels).not.toHaveProperty('snapback.dev/restore');
  });

  it('merges the target labels into the object labels', () => {
    const sts = adapter.render(
      manifestOf(statefulSet()),
      target({ labels: { tier: 'restored', extra: 'y' } }),
    );
    expect(sts.metadata.labels).toEqual({
      'app.kubernetes.io/name': 'postgresql',
      'app.kubernetes.io/instance': 'pg-restored',
      tier: 'restored',
      extra: 'y',
    });
  });

  it('keeps the selector matching the pod template', () => {
    const sts = adapter.render(manifestOf(statefulSet()), target());
    expect(sts.spec.template.metadata?.labels).toMatchObject(
      sts.spec.selector.matchLabels ?? { missing: 'x' },
    );
  });

  it.each([
    { serviceName: 'pg', expected: 'pg-restored' },
    { serviceName: 'pg-headless', expected: 'pg-headless' },
  ])('serviceName $serviceName becomes $expected', ({ serviceName, expected }) => {
    const sts = adapter.render(manifestOf(statefulSet({ serviceName })), target());
    expect(sts.spec.serviceName).toBe(expected);
  });

  it('keeps the backed-up scheduling when no podSchedulingConfig is given', () => {
    const source = statefulSet();
    const sts = adapter.render(manifestOf(source), target());
    expect(sts.spec.template.spec).toEqual(source.spec.template.spec);
  });

  it.each([
    { field: 'nodeSelector', value: { zone: 'eu-1' } },
    { field: 'tolerations', value: [{ key: 'kwok', operator: 'Exists' as const }] },
    { field: 'affinity', value: { nodeAffinity: { required: true } } },
    { field: 'topologySpreadConstraints', value: [{ maxSkew: 2, topologyKey: 'host' }] },
  ])('podSchedulingConfig.$field replaces only that field', ({ field, value }) => {
    const source = statefulSet();
    const sts = adapter.render(manifestOf(source), target({ scheduling: { [field]: value } }));
    expect(sts.spec.template.spec).toEqual({ ...source.spec.template.spec, [field]: value });
  });

  it('keeps volume claim templates so the planned PVCs are adopted', () => {
    const source = statefulSet({ replicas: 2, templates: ['data', 'wal'] });
    const manifest = manifestOf(source);
    const sts = adapter.render(manifest, target());
    const planned = adapter.planVolumes(manifest, adapter.volumeClaimNames(source), 'pg-restored');
    expect(adapter.volumeClaimNames({ ...sts, spec: { ...sts.spec, replicas: 2 } })).toEqual(
      planned.map((plan) => plan.pvcName),
    );
  });

  it('keeps only labels and annotations of the recorded metadata, wherever a record put more', () => {
    // A record in the bucket may carry anything: finalizers would block the restore's cleanup,
    // owner references would hand the restored deployment to the garbage collector.
    const planted = {
      finalizers: ['example.com/never'],
      ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'x', uid: 'u' }],
      uid: 'u-source',
      generateName: 'x-',
    };
    const source = statefulSet({ templates: ['data'] });
    const manifest = manifestOf({
      ...source,
      metadata: { ...source.metadata, ...planted },
      spec: {
        ...source.spec,
        template: { ...source.spec.template, metadata: { ...source.spec.template.metadata, ...planted } },
        volumeClaimTemplates: (source.spec.volumeClaimTemplates ?? []).map((claim) => ({
          ...claim,
          metadata: { ...claim.metadata, ...planted },
        })),
      },
    });

    const sts = adapter.render(manifest, target());

    expect(Object.keys(sts.metadata).sort()).toEqual(['annotations', 'labels', 'name', 'namespace']);
    expect(Object.keys(sts.spec.template.metadata ?? {}).sort()).toEqual(['annotations', 'labels']);
    expect(sts.spec.volumeClaimTemplates?.map((claim) => claim.metadata)).toEqual([{ name: 'data' }]);
  });

  it('does not mutate the manifest', () => {
    const manifest = manifestOf(statefulSet());
    const before = structuredClone(manifest);
    adapter.render(manifest, target({ scheduling: { nodeSelector: { a: 'b' } } }));
    expect(manifest).toEqual(before);
  });
});

describe('mode', () => {
  it.each([
    { annotation: 'restore', expected: 'restore' },
    { annotation: 'normal', expected: 'normal' },
    { annotation: 'other', expected: undefined },
    { annotation: undefined, expected: undefined },
  ])('annotation $annotation -> $expected', ({ annotation, expected }) => {
    const sts = statefulSet();
    sts.metadata.annotations = annotation === undefined ? {} : { [MODE]: annotation };
    expect(adapter.mode(sts)).toBe(expected);
  });
});

describe('normalModePatch', () => {
  it('brings back the backed-up replica count and switches to normal mode', () => {
    expect(adapter.normalModePatch(manifestOf(statefulSet({ replicas: 3 })))).toEqual({
      metadata: { annotations: { [MODE]: 'normal' } },
      spec: { replicas: 3, template: { metadata: { annotations: { [MODE]: 'normal' } } } },
    });
  });
});

describe('health', () => {
  type Status = NonNullable<StatefulSet['status']>;
  const healthyStatus: Status = {
    observedGeneration: 2,
    replicas: 3,
    readyReplicas: 3,
    updatedReplicas: 3,
    currentReplicas: 3,
    currentRevision: 'pg-abc',
    updateRevision: 'pg-abc',
  };
  const withStatus = (status: Status | undefined): StatefulSet => {
    const sts = statefulSet({ replicas: 3 });
    sts.metadata.generation = 2;
    if (status !== undefined) sts.status = status;
    return sts;
  };

  it.each<{ name: string; status: Status | undefined; healthy: boolean; message: RegExp }>([
    { name: 'no status yet', status: undefined, healthy: false, message: /not observed/ },
    {
      name: 'observedGeneration behind',
      status: { ...healthyStatus, observedGeneration: 1 },
      healthy: false,
      message: /not observed the latest/,
    },
    {
      name: 'not all ready',
      status: { ...healthyStatus, readyReplicas: 2 },
      healthy: false,
      message: /2\/3 replicas ready/,
    },
    {
      name: 'not all updated',
      status: { ...healthyStatus, updatedReplicas: 1 },
      healthy: false,
      message: /1\/3 updated/,
    },
    { name: 'too many replicas', status: { ...healthyStatus, replicas: 4 }, healthy: false, message: /3\/3/ },
    {
      name: 'revision mismatch',
      status: { ...healthyStatus, currentRevision: 'pg-old' },
      healthy: false,
      message: /rolling update/,
    },
    { name: 'healthy', status: healthyStatus, healthy: true, message: /3\/3 replicas ready/ },
    {
      name: 'healthy without revisions',
      status: { observedGeneration: 2, replicas: 3, readyReplicas: 3, updatedReplicas: 3 },
      healthy: true,
      message: /3\/3/,
    },
  ])('$name', ({ status, healthy, message }) => {
    const result = adapter.health(withStatus(status));
    expect(result.healthy).toBe(healthy);
    expect(result.message).toMatch(message);
  });
});
