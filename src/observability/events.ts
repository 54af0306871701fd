// Kubernetes Events for what users watch with `kubectl describe` and `kubectl get events`.

import type { Event, KubeObject } from '../api/kubernetes.js';
import { shortHash } from '../naming.js';
import type { KubeClient } from '../runtime/kube-client.js';
import { isAlreadyExists } from '../runtime/errors.js';
import { apiVersionOf, resources, type ResourceType } from '../runtime/resources.js';

export class EventRecorder {
  constructor(
    private readonly client: KubeClient,
    private readonly component: string,
    private readonly instance: string,
    private readonly onError: (err: unknown) => void,
  ) {}

  /**
   * Records an event once per `occurrence` (for example the attempt and phase it reports): the
   * name is derived from it, so a restarted operator repeating a step does not repeat the event.
   */
  async record(
    rt: ResourceType,
    target: KubeObject,
    type: Event['type'],
    reason: string,
    message: string,
    occurrence: string,
  ): Promise<void> {
    const now = new Date().toISOString();
    const name = `${target.metadata.name ?? ''}.${shortHash([target.metadata.uid ?? '', occurrence], 10)}`;
    const event: Event = {
      metadata: { name, namespace: target.metadata.namespace ?? 'default' },
      involvedObject: {
        apiVersion: apiVersionOf(rt),
        kind: rt.kind,
        name: target.metadata.name ?? '',
        ...(target.metadata.namespace === undefined ? {} : { namespace: target.metadata.namespace }),
        uid: target.metadata.uid ?? '',
      },
      reason,
      message: message.slice(0, 1024),
      type,
      source: { component: this.component },
      reportingComponent: this.component,
      reportingInstance: this.instance,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
    try {
      await this.client.create(resources.events, event);
    } catch (err) {
      // Events are best effort: losing one must never stop a reconcile.
      if (!isAlreadyExists(err)) this.onError(err);
    }
  }
}
