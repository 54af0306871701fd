// The storage simulator on the real test cluster: provisioning, snapshots, restores (also across
// namespaces through a pre-provisioned content), failure injection and snapshot deletion.

import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type {
  Event,
  PersistentVolume,
  PersistentVolumeClaim,
  VolumeSnapshot,
  VolumeSnapshotContent,
} from '../../src/api/kubernetes.js';
import type { KubeClient } from '../../src/runtime/kube-client.js';
import { resources } from '../../src/runtime/resources.js';
import { CLASS_NAME, DRIVER, KUBE, SIM, SNAPSHOT } from '../cluster/storage-simulator/constants.js';
import { SnapshotStore } from '../cluster/storage-simulator/state.js';
import {
  createTestNamespace,
  deleteTestNamespace,
  REPO_ROOT,
  testClient,
  waitFor,
} from './support/cluster.js';

const STATE_DIR = process.env.SIM_STATE_DIR ?? join(REPO_ROOT, '.cache', 'cluster', 'storage-sim');
const GI = 2 ** 30;

let client: KubeClient;
let backend: SnapshotStore;
let ns: string;
let other: string;
const figures: Record<string, number[]> = {};

function measure(what: string, ms: number): void {
  (figures[what] ??= []).push(ms);
}

function claim(
  name: string,
  options: {
    namespace?: string;
    annotations?: Record<string, string>;
    snapshot?: string;
    storage?: string;
  } = {},
): PersistentVolumeClaim {
  const source = { apiGroup: SNAPSHOT.group, kind: 'VolumeSnapshot', name: options.snapshot ?? '' };
  return {
    metadata: { name, namespace: options.namespace ?? ns, annotations: options.annotations ?? {} },
    spec: {
      storageClassName: CLASS_NAME,
      accessModes: ['ReadWriteOnce'],
      resources: { requests: { storage: options.storage ?? '1Gi' } },
      ...(options.snapshot === undefined ? {} : { dataSource: source }),
    },
  };
}

function snapshotOf(
  pvcName: string,
  name: string,
  annotations: Record<string, string> = {},
  className = CLASS_NAME,
): VolumeSnapshot {
  return {
    metadata: { name, namespace: ns, annotations },
    spec: { source: { persistentVolumeClaimName: pvcName }, volumeSnapshotClassName: className },
  };
}

/** Creates the claim and waits until it is Bound; returns its PV and how long binding took. */
async function boundClaim(pvc: PersistentVolumeClaim): Promise<{ pv: PersistentVolume; ms: number }> {
  const started = Date.now();
  await client.create(resources.persistentVolumeClaims, pvc);
  const name = pvc.metadata.name ?? '';
  const namespace = pvc.metadata.namespace ?? ns;
  const bound = await waitFor(`PVC ${namespace}/${name} Bound`, async () => {
    const current = await client.get(resources.persistentVolumeClaims, name, namespace);
    return current?.status?.phase === 'Bound' ? current : undefined;
  });
  const ms = Date.now() - started;
  const pv = await client.get(resources.persistentVolumes, bound.spec.volumeName ?? '');
  if (pv === undefined) throw new Error(`PV ${bound.spec.volumeName ?? ''} of ${name} not found`);
  return { pv, ms };
}

async function readySnapshot(
  snapshot: VolumeSnapshot,
): Promise<{ snapshot: VolumeSnapshot; content: VolumeSnapshotContent; ms: number }> {
  const started = Date.now();
  await client.create(resources.volumeSnapshots, snapshot);
  const name = snapshot.metadata.name ?? '';
  const namespace = snapshot.metadata.namespace ?? ns;
  const ready = await waitFor(`VolumeSnapshot ${namespace}/${name} readyToUse`, async () => {
    const current = await client.get(resources.volumeSnapshots, name, namespace);
    return current?.status?.readyToUse === true ? current : undefined;
  });
  const ms = Date.now() - started;
  const content = await client.get(
    resources.volumeSnapshotContents,
    ready.status?.boundVolumeSnapshotContentName ?? '',
  );
  if (content === undefined) throw new Error(`content of VolumeSnapshot ${name} not found`);
  return { snapshot: ready, content, ms };
}

const contentIdOf = (pv: PersistentVolume): string | undefined => pv.metadata.annotations?.[SIM.contentId];

async function currentContentId(pvName: string): Promise<string | undefined> {
  const pv = await client.get(resources.persistentVolumes, pvName);
  return pv === undefined ? undefined : contentIdOf(pv);
}

