// Data identity: each simulated volume carries a content id standing for the bytes on it, so a
// test can tell which data a restored volume holds without any real I/O.

import { createHash } from 'node:crypto';

function digest(...parts: string[]): string {
  return createHash('sha256').update(parts.join('\u0000')).digest('hex').slice(0, 24);
}

/**
 * The content id of a new, empty volume. Derived from the claim's UID (unique in a cluster and,
 * in practice, across clusters) rather than random, so a retried provisioning gives the same id.
 */
export function freshContentId(claimUid: string): string {
  return `c-${digest('fresh', claimUid)}`;
}

/** The content id after writing `value` onto a volume whose content id was `contentId`. */
export function writtenContentId(contentId: string, value: string): string {
  return `c-${digest('write', contentId, value)}`;
}

/**
 * The content id once the claim's `write` annotation is applied: writes are applied once per
 * distinct value, so `appliedWrite` (what the volume last took) decides whether this one is new.
 */
export function contentIdAfterWrite(
  contentId: string,
  appliedWrite: string | undefined,
  write: string | undefined,
): string {
  return write === undefined || write === appliedWrite ? contentId : writtenContentId(contentId, write);
}
