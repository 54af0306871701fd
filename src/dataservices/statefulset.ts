// The StatefulSet adapter. PVCs are <template>-<name>-<ordinal>; restore mode runs one replica
// annotated snapback.dev/mode=restore; normal mode brings back the backed-up replica count.

import { annotations } from '../api/constants.js';
import type { ObjectMeta, PersistentVolumeClaimSpec, PodSpec, StatefulSet } from '../api/kubernetes.js';
import { resources } from '../runtime/resources.js';
import type { DataServiceAdapter, DeploymentMode, Health, RestoreTarget, VolumePlan } from './adapter.js';
import { mergeLabels, renameLabelValues, sanitize, type Manifest } from './manifest.js';

const RESTORE_MODE_REPLICAS = 1;

const asStatefulSet = (manifest: Manifest): StatefulSet => manifest as unknown as StatefulSet;

function claimTemplates(sts: StatefulSet) {
  return sts.spec.volumeClaimTemplates ?? [];
}

function templateName(template: { metadata: { name?: string } }): string {
  return template.metadata.name ?? '';
}

function onlyNameAndLabels({ name, labels, annotations }: ObjectMeta): ObjectMeta {
  return {
    ...(name === undefined ? {} : { name }),
    ...(labels === undefined ? {} : { labels }),
    ...(annotations === undefined ? {} : { annotations }),
  };
}

function withScheduling(spec: PodSpec | undefined, target: RestoreTarget): PodSpec | undefined {
  const scheduling = target.scheduling;
  if (spec === undefined || scheduling === undefined) return spec;
  const next: PodSpec = { ...spec };
  if (scheduling.nodeSelector !== undefined) next.nodeSelector = scheduling.nodeSelector;
  if (scheduling.tolerations !== undefined) next.tolerations = scheduling.tolerations;
  if (scheduling.affinity !== undefined) next.affinity = scheduling.affinity;
  if (scheduling.topologySpreadConstraints !== undefined) {
    next.topologySpreadConstraints = scheduling.topologySpreadConstraints;
  }
  return next;
}

export const statefulSetAdapter: DataServiceAdapter<StatefulSet> = {
  kind: 'StatefulSet',
  resource: resources.statefulSets,

  volumeClaimNames(sts) {
    const name = sts.metadata.name ?? '';
    const replicas = sts.spec.replicas ?? 1;
    return Array.from({ length: replicas }, (_, ordinal) =>
      claimTemplates(sts).map((template) => `${templateName(template)}-${name}-${ordinal}`),
    ).flat();
  },

  capture(sts) {
    return sanitize(sts);
  },

  replicas(manifest) {
    return asStatefulSet(manifest).spec.replicas ?? 1;
  },

  image(manifest) {
    return asStatefulSet(manifest).spec.template.spec?.containers[0]?.image;
  },

  planVolumes(manifest, sourcePvcNames, destinationName) {
    const sts = asStatefulSet(manifest);
    const sourceName = sts.metadata.name ?? '';
    const plans: VolumePlan[] = [];
    for (const sourcePvcName of sourcePvcNames) {
      for (const template of claimTemplates(sts)) {
        const prefix = `${templateName(template)}-${sourceName}-`;
        const ordinal = sourcePvcName.slice(prefix.length);
        if (!sourcePvcName.startsWith(prefix) || !/^\d+$/.test(ordinal)) continue;
        const claim: PersistentVolumeClaimSpec = {
          accessModes: template.spec.accessModes,
          storageClassName: template.spec.storageClassName,
          volumeMode: template.spec.volumeMode,
          resources: template.spec.resources,
        };
        plans.push({
          sourcePvcName,
          pvcName: `${templateName(template)}-${destinationName}-${ordinal}`,
          claim,
        });
        break;
      }
    }
    return plans;
  },

  render(manifest, target) {
    const source = asStatefulSet(manifest);
    const sourceName = source.metadata.name ?? '';
    const rename = (labels: Record<string, string> | undefined) =>
      renameLabelValues(labels, sourceName, target.name);
    const template = source.spec.template;
    // Of the recorded metadata only labels and annotations are carried over: finalizers or owner
    // references in a record would block the cleanup or hand the restored deployment to the GC.
    return {
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: {
        name: target.name,
        namespace: target.namespace,
        labels: mergeLabels(rename(source.metadata.labels), target.labels),
        annotations: { ...source.metadata.annotations, [annotations.mode]: 'restore' },
      },
      spec: {
        ...source.spec,
        replicas: RESTORE_MODE_REPLICAS,
        serviceName: source.spec.serviceName === sourceName ? target.name : source.spec.serviceName,
        selector: { ...source.spec.selector, matchLabels: rename(source.spec.selector.matchLabels) },
        template: {
          ...template,
          metadata: {
            // The pods carry the bookkeeping labels too: the operator caches them by these alone.
            labels: mergeLabels(rename(template.metadata?.labels), target.labels),
            annotations: { ...template.metadata?.annotations, [annotations.mode]: 'restore' },
          },
          spec: withScheduling(template.spec, target),
        },
        ...(source.spec.volumeClaimTemplates === undefined
          ? {}
          : {
              volumeClaimTemplates: source.spec.volumeClaimTemplates.map((claim) => ({
                ...claim,
                metadata: onlyNameAndLabels(claim.metadata),
              })),
            }),
      },
    };
  },

  mode(sts): DeploymentMode | undefined {
    const mode = sts.metadata.annotations?.[annotations.mode];
    return mode === 'restore' || mode === 'normal' ? mode : undefined;
  },

  normalModePatch(manifest) {
    const mode = { [annotations.mode]: 'normal' };
    return {
      metadata: { annotations: mode },
      spec: {
        replicas: statefulSetAdapter.replicas(manifest),
        template: { metadata: { annotations: mode } },
      },
    };
  },

  health(sts): Health {
    const want = sts.spec.replicas ?? 1;
    const status = sts.status ?? {};
    if ((status.observedGeneration ?? 0) < (sts.metadata.generation ?? 0)) {
      return { healthy: false, message: 'the StatefulSet controller has not observed the latest spec yet' };
    }
    const ready = status.readyReplicas ?? 0;
    const updated = status.updatedReplicas ?? 0;
    if (ready !== want || updated !== want || (status.replicas ?? 0) !== want) {
      return { healthy: false, message: `${ready}/${want} replicas ready, ${updated}/${want} updated` };
    }
    if (status.updateRevision !== undefined && status.currentRevision !== status.updateRevision) {
      return { healthy: false, message: 'a rolling update is still in progress' };
    }
    return { healthy: true, message: `${ready}/${want} replicas ready` };
  },
};
