// Names the storage simulator shares with Kubernetes, the CSI sidecars it stands in for, and the
// tests that drive it.

/** The CSI driver (and external-provisioner) name the simulator answers for. */
export const DRIVER = 'sim.csi.snapback.dev';
/** The StorageClass and the VolumeSnapshotClass it creates at start. */
export const CLASS_NAME = 'snapback-sim';
/** Component name on the Events and in the logs. */
export const COMPONENT = 'snapback-storage-simulator';

/** Annotations the simulator reads and writes (its own API, see README.md). */
export const SIM = {
  contentId: 'sim.snapback.dev/content-id',
  restoredFrom: 'sim.snapback.dev/restored-from',
  write: 'sim.snapback.dev/write',
  /** On the PV: the last `write` value applied to the volume's content id. */
  appliedWrite: 'sim.snapback.dev/applied-write',
  fail: 'sim.snapback.dev/fail',
  delayMs: 'sim.snapback.dev/delay-ms',
  never: 'sim.snapback.dev/never',
} as const;

/** Kubernetes' own annotations and finalizers that the provisioner contract uses. */
export const KUBE = {
  /** Set on a PVC by the PV controller: which external provisioner is expected to act. */
  storageProvisioner: 'volume.kubernetes.io/storage-provisioner',
  betaStorageProvisioner: 'volume.beta.kubernetes.io/storage-provisioner',
  /** Set by the scheduler for WaitForFirstConsumer classes. */
  selectedNode: 'volume.kubernetes.io/selected-node',
  betaStorageClass: 'volume.beta.kubernetes.io/storage-class',
  provisionedBy: 'pv.kubernetes.io/provisioned-by',
  defaultStorageClass: 'storageclass.kubernetes.io/is-default-class',
  /** external-provisioner's finalizer: the PV is not gone until the backing volume is. */
  provisionerFinalizer: 'external-provisioner.volume.kubernetes.io/finalizer',
} as const;

/** external-snapshotter's annotations and finalizers (pkg/utils/util.go). */
export const SNAPSHOT = {
  group: 'snapshot.storage.k8s.io',
  defaultClass: 'snapshot.storage.kubernetes.io/is-default-class',
  /** Set by snapshot-controller on a content whose VolumeSnapshot is being deleted. */
  beingDeleted: 'snapshot.storage.kubernetes.io/volumesnapshot-being-deleted',
  /** Set by the sidecar while a CreateSnapshot call is in flight; blocks deletion. */
  beingCreated: 'snapshot.storage.kubernetes.io/volumesnapshot-being-created',
  /** Added by snapshot-controller to bound contents; removed by the sidecar on deletion. */
  contentFinalizer: 'snapshot.storage.kubernetes.io/volumesnapshotcontent-bound-protection',
} as const;
