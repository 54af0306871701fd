// Reading prom-client metrics in tests.

import type { Counter } from 'prom-client';

/** The value of a counter for the labels given (0 when never incremented). */
export async function counterValue<L extends string>(
  counter: Counter<L>,
  labels: Partial<Record<L, string>>,
): Promise<number> {
  const { values } = await counter.get();
  const entries = Object.entries(labels);
  return values
    .filter((v) => entries.every(([name, value]) => (v.labels as Record<string, unknown>)[name] === value))
    .reduce((sum, v) => sum + v.value, 0);
}
