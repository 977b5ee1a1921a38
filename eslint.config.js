// ESLint flat config. `pnpm lint` lints the whole tree; `pnpm lint:fix` applies the safe autofixes.
// TypeScript files are linted with type information (typescript-eslint's project service, which
// uses the root tsconfig.json); plain JavaScript files (this file, scripts/*.mjs) without it.
// Formatting is Prettier's job (`pnpm format`): eslint-config-prettier, last, turns off every
// rule that would disagree with it.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import prettier from 'eslint-config-prettier';
import globals from 'globals';
import tseslint from 'typescript-eslint';

const root = path.dirname(fileURLToPath(import.meta.url));

export default defineConfig(
  globalIgnores(['**/node_modules/', '**/src/generated/', '**/generated/', '**/.data/', '**/dist/', '**/build/', '**/coverage/'], 'commerce/ignores'),
  {
    name: 'commerce/options',
    linterOptions: { reportUnusedDisableDirectives: 'error' },
  },

  // Plain JavaScript (this file, scripts/*.mjs): ESLint's recommended rules, Node globals, no types.
  {
    name: 'commerce/javascript',
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    extends: [js.configs.recommended],
    languageOptions: { ecmaVersion: 2023, sourceType: 'module', globals: globals.node },
    rules: {
      'no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', ignoreRestSiblings: true }],
      eqeqeq: ['error', 'smart'],
    },
  },

  // TypeScript (every .ts file is in the root tsconfig.json): ESLint's recommended rules, less those
  // the compiler already checks, plus typescript-eslint's type-aware recommended set.
  {
    name: 'commerce/typescript',
    files: ['**/*.ts'],
    extends: [js.configs.recommended, tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: root },
    },
    rules: {
      // The ones this project relies on most (all also in recommendedTypeChecked), stated explicitly.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unnecessary-type-assertion': 'error',
      // `_`-prefixed names are deliberately unused; `const { x: _x, ...rest } = obj` drops a key.
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          args: 'after-used',
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          caughtErrors: 'all',
          caughtErrorsIgnorePattern: '^_',
          destructuredArrayIgnorePattern: '^_',
          ignoreRestSiblings: true,
        },
      ],
      // URL and URLSearchParams (Node's `url` types) stringify to what a template means.
      '@typescript-eslint/restrict-template-expressions': [
        'error',
        {
          allowNumber: true,
          allowBoolean: true,
          allowNullish: true,
          allowRegExp: true,
          allowAny: true,
          allow: [
            { from: 'lib', name: ['Error', 'URL', 'URLSearchParams'] },
            { from: 'package', package: 'url', name: ['URL', 'URLSearchParams'] },
          ],
        },
      ],
      // Off: an `async` method without `await` is how this code implements an async interface
      // (the in-memory bus, Apollo plugin hooks, test doubles); dropping `async` would change a
      // throw into a synchronous one. no-floating-promises and no-misused-promises are what matter.
      '@typescript-eslint/require-await': 'off',
      // A `return await` inside try/catch/finally is needed for the catch/finally to see the rejection.
      '@typescript-eslint/return-await': ['error', 'in-try-catch'],
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      // Off: with noUncheckedIndexedAccess, `!` is how code states a lookup that an invariant next
      // to it guarantees (a locked row, a group's first member); turning each into a branch adds noise.
      '@typescript-eslint/no-non-null-assertion': 'off',
      eqeqeq: ['error', 'smart'],
    },
  },

  // Tests, their helpers and the benchmarks get the same rules (a floating promise in a test is an
  // assertion that cannot fail), except that vitest's asymmetric matchers (`expect.any(String)`,
  // `expect.stringMatching(...)`) are typed `any`: assigning or returning them is the idiom.
  {
    name: 'commerce/tests',
    files: ['**/*.test.ts', 'test/**/*.ts', '**/test-support/**/*.ts', '**/test-support.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },

  // Last: turn off every rule that overlaps with Prettier's formatting.
  { name: 'prettier', ...prettier },
);
