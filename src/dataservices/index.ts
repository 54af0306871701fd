import type { DataServiceAdapter } from './adapter.js';
import { statefulSetAdapter } from './statefulset.js';

const adapters: readonly DataServiceAdapter[] = [statefulSetAdapter];

/** The adapter for a deployment kind, or undefined when Snapback cannot handle that kind. */
export function adapterFor(kind: string | undefined): DataServiceAdapter | undefined {
  return adapters.find((adapter) => adapter.kind === (kind ?? 'StatefulSet'));
}
