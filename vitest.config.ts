import { existsSync } from 'node:fs'
import { defineConfig } from 'vitest/config'

// Tests (and only tests) point the Vulkan loader at Mesa's lavapipe, so Dawn has an adapter on machines
// without a GPU. The app never sets this: on a user's machine the GPU driver is found as usual.
const lavapipe = '/usr/share/vulkan/icd.d/lvp_icd.json'
const testEnv: Record<string, string> = {}
if (!process.env.VK_ICD_FILENAMES && existsSync(lavapipe)) testEnv.VK_ICD_FILENAMES = lavapipe

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'node',
          environment: 'node',
          include: ['test/unit/shared/**/*.test.ts', 'test/unit/main/**/*.test.ts', 'test/e2e/**/*.test.ts'],
          env: testEnv,
          testTimeout: 120_000,
          hookTimeout: 120_000,
          pool: 'forks',
        },
      },
      {
        test: {
          name: 'renderer',
          environment: 'jsdom',
          // jsdom renders of the Plotly views are CPU-bound: generous on a loaded 2-core machine.
          testTimeout: 30_000,
          include: ['test/unit/renderer/**/*.test.{ts,tsx}'],
        },
      },
    ],
  },
})