async function eventsFor(namespace: string, kind: string, name: string): Promise<Event[]> {
  const { items } = await client.list(resources.events, {
    namespace,
    fieldSelector: `involvedObject.kind=${kind},involvedObject.name=${name}`,
  });
  return items;
}

async function phaseOf(name: string, namespace = ns): Promise<string | undefined> {
  return (await client.get(resources.persistentVolumeClaims, name, namespace))?.status?.phase;
}

async function fileExists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

beforeAll(async () => {
  client = await testClient();
  backend = await SnapshotStore.open(STATE_DIR);
  ns = await createTestNamespace('sim');
  other = await createTestNamespace('sim-other');
});

afterAll(async () => {
  await deleteTestNamespace(ns);
  await deleteTestNamespace(other);
  const summary = Object.entries(figures).map(([what, values]) => {
    const sorted = [...values].sort((a, b) => a - b);
    return `${what}: n=${String(sorted.length)} min=${String(sorted[0])}ms median=${String(sorted[Math.floor(sorted.length / 2)])}ms max=${String(sorted.at(-1))}ms`;
  });
  process.stdout.write(`storage simulator figures\n  ${summary.join('\n  ')}\n`);
  await client.close();
});

describe('provisioning', () => {
  it('binds a PVC to a PV of the simulated driver with a fresh content id', async () => {
    const { pv, ms } = await boundClaim(claim('fresh'));
    measure('PVC bind', ms);
    const pvc = await client.get(resources.persistentVolumeClaims, 'fresh', ns);
    expect(pv.metadata.name).toBe(`pvc-${pvc?.metadata.uid ?? ''}`);
    expect(pv.spec.csi?.driver).toBe(DRIVER);
    expect(pv.spec.capacity?.storage).toBe('1Gi');
    expect(pv.spec.claimRef).toMatchObject({ namespace: ns, name: 'fresh', uid: pvc?.metadata.uid });
    expect(pv.metadata.annotations?.[KUBE.provisionedBy]).toBe(DRIVER);
    expect(pv.metadata.finalizers).toContain(KUBE.provisionerFinalizer);
    expect(contentIdOf(pv)).toMatch(/^c-[0-9a-f]{24}$/);

    const { pv: second } = await boundClaim(claim('fresh-2'));
    expect(contentIdOf(second)).not.toBe(contentIdOf(pv));
  });

  it('deletes the PV of a deleted claim (reclaim policy Delete)', async () => {
    const { pv } = await boundClaim(claim('reclaimed'));
    await client.delete(resources.persistentVolumeClaims, 'reclaimed', { namespace: ns });
    await waitFor(`PV ${pv.metadata.name ?? ''} deleted`, async () =>
      (await client.get(resources.persistentVolumes, pv.metadata.name ?? '')) === undefined
        ? true
        : undefined,
    );
  });
});

