// ESM TypeScript through ts-jest's ESM preset; run with NODE_OPTIONS=--experimental-vm-modules.
const transform = { '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json' }] };
const moduleNameMapper = { '^(\\.{1,2}/.*)\\.js$': '$1' };
// Only src/ and test/: .cache/ holds etcd's data, whose .snap files jest would take for its own.
const common = {
  roots: ['<rootDir>/src', '<rootDir>/test'],
  extensionsToTreatAsEsm: ['.ts'],
  transform,
  moduleNameMapper,
  testEnvironment: 'node',
};

export default {
  testSequencer: '<rootDir>/test/integration/support/sequencer.js',
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.ts'] },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/test/integration/**/*.test.ts'],
      // Fails the run at once, with instructions, when the test cluster does not answer.
      globalSetup: '<rootDir>/test/integration/support/global-setup.ts',
      setupFilesAfterEnv: ['<rootDir>/test/integration/support/timeout.ts'],
    },
  ],
};
