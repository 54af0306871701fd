import { describe, expect, it } from '@jest/globals';
import { compileValidator } from '../../src/api/validation.js';
import { ConfigError, configSchema, defaultConfig, resolveConfig } from '../../src/config.js';

const ENV = { POD_NAMESPACE: 'snapback-system', POD_NAME: 'snapback-0' };
/** The one setting without a default. */
const NAMED = 'clusterName: east-1\n';
const named = (env: NodeJS.ProcessEnv = ENV) => ({ ...defaultConfig(env), clusterName: 'east-1' });

function configError(fileText: string | undefined, env: NodeJS.ProcessEnv = ENV): ConfigError {
  try {
    resolveConfig(fileText, env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('defaultConfig', () => {
  it('is valid against the configuration schema once a cluster name is given', () => {
    expect(compileValidator(configSchema)(named())).toEqual({ valid: true, errors: [] });
  });

  it('takes the leader election namespace and identity from the pod', () => {
    expect(defaultConfig(ENV).leaderElection).toMatchObject({
      namespace: 'snapback-system',
      identity: 'snapback-0',
    });
  });

  it('falls back to a namespace and a host-based identity outside a pod', () => {
    const { leaderElection } = defaultConfig({});
    expect(leaderElection.namespace).toBe('default');
    expect(leaderElection.identity).toMatch(new RegExp(`-${process.pid}$`));
  });
});

describe('resolveConfig', () => {
  it('is the defaults and the cluster name without other settings or environment overrides', () => {
    expect(resolveConfig(NAMED, ENV)).toEqual({
      ...named(),
      backup: { ...named().backup, clusterName: 'east-1' },
    });
  });

  it.each([undefined, '', '# only a comment\n', 'null', 'workers: 4'])(
    'refuses to start without a cluster name (file %j), saying why it is required',
    (text) => {
      const error = configError(text);
      expect(error.problems.join('\n')).toContain('clusterName');
    },
  );

  it.each(['default cluster', 'East', 'a_b', 'x'.repeat(64), '-east'])(
    'refuses the cluster name %j: it must be a DNS label',
    (name) => {
      expect(configError(`clusterName: ${JSON.stringify(name)}`).problems.join('\n')).toContain(
        'clusterName',
      );
    },
  );

  it('deep-merges a YAML file over the defaults', () => {
    const config = resolveConfig(
      [
        'clusterName: east-1',
        'workers: 8',
        'restore:',
        '  maxConcurrentRestores: 3',
        '  phaseTimeoutSeconds:',
        '    Pending: 60',
        'leaderElection:',
        '  enabled: false',
      ].join('\n'),
      ENV,
    );
    const defaults = defaultConfig(ENV);
    expect(config).toEqual({
      ...defaults,
      clusterName: 'east-1',
      workers: 8,
      restore: {
        ...defaults.restore,
        maxConcurrentRestores: 3,
        phaseTimeoutSeconds: { ...defaults.restore.phaseTimeoutSeconds, Pending: 60 },
      },
      backup: { ...defaults.backup, clusterName: 'east-1' },
      leaderElection: { ...defaults.leaderElection, enabled: false },
    });
  });

  it('always records backups under the operator cluster name', () => {
    expect(resolveConfig(`${NAMED}backup:\n  clusterName: other\n`, ENV).backup.clusterName).toBe('east-1');
  });

  it.each([
    { env: { SNAPBACK_WATCH_NAMESPACE: 'team-a' }, field: 'watchNamespace', value: 'team-a' },
    { env: { SNAPBACK_WATCH_NAMESPACE: '' }, field: 'watchNamespace', value: '' },
    { env: { SNAPBACK_LOG_LEVEL: 'debug' }, field: 'logLevel', value: 'debug' },
  ] as const)('takes $field from the environment', ({ env, field, value }) => {
    expect(resolveConfig(NAMED, { ...ENV, ...env })[field]).toBe(value);
  });

  it('lets the environment win over the file', () => {
    const config = resolveConfig(`${NAMED}watchNamespace: from-file\nlogLevel: warn\n`, {
      ...ENV,
      SNAPBACK_WATCH_NAMESPACE: 'from-env',
      SNAPBACK_LOG_LEVEL: 'error',
    });
    expect([config.watchNamespace, config.logLevel]).toEqual(['from-env', 'error']);
  });

  it.each([
    { name: 'zero workers', text: 'workers: 0', field: 'workers' },
    { name: 'too many workers', text: 'workers: 65', field: 'workers' },
    { name: 'a wrong type', text: 'workers: "four"', field: 'workers' },
    { name: 'a fractional number', text: 'httpPort: 80.5', field: 'httpPort' },
    { name: 'an unknown log level', text: 'logLevel: verbose', field: 'logLevel' },
    { name: 'an empty cluster name', text: 'clusterName: ""', field: 'clusterName' },
    {
      name: 'a bad nested value',
      text: 'restore:\n  maxConcurrentRestores: 0',
      field: 'restore.maxConcurrentRestores',
    },
    {
      name: 'a bad phase timeout',
      text: 'restore:\n  phaseTimeoutSeconds:\n    Pending: -5',
      field: 'restore.phaseTimeoutSeconds.Pending',
    },
    {
      name: 'a boolean as a string',
      text: 'leaderElection:\n  enabled: "yes"',
      field: 'leaderElection.enabled',
    },
    { name: 'a section that is not a mapping', text: 'restore: 5', field: 'restore' },
    { name: 'an unknown top-level key', text: 'workerz: 4', field: 'workerz' },
    { name: 'an unknown nested key', text: 'restore:\n  maxConcurrent: 4', field: 'maxConcurrent' },
  ])('rejects $name, naming $field', ({ text, field }) => {
    const error = configError(text.startsWith('clusterName') ? text : `${NAMED}${text}`);
    expect(error.name).toBe('ConfigError');
    expect(error.problems.join('\n')).toContain(field);
    expect(error.message).toContain(field);
  });

  it('rejects a bad log level from the environment, naming logLevel', () => {
    expect(configError(NAMED, { ...ENV, SNAPBACK_LOG_LEVEL: 'loud' }).problems.join('\n')).toContain(
      'logLevel',
    );
  });

  it('names every problem at once', () => {
    const error = configError('workers: 0\nhttpPort: 0\nlogLevel: loud\n');
    expect(error.problems.length).toBeGreaterThanOrEqual(3);
    for (const field of ['workers', 'httpPort', 'logLevel']) expect(error.message).toContain(field);
  });

  it.each([
    { name: 'invalid YAML', text: 'workers: [1, 2\n', problem: /not valid YAML/ },
    { name: 'a list', text: '- workers: 4\n', problem: /must hold a mapping/ },
    { name: 'a scalar', text: 'just text', problem: /must hold a mapping/ },
  ])('rejects a file holding $name', ({ text, problem }) => {
    expect(configError(text).problems.join('\n')).toMatch(problem);
  });
});
