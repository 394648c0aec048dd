import js from '@eslint/js'
import tseslint from 'typescript-eslint'
import reactHooks from 'eslint-plugin-react-hooks'
import globals from 'globals'

export default tseslint.config(
  { ignores: ['out/**', 'dist/**', 'node_modules/**', 'test-results/**', 'coverage/**', '.venv/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    files: ['src/renderer/**/*.{ts,tsx}', 'test/unit/renderer/**/*.{ts,tsx}'],
    languageOptions: { globals: { ...globals.browser } },
    plugins: { 'react-hooks': reactHooks },
    rules: {
      'react-hooks/rules-of-hooks': 'error',
      'react-hooks/exhaustive-deps': 'warn',
    },
  },
  // Layering, in the spirit of VS Code's code-layering rule: each folder lists the folders it may import, and
  // everything else is refused. Imports go downward only: shared ← engine, backend ← datasets, runs ←
  // deploy, training, reports, worker ← host ← cli; the renderer and the preload see only src/shared.
  ...layers({
    engine: [],
    backend: [],
    runs: [],
    datasets: ['backend', 'engine'],
    reports: ['runs'],
    training: ['datasets', 'runs'],
    deploy: ['datasets', 'engine', 'runs'],
    worker: ['backend', 'datasets', 'engine'],
    host: ['backend', 'datasets', 'deploy', 'engine', 'runs', 'training'],
    cli: ['backend', 'datasets', 'deploy', 'engine', 'host', 'reports', 'runs', 'training'],
  }),
  {
    // src/shared is imported by every process: it may use neither Node nor the DOM nor tfjs, and nothing above it.
    files: ['src/shared/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            'node:*',
            'electron',
            '@tensorflow/*',
            'react*',
            'zustand*',
            'plotly*',
            '**/main/**',
            '**/renderer/**',
          ],
        },
      ],
    },
  },
  {
    // The renderer runs sandboxed in Chromium: the shared contracts, React, zustand and Plotly, no Node.
    files: ['src/renderer/**/*.{ts,tsx}'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: ['node:*', 'electron', '@tensorflow/*', '**/main/**', '**/preload/**'] },
      ],
    },
  },
)

/** One config block per folder of src/main: the sibling folders it may not import, and, for the engine and
 * the backend library, no files or processes either. */
function layers(allowed) {
  const folders = Object.keys(allowed)
  return folders.map((folder) => {
    const forbidden = folders.filter((other) => other !== folder && !allowed[folder].includes(other))
    const patterns = forbidden.flatMap((other) => [`../${other}/*`, `../../${other}/*`])
    if (folder === 'engine') patterns.push('node:*', 'fs', 'path', 'child_process')
    if (folder !== 'cli') patterns.push('electron', '../index', '../../index')
    return {
      files: [`src/main/${folder}/**/*.ts`],
      rules: {
        'no-restricted-imports': [
          'error',
          {
            patterns: [
              {
                group: patterns,
                message: `src/main/${folder} may import only ${allowed[folder].join(', ') || 'src/shared'} of src/main (see eslint.config.js)`,
              },
            ],
          },
        ],
      },
    }
  })
}