describe('snapshots and restores', () => {
  let handle = '';
  let snapshotContentId = '';

  it('makes a VolumeSnapshot ready with a handle and restore size, recorded in the backend', async () => {
    const { pv } = await boundClaim(claim('source', { annotations: { [SIM.write]: 'v1' } }));
    const { snapshot, content, ms } = await readySnapshot(snapshotOf('source', 'source-snap'));
    measure('VolumeSnapshot ready', ms);
    handle = content.status?.snapshotHandle ?? '';
    expect(handle).toBe(`snap-${content.metadata.uid ?? ''}`);
    expect(content.status?.restoreSize).toBe(GI);
    expect(snapshot.status?.restoreSize).toBe('1Gi');
    const record = await backend.get(handle);
    expect(record).toMatchObject({ contentId: contentIdOf(pv), sizeBytes: GI, driver: DRIVER });
    snapshotContentId = record?.contentId ?? '';
  });

  it('restores the snapshot content id; a write after the snapshot changes only the source', async () => {
    const sourcePvc = await client.get(resources.persistentVolumeClaims, 'source', ns);
    await client.mergePatch(
      resources.persistentVolumeClaims,
      'source',
      { metadata: { annotations: { [SIM.write]: 'v2' } } },
      { namespace: ns },
    );
    const sourcePv = sourcePvc?.spec.volumeName ?? '';
    const written = await waitFor('the write to reach the source PV', async () => {
      const id = await currentContentId(sourcePv);
      return id !== snapshotContentId ? id : undefined;
    });

    const { pv, ms } = await boundClaim(claim('restored', { snapshot: 'source-snap' }));
    measure('restored PVC bind', ms);
    expect(contentIdOf(pv)).toBe(snapshotContentId);
    expect(pv.metadata.annotations?.[SIM.restoredFrom]).toBe(handle);
    expect(contentIdOf(pv)).not.toBe(written);
  });

  it('restores in another namespace through a pre-provisioned content (Retain)', async () => {
    const contentName = `${other}-pre`;
    await client.create(resources.volumeSnapshotContents, {
      metadata: { name: contentName },
      spec: {
        deletionPolicy: 'Retain',
        driver: DRIVER,
        source: { snapshotHandle: handle },
        volumeSnapshotRef: { name: 'imported', namespace: other },
        volumeSnapshotClassName: CLASS_NAME,
      },
    });
    try {
      const { content } = await readySnapshot({
        metadata: { name: 'imported', namespace: other },
        spec: { source: { volumeSnapshotContentName: contentName } },
      });
      expect(content.status?.snapshotHandle).toBe(handle);
      expect(content.status?.restoreSize).toBe(GI);

      const { pv } = await boundClaim(claim('imported-data', { namespace: other, snapshot: 'imported' }));
      expect(contentIdOf(pv)).toBe(snapshotContentId);
      expect(pv.metadata.annotations?.[SIM.restoredFrom]).toBe(handle);

      await client.delete(resources.volumeSnapshots, 'imported', { namespace: other });
      await waitFor('the imported VolumeSnapshot to go', async () =>
        (await client.get(resources.volumeSnapshots, 'imported', other)) === undefined ? true : undefined,
      );
      // Retain: the content and the backend record outlive the VolumeSnapshot.
      expect(await client.get(resources.volumeSnapshotContents, contentName)).toBeDefined();
      expect(await backend.get(handle)).toBeDefined();
    } finally {
      await client.delete(resources.volumeSnapshotContents, contentName);
    }
    await waitFor('the pre-provisioned content to go', async () =>
      (await client.get(resources.volumeSnapshotContents, contentName)) === undefined ? true : undefined,
    );
    expect(await backend.get(handle)).toBeDefined();
  });

  it('reports an unknown pre-provisioned handle as an error on the VolumeSnapshot', async () => {
    const contentName = `${other}-unknown`;
    await client.create(resources.volumeSnapshotContents, {
      metadata: { name: contentName },
      spec: {
        deletionPolicy: 'Retain',
        driver: DRIVER,
        source: { snapshotHandle: 'snap-does-not-exist' },
        volumeSnapshotRef: { name: 'unknown', namespace: other },
      },
    });
    try {
      const content = await waitFor('the content error', async () => {
        const current = await client.get(resources.volumeSnapshotContents, contentName);
        return current?.status?.error?.message !== undefined ? current : undefined;
      });
      expect(content.status?.error?.message).toContain('snap-does-not-exist does not exist');
      expect(content.status?.readyToUse).toBe(false);
    } finally {
      await client.delete(resources.volumeSnapshotContents, contentName);
    }
  });

  it('deleting a VolumeSnapshot with the Delete policy removes its content and backend record', async () => {
    await boundClaim(claim('doomed-source'));
    const { content } = await readySnapshot(snapshotOf('doomed-source', 'doomed'));
    const doomedHandle = content.status?.snapshotHandle ?? '';
    expect(await fileExists(join(STATE_DIR, 'snapshots', `${doomedHandle}.json`))).toBe(true);

    const started = Date.now();
    await client.delete(resources.volumeSnapshots, 'doomed', { namespace: ns });
    await waitFor('the VolumeSnapshot, its content and its record to go', async () => {
      const snapshot = await client.get(resources.volumeSnapshots, 'doomed', ns);
      const stillContent = await client.get(resources.volumeSnapshotContents, content.metadata.name ?? '');
      const record = await backend.get(doomedHandle);
      return snapshot === undefined && stillContent === undefined && record === undefined ? true : undefined;
    });
    measure('VolumeSnapshot deletion', Date.now() - started);
  });
});

