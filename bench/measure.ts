// Measuring instruments for the benchmarks: percentiles, a process's CPU time and RSS from /proc,
// the control plane's process ids, and the API server's own request counters.

import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { KUBECONFIG_PATH, REPO_ROOT } from '../test/integration/support/cluster.js';

/** The p-th percentile (0..100) by nearest rank; NaN for no samples. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] ?? Number.NaN;
}

export interface Distribution {
  count: number;
  p50: number;
  p99: number;
  max: number;
}

export const distribution = (values: readonly number[]): Distribution => ({
  count: values.length,
  p50: percentile(values, 50),
  p99: percentile(values, 99),
  max: percentile(values, 100),
});

/** Linux reports CPU time in clock ticks of 1/100 s (USER_HZ) on every architecture we run on. */
const TICKS_PER_SECOND = 100;

/** Live child processes of `pid` and theirs (a tsx wrapper's Node process, say). */
function descendants(pid: number): number[] {
  const children: number[] = [];
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    const listed = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
    if (listed !== '') children.push(...listed.split(' ').map(Number));
  }
  return children.flatMap((child) => [child, ...descendants(child)]);
}

/** User plus system CPU seconds the process and its live descendants have used so far. */
export function cpuSeconds(pid: number): number {
  return [pid, ...descendants(pid)].reduce((sum, one) => {
    const stat = readFileSync(`/proc/${one}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start at field 3, "state".
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return sum + (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  }, 0);
}

/** Resident set size in bytes. */
export function residentBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1];
  if (kb === undefined) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(kb) * 1024;
}

/** The bench cluster's processes by name, from the pid files of kwokctl and up.sh. */
export function clusterPids(): Record<string, number> {
  const cluster = process.env.CLUSTER_NAME ?? 'bench';
  const state = join(REPO_ROOT, '.cache', 'clusters', cluster);
  const pids: Record<string, number> = {};
  for (const dir of [join(state, 'kwok', 'clusters', cluster, 'pids'), join(state, 'pids')]) {
    for (const file of readdirSync(dir).filter((name) => name.endsWith('.pid'))) {
      pids[file.replace(/\.pid$/, '')] = Number(readFileSync(join(dir, file), 'utf8').trim());
    }
  }
  return pids;
}

const run = promisify(execFile);
const KUBECTL = join(REPO_ROOT, '.cache', 'bin', 'kubectl');

/** GET a raw path as the cluster admin; returns the body (large LISTs included). */
export async function rawGet(path: string): Promise<string> {
  const { stdout } = await run(KUBECTL, ['--kubeconfig', KUBECONFIG_PATH, 'get', '--raw', path], {
    maxBuffer: 2 * 1024 * 1024 * 1024,
  });
  return stdout;
}

export type Counters = Record<string, number>;

/** Every sample of `name` in a Prometheus exposition, keyed by its label set as written. */
export function samples(text: string, name: string): Counters {
  const found: Counters = {};
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const space = line.lastIndexOf(' ');
    found[line.slice(name.length, space)] = Number(line.slice(space + 1));
  }
  return found;
}

/** later - earlier for every key of later. */
export function delta(later: Counters, earlier: Counters): Counters {
  return Object.fromEntries(Object.entries(later).map(([key, value]) => [key, value - (earlier[key] ?? 0)]));
}

/** The value of `label` in a label set written as {a="x",b="y"}. */
export function labelOf(labelSet: string, label: string): string {
  return new RegExp(`[{,]${label}="([^"]*)"`).exec(labelSet)?.[1] ?? '';
}

/** Sums counters by one label (or by a function of the label set). */
export function sumBy(counters: Counters, key: (labelSet: string) => string | undefined): Counters {
  const sums: Counters = {};
  for (const [labelSet, value] of Object.entries(counters)) {
    const group = key(labelSet);
    if (group !== undefined) sums[group] = (sums[group] ?? 0) + value;
  }
  return sums;
}

/**
 * Requests the API server dispatched for ServiceAccounts (flow schema "service-accounts"): the
 * operator is the only ServiceAccount client during a run, so this counts its requests on the
 * server's side. Watches count once, when they start.
 */
export async function serverServiceAccountRequests(): Promise<number> {
  const dispatched = samples(await rawGet('/metrics'), 'apiserver_flowcontrol_dispatched_requests_total');
  return Object.entries(dispatched)
    .filter(([labels]) => labelOf(labels, 'flow_schema') === 'service-accounts')
    .reduce((sum, [, value]) => sum + value, 0);
}

/**
 * The q-quantile (0..1) of a Prometheus histogram from its cumulative buckets, interpolated
 * linearly within the bucket as histogram_quantile() does; NaN when it holds no observations.
 */
export function histogramQuantile(buckets: readonly { le: number; count: number }[], q: number): number {
  const sorted = [...buckets].sort((a, b) => a.le - b.le);
  const total = sorted.at(-1)?.count ?? 0;
  if (total === 0) return Number.NaN;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const { le, count } of sorted) {
    if (count >= rank) {
      if (!Number.isFinite(le)) return lower;
      return lower + ((le - lower) * (rank - below)) / Math.max(1, count - below);
    }
    lower = le;
    below = count;
  }
  return lower;
}

/**
 * Per label set (without `le`), the buckets of histogram `name` in `later` minus those in
 * `earlier`: the observations made between two scrapes.
 */
export function histogramDelta(
  later: string,
  earlier: string,
  name: string,
): Map<string, { le: number; count: number }[]> {
  const before = samples(earlier, `${name}_bucket`);
  const byLabels = new Map<string, { le: number; count: number }[]>();
  for (const [labelSet, value] of Object.entries(samples(later, `${name}_bucket`))) {
    const le = labelOf(labelSet, 'le');
    const rest = labelSet.replace(/le="[^"]*",?/, '').replace(/,}$/, '}');
    const buckets = byLabels.get(rest) ?? [];
    buckets.push({ le: le === '+Inf' ? Infinity : Number(le), count: value - (before[labelSet] ?? 0) });
    byLabels.set(rest, buckets);
  }
  return byLabels;
}

export const round = (value: number, digits = 2): number =>
  Number.isFinite(value) ? Number(value.toFixed(digits)) : value;
