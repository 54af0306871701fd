// Capabilities: what a backup offers and what an image needs, matched by the RestorabilityMatrix.

import { annotations } from '../api/constants.js';
import type { Capabilities, RestorabilityCondition, RestorabilityMatrix } from '../api/generated/types.js';
import type { KubeObject } from '../api/kubernetes.js';

/** Parses the snapback.dev/image-capabilities annotation: "pds_restore=v1, other=v2". */
export function parseCapabilities(value: string | undefined): Capabilities {
  const capabilities: Capabilities = {};
  for (const entry of (value ?? '').split(',')) {
    const [key, ...rest] = entry.split('=');
    const name = key?.trim() ?? '';
    if (name !== '') capabilities[name] = rest.join('=').trim();
  }
  return capabilities;
}

export const imageCapabilitiesOf = (object: KubeObject): Capabilities =>
  parseCapabilities(object.metadata.annotations?.[annotations.imageCapabilities]);

const formatCapabilities = (capabilities: Capabilities): string =>
  Object.keys(capabilities).length === 0
    ? '{}'
    : `{${Object.entries(capabilities)
        .map(([key, value]) => `${key}: ${value}`)
        .join(', ')}}`;

const satisfies = (have: Capabilities, need: Capabilities | undefined): boolean =>
  Object.entries(need ?? {}).every(([key, value]) => have[key] === value);

export interface RestorabilityVerdict {
  compatible: boolean;
  /** Why, in words a person can act on. */
  reason: string;
}

/**
 * PDS GetRestorabilityMatrix semantics: a backup is restorable when its capabilities and the
 * target image's capabilities satisfy one condition listed for its data service. A data service
 * the matrix does not list is allowed, unless `strict`.
 */
export function evaluateRestorability(input: {
  matrix: RestorabilityMatrix | undefined;
  dataServiceName: string | undefined;
  backupCapabilities: Capabilities;
  imageCapabilities: Capabilities;
  strict: boolean;
}): RestorabilityVerdict {
  const name = input.dataServiceName ?? '';
  const entry = input.matrix?.spec?.dataServices?.find((service) => service.name === name);
  if (entry === undefined) {
    return input.strict
      ? {
          compatible: false,
          reason: `data service "${name}" is not listed in RestorabilityMatrix "default" and the operator runs in strict mode; add it to the matrix or turn strict mode off`,
        }
      : { compatible: true, reason: `data service "${name}" is not listed in the matrix; allowed` };
  }
  const match = entry.conditions.findIndex(
    (condition) =>
      satisfies(input.backupCapabilities, condition.backupCapabilities) &&
      satisfies(input.imageCapabilities, condition.imageCapabilities),
  );
  if (match >= 0) return { compatible: true, reason: `satisfies condition ${match + 1} for "${name}"` };
  return {
    compatible: false,
    reason: `backup capabilities ${formatCapabilities(input.backupCapabilities)} with image capabilities ${formatCapabilities(input.imageCapabilities)} satisfy none of the ${entry.conditions.length} conditions for data service "${name}" in RestorabilityMatrix "default"${accepted(entry.conditions)}`,
  };
}

/** Conditions listed in a refusal; the rest are counted, to keep the reason a readable size. */
const LISTED_CONDITIONS = 5;

/** What the matrix would accept instead, so the reader sees which side to change. */
function accepted(conditions: readonly RestorabilityCondition[]): string {
  if (conditions.length === 0) return ', which accepts nothing';
  const listed = conditions
    .slice(0, LISTED_CONDITIONS)
    .map(
      (condition) =>
        `backup ${formatCapabilities(condition.backupCapabilities ?? {})} with image ${formatCapabilities(condition.imageCapabilities ?? {})}`,
    );
  const rest = conditions.length - listed.length;
  return `, which accepts: ${listed.join('; ')}${rest > 0 ? `; and ${rest} more` : ''}`;
}
