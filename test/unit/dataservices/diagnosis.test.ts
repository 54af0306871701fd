import { describe, expect, it } from '@jest/globals';
import type {
  ContainerStatus,
  Event,
  PersistentVolumeClaim,
  Pod,
  PodCondition,
} from '../../../src/api/kubernetes.js';
import { toldOnlyByEvents, whyNotReady } from '../../../src/dataservices/diagnosis.js';

const NAMESPACE = 'demo';

function pod(
  name: string,
  status: {
    phase?: NonNullable<Pod['status']>['phase'];
    conditions?: PodCondition[];
    containers?: ContainerStatus[];
    init?: ContainerStatus[];
  } = {},
): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NAMESPACE, uid: `uid-${name}` },
    spec: { containers: [{ name: 'postgres', image: 'postgres:16' }] },
    status: {
      phase: status.phase ?? 'Running',
      ...(status.conditions === undefined ? {} : { conditions: status.conditions }),
      ...(status.containers === undefined ? {} : { containerStatuses: status.containers }),
      ...(status.init === undefined ? {} : { initContainerStatuses: status.init }),
    },
  };
}

const healthy = (name: string): Pod =>
  pod(name, {
    containers: [container({ ready: true, state: { running: { startedAt: '2024-01-01T00:00:00Z' } } })],
  });

function container(overrides: Partial<ContainerStatus> = {}): ContainerStatus {
  return { name: 'postgres', image: 'postgres:16', ready: false, restartCount: 0, ...overrides };
}

const waiting = (reason: string, message?: string): Partial<ContainerStatus> => ({
  state: { waiting: message === undefined ? { reason } : { reason, message } },
});

const unschedulable = (message: string): PodCondition[] => [
  { type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message },
];

const MEMORY =
  '0/4 nodes are available: 1 Insufficient memory, 3 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }. preemption: 0/4 nodes are available: 1 No preemption victims found for incoming pod, 3 Preemption is not helpful for scheduling.';

function claim(name: string, phase: 'Pending' | 'Bound' = 'Pending'): PersistentVolumeClaim {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name, namespace: NAMESPACE, uid: `uid-${name}` },
    spec: { accessModes: ['ReadWriteOnce'], storageClassName: 'fast' },
    status: { phase },
  };
}

function event(
  kind: 'Pod' | 'PersistentVolumeClaim',
  name: string,
  reason: string,
  message: string,
  overrides: {
    type?: 'Normal' | 'Warning';
    uid?: string | null;
    lastTimestamp?: string;
    namespace?: string;
  } = {},
): Event {
  const uid = overrides.uid === undefined ? `uid-${name}` : overrides.uid;
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name: `${name}.${reason}`, namespace: NAMESPACE },
    involvedObject: {
      kind,
      name,
      namespace: overrides.namespace ?? NAMESPACE,
      ...(uid === null ? {} : { uid }),
    },
    reason,
    message,
    type: overrides.type ?? 'Warning',
    lastTimestamp: overrides.lastTimestamp ?? '2024-01-01T00:00:00Z',
  };
}

type Input = Parameters<typeof whyNotReady>[0];
const input = (overrides: Partial<Input>): Input => ({ pods: [], claims: [], events: [], ...overrides });

