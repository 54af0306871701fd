import { describe, expect, it } from '@jest/globals';
import { SIM } from '../../cluster/storage-simulator/constants.js';
import {
  contentIdAfterWrite,
  freshContentId,
  writtenContentId,
} from '../../cluster/storage-simulator/content-id.js';
import { createdAt, directivesFrom, gate } from '../../cluster/storage-simulator/directives.js';

describe('content ids', () => {
  it('are stable per claim and distinct between claims', () => {
    expect(freshContentId('uid-a')).toBe(freshContentId('uid-a'));
    expect(freshContentId('uid-a')).not.toBe(freshContentId('uid-b'));
    expect(freshContentId('uid-a')).toMatch(/^c-[0-9a-f]{24}$/);
  });

  it('change with each written value, deterministically', () => {
    const base = freshContentId('uid-a');
    const one = writtenContentId(base, 'one');
    expect(one).not.toBe(base);
    expect(writtenContentId(base, 'one')).toBe(one);
    expect(writtenContentId(base, 'two')).not.toBe(one);
    expect(writtenContentId(one, 'two')).not.toBe(writtenContentId(base, 'two'));
  });

  it('apply a write only when it differs from the last one applied', () => {
    const base = freshContentId('uid-a');
    expect(contentIdAfterWrite(base, undefined, undefined)).toBe(base);
    expect(contentIdAfterWrite(base, 'x', 'x')).toBe(base);
    expect(contentIdAfterWrite(base, 'x', 'y')).toBe(writtenContentId(base, 'y'));
    expect(contentIdAfterWrite(base, undefined, 'y')).toBe(writtenContentId(base, 'y'));
  });
});

describe('directivesFrom', () => {
  it('reads nothing from objects without annotations', () => {
    expect(directivesFrom([undefined, {}])).toEqual({ never: false });
  });

  it('takes each key from the most specific object that has it', () => {
    const object = { [SIM.delayMs]: '250' };
    const klass = { [SIM.fail]: 'class says no', [SIM.delayMs]: '9000' };
    expect(directivesFrom([object, klass])).toEqual({ never: false, delayMs: 250, fail: 'class says no' });
  });

  it('lets an object switch off what its class sets', () => {
    const object = { [SIM.fail]: '', [SIM.never]: 'false', [SIM.delayMs]: '0' };
    const klass = { [SIM.fail]: 'no', [SIM.never]: 'true', [SIM.delayMs]: '100' };
    expect(directivesFrom([object, klass])).toEqual({ never: false });
  });

  it('reports a delay that is not a number', () => {
    expect(directivesFrom([{ [SIM.delayMs]: '5s' }]).invalid).toContain('"5s" is not a whole number');
  });
});

describe('gate', () => {
  const t0 = Date.parse('2026-01-01T00:00:00Z');

  it('proceeds without directives', () => {
    expect(gate({ never: false }, t0, t0)).toEqual({ kind: 'proceed' });
  });

  it('waits for the rest of the delay, counted from creation', () => {
    expect(gate({ never: false, delayMs: 1000 }, t0, t0 + 300)).toEqual({ kind: 'wait', afterMs: 700 });
    expect(gate({ never: false, delayMs: 1000 }, t0, t0 + 1000)).toEqual({ kind: 'proceed' });
  });

  it('fails with the message, after the delay', () => {
    const directives = { never: false, delayMs: 1000, fail: 'disk on fire' };
    expect(gate(directives, t0, t0 + 10).kind).toBe('wait');
    expect(gate(directives, t0, t0 + 2000)).toEqual({ kind: 'fail', message: 'disk on fire' });
  });

  it('holds forever on never, whatever else is set', () => {
    expect(gate({ never: true, fail: 'x', delayMs: 1 }, t0, t0 + 1e9)).toEqual({ kind: 'hold' });
  });

  it('fails on an invalid annotation', () => {
    expect(gate({ never: false, invalid: 'bad delay' }, t0, t0)).toEqual({
      kind: 'fail',
      message: 'bad delay',
    });
  });

  it('reads creation timestamps', () => {
    expect(createdAt({ creationTimestamp: '2026-01-01T00:00:00Z' })).toBe(t0 + 999);
    expect(createdAt({})).toBeUndefined();
    expect(createdAt({ creationTimestamp: 'yesterday' })).toBeUndefined();
  });
});
