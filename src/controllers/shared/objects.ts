import { labels } from '../../api/constants.js';
import type { KubeObject } from '../../api/kubernetes.js';
import type { ObjectClient } from '../../runtime/client.js';
import { isAlreadyExists } from '../../runtime/errors.js';
import type { ResourceType } from '../../runtime/resources.js';

export type EnsureResult<T> = { outcome: 'created' | 'found'; object: T } | { outcome: 'taken'; object: T };

/**
 * Creates an object with a deterministic name. If it exists already it is ours when it carries
 * the same value of `ownerLabel` (a restart repeating a step), otherwise the name is taken.
 */
export async function ensureCreated<T extends KubeObject>(
  client: ObjectClient,
  rt: ResourceType<T>,
  object: T,
  ownerLabel: string = labels.restoreAttempt,
): Promise<EnsureResult<T>> {
  try {
    return { outcome: 'created', object: await client.create(rt, object) };
  } catch (err) {
    if (!isAlreadyExists(err)) throw err;
  }
  const existing = await client.get(rt, object.metadata.name ?? '', object.metadata.namespace);
  if (existing === undefined)
    throw new Error(`${rt.kind} ${object.metadata.name ?? ''} vanished while being created`);
  const ours = existing.metadata.labels?.[ownerLabel] === object.metadata.labels?.[ownerLabel];
  return { outcome: ours ? 'found' : 'taken', object: existing };
}

/**
 * ensureCreated for a step that cannot go on when the name is taken: why not, naming the object,
 * or undefined when it was created or found.
 */
export async function createdUnlessTaken<T extends KubeObject>(
  client: ObjectClient,
  rt: ResourceType<T>,
  object: T,
  ownerLabel?: string,
): Promise<string | undefined> {
  const { outcome } = await ensureCreated(client, rt, object, ownerLabel);
  if (outcome !== 'taken') return undefined;
  const { namespace, name = '' } = object.metadata;
  return `${rt.kind} ${namespace === undefined ? '' : `${namespace}/`}${name} exists and belongs to something else; nothing of it was changed`;
}
