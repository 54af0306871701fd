// Renders everything generated from src/api/crds.ts: the CRD manifests and the TypeScript types.
// scripts/generate.ts writes the files; test/unit/api/drift.test.ts checks they are current.

import { dump } from 'js-yaml';
import { format, resolveConfig } from 'prettier';
import { API_VERSION, GROUP, VERSION } from '../src/api/constants.js';
import { CATEGORY, CRDS, crdName, type CustomResourceDefinitionSource } from '../src/api/crds.js';
import type { JSONSchemaProps } from '../src/api/schema.js';

const HEADER = 'Generated from src/api/crds.ts by `npm run generate`. Do not edit.';

/** Types defined by hand in src/api/kubernetes.ts that generated code refers to by name. */
const EXTERNAL_TYPES = new Set(['Condition']);

/** Drops what is ours only (titles name TypeScript types) from a schema, recursively. */
function crdSchema(schema: JSONSchemaProps): JSONSchemaProps {
  const { title: _title, properties, items, additionalProperties, ...rest } = schema;
  const out: JSONSchemaProps = { ...rest };
  if (properties !== undefined) {
    out.properties = Object.fromEntries(Object.entries(properties).map(([k, v]) => [k, crdSchema(v)]));
  }
  if (items !== undefined) out.items = crdSchema(items);
  if (additionalProperties !== undefined) out.additionalProperties = crdSchema(additionalProperties);
  return out;
}

export function crdManifest(
  crd: CustomResourceDefinitionSource,
  annotations?: Record<string, string>,
): Record<string, unknown> {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: crdName(crd),
      labels: { 'app.kubernetes.io/part-of': 'snapback' },
      ...(annotations === undefined ? {} : { annotations }),
    },
    spec: {
      group: GROUP,
      names: {
        kind: crd.kind,
        listKind: `${crd.kind}List`,
        plural: crd.plural,
        singular: crd.singular,
        shortNames: [...crd.shortNames],
        categories: [CATEGORY],
      },
      scope: crd.scope,
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: crd.printerColumns,
          ...(crd.selectableFields.length === 0
            ? {}
            : { selectableFields: crd.selectableFields.map((jsonPath) => ({ jsonPath })) }),
          schema: { openAPIV3Schema: { ...crdSchema(crd.schema), description: crd.description } },
        },
      ],
    },
  };
}

export function renderCrdYaml(crd: CustomResourceDefinitionSource): string {
  return `# ${HEADER}\n${dump(crdManifest(crd), { lineWidth: -1, noRefs: true, sortKeys: false })}`;
}

/**
 * What keeps the chart's CRDs, and with them every Backup and Restore, when the release goes: Helm's
 * policy for `helm uninstall`, and Argo CD's sync options (Argo CD does not read Helm's) for the
 * deletion of its Application and for a prune, say after crds.install is turned off.
 */
const KEEP_ANNOTATIONS = {
  'helm.sh/resource-policy': 'keep',
  'argocd.argoproj.io/sync-options': 'Delete=false,Prune=false',
};

/**
 * The Helm chart's copy of a CRD: a template (Helm's crds/ folder is install-only, so `helm
 * upgrade` would never change a CRD there), switched by crds.install and kept by crds.keep.
 */
export function renderChartCrdTemplate(crd: CustomResourceDefinitionSource): string {
  const annotations = Object.entries(KEEP_ANNOTATIONS)
    .map(([key, value]) => `    ${key}: ${value}\n`)
    .join('');
  const yaml = dump(crdManifest(crd, KEEP_ANNOTATIONS), {
    lineWidth: -1,
    noRefs: true,
    sortKeys: false,
  }).replace(
    `  annotations:\n${annotations}`,
    `  {{- if .Values.crds.keep }}\n  annotations:\n${annotations}  {{- end }}\n`,
  );
  return `# ${HEADER}\n{{- if .Values.crds.install }}\n${yaml}{{- end }}\n`;
}

// --- TypeScript types ----------------------------------------------------------------------------

class TypeEmitter {
  private readonly named = new Map<string, { source: string; shape: string }>();

  constructor(private readonly context: string) {}

  /** The TypeScript type expression for a schema, emitting named declarations on the way. */
  typeOf(schema: JSONSchemaProps, path: string): string {
    const expression = this.anonymousType(schema, path);
    if (schema.title === undefined) return expression;
    if (EXTERNAL_TYPES.has(schema.title)) return schema.title;
    this.declare(schema, expression);
    return schema.title;
  }

  declarations(): string[] {
    return [...this.named.values()].map((entry) => entry.source);
  }

