import { BackendName } from '../../src/shared/backend'

/**
 * The backend a backend-agnostic test file runs on: its own default, or `R2B_TEST_BACKEND` when the suite
 * is run again on another backend (`npm test` runs the engine's tests a second time on WebGPU).
 */
export function testBackend(fallback: BackendName): BackendName {
  const forced = process.env.R2B_TEST_BACKEND
  return forced ? BackendName.parse(forced) : fallback
}
