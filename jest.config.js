// One jest run covers every workspace; test files sit next to the code they test.
// TypeScript is transformed by swc as native ESM (no CommonJS shim), so tests run the same modules the services run.
/** @type {import('jest').Config} */
export default {
  testEnvironment: 'node',
  roots: ['<rootDir>/packages', '<rootDir>/services', '<rootDir>/tools', '<rootDir>/apps'],
  testMatch: ['**/*.test.ts', '**/*.test.tsx'],
  testPathIgnorePatterns: ['/node_modules/'],
  extensionsToTreatAsEsm: ['.ts', '.tsx'],
  transform: {
    '^.+\\.ts$': [
      '@swc/jest',
      {
        jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
        module: { type: 'es6' },
      },
    ],
    // React components of apps/web (component tests run them in jsdom).
    '^.+\\.tsx$': [
      '@swc/jest',
      {
        jsc: {
          parser: { syntax: 'typescript', tsx: true },
          target: 'es2022',
          transform: { react: { runtime: 'automatic' } },
        },
        module: { type: 'es6' },
      },
    ],
  },
  // Component tests fail on markup a browser would re-parent (a no-op in files without a DOM).
  setupFilesAfterEnv: ['<rootDir>/apps/web/test/dom-nesting.ts'],
  // Integration tests start real services and talk to Postgres/RabbitMQ; give them room on a 2-core machine.
  testTimeout: 60_000,
  maxWorkers: process.env.JEST_MAX_WORKERS ?? 2,
};
