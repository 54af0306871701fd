// ajv validators compiled from the same schemas the CRDs are generated from, for what does not
// pass through the API server: operator configuration, examples, and manifests checked offline.
// CEL rules (x-kubernetes-validations) are enforced by the API server only.

import { Ajv, type ErrorObject } from 'ajv';
import type { JSONSchemaProps } from './schema.js';

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i;

const KUBERNETES_KEYWORDS = [
  'x-kubernetes-preserve-unknown-fields',
  'x-kubernetes-embedded-resource',
  'x-kubernetes-list-type',
  'x-kubernetes-list-map-keys',
  'x-kubernetes-map-type',
  'x-kubernetes-validations',
];

export interface ValidationResult {
  valid: boolean;
  /** One line per problem, each naming the field, e.g. "spec.source: must have required property 'backupName'". */
  errors: string[];
}

export type Validator = (value: unknown) => ValidationResult;

const ajv = new Ajv({ allErrors: true, strict: true, strictTypes: false });
for (const keyword of KUBERNETES_KEYWORDS) ajv.addKeyword({ keyword });
ajv.addFormat('date-time', RFC3339);
ajv.addFormat('int64', { type: 'number', validate: (n: number) => Number.isSafeInteger(n) });

function describe(error: ErrorObject): string {
  const path = error.instancePath.replace(/^\//, '').replaceAll('/', '.');
  // ajv reports an unknown key at its parent; name the key itself, as the API server does.
  const unknown = (error.params as { additionalProperty?: unknown }).additionalProperty;
  if (error.keyword === 'additionalProperties' && typeof unknown === 'string') {
    return `${path === '' ? unknown : `${path}.${unknown}`}: unknown field`;
  }
  return `${path === '' ? '(root)' : path}: ${error.message ?? 'is invalid'}`;
}

/** Kubernetes treats a schema without additionalProperties as closed (unknown fields are pruned); so do we. */
function closed(schema: JSONSchemaProps): object {
  const { properties, items, additionalProperties, ...rest } = schema;
  const out: Record<string, unknown> = { ...rest };
  if (properties !== undefined) {
    out.properties = Object.fromEntries(Object.entries(properties).map(([k, v]) => [k, closed(v)]));
    if (schema['x-kubernetes-preserve-unknown-fields'] !== true) out.additionalProperties = false;
  }
  // The API server requires these of an embedded object, whatever its schema says.
  if (schema['x-kubernetes-embedded-resource'] === true) {
    const properties = (out.properties ?? {}) as Record<string, unknown>;
    out.properties = { apiVersion: { type: 'string' }, kind: { type: 'string' }, ...properties };
    out.required = [...new Set([...(schema.required ?? []), 'apiVersion', 'kind'])];
  }
  if (items !== undefined) out.items = closed(items);
  if (additionalProperties !== undefined) out.additionalProperties = closed(additionalProperties);
  return out;
}

export function compileValidator(schema: JSONSchemaProps): Validator {
  const validate = ajv.compile(closed(schema));
  return (value) =>
    validate(value)
      ? { valid: true, errors: [] }
      : { valid: false, errors: (validate.errors ?? []).map(describe) };
}
