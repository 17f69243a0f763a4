import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';

// The four services talk over HTTP and RabbitMQ only; none may import another's code.
const SERVICES = ['auth', 'order', 'payment-processor', 'wallet'];
const TESTS = ['**/*.test.ts', '**/test/**/*.ts'];

export default tseslint.config(
  { ignores: ['**/node_modules/**', '**/dist/**', '**/drizzle/**', 'coverage/**', '.tools/**', '.stack/**'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'off',
      // Money must never pass through a float.
      'no-restricted-globals': [
        'error',
        { name: 'parseFloat', message: 'Money is decimal strings and bigint; never floats.' },
      ],
    },
  },
  // Package boundaries: a workspace package is used through its name and its package.json `exports`, never through
  // a relative path into it or a path into its src/. The resolver honours `exports`, so a deep import past them is
  // unresolved.
  {
    files: ['{packages,services,tools,apps}/**/*.{ts,tsx}'],
    plugins: { 'import-x': importX },
    settings: {
      'import-x/resolver-next': [
        createTypeScriptImportResolver({
          noWarnOnMultipleProjects: true,
          project: ['tsconfig.json', 'apps/web/tsconfig.json'],
          conditionNames: ['browser', 'import', 'default'],
        }),
      ],
    },
    rules: {
      'import-x/no-relative-packages': 'error',
      'import-x/no-unresolved': ['error', { ignore: ['^virtual:', '\\?(raw|url)$'] }],
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['@exchange/*/src', '@exchange/*/src/**'],
              message: 'Import the package by name through its package.json `exports`, not its src/.',
            },
          ],
        },
      ],
    },
  },
  // kong/ holds the gateway's deploy-time scripts (not a workspace package); the gateway tool's tests exercise them.
  {
    files: ['tools/local-gateway/src/{gateway,jwks-sync,kong-config}.test.ts'],
    rules: { 'import-x/no-relative-packages': 'off' },
  },
  ...SERVICES.map((service) => ({
    files: [`services/${service}/src/**/*.ts`],
    ignores: TESTS,
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['@exchange/*/src', '@exchange/*/src/**'],
              message: 'Import the package by name through its package.json `exports`, not its src/.',
            },
            {
              group: SERVICES.filter((s) => s !== service).flatMap((s) => [`@exchange/${s}`, `@exchange/${s}/**`]),
              message: 'Services never import each other: call the service over HTTP (clients/) or RabbitMQ.',
            },
          ],
        },
      ],
    },
  })),
  // Type-aware rules where the code runs on money and messages.
  {
    files: ['services/*/src/**/*.ts', 'services/*/test/**/*.ts', 'packages/*/{src,test,bench}/**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unsafe-assignment': 'error',
      '@typescript-eslint/no-unsafe-member-access': 'error',
      '@typescript-eslint/no-unsafe-call': 'error',
      '@typescript-eslint/no-unsafe-return': 'error',
      '@typescript-eslint/no-unsafe-argument': 'error',
    },
  },
  // Tests read JSON bodies as `any` on purpose (the assertions are the type check); test/ holds loose oracles.
  {
    files: TESTS,
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
    },
  },
);
