// The data mover as the operator runs it: the pod that copies one volume's files into a location's
// repository (or back), and what its end says. The mover needs no Kubernetes permissions: the pod
// spec gives it the location, the location's Secret by secretKeyRef (the credentials stay in the
// operator's namespace, where the pod runs) and the volume; it writes its result as the
// container's termination message. Pure builders and readers; the controllers do the API calls.

import type { BackupLocation } from '../api/generated/types.js';
import type { Labels, Pod, Toleration } from '../api/kubernetes.js';
import { CREDENTIAL_KEYS, SESSION_TOKEN_KEY } from './location-store.js';
import type { TransferProgress } from './repository/files.js';

/** What the mover's environment carries: the location, and the Secret's keys (secretKeyRef). */
export const MOVER_ENV = {
  location: 'SNAPBACK_MOVER_LOCATION',
  accessKeyId: 'SNAPBACK_MOVER_ACCESS_KEY_ID',
  secretAccessKey: 'SNAPBACK_MOVER_SECRET_ACCESS_KEY',
  sessionToken: 'SNAPBACK_MOVER_SESSION_TOKEN',
  locationKey: 'SNAPBACK_MOVER_LOCATION_KEY',
  resultFile: 'SNAPBACK_MOVER_RESULT_FILE',
  progressSeconds: 'SNAPBACK_MOVER_PROGRESS_SECONDS',
  /** Chunk worker threads; by default one per core but the main thread's, at most 4. */
  workers: 'SNAPBACK_MOVER_WORKERS',
} as const;

export type MoverErrorCode =
  'Usage' | 'ObjectMissing' | 'ObjectCorrupt' | 'WrongKey' | 'StoreUnreachable' | 'StoreError';

export interface MoverFailure {
  code: MoverErrorCode;
  message: string;
  object?: string;
}

export interface MoverSuccess {
  operation: 'backup' | 'restore' | 'verify';
  manifest: string;
  progress: TransferProgress;
  seconds: number;
  /** A backup whose manifest a run before this one had stored already. */
  reusedManifest?: boolean;
}

export type MoverResult = MoverSuccess | { error: MoverFailure };

/** Failures the store may recover from: a new pod tries again (its chunks already stored are kept). */
const RETRIED: ReadonlySet<MoverErrorCode> = new Set(['StoreUnreachable', 'StoreError']);

/** Where mover pods run and what they may use; the operator's configuration says it. */
export interface MoverConfig {
  /** The operator's own image: the mover is its `mover` entrypoint. */
  image: string;
  imagePullPolicy: 'Always' | 'IfNotPresent' | 'Never';
  nodeSelector: Record<string, string>;
  tolerations: Toleration[];
  resources: { requests?: Record<string, string>; limits?: Record<string, string> };
  /** Chunk worker threads per mover; 0: one per core but one, at most 4. */
  workers: number;
}

/** The container's name in every mover pod, and where the kubelet reads its termination message. */
export const MOVER_CONTAINER = 'mover';
const CONTAINER = MOVER_CONTAINER;
const RESULT_FILE = '/dev/termination-log';
const MOUNT = '/data';
/** The user a mover that touches no files runs as. */
const NOBODY = 65534;
/** Progress lines in the pod's log (kubectl logs), which the operator reads into status. */
const PROGRESS_SECONDS = 5;

export interface MoverPodOptions {
  name: string;
  namespace: string;
  labels: Labels;
  config: MoverConfig;
  location: BackupLocation;
  /**
   * `backup <manifest>` reads the claim (mounted read-only); `restore <manifest>` writes it;
   * `verify <manifest>` reads the repository only and mounts nothing.
   */
  operation: 'backup' | 'restore' | 'verify';
  claimName?: string;
  manifest: string;
}

/** Arguments and capabilities per operation: reading files of any owner; setting owners and modes. */
const OPERATIONS: Record<
  MoverPodOptions['operation'],
  { args: (manifest: string) => string[]; add: string[] }
> = {
  backup: { args: (manifest) => ['mover', 'backup', MOUNT, manifest], add: ['DAC_OVERRIDE'] },
  restore: {
    args: (manifest) => ['mover', 'restore', manifest, MOUNT],
    add: ['CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID'],
  },
  verify: { args: (manifest) => ['mover', 'verify', manifest], add: [] },
};

/**
 * The pod of one mover run. It runs as root with only the capabilities its operation needs
 * (reading every file whatever its owner and mode; for a restore, also setting owners and modes),
 * a read-only root filesystem and no service account token.
 */
