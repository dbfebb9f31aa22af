// ESLint (flat config): typescript-eslint's recommended rules plus the house limits (small functions, textContent
// only). Formatting is Prettier's (.prettierrc.json); `jlpm lint` runs both, `jlpm lint:fix` applies both.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

export default defineConfig(
  { ignores: ['lib/', 'test-build/', 'node_modules/', '.yarn/', 'ptort_lab_renderers/'] },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    files: ['src/**/*.ts'],
    rules: {
      'max-lines-per-function': ['error', { max: 80, skipBlankLines: true, skipComments: true }],
      'max-lines': ['error', { max: 450, skipBlankLines: true, skipComments: true }],
      complexity: ['error', 15],
      eqeqeq: ['error', 'always'],
      'no-restricted-syntax': [
        'error',
        {
          selector: 'MemberExpression[property.name=/^(innerHTML|outerHTML)$/]',
          message: 'Untrusted text goes in through textContent or setAttribute (see src/dom.ts), never markup.'
        },
        {
          selector: "CallExpression[callee.property.name='insertAdjacentHTML']",
          message: 'Untrusted text goes in through textContent or setAttribute (see src/dom.ts), never markup.'
        }
      ]
    }
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      // Fixtures are read as JSON of a known shape; the tests assert on it.
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off'
    }
  },
  {
    files: ['**/*.mjs', '**/*.js'],
    languageOptions: { globals: { console: 'readonly', process: 'readonly' } }
  }
);
