// Lint for src/, test/ and bench/: typescript-eslint's recommended rules, zero warnings (npm test runs it).
// Folder boundaries are checked by src/core/boundaries.test.ts.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'bin/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      // TypeScript's own noUnused* checks already fail the build.
      '@typescript-eslint/no-unused-vars': 'off',
      'no-control-regex': 'off', // escaping control characters is this tool's job
    },
  },
  {
    // bench/: plain ESM scripts run by Node.
    files: ['bench/**/*.mjs'],
    languageOptions: {
      globals: {
        process: 'readonly',
        URL: 'readonly',
        fetch: 'readonly',
        performance: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        Buffer: 'readonly',
      },
    },
  },
);
