// Why a restored workload is not ready, read from its Pods, their claims and recent Events, in
// one sentence a person can act on. Pure: callers pass what their caches hold.

import type { ContainerStatus, Event, KubeObject, PersistentVolumeClaim, Pod } from '../api/kubernetes.js';

/** The sentence goes into a status condition message: keep it readable, not a log dump. */
const MAX_LENGTH = 500;

const IMAGE_PULL_REASONS = new Set([
  'ErrImagePull',
  'ImagePullBackOff',
  'InvalidImageName',
  'ErrImageNeverPull',
]);
const START_ERROR_REASONS = new Set([
  'CreateContainerConfigError',
  'CreateContainerError',
  'RunContainerError',
]);
const CRASH_REASONS = new Set(['OOMKilled', 'Error']);

// Lower ranks win across all pods and claims: a cause further down is often a consequence of one above.
const Rank = {
  unschedulable: 1,
  imagePull: 2,
  crash: 3,
  startError: 4,
  claimWarning: 5,
  podWarning: 6,
  claimPending: 7,
  // The scheduler only says "pod has unbound immediate PersistentVolumeClaims": the claim's own
  // events name the cause, so this ranks below any Pending claim.
  unschedulableOnClaim: 8,
} as const;

interface Finding {
  rank: number;
  kind: 'pod' | 'claim';
  name: string;
  text: string;
}

/**
 * Why the workload these pods and claims belong to is not ready, as one sentence of at most 500
 * characters, or undefined when nothing specific is wrong. The most severe cause wins; among pods
 * (or claims) with the same cause, the first by name, and the others are counted.
 */
export function whyNotReady(input: {
  pods: Pod[];
  claims: PersistentVolumeClaim[];
  events: Event[];
}): string | undefined {
  const anyClaimPending = input.claims.some((claim) => claim.status?.phase === 'Pending');
  const findings: Finding[] = [];
  for (const pod of input.pods) {
    const finding = diagnosePod(pod, eventsOf(input.events, 'Pod', pod), anyClaimPending);
    if (finding !== undefined) findings.push(finding);
  }
  for (const claim of input.claims) {
    const finding = diagnoseClaim(claim, eventsOf(input.events, 'PersistentVolumeClaim', claim));
    if (finding !== undefined) findings.push(finding);
  }
  const ordered = findings.sort((a, b) => a.rank - b.rank || byName.compare(a.name, b.name));
  const first = ordered[0];
  if (first === undefined) return undefined;
  const more = ordered.filter((finding) => finding.kind === first.kind).length - 1;
  const noun = first.kind === 'pod' ? 'pod' : 'claim';
  const suffix = more > 0 ? ` (and ${more} more ${noun}${more === 1 ? '' : 's'})` : '';
  return truncate(first.text, MAX_LENGTH - suffix.length) + suffix;
}

// Numeric, so that db-2 comes before db-10 as StatefulSet ordinals do.
const byName = new Intl.Collator('en', { numeric: true });

function diagnosePod(pod: Pod, events: Event[], anyClaimPending: boolean): Finding | undefined {
  const name = pod.metadata.name ?? '';
  const finding = (rank: number, text: string): Finding => ({ rank, kind: 'pod', name, text });

  const scheduled = pod.status?.conditions?.find((condition) => condition.type === 'PodScheduled');
  if (scheduled?.status === 'False' && scheduled.reason === 'Unschedulable') {
    const message = clean(scheduled.message);
    const onClaim = anyClaimPending && /unbound immediate persistentvolumeclaims/i.test(message);
    return finding(
      onClaim ? Rank.unschedulableOnClaim : Rank.unschedulable,
      `pod ${name} cannot be scheduled${detail(message)}`,
    );
  }

  // Init containers first: the main containers wait on them.
  const statuses = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];
  const containerFindings = statuses
    .map((status) => diagnoseContainer(pod, status))
    .filter((found) => found !== undefined);
  const worst = containerFindings.reduce<(typeof containerFindings)[number] | undefined>(
    (best, found) => (best === undefined || found.rank < best.rank ? found : best),
    undefined,
  );
  if (worst !== undefined) return finding(worst.rank, `pod ${name}: ${worst.text}`);

  // Before any container starts, kubelet and attach/detach report only through Events.
  if (pod.status?.phase === 'Pending' && !anyStarted(statuses)) {
    const warning = newest(events.filter((event) => event.type === 'Warning'));
    if (warning !== undefined)
      return finding(
        Rank.podWarning,
        `pod ${name} is still Pending (${warning.reason})${detail(warning.message)}`,
      );
  }
  return undefined;
}

const anyStarted = (statuses: ContainerStatus[]): boolean =>
  statuses.some(
    (status) =>
      status.state?.running !== undefined ||
      status.state?.terminated !== undefined ||
      status.lastState?.terminated !== undefined,
  );

/**
 * The pods and claims whose trouble only their Events can tell: a pod on a node whose containers
 * have not started and report nothing (kubelet and attach/detach speak through Events), and a
 * claim still Pending, each only once it has been so since `quietSince` (a pod from when it was
 * scheduled, a claim from its creation): a node starting containers, a provisioner at work, are
 * slow before they are wrong. Everything else is in the objects' own status, so a caller that
 * holds them in a cache reads Events for these alone.
 */
