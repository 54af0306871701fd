// The subset of the apiextensions.k8s.io/v1 JSONSchemaProps that Snapback's CRDs use, and small
// builders that keep the resource definitions in crds.ts short and uniform.

export interface ValidationRule {
  rule: string;
  message: string;
  fieldPath?: string;
  reason?: 'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired' | 'FieldValueDuplicate';
}

export interface JSONSchemaProps {
  /** The name of the generated TypeScript type; stripped from the CRD YAML. */
  title?: string;
  description?: string;
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  format?: string;
  enum?: readonly string[];
  default?: unknown;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  maxItems?: number;
  maxProperties?: number;
  properties?: Record<string, JSONSchemaProps>;
  required?: readonly string[];
  additionalProperties?: JSONSchemaProps;
  items?: JSONSchemaProps;
  nullable?: boolean;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-embedded-resource'?: boolean;
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: readonly string[];
  'x-kubernetes-map-type'?: 'atomic' | 'granular';
  'x-kubernetes-validations'?: readonly ValidationRule[];
}

type Extra = Omit<JSONSchemaProps, 'type' | 'properties' | 'required'>;

/** RFC 1123 label: what Kubernetes requires of namespace and most object names. */
export const DNS1123_LABEL = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$';
/** RFC 1123 subdomain: what Kubernetes requires of most other object names. */
export const DNS1123_SUBDOMAIN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';

export const string = (description: string, extra: Extra = {}): JSONSchemaProps => ({
  type: 'string',
  description,
  ...extra,
});

export const dateTime = (description: string): JSONSchemaProps =>
  string(description, { format: 'date-time' });

export const integer = (description: string, extra: Extra = {}): JSONSchemaProps => ({
  type: 'integer',
  format: 'int64',
  description,
  ...extra,
});

export const boolean = (description: string, extra: Extra = {}): JSONSchemaProps => ({
  type: 'boolean',
  description,
  ...extra,
});

export const enumeration = (
  description: string,
  values: readonly string[],
  extra: Extra = {},
): JSONSchemaProps => ({
  type: 'string',
  description,
  enum: values,
  ...extra,
});

export const dnsLabel = (description: string, maxLength = 63): JSONSchemaProps =>
  string(description, { minLength: 1, maxLength, pattern: DNS1123_LABEL });

export const dnsSubdomain = (description: string): JSONSchemaProps =>
  string(description, { minLength: 1, maxLength: 253, pattern: DNS1123_SUBDOMAIN });

export const object = (
  description: string,
  properties: Record<string, JSONSchemaProps>,
  extra: Extra & { required?: readonly string[] } = {},
): JSONSchemaProps => {
  const { required, ...rest } = extra;
  return {
    type: 'object',
    description,
    properties,
    ...(required === undefined || required.length === 0 ? {} : { required }),
    ...rest,
  };
};

export const array = (description: string, items: JSONSchemaProps, extra: Extra = {}): JSONSchemaProps => ({
  type: 'array',
  description,
  items,
  ...extra,
});

export const stringMap = (description: string, extra: Extra = {}): JSONSchemaProps => ({
  type: 'object',
  description,
  additionalProperties: { type: 'string' },
  ...extra,
});

/** An object whose content Kubernetes validates elsewhere (a pod affinity, a whole manifest). */
export const freeform = (description: string): JSONSchemaProps => ({
  type: 'object',
  description,
  'x-kubernetes-preserve-unknown-fields': true,
});

/** metav1.Condition, as the Kubernetes API conventions define it. */
export const conditions = (description: string): JSONSchemaProps =>
  array(
    description,
    object(
      'Condition is one aspect of the current state of the resource.',
      {
        type: string('Type of the condition, in CamelCase.', { maxLength: 316 }),
        status: enumeration('Status of the condition.', ['True', 'False', 'Unknown']),
        reason: string('Reason is a CamelCase word for the last transition.', { maxLength: 1024 }),
        message: string('Message is a human readable explanation of the last transition.', {
          maxLength: 32768,
        }),
        lastTransitionTime: dateTime('When the condition last changed status.'),
        observedGeneration: integer('The metadata.generation the condition was set for.', { minimum: 0 }),
      },
      { required: ['type', 'status', 'reason', 'message', 'lastTransitionTime'], title: 'Condition' },
    ),
    { 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] },
  );