describe('failure injection', () => {
  it('fail on a PVC: stays Pending with a Warning event carrying the message, then heals', async () => {
    const message = 'injected: no space left on the simulated array';
    await client.create(
      resources.persistentVolumeClaims,
      claim('failing', { annotations: { [SIM.fail]: message } }),
    );
    const events = await waitFor('a ProvisioningFailed event', async () => {
      const found = (await eventsFor(ns, 'PersistentVolumeClaim', 'failing')).filter(
        (e) => e.reason === 'ProvisioningFailed',
      );
      return found.length > 0 ? found : undefined;
    });
    expect(events[0]?.type).toBe('Warning');
    expect(events[0]?.message).toContain(message);
    expect(await phaseOf('failing')).toBe('Pending');

    await client.mergePatch(
      resources.persistentVolumeClaims,
      'failing',
      { metadata: { annotations: { [SIM.fail]: null } } },
      { namespace: ns },
    );
    await waitFor('the healed PVC to bind', async () =>
      (await phaseOf('failing')) === 'Bound' ? true : undefined,
    );
  });

  it('fail on a StorageClass applies to its claims', async () => {
    const className = `${ns}-failing`;
    await client.create(resources.storageClasses, {
      metadata: { name: className, annotations: { [SIM.fail]: 'class-wide outage' } },
      provisioner: DRIVER,
      reclaimPolicy: 'Delete',
      volumeBindingMode: 'Immediate',
    });
    try {
      const pvc = claim('class-failing');
      pvc.spec.storageClassName = className;
      await client.create(resources.persistentVolumeClaims, pvc);
      const event = await waitFor('a ProvisioningFailed event', async () =>
        (await eventsFor(ns, 'PersistentVolumeClaim', 'class-failing')).find(
          (e) => e.reason === 'ProvisioningFailed',
        ),
      );
      expect(event.message).toContain('class-wide outage');
      expect(await phaseOf('class-failing')).toBe('Pending');
    } finally {
      await client.delete(resources.storageClasses, className);
    }
  });

  it('fail on a VolumeSnapshot: its status.error carries the message', async () => {
    await boundClaim(claim('snap-fail-source'));
    const message = 'injected: snapshot quota exhausted';
    const started = Date.now();
    await client.create(
      resources.volumeSnapshots,
      snapshotOf('snap-fail-source', 'failing-snap', { [SIM.fail]: message }),
    );
    const failed = await waitFor('the VolumeSnapshot error', async () => {
      const current = await client.get(resources.volumeSnapshots, 'failing-snap', ns);
      return current?.status?.error?.message !== undefined ? current : undefined;
    });
    measure('VolumeSnapshot error visible', Date.now() - started);
    expect(failed.status?.error?.message).toContain(message);
    expect(failed.status?.readyToUse).toBe(false);
  });

  it('delay-ms postpones binding and readiness by at least the delay', async () => {
    const started = Date.now();
    const { ms } = await boundClaim(claim('delayed', { annotations: { [SIM.delayMs]: '3000' } }));
    expect(ms).toBeGreaterThanOrEqual(2900);
    measure('PVC bind with delay-ms 3000', Date.now() - started);

    const { ms: snapMs } = await readySnapshot(
      snapshotOf('delayed', 'delayed-snap', { [SIM.delayMs]: '3000' }),
    );
    expect(snapMs).toBeGreaterThanOrEqual(2900);
    measure('VolumeSnapshot ready with delay-ms 3000', snapMs);
  });

  it('never: the PVC and the VolumeSnapshot never finish while their twins do', async () => {
    await client.create(
      resources.persistentVolumeClaims,
      claim('never', { annotations: { [SIM.never]: 'true' } }),
    );
    await boundClaim(claim('never-twin'));
    await client.create(
      resources.volumeSnapshots,
      snapshotOf('never-twin', 'never-snap', { [SIM.never]: 'true' }),
    );
    await readySnapshot(snapshotOf('never-twin', 'never-snap-twin'));
    // Give the simulator as long again as the twins took, then some.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    expect(await phaseOf('never')).toBe('Pending');
    const snapshot = await client.get(resources.volumeSnapshots, 'never-snap', ns);
    expect(snapshot?.status?.readyToUse).not.toBe(true);
    expect(snapshot?.status?.error).toBeUndefined();
  });

  it('a restore waits for its snapshot to become ready, with an event saying so', async () => {
    await boundClaim(claim('late-source'));
    await client.create(resources.persistentVolumeClaims, claim('early-restore', { snapshot: 'late-snap' }));
    const waiting = await waitFor('a ProvisioningFailed event naming the snapshot', async () =>
      (await eventsFor(ns, 'PersistentVolumeClaim', 'early-restore')).find(
        (e) => e.reason === 'ProvisioningFailed',
      ),
    );
    expect(waiting.type).toBe('Warning');
    expect(waiting.message).toContain(`VolumeSnapshot ${ns}/late-snap does not exist`);

    await readySnapshot(snapshotOf('late-source', 'late-snap', { [SIM.delayMs]: '1000' }));
    const { items } = await client.list(resources.persistentVolumeClaims, { namespace: ns });
    expect(items.find((c) => c.metadata.name === 'early-restore')).toBeDefined();
    await waitFor('the early restore to bind', async () =>
      (await phaseOf('early-restore')) === 'Bound' ? true : undefined,
    );
  });
});