export function moverPod(options: MoverPodOptions): Pod {
  const { config, location } = options;
  const secret = location.spec.credentialsSecretName;
  const fromSecret = (name: string, key: string, optional = false) => ({
    name,
    valueFrom: { secretKeyRef: { name: secret, key, ...(optional ? { optional: true } : {}) } },
  });
  const operation = OPERATIONS[options.operation];
  const readOnly = options.operation === 'backup';
  const claim = options.claimName;
  return {
    metadata: { name: options.name, namespace: options.namespace, labels: options.labels },
    spec: {
      restartPolicy: 'Never',
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      ...(Object.keys(config.nodeSelector).length === 0 ? {} : { nodeSelector: config.nodeSelector }),
      ...(config.tolerations.length === 0 ? {} : { tolerations: config.tolerations }),
      // Files of any owner are read or written as root; a verification reads none and runs as nobody.
      securityContext:
        claim === undefined
          ? { runAsUser: NOBODY, runAsGroup: NOBODY, runAsNonRoot: true }
          : { runAsUser: 0, runAsGroup: 0, runAsNonRoot: false },
      containers: [
        {
          name: CONTAINER,
          image: config.image,
          imagePullPolicy: config.imagePullPolicy,
          args: operation.args(options.manifest),
          env: [
            { name: MOVER_ENV.location, value: JSON.stringify(location.spec.s3) },
            fromSecret(MOVER_ENV.accessKeyId, CREDENTIAL_KEYS.accessKeyId),
            fromSecret(MOVER_ENV.secretAccessKey, CREDENTIAL_KEYS.secretAccessKey),
            fromSecret(MOVER_ENV.sessionToken, SESSION_TOKEN_KEY, true),
            fromSecret(MOVER_ENV.locationKey, CREDENTIAL_KEYS.locationKey),
            { name: MOVER_ENV.resultFile, value: RESULT_FILE },
            { name: MOVER_ENV.progressSeconds, value: String(PROGRESS_SECONDS) },
            ...(config.workers > 0 ? [{ name: MOVER_ENV.workers, value: String(config.workers) }] : []),
          ],
          terminationMessagePath: RESULT_FILE,
          terminationMessagePolicy: 'File',
          securityContext: {
            readOnlyRootFilesystem: true,
            allowPrivilegeEscalation: false,
            capabilities: { drop: ['ALL'], ...(operation.add.length === 0 ? {} : { add: operation.add }) },
          },
          ...(Object.keys(config.resources).length === 0 ? {} : { resources: config.resources }),
          ...(claim === undefined ? {} : { volumeMounts: [{ name: 'data', mountPath: MOUNT, readOnly }] }),
        },
      ],
      ...(claim === undefined
        ? {}
        : { volumes: [{ name: 'data', persistentVolumeClaim: { claimName: claim, readOnly } }] }),
    },
  };
}

/** A progress line of the mover's log: how far the transfer is, how fast, and how long is left. */
export interface MoverProgress {
  progress: TransferProgress;
  bytesPerSecond: number;
  etaSeconds?: number;
}

/** The last progress line in the tail of a mover's log, if any. */
export function lastProgress(log: string | undefined): MoverProgress | undefined {
  const lines = (log ?? '').split('\n').reverse();
  for (const line of lines) {
    if (!line.startsWith('{')) continue;
    try {
      const parsed = JSON.parse(line) as { progress?: unknown; operation?: unknown };
      if (parsed.operation === undefined && typeof parsed.progress === 'object' && parsed.progress !== null)
        return parsed as MoverProgress;
    } catch {
      // A line cut by the tail: an older one may be whole.
    }
  }
  return undefined;
}

/** What a mover pod's state says. */
export type MoverState =
  | { state: 'waiting'; message: string }
  | { state: 'running'; message: string }
  | { state: 'succeeded'; result: MoverSuccess }
  /** `retry`: a new pod may succeed (the store or the pod's run failed, not the data or the key). */
  | { state: 'failed'; retry: boolean; message: string };

function resultOf(message: string | undefined): MoverResult | undefined {
  if (message === undefined || message.trim() === '') return undefined;
  try {
    const parsed: unknown = JSON.parse(message);
    return typeof parsed === 'object' && parsed !== null ? (parsed as MoverResult) : undefined;
  } catch {
    return undefined;
  }
}

/** Waiting reasons that no wait ends: the image named cannot be had. */
const IMAGE_MISSING: ReadonlySet<string> = new Set(['ErrImageNeverPull', 'InvalidImageName']);

export function moverState(pod: Pod): MoverState {
  const name = pod.metadata.name ?? '';
  const status = pod.status ?? {};
  const container = status.containerStatuses?.find((c) => c.name === CONTAINER);
  const terminated = container?.state?.terminated;
  if (status.phase === 'Succeeded' || status.phase === 'Failed') {
    const result = resultOf(terminated?.message);
    if (result !== undefined && 'operation' in result && status.phase === 'Succeeded')
      return { state: 'succeeded', result };
    if (result !== undefined && 'error' in result) {
      const { code, message } = result.error;
      return { state: 'failed', retry: RETRIED.has(code), message: `${code}: ${message}` };
    }
    // Killed, evicted or out of memory before it could say: another pod starts over where it was.
    const why =
      terminated === undefined
        ? (status.message ?? status.reason ?? 'no container status')
        : `${terminated.reason ?? 'terminated'} (exit code ${terminated.exitCode})`;
    return { state: 'failed', retry: true, message: `mover pod ${name} ended without a result: ${why}` };
  }
  if (status.phase === 'Running') return { state: 'running', message: `mover pod ${name} is copying` };
  const waiting = container?.state?.waiting;
  if (waiting?.reason !== undefined && IMAGE_MISSING.has(waiting.reason)) {
    return {
      state: 'failed',
      retry: false,
      message: `mover pod ${name} cannot start: ${waiting.reason}: ${waiting.message ?? ''}; set mover.image to the operator's own image, present on the nodes`,
    };
  }
  const unscheduled = status.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False');
  const why =
    waiting?.reason !== undefined
      ? `${waiting.reason}${waiting.message === undefined ? '' : `: ${waiting.message}`}`
      : unscheduled?.message !== undefined
        ? `not scheduled: ${unscheduled.message}`
        : 'starting';
  return { state: 'waiting', message: `mover pod ${name} is pending (${why})` };
}