describe('whyNotReady: one case per cause', () => {
  it.each<{ name: string; input: Input; expected: string | undefined }>([
    {
      name: 'nothing specific is wrong',
      input: input({ pods: [healthy('db-0'), healthy('db-1')], claims: [claim('data-db-0', 'Bound')] }),
      expected: undefined,
    },
    {
      name: 'no objects at all',
      input: input({}),
      expected: undefined,
    },
    {
      name: 'a pod that cannot be scheduled',
      input: input({ pods: [pod('db-copy-0', { phase: 'Pending', conditions: unschedulable(MEMORY) })] }),
      expected: `pod db-copy-0 cannot be scheduled: ${MEMORY}`,
    },
    {
      name: 'a pod that cannot be scheduled, without a message',
      input: input({ pods: [pod('db-0', { phase: 'Pending', conditions: unschedulable('') })] }),
      expected: 'pod db-0 cannot be scheduled',
    },
    ...['ErrImagePull', 'ImagePullBackOff', 'InvalidImageName', 'ErrImageNeverPull'].map((reason) => ({
      name: `an image that cannot be pulled (${reason})`,
      input: input({
        pods: [
          pod('db-0', {
            phase: 'Pending',
            containers: [
              container({ image: 'postgres:99', ...waiting(reason, 'Back-off pulling image "postgres:99"') }),
            ],
          }),
        ],
      }),
      expected: `pod db-0: container postgres cannot pull image "postgres:99" (${reason}): Back-off pulling image "postgres:99"`,
    })),
    {
      name: 'an init container image that cannot be pulled; the image comes from the spec when status has none',
      input: input({
        pods: [
          {
            ...pod('db-0', {
              phase: 'Pending',
              init: [
                container({ name: 'restore', image: '', ...waiting('ErrImagePull', 'manifest unknown') }),
              ],
              containers: [container(waiting('PodInitializing'))],
            }),
            spec: {
              initContainers: [{ name: 'restore', image: 'snapback/restore:1.2' }],
              containers: [{ name: 'postgres', image: 'postgres:16' }],
            },
          },
        ],
      }),
      expected:
        'pod db-0: container restore cannot pull image "snapback/restore:1.2" (ErrImagePull): manifest unknown',
    },
    {
      name: 'a container in CrashLoopBackOff after an error exit, with its termination message',
      input: input({
        pods: [
          pod('db-0', {
            containers: [
              container({
                restartCount: 5,
                ...waiting('CrashLoopBackOff', 'back-off 2m40s restarting failed container'),
                lastState: {
                  terminated: {
                    exitCode: 1,
                    reason: 'Error',
                    message: 'FATAL:  could not open file "base/1/1259":\n  No such file or directory\n',
                  },
                },
              }),
            ],
          }),
        ],
      }),
      expected:
        'pod db-0: container postgres keeps crashing: exit code 1 (Error), 5 restarts; last message: FATAL: could not open file "base/1/1259": No such file or directory',
    },
    {
      name: 'a container killed for memory, now running again but not ready',
      input: input({
        pods: [
          pod('db-0', {
            containers: [
              container({
                restartCount: 1,
                state: { running: {} },
                lastState: { terminated: { exitCode: 137, reason: 'OOMKilled' } },
              }),
            ],
          }),
        ],
      }),
      expected: 'pod db-0: container postgres keeps crashing: exit code 137 (OOMKilled), 1 restart',
    },
    {
      name: 'CrashLoopBackOff without a recorded termination',
      input: input({
        pods: [pod('db-0', { containers: [container({ restartCount: 3, ...waiting('CrashLoopBackOff') })] })],
      }),
      expected: 'pod db-0: container postgres keeps crashing, 3 restarts',
    },
    {
      name: 'a ready container whose earlier crash is history',
      input: input({
        pods: [
          pod('db-0', {
            containers: [
              container({
                ready: true,
                restartCount: 1,
                state: { running: {} },
                lastState: { terminated: { exitCode: 137, reason: 'OOMKilled' } },
              }),
            ],
          }),
        ],
      }),
      expected: undefined,
    },
    ...['CreateContainerConfigError', 'CreateContainerError', 'RunContainerError'].map((reason) => ({
      name: `a container that cannot start (${reason})`,
      input: input({
        pods: [
          pod('db-0', {
            phase: 'Pending',
            containers: [container(waiting(reason, 'secret "pg-creds" not found'))],
          }),
        ],
      }),
      expected: `pod db-0: container postgres cannot start (${reason}): secret "pg-creds" not found`,
    })),
    {
      name: 'a pending claim, with the message of its newest Warning event',
      input: input({
        claims: [claim('data-db-0')],
        events: [
          event('PersistentVolumeClaim', 'data-db-0', 'ProvisioningFailed', 'older failure', {
            lastTimestamp: '2024-01-01T00:01:00Z',
          }),
          event('PersistentVolumeClaim', 'data-db-0', 'ProvisioningFailed', 'storageclass "fast" not found', {
            lastTimestamp: '2024-01-01T00:05:00Z',
          }),
          event('PersistentVolumeClaim', 'data-db-0', 'ExternalProvisioning', 'waiting for a volume', {
            type: 'Normal',
            lastTimestamp: '2024-01-01T00:09:00Z',
          }),
          event('PersistentVolumeClaim', 'data-db-0', 'ProvisioningFailed', 'oldest failure', {
            lastTimestamp: '2024-01-01T00:00:00Z',
          }),
        ],
      }),
      expected:
        'persistentvolumeclaim data-db-0 is still Pending (ProvisioningFailed): storageclass "fast" not found',
    },
    {
      name: 'a pending claim with only Normal events says what it waits for',
      input: input({
        claims: [claim('data-db-0')],
        events: [
          event('PersistentVolumeClaim', 'data-db-0', 'WaitForFirstConsumer', 'waiting for first consumer', {
            type: 'Normal',
          }),
        ],
      }),
      expected: 'persistentvolumeclaim data-db-0 is still Pending: waiting for first consumer',
    },
    {
      name: 'a pending pod without container status, with a Warning event',
      input: input({
        pods: [pod('db-0', { phase: 'Pending' })],
        events: [
          event('Pod', 'db-0', 'Scheduled', 'Successfully assigned demo/db-0 to node-1', { type: 'Normal' }),
          event('Pod', 'db-0', 'FailedMount', 'MountVolume.SetUp failed for volume "data": timed out', {
            lastTimestamp: '2024-01-01T00:02:00Z',
          }),
          event('Pod', 'db-0', 'FailedAttachVolume', 'AttachVolume.Attach failed for volume "pvc-1"', {
            lastTimestamp: '2024-01-01T00:01:00Z',
          }),
        ],
      }),
      expected:
        'pod db-0 is still Pending (FailedMount): MountVolume.SetUp failed for volume "data": timed out',
    },
    {
      name: 'a pending pod whose containers are still being created counts as not started',
      input: input({
        pods: [pod('db-0', { phase: 'Pending', containers: [container(waiting('ContainerCreating'))] })],
        events: [event('Pod', 'db-0', 'FailedMount', 'volume "data" not attached')],
      }),
      expected: 'pod db-0 is still Pending (FailedMount): volume "data" not attached',
    },
    {
      name: 'a pending pod with only Normal events is not diagnosed',
      input: input({
        pods: [pod('db-0', { phase: 'Pending' })],
        events: [event('Pod', 'db-0', 'Pulling', 'Pulling image "postgres:16"', { type: 'Normal' })],
      }),
      expected: undefined,
    },
    {
      name: 'a running pod with Warning events is not diagnosed as pending',
      input: input({
        pods: [healthy('db-0')],
        events: [event('Pod', 'db-0', 'FailedMount', 'old mount failure')],
      }),
      expected: undefined,
    },
  ])('$name', ({ input: given, expected }) => {
    expect(whyNotReady(given)).toBe(expected);
  });
});

