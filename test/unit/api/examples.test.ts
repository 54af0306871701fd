import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { loadAll } from 'js-yaml';
import { CRDS } from '../../../src/api/crds.js';
import { compileValidator, type Validator } from '../../../src/api/validation.js';

const EXAMPLES = join(import.meta.dirname, '..', '..', '..', 'examples');

const validators: Record<string, Validator> = Object.fromEntries(
  CRDS.map((crd) => [crd.kind, compileValidator(crd.schema)]),
);

const validatorFor = (kind: string): Validator => {
  const validator = validators[kind];
  if (validator === undefined) throw new Error(`no CRD for kind ${kind}`);
  return validator;
};

interface Document {
  file: string;
  index: number;
  kind: string;
  name: string;
  document: unknown;
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

function snapbackDocuments(): Document[] {
  const out: Document[] = [];
  for (const file of readdirSync(EXAMPLES)
    .filter((name) => name.endsWith('.yaml'))
    .sort()) {
    loadAll(readFileSync(join(EXAMPLES, file), 'utf8')).forEach((document, index) => {
      if (!isRecord(document) || document.apiVersion !== 'snapback.dev/v1alpha1') return;
      const metadata = isRecord(document.metadata) ? document.metadata : {};
      out.push({
        file,
        index,
        kind: String(document.kind),
        name: String(metadata.name),
        document,
      });
    });
  }
  return out;
}

describe('examples', () => {
  const documents = snapbackDocuments();

  it('include every kind of the API', () => {
    expect(new Set(documents.map((d) => d.kind))).toEqual(new Set(Object.keys(validators)));
  });

  it.each(documents)('$file #$index ($kind $name) is valid against its CRD schema', ({ kind, document }) => {
    expect(validatorFor(kind)(document)).toEqual({ valid: true, errors: [] });
  });
});

const restore = (spec: unknown): unknown => ({
  apiVersion: 'snapback.dev/v1alpha1',
  kind: 'Restore',
  metadata: { name: 'r', namespace: 'demo' },
  ...(spec === undefined ? {} : { spec }),
});

const backup = (spec: unknown): unknown => ({
  apiVersion: 'snapback.dev/v1alpha1',
  kind: 'Backup',
  metadata: { name: 'b', namespace: 'demo' },
  ...(spec === undefined ? {} : { spec }),
});

describe('invalid manifests', () => {
  it.each<{ name: string; kind: 'Restore' | 'Backup'; manifest: unknown; field: string; problem: RegExp }>([
    {
      name: 'Restore without spec',
      kind: 'Restore',
      manifest: restore(undefined),
      field: '(root)',
      problem: /'spec'/,
    },
    {
      name: 'Restore without source',
      kind: 'Restore',
      manifest: restore({}),
      field: 'spec',
      problem: /'source'/,
    },
    {
      name: 'backupName not a DNS name',
      kind: 'Restore',
      manifest: restore({ source: { backupName: 'Nightly_Backup' } }),
      field: 'spec.source.backupName',
      problem: /pattern/,
    },
    {
      name: 'empty backupName',
      kind: 'Restore',
      manifest: restore({ source: { backupName: '' } }),
      field: 'spec.source.backupName',
      problem: /fewer than 1/,
    },
    {
      name: 'backupRef without name',
      kind: 'Restore',
      manifest: restore({ source: { backupRef: { namespace: 'prod' } } }),
      field: 'spec.source.backupRef',
      problem: /'name'/,
    },
    {
      name: 'backupRef namespace longer than a label',
      kind: 'Restore',
      manifest: restore({ source: { backupRef: { namespace: 'n'.repeat(64), name: 'b' } } }),
      field: 'spec.source.backupRef.namespace',
      problem: /more than 63/,
    },
    {
      name: 'destination name longer than 52 characters',
      kind: 'Restore',
      manifest: restore({ source: { backupName: 'b' }, destination: { deploymentName: 'd'.repeat(53) } }),
      field: 'spec.destination.deploymentName',
      problem: /more than 52/,
    },
    {
      name: 'destination name with a dot',
      kind: 'Restore',
      manifest: restore({ source: { backupName: 'b' }, destination: { deploymentName: 'pg.restored' } }),
      field: 'spec.destination.deploymentName',
      problem: /pattern/,
    },
    {
      name: 'toleration operator not in the enum',
      kind: 'Restore',
      manifest: restore({
        source: { backupName: 'b' },
        podSchedulingConfig: { tolerations: [{ key: 'k', operator: 'Maybe' }] },
      }),
      field: 'spec.podSchedulingConfig.tolerations.0.operator',
      problem: /allowed values/,
    },
    {
      name: 'fractional tolerationSeconds',
      kind: 'Restore',
      manifest: restore({
        source: { backupName: 'b' },
        podSchedulingConfig: { tolerations: [{ key: 'k', effect: 'NoExecute', tolerationSeconds: 1.5 }] },
      }),
      field: 'spec.podSchedulingConfig.tolerations.0.tolerationSeconds',
      problem: /integer/,
    },
    {
      name: 'nodeSelector value not a string',
      kind: 'Restore',
      manifest: restore({ source: { backupName: 'b' }, podSchedulingConfig: { nodeSelector: { zone: 3 } } }),
      field: 'spec.podSchedulingConfig.nodeSelector.zone',
      problem: /string/,
    },
    {
      name: 'recreateToken of the wrong type',
      kind: 'Restore',
      manifest: restore({ source: { backupName: 'b' }, recreateToken: 2 }),
      field: 'spec.recreateToken',
      problem: /string/,
    },
    {
      name: 'source that is not an object',
      kind: 'Restore',
      manifest: restore({ source: 'pg-backup' }),
      field: 'spec.source',
      problem: /object/,
    },
    {
      name: 'an unknown spec field',
      kind: 'Restore',
      manifest: restore({ source: { backupName: 'b' }, targetNamespace: 'x' }),
      field: 'spec.targetNamespace',
      problem: /unknown field/,
    },
    {
      name: 'an unknown source field',
      kind: 'Restore',
      manifest: restore({ source: { backupName: 'b', backupUid: 'x' } }),
      field: 'spec.source.backupUid',
      problem: /unknown field/,
    },
    {
      name: 'status phase not in the enum',
      kind: 'Restore',
      manifest: { ...(restore({ source: { backupName: 'b' } }) as object), status: { phase: 'Done' } },
      field: 'status.phase',
      problem: /allowed values/,
    },
    {
      name: 'status attempt zero',
      kind: 'Restore',
      manifest: { ...(restore({ source: { backupName: 'b' } }) as object), status: { attempt: 0 } },
      field: 'status.attempt',
      problem: />= 1/,
    },
    {
      name: 'status time not RFC 3339',
      kind: 'Restore',
      manifest: {
        ...(restore({ source: { backupName: 'b' } }) as object),
        status: { startedAt: 'yesterday' },
      },
      field: 'status.startedAt',
      problem: /date-time/,
    },
    {
      name: 'condition with a negative observedGeneration',
      kind: 'Restore',
      manifest: {
        ...(restore({ source: { backupName: 'b' } }) as object),
        status: {
          conditions: [
            {
              type: 'Ready',
              status: 'True',
              reason: 'R',
              message: '',
              lastTransitionTime: '2025-01-01T00:00:00Z',
              observedGeneration: -1,
            },
          ],
        },
      },
      field: 'status.conditions.0.observedGeneration',
      problem: />= 0/,
    },
    {
      name: 'Backup without spec',
      kind: 'Backup',
      manifest: backup(undefined),
      field: '(root)',
      problem: /'spec'/,
    },
    {
      name: 'Backup without deployment',
      kind: 'Backup',
      manifest: backup({}),
      field: 'spec',
      problem: /'deployment'/,
    },
    {
      name: 'deployment without name',
      kind: 'Backup',
      manifest: backup({ deployment: { kind: 'StatefulSet' } }),
      field: 'spec.deployment',
      problem: /'name'/,
    },
    {
      name: 'unsupported deployment kind',
      kind: 'Backup',
      manifest: backup({ deployment: { kind: 'Deployment', name: 'pg' } }),
      field: 'spec.deployment.kind',
      problem: /allowed values/,
    },
    {
      name: 'unsupported deployment apiVersion',
      kind: 'Backup',
      manifest: backup({ deployment: { apiVersion: 'apps/v2', name: 'pg' } }),
      field: 'spec.deployment.apiVersion',
      problem: /allowed values/,
    },
    {
      name: 'deployment name starting with a dash',
      kind: 'Backup',
      manifest: backup({ deployment: { name: '-pg' } }),
      field: 'spec.deployment.name',
      problem: /pattern/,
    },
    {
      name: 'volumeSnapshotClassName of the wrong type',
      kind: 'Backup',
      manifest: backup({ deployment: { name: 'pg' }, volumeSnapshotClassName: true }),
      field: 'spec.volumeSnapshotClassName',
      problem: /string/,
    },
    {
      name: 'an unknown deployment field',
      kind: 'Backup',
      manifest: backup({ deployment: { name: 'pg', namespace: 'other' } }),
      field: 'spec.deployment.namespace',
      problem: /unknown field/,
    },
    {
      name: 'status volume without pvcName',
      kind: 'Backup',
      manifest: {
        ...(backup({ deployment: { name: 'pg' } }) as object),
        status: { volumes: [{ volumeSnapshotName: 's' }] },
      },
      field: 'status.volumes.0',
      problem: /'pvcName'/,
    },
  ])('$kind: $name is rejected, naming $field', ({ kind, manifest, field, problem }) => {
    const result = validatorFor(kind)(manifest);
    expect(result.valid).toBe(false);
    const naming = result.errors.filter((error) => error.startsWith(`${field}: `));
    expect({ errors: result.errors, naming: naming.some((error) => problem.test(error)) }).toEqual({
      errors: result.errors,
      naming: true,
    });
  });

  it('reports every problem of a manifest at once', () => {
    const result = validatorFor('Restore')(
      restore({ source: { backupName: 'Bad_Name' }, destination: { deploymentName: 'x'.repeat(60) } }),
    );
    expect(result.errors.filter((e) => e.startsWith('spec.source.backupName: '))).toHaveLength(1);
    expect(
      result.errors.filter((e) => e.startsWith('spec.destination.deploymentName: ')).length,
    ).toBeGreaterThan(0);
  });
});

describe('invalid BackupSchedules', () => {
  const schedule = (spec: Record<string, unknown>): unknown => ({
    apiVersion: 'snapback.dev/v1alpha1',
    kind: 'BackupSchedule',
    metadata: { name: 's', namespace: 'demo' },
    spec: { schedule: '0 2 * * *', template: { deployment: { name: 'pg' } }, ...spec },
  });

  it.each<{ name: string; spec: Record<string, unknown>; field: string; problem: RegExp }>([
    {
      name: 'a schedule of 4 fields',
      spec: { schedule: '0 2 * *' },
      field: 'spec.schedule',
      problem: /pattern/,
    },
    {
      name: 'a schedule of 7 fields',
      spec: { schedule: '0 0 2 * * * *' },
      field: 'spec.schedule',
      problem: /pattern/,
    },
    {
      name: 'a TZ= prefix',
      spec: { schedule: 'TZ=UTC 0 2 * * *' },
      field: 'spec.schedule',
      problem: /pattern/,
    },
    {
      name: 'a time zone with spaces',
      spec: { timeZone: 'Central Europe' },
      field: 'spec.timeZone',
      problem: /pattern/,
    },
    {
      name: 'keepLast 0',
      spec: { retention: { keepLast: 0 } },
      field: 'spec.retention.keepLast',
      problem: />= 1/,
    },
    {
      name: 'negative keepDaily',
      spec: { retention: { keepDaily: -1 } },
      field: 'spec.retention.keepDaily',
      problem: />= 0/,
    },
    {
      name: 'startingDeadlineSeconds 0',
      spec: { startingDeadlineSeconds: 0 },
      field: 'spec.startingDeadlineSeconds',
      problem: />= 1/,
    },
    {
      name: 'a template without deployment',
      spec: { template: {} },
      field: 'spec.template',
      problem: /'deployment'/,
    },
    {
      name: 'a template setting syncedFrom',
      spec: {
        template: { deployment: { name: 'pg' }, syncedFrom: { cluster: 'a', namespace: 'b', name: 'c' } },
      },
      field: 'spec.template.syncedFrom',
      problem: /unknown field/,
    },
  ])('$name is rejected, naming $field', ({ spec, field, problem }) => {
    const result = validatorFor('BackupSchedule')(schedule(spec));
    expect(result.valid).toBe(false);
    expect(result.errors.some((error) => error.startsWith(`${field}: `) && problem.test(error))).toBe(true);
  });

  it.each(['@daily', '*/2 * * * * *', 'H 2 * * MON-FRI', '0 0 L * ?'])(
    '%s passes the schema',
    (expression) => {
      expect(validatorFor('BackupSchedule')(schedule({ schedule: expression }))).toEqual({
        valid: true,
        errors: [],
      });
    },
  );
});
