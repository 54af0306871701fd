// A live terminal view of one Restore (used by `make demo`): each phase as it is entered, how
// long the previous one took, the volumes' progress, and the outcome. Exits when it ends.
//   tsx scripts/watch-restore.ts <namespace> <name>

import type { Restore, RestoreStatus } from '../src/api/generated/types.js';
import { KubeClient } from '../src/runtime/kube-client.js';
import { resources } from '../src/runtime/resources.js';

const [namespace, name] = process.argv.slice(2);
if (namespace === undefined || name === undefined) {
  console.error('usage: tsx scripts/watch-restore.ts <namespace> <name>');
  process.exit(2);
}

const color = process.stdout.isTTY
  ? {
      dim: '\x1b[2m',
      bold: '\x1b[1m',
      green: '\x1b[32m',
      red: '\x1b[31m',
      cyan: '\x1b[36m',
      reset: '\x1b[0m',
    }
  : { dim: '', bold: '', green: '', red: '', cyan: '', reset: '' };

const seconds = (from: string, to: string): string =>
  `${((Date.parse(to) - Date.parse(from)) / 1000).toFixed(1)}s`;

let shownPhases = 0;
let lastProgress = '';

function show(status: RestoreStatus): boolean {
  const history = status.phaseHistory ?? [];
  for (; shownPhases < history.length; shownPhases++) {
    const entry = history[shownPhases];
    const previous = history[shownPhases - 1];
    if (entry === undefined) continue;
    const took =
      previous === undefined
        ? ''
        : `${color.dim}(${previous.phase} took ${seconds(previous.enteredAt, entry.enteredAt)})${color.reset}`;
    const tint =
      entry.phase === 'Successful' ? color.green : entry.phase === 'Failed' ? color.red : color.cyan;
    console.log(
      `${color.dim}${entry.enteredAt}${color.reset}  ${tint}${color.bold}${entry.phase.padEnd(40)}${color.reset} ${took}`,
    );
  }
  const progressing = status.conditions?.find((condition) => condition.type === 'Progressing');
  const volumes = (status.volumes ?? [])
    .map((volume) => `${volume.pvcName}=${volume.phase ?? '?'}`)
    .join('  ');
  const progress = `${progressing?.message ?? ''}${volumes === '' ? '' : ` | ${volumes}`}`;
  if (progress !== lastProgress && progressing?.status === 'True') {
    console.log(`${' '.repeat(26)}${color.dim}… ${progress}${color.reset}`);
    lastProgress = progress;
  }
  if (status.phase === 'Successful' || status.phase === 'Failed') {
    const total =
      status.startedAt !== undefined && status.completedAt !== undefined
        ? seconds(status.startedAt, status.completedAt)
        : '?';
    console.log('');
    if (status.phase === 'Successful') {
      console.log(
        `${color.green}${color.bold}Restore ${namespace}/${name} succeeded in ${total}:${color.reset} ${status.destination?.kind ?? ''} ${status.destination?.deploymentName ?? ''} (uid ${status.destination?.deploymentUid ?? '?'}) is running in normal mode.`,
      );
    } else {
      console.log(
        `${color.red}${color.bold}Restore ${namespace}/${name} failed (${status.errorCode ?? ''}):${color.reset} ${status.errorMessage ?? ''}`,
      );
    }
    return true;
  }
  return false;
}

const client = await KubeClient.fromDefault({ userAgent: 'snapback-demo-viewer' });
console.log(
  `${color.bold}Restore ${namespace}/${name}${color.reset} (customResourceName and phases as the operator records them)\n`,
);
const controller = new AbortController();
// A holder, not a `let`: it is set in the watch callback, which TypeScript's narrowing cannot see.
const outcome = { shown: false };
while (!outcome.shown) {
  const initial = await client.get(resources.restores, name, namespace);
  if (initial?.status !== undefined && show(initial.status)) break;
  await client
    .watch<Restore>(
      resources.restores,
      {
        namespace,
        fieldSelector: `metadata.name=${name}`,
        resourceVersion: initial?.metadata.resourceVersion ?? '0',
        timeoutSeconds: 60,
      },
      (type, object) => {
        if (type === 'ADDED' || type === 'MODIFIED') {
          const restore = object as Restore;
          if (restore.status !== undefined && show(restore.status)) {
            outcome.shown = true;
            controller.abort();
          }
        }
      },
      controller.signal,
    )
    .catch((err: unknown) => {
      console.error(`watch interrupted (${String(err)}); resuming`);
    });
}
await client.close();
