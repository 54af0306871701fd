// The Restore controller's wiring: its indexes, what wakes a restore, and its reconciler.

import { labels } from '../../api/constants.js';
import type { RestorePhase } from '../../api/generated/types.js';
import { dependency, keyOf, labelledOwner, type SetupContext } from '../setup.js';
import { grantsByNamespace } from './grants.js';
import { byAttempt, eventsByInvolvedObject, restoresByBackup, restoresByPhase } from './indexes.js';
import type { RestoreObserver } from '../../observability/operator-metrics.js';
import { restoreReconciler } from './reconciler.js';
import { ConcurrencySlots, waitingForSlotByNamespace } from './slots.js';
import { isTerminal } from './transitions.js';

export function setupRestoreController(setup: SetupContext, observer: RestoreObserver): void {
  const {
    restores,
    backups,
    claims,
    pods,
    statefulSets,
    snapshots,
    contents,
    events,
    storageClasses,
    referenceGrants,
    movers,
  } = setup.informers;
  // A scan of every restore per event would make the first sync of a large cache quadratic
  // (`make bench`: 4 minutes for 100k objects, the lease lost meanwhile); the index makes it linear.
  restores.addIndex(restoresByPhase);
  restores.addIndex(restoresByBackup);
  restores.addIndex(waitingForSlotByNamespace);
  for (const informer of [claims, pods, statefulSets, snapshots, contents] as const)
    informer.addIndex(byAttempt);
  events.addIndex(eventsByInvolvedObject);
  referenceGrants.addIndex(grantsByNamespace);

  const config = setup.config;
  const reconcile = restoreReconciler(
    {
      client: setup.client,
      // Informers are caches: the steps read the ones RestoreCaches names.
      cache: setup.informers,
      config: config.restore,
      slots: new ConcurrencySlots(restores, () => ({
        total: config.restore.maxConcurrentRestores,
        perNamespace: config.restore.maxConcurrentRestoresPerNamespace,
      })),
      namespace: config.namespace,
      mover: config.mover,
      now: setup.now,
    },
    setup.recorder,
    setup.logger.child({ controller: 'restore' }),
    observer,
  );
  const restoresIn = (phase: RestorePhase): string[] =>
    restores
      .byIndex(restoresByPhase, phase)
      .map((restore) => keyOf(restore.metadata.namespace, restore.metadata.name));

  setup.manager.controller({
    name: 'restore',
    reconcile,
    primary: restores,
    workers: config.workers,
    watches: [
      // The mover's claims and pods, in the operator's namespace, name the restore's namespace.
      dependency(claims, labelledOwner(labels.restore, labels.restoreNamespace)),
      dependency(movers, labelledOwner(labels.restore, labels.restoreNamespace)),
      dependency(statefulSets, labelledOwner(labels.restore)),
      dependency(snapshots, labelledOwner(labels.restore)),
      dependency(contents, (content) => {
        const owner = content.metadata.labels?.[labels.restore];
        return owner === undefined ? [] : [keyOf(content.spec.volumeSnapshotRef.namespace, owner)];
      }),
      dependency(events, (event) => {
        const claim = claims.get(keyOf(event.involvedObject.namespace, event.involvedObject.name));
        return claim === undefined ? [] : labelledOwner(labels.restore)(claim);
      }),
      dependency(backups, (backup) =>
        restores
          .byIndex(restoresByBackup, keyOf(backup.metadata.namespace, backup.metadata.name))
          .map((restore) => keyOf(restore.metadata.namespace, restore.metadata.name)),
      ),
      // A restore that ends frees a concurrency slot: wake the ones waiting for it.
      dependency(restores, (restore) =>
        isTerminal(restore.status?.phase) || restore.metadata.deletionTimestamp !== undefined
          ? restoresIn('Pending')
          : [],
      ),
      // Whether a Pending claim is waited for depends on its class's binding mode (a class created
      // or marked default after the claim): classes change rarely, so wake every restore that looks.
      dependency(storageClasses, () => restoresIn('RestoringCloudSnap')),
      // A grant seen at last lets a restore waiting for it go on; one withdrawn stops those it let in.
      dependency(referenceGrants, () => [
        ...restoresIn('Initializing'),
        ...restoresIn('Pending'),
        ...restoresIn('RestoringCloudSnap'),
      ]),
    ],
  });
}
