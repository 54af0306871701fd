// Operator configuration: defaults, then an optional YAML file (--config or SNAPBACK_CONFIG),
// then a few environment variables the Deployment sets. Validated with ajv against a schema
// built from the same helpers as the CRDs; a bad file stops the operator with every problem named.

import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { load } from 'js-yaml';
import {
  array,
  boolean,
  DNS1123_LABEL,
  enumeration,
  freeform,
  integer,
  object,
  string,
  stringMap,
  type JSONSchemaProps,
} from './api/schema.js';
import { compileValidator } from './api/validation.js';
import type { BackupConfig } from './controllers/backup/context.js';
import type { RestoreConfig } from './controllers/restore/context.js';
import { HAPPY_PATH, isTerminal } from './controllers/restore/transitions.js';
import type { RestorePhase } from './api/generated/types.js';
import type { MoverConfig } from './storage/data-mover.js';

export interface LeaderElectionConfig {
  enabled: boolean;
  namespace: string;
  leaseName: string;
  identity: string;
  leaseDurationSeconds: number;
  renewDeadlineSeconds: number;
  retryPeriodSeconds: number;
}

export interface OperatorConfig {
  clusterName: string;
  /** The operator's own namespace: backup locations' credentials Secrets are read there. */
  namespace: string;
  /** Watch one namespace; empty watches all. */
  watchNamespace: string;
  /** Reconcile workers per controller. */
  workers: number;
  logLevel: 'error' | 'warn' | 'info' | 'debug';
  /** Port of /metrics, /healthz and /readyz. */
  httpPort: number;
  restore: RestoreConfig;
  backup: BackupConfig;
  /** The data mover pods that copy volumes into backup locations. */
  mover: MoverConfig;
  leaderElection: LeaderElectionConfig;
}

const seconds = (description: string) => integer(description, { minimum: 1 });

/** The phases a restore can time out in: every one but the terminal ones. */
const TIMED_PHASES = HAPPY_PATH.filter((phase) => !isTerminal(phase));
const PHASE_NOTES: Partial<Record<RestorePhase, string>> = {
  Initializing: ', including waiting for an in-progress backup',
  Pending: ', not counting the wait for a concurrency slot',
};

export const configSchema: JSONSchemaProps = object(
  'Snapback operator configuration.',
  {
    clusterName: string(
      "Name of this cluster, recorded in backups: a DNS label, unique among the clusters that share a BackupLocation. Required: two clusters of one name would overwrite each other's records.",
      { minLength: 1, maxLength: 63, pattern: DNS1123_LABEL },
    ),
    namespace: string("The operator's namespace, where backup locations' credentials Secrets live.", {
      minLength: 1,
    }),
    watchNamespace: string('Namespace to watch; empty for all.'),
    workers: integer('Reconcile workers per controller.', { minimum: 1, maximum: 64 }),
    logLevel: enumeration('Log level.', ['error', 'warn', 'info', 'debug']),
    httpPort: integer('Port for /metrics, /healthz and /readyz.', { minimum: 1, maximum: 65535 }),
    restore: object(
      'Restore settings.',
      {
        maxConcurrentRestores: integer('Restores allowed in the active phases at once.', { minimum: 1 }),
        maxConcurrentRestoresPerNamespace: integer(
          "One namespace's share of maxConcurrentRestores; a free slot goes first to a namespace running fewer.",
          { minimum: 1 },
        ),
        strictRestorability: boolean('Refuse data services the RestorabilityMatrix does not list.'),
        provisioningFailureGraceSeconds: seconds(
          'How long a restored volume may keep failing to provision (the provisioner retries) before the restore fails.',
        ),
        phaseTimeoutSeconds: object(
          'Timeout per phase.',
          Object.fromEntries(
            TIMED_PHASES.map((phase) => [phase, seconds(`${phase}${PHASE_NOTES[phase] ?? ''}.`)]),
          ),
          { required: [...TIMED_PHASES] },
        ),
      },
      {
        required: [
          'maxConcurrentRestores',
          'maxConcurrentRestoresPerNamespace',
          'strictRestorability',
          'provisioningFailureGraceSeconds',
          'phaseTimeoutSeconds',
        ],
      },
    ),
    backup: object(
      'Backup settings.',
      {
        clusterName: string('Set from clusterName.'),
        timeoutSeconds: seconds(
          "How long a backup may take: its snapshots and the copy of its volumes' data.",
        ),
      },
      { required: ['timeoutSeconds'] },
    ),
    mover: object(
      "The data mover pods, which copy the volumes of backups stored in a BackupLocation into its bucket. They run in the operator's namespace, one per volume.",
      {
        image: string(
          "The operator's own image (the mover is its `mover` entrypoint). Empty: backups to locations with copyVolumeData fail, saying so.",
        ),
        imagePullPolicy: enumeration('Pull policy of the mover image.', ['Always', 'IfNotPresent', 'Never']),
        nodeSelector: stringMap('Node labels a mover pod must match.'),
        tolerations: array('Taints mover pods tolerate.', freeform('A core/v1 Toleration.')),
        resources: freeform(
          "The mover container's resource requests and limits (core/v1 ResourceRequirements).",
        ),
        workers: integer('Chunk worker threads per mover; 0: one per core but one, at most 4.', {
          minimum: 0,
          maximum: 64,
        }),
      },
      { required: ['image', 'imagePullPolicy', 'nodeSelector', 'tolerations', 'resources', 'workers'] },
    ),
    leaderElection: object(
      'Leader election on a coordination.k8s.io Lease.',
      {
        enabled: boolean('Elect a leader; only the leader reconciles.'),
        namespace: string('Namespace of the Lease.', { minLength: 1 }),
        leaseName: string('Name of the Lease.', { minLength: 1 }),
        identity: string('This process in the Lease.', { minLength: 1 }),
        leaseDurationSeconds: seconds('How long a lease lasts without renewal.'),
        renewDeadlineSeconds: seconds('How long the leader keeps trying to renew before stepping down.'),
        retryPeriodSeconds: seconds('How often candidates try.'),
      },
      {
        required: [
          'enabled',
          'namespace',
          'leaseName',
          'identity',
          'leaseDurationSeconds',
          'renewDeadlineSeconds',
          'retryPeriodSeconds',
        ],
      },
    ),
  },
  {
    required: [
      'clusterName',
      'namespace',
      'watchNamespace',
      'workers',
      'logLevel',
      'httpPort',
      'restore',
      'backup',
      'mover',
      'leaderElection',
    ],
  },
);