describe('whyNotReady: priority order', () => {
  const crashing = container({ name: 'sidecar', restartCount: 2, ...waiting('CrashLoopBackOff') });
  const pulling = container({ image: 'postgres:99', ...waiting('ImagePullBackOff', 'not found') });
  const configError = container({ name: 'exporter', ...waiting('CreateContainerConfigError', 'no secret') });

  it.each<{ name: string; input: Input; expected: string }>([
    {
      name: 'unschedulable beats a pending claim',
      input: input({
        pods: [pod('db-0', { phase: 'Pending', conditions: unschedulable(MEMORY) })],
        claims: [claim('data-db-0')],
        events: [event('PersistentVolumeClaim', 'data-db-0', 'ProvisioningFailed', 'quota exceeded')],
      }),
      expected: `pod db-0 cannot be scheduled: ${MEMORY}`,
    },
    {
      name: 'image pull beats a crash and a start error in the same pod, whatever the order',
      input: input({ pods: [pod('db-0', { containers: [configError, crashing, pulling] })] }),
      expected: 'pod db-0: container postgres cannot pull image "postgres:99" (ImagePullBackOff): not found',
    },
    {
      name: 'a crash beats a start error',
      input: input({ pods: [pod('db-0', { containers: [configError, crashing] })] }),
      expected: 'pod db-0: container sidecar keeps crashing, 2 restarts',
    },
    {
      name: 'a container cause beats a pending claim',
      input: input({
        pods: [pod('db-0', { containers: [configError] })],
        claims: [claim('data-db-0')],
        events: [event('PersistentVolumeClaim', 'data-db-0', 'ProvisioningFailed', 'quota exceeded')],
      }),
      expected: 'pod db-0: container exporter cannot start (CreateContainerConfigError): no secret',
    },
    {
      name: "a pending claim's warning beats the pod's warning event",
      input: input({
        pods: [pod('db-0', { phase: 'Pending' })],
        claims: [claim('data-db-0')],
        events: [
          event('Pod', 'db-0', 'FailedScheduling', 'waiting for the claim'),
          event('PersistentVolumeClaim', 'data-db-0', 'ProvisioningFailed', 'quota exceeded'),
        ],
      }),
      expected: 'persistentvolumeclaim data-db-0 is still Pending (ProvisioningFailed): quota exceeded',
    },
    {
      name: "the pod's warning event beats a claim with no warning",
      input: input({
        pods: [pod('db-0', { phase: 'Pending' })],
        claims: [claim('data-db-0')],
        events: [event('Pod', 'db-0', 'FailedScheduling', 'no nodes match the node selector')],
      }),
      expected: 'pod db-0 is still Pending (FailedScheduling): no nodes match the node selector',
    },
    {
      name: 'a pod unschedulable only for an unbound claim gives way to that claim',
      input: input({
        pods: [
          pod('db-0', {
            phase: 'Pending',
            conditions: unschedulable(
              '0/4 nodes are available: pod has unbound immediate PersistentVolumeClaims.',
            ),
          }),
        ],
        claims: [claim('data-db-0')],
        events: [event('PersistentVolumeClaim', 'data-db-0', 'ProvisioningFailed', 'quota exceeded')],
      }),
      expected: 'persistentvolumeclaim data-db-0 is still Pending (ProvisioningFailed): quota exceeded',
    },
    {
      name: 'a pod unschedulable for an unbound claim is reported when no claim is Pending',
      input: input({
        pods: [
          pod('db-0', {
            phase: 'Pending',
            conditions: unschedulable(
              '0/4 nodes are available: pod has unbound immediate PersistentVolumeClaims.',
            ),
          }),
        ],
        claims: [claim('data-db-0', 'Bound')],
      }),
      expected:
        'pod db-0 cannot be scheduled: 0/4 nodes are available: pod has unbound immediate PersistentVolumeClaims.',
    },
  ])('$name', ({ input: given, expected }) => {
    expect(whyNotReady(given)).toBe(expected);
  });

  it('ranks across pods: a worse cause in a later pod wins over a lesser one in an earlier pod', () => {
    const reason = whyNotReady(
      input({
        pods: [
          pod('db-0', { containers: [configError] }),
          pod('db-1', { phase: 'Pending', conditions: unschedulable(MEMORY) }),
        ],
      }),
    );
    expect(reason).toBe(`pod db-1 cannot be scheduled: ${MEMORY} (and 1 more pod)`);
  });
});

