import { Writable } from 'node:stream';
import { describe, expect, it } from '@jest/globals';
import { createLogger, REDACTED, type LogLevel } from '../../../src/observability/logger.js';

const TOKEN = 'eyJhbGciOiJSUzI1NiIsImtpZCI6InNlY3JldC10b2tlbi12YWx1ZSJ9';

/** A logger writing into a string, and a way to wait until what was logged has been written. */
function capture(level: LogLevel = 'debug'): {
  logger: ReturnType<typeof createLogger>;
  lines: () => Promise<Record<string, unknown>[]>;
  raw: () => string;
} {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      text += chunk.toString();
      callback();
    },
  });
  const logger = createLogger({ level, stream });
  return {
    logger,
    raw: () => text,
    lines: async () => {
      await new Promise((resolve) => setImmediate(resolve));
      return text
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as Record<string, unknown>);
    },
  };
}

describe('logger', () => {
  it('writes JSON lines with the fields of child loggers', async () => {
    const { logger, lines } = capture();
    logger
      .child({ controller: 'restore', namespace: 'ns', name: 'r1' })
      .info('phase Pending -> RestoringCloudSnap', { phase: 'RestoringCloudSnap', attempt: 2 });
    const [line] = await lines();
    expect(line).toMatchObject({
      level: 'info',
      message: 'phase Pending -> RestoringCloudSnap',
      controller: 'restore',
      namespace: 'ns',
      name: 'r1',
      phase: 'RestoringCloudSnap',
      attempt: 2,
    });
    expect(typeof line?.timestamp).toBe('string');
  });

  it('never lets a token, password or Secret data reach the output', async () => {
    const { logger, lines, raw } = capture();
    const secret = {
      metadata: { name: 'creds', namespace: 'ns' },
      type: 'Opaque',
      data: { key: Buffer.from(TOKEN).toString('base64') },
      stringData: { plain: TOKEN },
    };
    const child = logger.child({ token: TOKEN });
    child.info('syncing credentials', {
      object: secret,
      secret: 'named secret',
      request: { headers: { authorization: `Bearer ${TOKEN}` }, bearerToken: TOKEN, password: TOKEN },
      nested: [{ clientSecret: TOKEN, secretName: 'creds' }],
    });
    child.warn(`request failed with Authorization: Bearer ${TOKEN}`);
    child.error('failed', { error: new Error(`bearer ${TOKEN} rejected`) });
    logger.info('a whole Secret', { kind: 'Secret', metadata: { name: 'x' }, data: { k: TOKEN } });

    const text = raw();
    expect(text).not.toContain(TOKEN);
    expect(text).not.toContain(Buffer.from(TOKEN).toString('base64'));
    const [first, second, third, fourth] = await lines();
    expect(first).toMatchObject({
      token: REDACTED,
      object: { metadata: { name: 'creds' }, type: 'Opaque', data: REDACTED, stringData: REDACTED },
      secret: REDACTED,
      request: { bearerToken: REDACTED, password: REDACTED },
      nested: [{ clientSecret: REDACTED, secretName: 'creds' }],
    });
    expect(second?.message).toBe(`request failed with Authorization: Bearer ${REDACTED}`);
    expect(third?.error).toMatchObject({ message: `bearer ${REDACTED} rejected` });
    expect(fourth).toMatchObject({ kind: 'Secret', data: REDACTED });
  });

  it("never lets an object store's access key id or secret key reach the output", async () => {
    const { logger, lines, raw } = capture();
    const keyId = 'AKIAEXAMPLEKEYID7Q2Z';
    const secretKey = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
    const signature = 'fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024';
    logger.info('credentials read', {
      credentials: { accessKeyId: keyId, secretAccessKey: secretKey, region: 'us-east-1' },
      location: { spec: { bucket: 'backups' } },
    });
    logger.warn(
      `PUT failed: Authorization: AWS4-HMAC-SHA256 Credential=${keyId}/20261202/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=${signature}`,
    );
    logger.warn(
      `presigned GET https://s3.local/b/k?X-Amz-Credential=${keyId}%2F20261202&X-Amz-Signature=${signature}`,
    );
    logger.error('bad config', {
      error: new Error(`{"accessKeyId":"${keyId}","secretAccessKey":"${secretKey}"}`),
    });
    logger.error(`secretAccessKey=${secretKey} accessKeyId: ${keyId}`);

    const text = raw();
    for (const value of [keyId, secretKey, signature]) expect(text).not.toContain(value);
    const [first, second, third, fourth, fifth] = await lines();
    expect(first).toMatchObject({
      credentials: { accessKeyId: REDACTED, secretAccessKey: REDACTED, region: 'us-east-1' },
      location: { spec: { bucket: 'backups' } },
    });
    expect(second?.message).toBe(
      `PUT failed: Authorization: AWS4-HMAC-SHA256 Credential=${REDACTED}/20261202/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=${REDACTED}`,
    );
    expect(third?.message).toBe(
      `presigned GET https://s3.local/b/k?X-Amz-Credential=${REDACTED}&X-Amz-Signature=${REDACTED}`,
    );
    expect(fourth?.error).toMatchObject({
      message: `{"accessKeyId":"${REDACTED}","secretAccessKey":"${REDACTED}"}`,
    });
    expect(fifth?.message).toBe(`secretAccessKey=${REDACTED} accessKeyId: ${REDACTED}`);
  });

  it('does not modify the objects it logs', async () => {
    const { logger, lines } = capture();
    const cached = { metadata: { name: 'creds' }, type: 'Opaque', data: { key: 'dmFsdWU=' } };
    logger.info('cached secret', { object: cached });
    await lines();
    expect(cached.data).toEqual({ key: 'dmFsdWU=' });
  });

  it('drops entries below its level', async () => {
    const { logger, lines } = capture('warn');
    logger.info('quiet');
    logger.debug('quieter');
    logger.warn('loud');
    expect((await lines()).map((l) => l.message)).toEqual(['loud']);
  });
});