export function toldOnlyByEvents(input: {
  pods: Pod[];
  claims: PersistentVolumeClaim[];
  quietSince: Date;
}): KubeObject[] {
  // An object that says not when is taken as quiet long enough.
  const before = (time: string | undefined): boolean =>
    !(Date.parse(time ?? '') > input.quietSince.getTime());
  const silentOnNode = (pod: Pod): boolean => {
    if (pod.spec.nodeName === undefined || pod.status?.phase !== 'Pending') return false;
    const scheduled = pod.status.conditions?.find((condition) => condition.type === 'PodScheduled');
    if (!before(scheduled?.lastTransitionTime ?? pod.metadata.creationTimestamp)) return false;
    const statuses = [...(pod.status.initContainerStatuses ?? []), ...(pod.status.containerStatuses ?? [])];
    return !anyStarted(statuses) && statuses.every((status) => diagnoseContainer(pod, status) === undefined);
  };
  return [
    ...input.pods.filter(silentOnNode),
    ...input.claims.filter(
      (claim) => claim.status?.phase === 'Pending' && before(claim.metadata.creationTimestamp),
    ),
  ];
}

function diagnoseContainer(pod: Pod, status: ContainerStatus): { rank: number; text: string } | undefined {
  const waiting = status.state?.waiting;
  const reason = waiting?.reason ?? '';
  const container = `container ${status.name}`;

  if (IMAGE_PULL_REASONS.has(reason)) {
    return {
      rank: Rank.imagePull,
      text: `${container} cannot pull image "${imageOf(pod, status)}" (${reason})${detail(waiting?.message)}`,
    };
  }

  // A container that is ready now has recovered; an old termination is history, not the cause.
  const terminated = status.state?.terminated ?? (status.ready ? undefined : status.lastState?.terminated);
  const crashed =
    terminated !== undefined && (terminated.exitCode !== 0 || CRASH_REASONS.has(terminated.reason ?? ''));
  if (reason === 'CrashLoopBackOff' || crashed) {
    const exit =
      terminated === undefined
        ? ''
        : `: exit code ${terminated.exitCode}${terminated.reason === undefined ? '' : ` (${terminated.reason})`}`;
    const restarts = `${status.restartCount} ${status.restartCount === 1 ? 'restart' : 'restarts'}`;
    const message = clean(terminated?.message);
    return {
      rank: Rank.crash,
      text: `${container} keeps crashing${exit}, ${restarts}${message === '' ? '' : `; last message: ${message}`}`,
    };
  }

  if (START_ERROR_REASONS.has(reason)) {
    return {
      rank: Rank.startError,
      text: `${container} cannot start (${reason})${detail(waiting?.message)}`,
    };
  }
  return undefined;
}

function diagnoseClaim(claim: PersistentVolumeClaim, events: Event[]): Finding | undefined {
  if (claim.status?.phase !== 'Pending') return undefined;
  const name = claim.metadata.name ?? '';
  const warning = newest(events.filter((event) => event.type === 'Warning'));
  if (warning !== undefined) {
    return {
      rank: Rank.claimWarning,
      kind: 'claim',
      name,
      text: `persistentvolumeclaim ${name} is still Pending (${warning.reason})${detail(warning.message)}`,
    };
  }
  // No warning: probably still provisioning or waiting for its first consumer; say what it waits for.
  return {
    rank: Rank.claimPending,
    kind: 'claim',
    name,
    text: `persistentvolumeclaim ${name} is still Pending${detail(newest(events)?.message)}`,
  };
}

/** The events about this very object: by uid when both sides know it, so a previous incarnation's events do not count. */
function eventsOf(events: Event[], kind: string, object: KubeObject): Event[] {
  const { name, namespace, uid } = object.metadata;
  return events.filter(({ involvedObject: involved }) => {
    if (involved.kind !== undefined && involved.kind !== kind) return false;
    if (involved.uid !== undefined && involved.uid !== '' && uid !== undefined && uid !== '')
      return involved.uid === uid;
    return involved.name === name && (involved.namespace ?? '') === (namespace ?? '');
  });
}

/** The latest event; on equal times, the later in the list. */
function newest(events: Event[]): Event | undefined {
  let latest: { event: Event; time: number } | undefined;
  for (const event of events) {
    const time = timeOf(event);
    if (latest === undefined || time >= latest.time) latest = { event, time };
  }
  return latest?.event;
}

function timeOf(event: Event): number {
  const stamp =
    event.lastTimestamp ??
    event.series?.lastObservedTime ??
    event.eventTime ??
    event.metadata.creationTimestamp;
  const time = stamp === undefined ? Number.NaN : Date.parse(stamp);
  return Number.isNaN(time) ? Number.NEGATIVE_INFINITY : time;
}

function imageOf(pod: Pod, status: ContainerStatus): string {
  if (status.image !== '') return status.image;
  const containers = [...(pod.spec.initContainers ?? []), ...pod.spec.containers];
  return containers.find((container) => container.name === status.name)?.image ?? '';
}

/** Messages can carry log lines (terminationMessagePolicy FallbackToLogsOnError): one line. */
const clean = (message: string | undefined): string => (message ?? '').replace(/\s+/g, ' ').trim();

const detail = (message: string | undefined): string => {
  const text = clean(message);
  return text === '' ? '' : `: ${text}`;
};

function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = Math.max(0, max - 1);
  // Never split a surrogate pair.
  const code = text.charCodeAt(end - 1);
  if (code >= 0xd800 && code <= 0xdbff) end -= 1;
  return `${text.slice(0, end).trimEnd()}…`;
}