describe('whyNotReady: several pods', () => {
  const pulling = (name: string): Pod =>
    pod(name, {
      phase: 'Pending',
      containers: [container(waiting('ImagePullBackOff', `pull failed on ${name}`))],
    });

  it('reports the first by pod name, in ordinal order, and counts the others', () => {
    const reason = whyNotReady(
      input({
        pods: [pulling('db-10'), healthy('db-0'), pulling('db-2'), pulling('db-11'), healthy('db-1')],
      }),
    );
    expect(reason).toBe(
      'pod db-2: container postgres cannot pull image "postgres:16" (ImagePullBackOff): pull failed on db-2 (and 2 more pods)',
    );
  });

  it('says "1 more pod" for a single other pod, whatever its cause', () => {
    const reason = whyNotReady(
      input({
        pods: [
          pulling('db-0'),
          pod('db-1', { containers: [container({ restartCount: 4, ...waiting('CrashLoopBackOff') })] }),
        ],
      }),
    );
    expect(reason).toMatch(/pull failed on db-0 \(and 1 more pod\)$/);
  });

  it('counts other pending claims, not pods, when a claim is reported', () => {
    const reason = whyNotReady(
      input({
        claims: [claim('data-db-1'), claim('data-db-0'), claim('wal-db-0', 'Bound')],
        events: [
          event('PersistentVolumeClaim', 'data-db-0', 'ProvisioningFailed', 'quota exceeded'),
          event('PersistentVolumeClaim', 'data-db-1', 'ProvisioningFailed', 'quota exceeded'),
        ],
      }),
    );
    expect(reason).toBe(
      'persistentvolumeclaim data-db-0 is still Pending (ProvisioningFailed): quota exceeded (and 1 more claim)',
    );
  });
});

