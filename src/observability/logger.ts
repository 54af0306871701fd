// JSON logs through winston. Components log with a child logger carrying the object they work on:
//   logger.child({ controller: 'restore', namespace, name, phase, attempt })
// so every line can be filtered by object. A redaction format runs on every entry: credentials
// must never reach log storage, whatever a caller passes as metadata.

import type { Writable } from 'node:stream';
import winston, { type Logger } from 'winston';

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';

export const REDACTED = '[REDACTED]';

/**
 * Field names whose values are credentials: token, password, secret and names ending so
 * (clientSecret), and an object store's keys (accessKeyId, secretAccessKey, as in a location's
 * credentials Secret).
 */
const SENSITIVE_FIELD = /(token|password|passwd|secret|accesskeyid|secretaccesskey)$/i;
/**
 * Credentials that end up inside messages (request dumps, error texts): bearer tokens, an S3
 * request's signing key id and signature (SigV4 header and presigned query), and the two keys
 * written as `name: value` or `name=value`.
 */
const IN_TEXT = [
  /(bearer\s+)[\w\-.~+/]+=*/gi,
  /((?:x-amz-)?credential=)[^/\s,&"]+/gi,
  /((?:x-amz-)?signature=)[0-9a-f]+/gi,
  /((?:accessKeyId|secretAccessKey)["']?\s*[:=]\s*["']?)[^\s"',&}]+/gi,
];
const MAX_DEPTH = 12;

/**
 * A Secret's payload. Items of a LIST carry no kind, so a Secret is also recognised by its shape:
 * metadata plus a string `type` (the server always sets one) next to data/stringData.
 */
function isSecret(value: Record<string, unknown>): boolean {
  if (value.kind === 'Secret') return true;
  return (
    typeof value.metadata === 'object' &&
    typeof value.type === 'string' &&
    ('data' in value || 'stringData' in value)
  );
}

function redactString(text: string): string {
  return IN_TEXT.reduce((redacted, pattern) => redacted.replace(pattern, `$1${REDACTED}`), text);
}

/** A redacted copy: the caller's objects (often cache entries) are never modified. */
export function redact(value: unknown, depth = 0, seen = new WeakSet<object>()): unknown {
  if (typeof value === 'string') return redactString(value);
  if (typeof value !== 'object' || value === null) return value;
  if (depth >= MAX_DEPTH) return '[Truncated]';
  if (seen.has(value)) return '[Circular]';
  seen.add(value);
  try {
    if (Array.isArray(value)) return value.map((item: unknown) => redact(item, depth + 1, seen));
    if (value instanceof Error) {
      return {
        name: value.name,
        message: redactString(value.message),
        stack: redactString(value.stack ?? ''),
      };
    }
    const source = value as Record<string, unknown>;
    const secret = isSecret(source);
    const copy: Record<string, unknown> = {};
    for (const [key, field] of Object.entries(source)) {
      const sensitive = SENSITIVE_FIELD.test(key) || (secret && (key === 'data' || key === 'stringData'));
      copy[key] = sensitive ? REDACTED : redact(field, depth + 1, seen);
    }
    return copy;
  } finally {
    seen.delete(value);
  }
}

/**
 * Redacts the entry in place: winston entries are created per call and carry symbol keys
 * (level, message, splat) that later formats need, so only the string keys are rewritten.
 */
export const redactFormat = winston.format((info) => {
  const entry = info as Record<string, unknown>;
  const secret = isSecret(entry);
  for (const [key, field] of Object.entries(entry)) {
    const sensitive = SENSITIVE_FIELD.test(key) || (secret && (key === 'data' || key === 'stringData'));
    entry[key] = sensitive ? REDACTED : redact(field);
  }
  return info;
});

export interface LoggerOptions {
  level: LogLevel;
  /** Where JSON lines go; stdout when absent. */
  stream?: Writable;
  /** Fields on every line, e.g. { component: 'snapback' }. */
  defaultMeta?: Record<string, unknown>;
}

export function createLogger(options: LoggerOptions): Logger {
  const transport =
    options.stream === undefined
      ? new winston.transports.Console()
      : new winston.transports.Stream({ stream: options.stream });
  return winston.createLogger({
    level: options.level,
    defaultMeta: options.defaultMeta,
    format: winston.format.combine(
      winston.format.errors({ stack: true }),
      winston.format.timestamp(),
      redactFormat(),
      winston.format.json(),
    ),
    // winston declares its transports as interfaces extending the TransportStream class; at
    // runtime they are its subclasses.
    // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment
    transports: [transport],
  });
}

export type { Logger };