  private declare(schema: JSONSchemaProps, expression: string): void {
    const title = schema.title ?? '';
    const shape = JSON.stringify(structureOf(schema));
    const existing = this.named.get(title);
    if (existing !== undefined) {
      if (existing.shape !== shape) {
        throw new Error(`${this.context}: two different schemas are both titled ${title}`);
      }
      return;
    }
    const doc = docComment(schema.description, '');
    const isInterface = schema.type === 'object' && schema.properties !== undefined;
    const source = isInterface
      ? `${doc}export interface ${title} ${expression}`
      : `${doc}export type ${title} = ${expression};`;
    this.named.set(title, { source, shape });
  }

  private anonymousType(schema: JSONSchemaProps, path: string): string {
    if (schema.enum !== undefined) return schema.enum.map((value) => JSON.stringify(value)).join(' | ');
    switch (schema.type) {
      case 'string':
        return 'string';
      case 'integer':
      case 'number':
        return 'number';
      case 'boolean':
        return 'boolean';
      case 'array':
        return `${wrap(this.typeOf(schema.items ?? {}, `${path}[]`))}[]`;
      case 'object':
      case undefined:
        return this.objectType(schema, path);
    }
  }

  private objectType(schema: JSONSchemaProps, path: string): string {
    if (schema.properties === undefined) {
      if (schema.additionalProperties !== undefined) {
        return `Record<string, ${this.typeOf(schema.additionalProperties, `${path}{}`)}>`;
      }
      return 'Record<string, unknown>';
    }
    const required = new Set(schema.required ?? []);
    const fields = Object.entries(schema.properties).map(([name, property]) => {
      const optional = required.has(name) ? '' : '?';
      return `${docComment(property.description, '  ')}  ${name}${optional}: ${this.typeOf(property, `${path}.${name}`)};`;
    });
    return `{\n${fields.join('\n')}\n}`;
  }
}

/** A schema without its descriptions: two uses of one titled type must agree on this. */
function structureOf(schema: JSONSchemaProps): unknown {
  const { description: _description, properties, items, additionalProperties, ...rest } = schema;
  return {
    ...rest,
    properties:
      properties === undefined
        ? undefined
        : Object.fromEntries(Object.entries(properties).map(([k, v]) => [k, structureOf(v)])),
    items: items === undefined ? undefined : structureOf(items),
    additionalProperties: additionalProperties === undefined ? undefined : structureOf(additionalProperties),
  };
}

const wrap = (type: string): string => (type.includes('|') ? `(${type})` : type);

function docComment(description: string | undefined, indent: string): string {
  if (description === undefined || description === '') return '';
  return `${indent}/** ${description.replaceAll('*/', '*\\/')} */\n`;
}

function resourceInterface(crd: CustomResourceDefinitionSource, emitter: TypeEmitter): string {
  const properties = crd.schema.properties ?? {};
  const required = new Set(crd.schema.required ?? []);
  const fields = ['spec', 'status']
    .filter((name) => properties[name] !== undefined)
    .map((name) => {
      const schema = properties[name] ?? {};
      const type = emitter.typeOf(schema, `${crd.kind}.${name}`);
      return `  ${name}${required.has(name) ? '' : '?'}: ${type};`;
    });
  return [
    `/** ${crd.description} */`,
    `export interface ${crd.kind} extends KubeObject {`,
    `  apiVersion?: '${API_VERSION}';`,
    `  kind?: '${crd.kind}';`,
    `  metadata: ObjectMeta;`,
    ...fields,
    '}',
  ].join('\n');
}

export async function renderTypes(): Promise<string> {
  const emitter = new TypeEmitter('src/api/crds.ts');
  const resources = CRDS.map((crd) => resourceInterface(crd, emitter));
  const source = [
    `// ${HEADER}`,
    '',
    "import type { Condition, KubeObject, ObjectMeta } from '../kubernetes.js';",
    '',
    ...resources.flatMap((r) => [r, '']),
    ...emitter.declarations().flatMap((d) => [d, '']),
  ].join('\n');
  const config = (await resolveConfig('src/api/generated/types.ts')) ?? {};
  return format(source, { ...config, parser: 'typescript' });
}

/** Every generated file, by its path from the repository root. */
export async function generatedFiles(): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (const crd of CRDS) {
    files.set(`crds/${crdName(crd)}.yaml`, renderCrdYaml(crd));
    files.set(`charts/snapback/templates/crds/${crdName(crd)}.yaml`, renderChartCrdTemplate(crd));
  }
  // kustomize will not read files outside a base's folder: deploy/base gets the CRDs as one file.
  files.set('deploy/base/crds.yaml', CRDS.map(renderCrdYaml).join('---\n'));
  files.set('src/api/generated/types.ts', await renderTypes());
  return files;
}