describe('whyNotReady: which events count', () => {
  const pending = (): Pod => pod('db-0', { phase: 'Pending' });

  it.each<{ name: string; events: Event[]; expected: string | undefined }>([
    {
      name: 'events of another pod',
      events: [event('Pod', 'db-1', 'FailedMount', 'not mine')],
      expected: undefined,
    },
    {
      name: 'events of a claim with the same name as the pod',
      events: [
        event('PersistentVolumeClaim', 'db-0', 'ProvisioningFailed', 'not a pod event', { uid: null }),
      ],
      expected: undefined,
    },
    {
      name: 'events of the same name in another namespace, without uid',
      events: [event('Pod', 'db-0', 'FailedMount', 'elsewhere', { uid: null, namespace: 'other' })],
      expected: undefined,
    },
    {
      name: 'an event of an older pod with the same name (stale uid)',
      events: [event('Pod', 'db-0', 'FailedMount', 'previous incarnation', { uid: 'uid-old' })],
      expected: undefined,
    },
    {
      name: 'a stale event newer than the current one',
      events: [
        event('Pod', 'db-0', 'FailedMount', 'current', { lastTimestamp: '2024-01-01T00:01:00Z' }),
        event('Pod', 'db-0', 'FailedAttachVolume', 'previous incarnation', {
          uid: 'uid-old',
          lastTimestamp: '2024-01-01T00:09:00Z',
        }),
      ],
      expected: 'pod db-0 is still Pending (FailedMount): current',
    },
    {
      name: 'an event without uid matches by namespace and name',
      events: [event('Pod', 'db-0', 'FailedMount', 'by name', { uid: null })],
      expected: 'pod db-0 is still Pending (FailedMount): by name',
    },
  ])('$name', ({ events, expected }) => {
    expect(whyNotReady(input({ pods: [pending()], events }))).toBe(expected);
  });

  it('orders by lastTimestamp, then series.lastObservedTime, eventTime and creationTimestamp', () => {
    const base = event('PersistentVolumeClaim', 'data-db-0', 'ProvisioningFailed', '');
    const { lastTimestamp: _dropped, ...unstamped } = base;
    const events: Event[] = [
      {
        ...unstamped,
        message: 'created at 3',
        metadata: { ...base.metadata, creationTimestamp: '2024-01-01T00:03:00Z' },
      },
      { ...unstamped, message: 'event time 4', eventTime: '2024-01-01T00:04:00.000000Z' },
      {
        ...unstamped,
        message: 'series 5',
        eventTime: '2024-01-01T00:00:00.000000Z',
        series: { count: 3, lastObservedTime: '2024-01-01T00:05:00.000000Z' },
      },
      { ...base, message: 'last 2', lastTimestamp: '2024-01-01T00:02:00Z' },
      { ...unstamped, message: 'no time at all' },
    ];
    expect(whyNotReady(input({ claims: [claim('data-db-0')], events }))).toBe(
      'persistentvolumeclaim data-db-0 is still Pending (ProvisioningFailed): series 5',
    );
  });
});

