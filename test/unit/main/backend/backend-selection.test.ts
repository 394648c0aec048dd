import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { BackendReport } from '../../../../src/shared/backend'
import {
  describeAdapter,
  initBackend,
  releaseBackend,
  requestedBackend,
} from '../../../../src/main/backend/backend'

const script = fileURLToPath(new URL('../../../support/print-backend.ts', import.meta.url))

/** Runs backend selection in a fresh process, as a worker starts; it must exit by itself within the timeout. */
async function selectIn(env: Record<string, string | undefined>): Promise<BackendReport | { error: string }> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', script], {
    env: { ...process.env, ...env },
    timeout: 60_000,
  })
  const parsed = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as Record<string, unknown>
  return 'error' in parsed ? (parsed as { error: string }) : BackendReport.parse(parsed)
}

// These tests need a WebGPU adapter: Mesa's lavapipe on machines without a GPU (`npm run setup` installs it).
describe('backend selection', () => {
  it('refuses a second, different backend by name until the first is released', async () => {
    expect((await initBackend('cpu')).backend).toBe('cpu')
    expect((await initBackend('auto')).backend).toBe('cpu')
    await expect(initBackend('wasm')).rejects.toThrow(/cpu backend already runs in this process/)
    releaseBackend()
    expect((await initBackend('wasm')).backend).toBe('wasm')
    releaseBackend()
  })

  it('classifies software adapters (llvmpipe, SwiftShader, fallback) and hardware ones', () => {
    const llvmpipe = describeAdapter({
      vendor: 'mesa',
      architecture: 'software',
      device: 'llvmpipe-llvm-15',
      description: 'llvmpipe: Mesa 25.0.7',
    })
    const swiftshader = describeAdapter({
      vendor: 'google',
      architecture: '',
      device: 'SwiftShader Device',
      description: '',
    })
    const fallback = describeAdapter({
      vendor: 'x',
      architecture: 'y',
      device: 'z',
      description: 'w',
      isFallbackAdapter: true,
    })
    const nvidia = describeAdapter({
      vendor: 'nvidia',
      architecture: 'hopper',
      device: '',
      description: 'NVIDIA H100 80GB HBM3',
      isFallbackAdapter: false,
    })
    expect([llvmpipe, swiftshader, fallback].map((a) => a.isSoftware)).toEqual([true, true, true])
    expect(nvidia.isSoftware).toBe(false)
  })

  it('reads R2B_BACKEND, and rejects unknown values naming the allowed ones', () => {
    expect(requestedBackend({})).toBe('auto')
    expect(requestedBackend({ R2B_BACKEND: ' WASM ' })).toBe('wasm')
    expect(() => requestedBackend({ R2B_BACKEND: 'cuda' })).toThrow(
      /R2B_BACKEND=cuda .*auto, webgpu, wasm, cpu/,
    )
  })

  it('automatic: with only a software adapter it picks wasm, and reports the adapter and why', async () => {
    const report = await selectIn({ R2B_BACKEND: undefined })
    if ('error' in report) throw new Error(report.error)
    expect(report.requested).toBe('auto')
    expect(report.backend).toBe('wasm')
    expect(report.adapter?.isSoftware).toBe(true)
    expect(report.adapter?.description).toMatch(/llvmpipe/)
    expect(report.reason).toMatch(/software WebGPU adapter/)
    expect(report.slow).toBe(true)
    expect(report.wasmSimd).toBe(true)
  })

  it('forced webgpu: trains on the software adapter and says it will be slow', async () => {
    const report = await selectIn({ R2B_BACKEND: 'webgpu' })
    if ('error' in report) throw new Error(report.error)
    expect(report.backend).toBe('webgpu')
    expect(report.reason).toMatch(/forced by R2B_BACKEND=webgpu.*software/)
    expect(report.slow).toBe(true)
  })

  it('forced wasm and forced cpu', async () => {
    const wasm = await selectIn({ R2B_BACKEND: 'wasm' })
    const cpu = await selectIn({ R2B_BACKEND: 'cpu' })
    expect(wasm).toMatchObject({
      backend: 'wasm',
      requested: 'wasm',
      reason: expect.stringMatching(/forced/),
    })
    expect(cpu).toMatchObject({ backend: 'cpu', requested: 'cpu', adapter: null, slow: true })
  })

  it('forced webgpu without any Vulkan driver fails with advice; automatic falls back to wasm', async () => {
    const noDriver = { VK_ICD_FILENAMES: '/nonexistent/icd.json', VK_DRIVER_FILES: '/nonexistent/icd.json' }
    const forced = await selectIn({ ...noDriver, R2B_BACKEND: 'webgpu' })
    expect(forced).toEqual({
      error: expect.stringMatching(/no adapter.*install a Vulkan, Metal or D3D12 driver/),
    })
    const auto = await selectIn({ ...noDriver, R2B_BACKEND: undefined })
    expect(auto).toMatchObject({
      backend: 'wasm',
      adapter: null,
      reason: expect.stringMatching(/no WebGPU adapter/),
    })
  })
})
