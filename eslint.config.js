import tseslint from 'typescript-eslint';

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
);