describe('whyNotReady: length bound', () => {
  const long = `${'x'.repeat(300)} ${'y'.repeat(300)}`;

  it('cuts a long message at 500 characters with an ellipsis', () => {
    const reason = whyNotReady(
      input({ pods: [pod('db-0', { phase: 'Pending', conditions: unschedulable(long) })] }),
    );
    expect(reason).toHaveLength(500);
    expect(reason).toMatch(/^pod db-0 cannot be scheduled: x+ y+…$/);
  });

  it('keeps the count of other pods when cutting', () => {
    const pods = ['db-0', 'db-1', 'db-2'].map((name) =>
      pod(name, { phase: 'Pending', conditions: unschedulable(long) }),
    );
    const reason = whyNotReady(input({ pods }));
    expect(reason?.length).toBeLessThanOrEqual(500);
    expect(reason).toMatch(/… \(and 2 more pods\)$/);
  });

  it('leaves a short message whole', () => {
    const reason = whyNotReady(
      input({ pods: [pod('db-0', { phase: 'Pending', conditions: unschedulable(MEMORY) })] }),
    );
    expect(reason).not.toContain('…');
  });

  it('never splits a surrogate pair', () => {
    const emoji = '🙂'.repeat(400);
    const reason = whyNotReady(
      input({ pods: [pod('db-0', { phase: 'Pending', conditions: unschedulable(emoji) })] }),
    );
    expect(reason?.length).toBeLessThanOrEqual(500);
    expect(reason).toMatch(/🙂…$/u);
    expect(reason?.isWellFormed()).toBe(true);
  });
});

describe('toldOnlyByEvents: what a cache of pods and claims cannot explain', () => {
  const QUIET_SINCE = new Date('2030-03-01T12:00:00Z');
  const onNode = (p: Pod): Pod => ({ ...p, spec: { ...p.spec, nodeName: 'node-1' } });
  const names = (objects: { metadata: { name?: string } }[]): (string | undefined)[] =>
    objects.map((object) => object.metadata.name);

  it('names a scheduled pod whose containers have not started and say nothing, and a Pending claim', () => {
    const silent = onNode(
      pod('db-0', { phase: 'Pending', containers: [container(waiting('ContainerCreating'))] }),
    );
    expect(
      names(toldOnlyByEvents({ pods: [silent], claims: [claim('data-db-0')], quietSince: QUIET_SINCE })),
    ).toEqual(['db-0', 'data-db-0']);
  });

  it('passes over a pod scheduled, and a claim created, after quietSince: not silent for long yet', () => {
    const later = new Date(QUIET_SINCE.getTime() + 1_000).toISOString();
    const justScheduled = onNode(
      pod('db-0', {
        phase: 'Pending',
        conditions: [{ type: 'PodScheduled', status: 'True', lastTransitionTime: later }],
        containers: [container(waiting('ContainerCreating'))],
      }),
    );
    const justCreated = claim('data-db-0');
    justCreated.metadata.creationTimestamp = later;
    expect(
      toldOnlyByEvents({ pods: [justScheduled], claims: [justCreated], quietSince: QUIET_SINCE }),
    ).toEqual([]);
    // At quietSince itself, both have been silent long enough.
    const since = new Date(later);
    expect(
      names(toldOnlyByEvents({ pods: [justScheduled], claims: [justCreated], quietSince: since })),
    ).toEqual(['db-0', 'data-db-0']);
  });

  it.each<[string, Pod]>([
    ['not scheduled yet (the scheduler sets a condition)', pod('db-0', { phase: 'Pending' })],
    ['unschedulable', pod('db-0', { phase: 'Pending', conditions: unschedulable(MEMORY) })],
    ['running', onNode(healthy('db-0'))],
    [
      'pulling an image that is not there (its status says so)',
      onNode(
        pod('db-0', { phase: 'Pending', containers: [container(waiting('ImagePullBackOff', 'not found'))] }),
      ),
    ],
    [
      'restarted once (it has started)',
      onNode(
        pod('db-0', {
          phase: 'Pending',
          containers: [container({ lastState: { terminated: { exitCode: 0 } }, state: { waiting: {} } })],
        }),
      ),
    ],
  ])('passes over a pod %s', (_what, p) => {
    expect(
      toldOnlyByEvents({ pods: [p], claims: [claim('data-db-0', 'Bound')], quietSince: QUIET_SINCE }),
    ).toEqual([]);
  });
});