/** Every setting but clusterName, which has no default: each cluster must be given its own. */
export type ConfigDefaults = Omit<OperatorConfig, 'clusterName'>;

export function defaultConfig(env: NodeJS.ProcessEnv = process.env): ConfigDefaults {
  return {
    namespace: env.POD_NAMESPACE ?? 'default',
    watchNamespace: '',
    workers: 4,
    logLevel: 'info',
    httpPort: 8080,
    restore: {
      maxConcurrentRestores: 20,
      maxConcurrentRestoresPerNamespace: 5,
      strictRestorability: false,
      provisioningFailureGraceSeconds: 300,
      phaseTimeoutSeconds: {
        Initializing: 3600,
        Pending: 3600,
        RestoringCloudSnap: 3600,
        RestoringDataServiceDeploymentCR: 300,
        RestoringDataServiceDeployment: 7200,
        DataServiceDeploymentEnteringNormalMode: 1800,
      },
    },
    // clusterName is set from the top-level one.
    backup: { clusterName: '', timeoutSeconds: 3600 },
    mover: {
      // The chart sets it to the operator's own image.
      image: env.SNAPBACK_MOVER_IMAGE ?? '',
      imagePullPolicy: 'IfNotPresent',
      nodeSelector: {},
      tolerations: [],
      resources: {},
      workers: 0,
    },
    leaderElection: {
      enabled: true,
      namespace: env.POD_NAMESPACE ?? 'default',
      leaseName: 'snapback-operator',
      identity: env.POD_NAME ?? `${hostname()}-${process.pid}`,
      leaseDurationSeconds: 15,
      renewDeadlineSeconds: 10,
      retryPeriodSeconds: 2,
    },
  };
}

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };
type Tree = Record<string, unknown>;

const isTree = (value: unknown): value is Tree =>
  value !== null && typeof value === 'object' && !Array.isArray(value);

/** Deep merge of plain objects; `override` wins, arrays and scalars are replaced whole. */
function merge(base: Tree, override: Tree): Tree {
  const out: Tree = { ...base };
  for (const [key, value] of Object.entries(override)) {
    const current = out[key];
    out[key] = isTree(value) && isTree(current) ? merge(current, value) : value;
  }
  return out;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

/** Builds the configuration from defaults, a file's text and the environment, or throws ConfigError. */
export function resolveConfig(
  fileText: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): OperatorConfig {
  let fromFile: unknown = {};
  // An empty or comment-only file means "all defaults" (js-yaml refuses an empty document).
  const meaningful = fileText?.split('\n').some((line) => line.trim() !== '' && !line.trim().startsWith('#'));
  if (fileText !== undefined && meaningful === true) {
    try {
      fromFile = load(fileText) ?? {};
    } catch (err) {
      throw new ConfigError([`the configuration file is not valid YAML: ${(err as Error).message}`]);
    }
    if (!isTree(fromFile)) {
      throw new ConfigError(['the configuration file must hold a mapping']);
    }
  }
  const fromEnv: DeepPartial<OperatorConfig> = {
    ...(env.SNAPBACK_WATCH_NAMESPACE === undefined ? {} : { watchNamespace: env.SNAPBACK_WATCH_NAMESPACE }),
    ...(env.SNAPBACK_LOG_LEVEL === undefined
      ? {}
      : { logLevel: env.SNAPBACK_LOG_LEVEL as OperatorConfig['logLevel'] }),
  };
  const defaults = defaultConfig(env) as unknown as Tree;
  const config = merge(merge(defaults, fromFile as Tree), fromEnv) as unknown as OperatorConfig;
  config.backup.clusterName = config.clusterName;
  const result = compileValidator(configSchema)(config);
  if (!result.valid) throw new ConfigError(result.errors);
  return config;
}

export function loadConfig(
  argv: readonly string[] = process.argv,
  env: NodeJS.ProcessEnv = process.env,
): OperatorConfig {
  const flag = argv.indexOf('--config');
  const path = flag >= 0 ? argv[flag + 1] : env.SNAPBACK_CONFIG;
  return resolveConfig(path === undefined ? undefined : readFileSync(path, 'utf8'), env);
}
