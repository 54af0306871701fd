// Failure injection: the sim.snapback.dev/{fail,delay-ms,never} annotations on an object and on
// its class, and what they mean for acting on the object now.

import { SIM } from './constants.js';

export interface Directives {
  /** Fail with this message. */
  fail?: string;
  /** Act only this long after the object was created. */
  delayMs?: number;
  /** Never finish. */
  never: boolean;
  /** Set when an annotation cannot be understood; acting on the object then fails with it. */
  invalid?: string;
}

type Annotations = Record<string, string> | undefined;

/**
 * Merges the annotations of the objects that influence an action, most specific first (the
 * object, then its class): per key, the first object that carries the key wins, so an object can
 * switch off what its class sets with an empty value (`fail: ""`, `delay-ms: "0"`, `never: "false"`).
 */
export function directivesFrom(sources: readonly Annotations[]): Directives {
  const pick = (key: string): string | undefined => {
    for (const annotations of sources) {
      const value = annotations?.[key];
      if (value !== undefined) return value;
    }
    return undefined;
  };
  const directives: Directives = { never: pick(SIM.never) === 'true' };
  const fail = pick(SIM.fail);
  if (fail !== undefined && fail !== '') directives.fail = fail;
  const delay = pick(SIM.delayMs)?.trim();
  if (delay !== undefined && delay !== '') {
    if (/^\d+$/.test(delay)) {
      const delayMs = Number(delay);
      if (delayMs > 0) directives.delayMs = delayMs;
    } else {
      directives.invalid = `annotation ${SIM.delayMs}: "${delay}" is not a whole number of milliseconds`;
    }
  }
  return directives;
}

export type Gate =
  | { kind: 'proceed' }
  | { kind: 'wait'; afterMs: number }
  | { kind: 'hold' }
  | { kind: 'fail'; message: string };

/**
 * Whether to act on an object created at `createdAtMs` now. `never` wins over everything; a delay
 * postpones a failure as well as a success, so a delayed failure can be observed as one.
 */
export function gate(directives: Directives, createdAtMs: number | undefined, nowMs: number): Gate {
  if (directives.never) return { kind: 'hold' };
  if (directives.invalid !== undefined) return { kind: 'fail', message: directives.invalid };
  if (directives.delayMs !== undefined) {
    const remaining = (createdAtMs ?? 0) + directives.delayMs - nowMs;
    if (remaining > 0) return { kind: 'wait', afterMs: remaining };
  }
  if (directives.fail !== undefined) return { kind: 'fail', message: directives.fail };
  return { kind: 'proceed' };
}

/**
 * The latest moment, in epoch milliseconds, the object can have been created: creationTimestamp
 * has whole seconds, so a delay counted from it alone could end up to a second early.
 */
export function createdAt(metadata: { creationTimestamp?: string }): number | undefined {
  if (metadata.creationTimestamp === undefined) return undefined;
  const ms = Date.parse(metadata.creationTimestamp);
  return Number.isNaN(ms) ? undefined : ms + 999;
}
