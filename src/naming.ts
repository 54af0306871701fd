// Deterministic object names. Every object Snapback creates is named from what it belongs to, so
// a restarted operator finds what it created before instead of creating it twice.

import { createHash } from 'node:crypto';

/** Kubernetes DNS-1123 label limit (names of StatefulSets' pods, label values, ...). */
export const MAX_LABEL_LENGTH = 63;
/** StatefulSet pods carry a controller-revision-hash label of name + "-" + 10 chars. */
export const MAX_STATEFULSET_NAME_LENGTH = 52;

/** A short, stable, DNS-safe digest of the given parts. */
export function shortHash(parts: readonly string[], length = 8): string {
  const digest = createHash('sha256').update(parts.join('\u0000')).digest();
  // base32 (lowercase, no padding): DNS-safe and denser than hex.
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
  let out = '';
  for (let i = 0; out.length < length; i++) {
    const byte = digest[i % digest.length] ?? 0;
    out += alphabet[byte % 32] ?? 'a';
  }
  return out;
}

/** Lowercases and turns anything outside [a-z0-9-] into '-', collapsing runs. */
function toLabelCharacters(value: string): string {
  return value
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-+/g, '-');
}

const trimDashes = (value: string): string => value.replace(/^-+/, '').replace(/-+$/, '');

/**
 * `prefix-...-suffix` as a DNS-1123 label of at most `max` characters. When it is too long the
 * middle is cut, never the suffix, which is what keeps cut names distinct.
 */
export function boundedName(prefix: string, middle: string, suffix: string, max = MAX_LABEL_LENGTH): string {
  const head = trimDashes(toLabelCharacters(prefix));
  const tail = trimDashes(toLabelCharacters(suffix));
  // The suffix always fits; the prefix is cut only when the middle has nothing left.
  const budget = max - (tail === '' ? 0 : tail.length + 1);
  const start = trimDashes(head.slice(0, budget));
  const room = budget - (start === '' ? 0 : start.length + 1);
  const body = room > 0 ? trimDashes(toLabelCharacters(middle).slice(0, room)) : '';
  return [start, body, tail].filter((part) => part !== '').join('-');
}

/**
 * The restore's customResourceName: "restore-" + name + "-" + shortId, where the short id
 * comes from the restore's UID and attempt: stable across operator restarts, new per attempt.
 */
export function customResourceName(restoreName: string, restoreUid: string, attempt: number): string {
  return boundedName('restore', restoreName, shortHash([restoreUid, String(attempt)], 6));
}

/** A name for the `index`th object of a kind that `owner` creates, unique per owner. */
export function childName(owner: string, ownerUid: string, what: string, index: number): string {
  return boundedName(owner, what, `${shortHash([ownerUid, what], 5)}-${index}`);
}

/**
 * The name of the Backup that backup sync imports from another cluster's record: readable
 * (cluster, namespace, name) and, through the digest, distinct for every source.
 */
export function syncedBackupName(source: { cluster: string; namespace: string; name: string }): string {
  return boundedName(
    source.cluster,
    `${source.namespace}-${source.name}`,
    shortHash([source.cluster, source.namespace, source.name], 6),
  );
}
