// Seeded randomness for the fuzz and chaos suites: a failing run is repeated with its seed.

/** mulberry32: a small deterministic PRNG returning numbers in [0, 1). */
export function prng(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The seed from the environment variable `name` if set, else `fallback`. */
export function seedFrom(name: string, fallback: number): number {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isSafeInteger(value))
    throw new Error(`${name} must be an integer, got ${process.env[name] ?? ''}`);
  return value;
}
