import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'

const root = join(import.meta.dirname, '../..')

describe('npm run r2b -- bench --quick --json', () => {
  it('measures every area, each CPU figure on wasm and the GPU ones on webgpu, with the headline keys', async () => {
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', 'src/main/cli/index.ts', 'bench', '--quick', '--json'],
      { cwd: root, env: { ...process.env, R2B_BACKEND: undefined }, timeout: 240_000 },
    )
    const figures = JSON.parse(stdout) as Record<string, number | string>
    // The headline, from the backend training would pick here (wasm: lavapipe is a software adapter).
    expect(figures).toMatchObject({ backend: 'wasm', adapter: expect.stringMatching(/llvmpipe/) })
    const headline = ['binaryConvSpeedup', 'binaryConvBound', 'modelSpeedup', 'trainStepRatio', 'exportBytes']
    for (const key of [...headline, 'float32Bytes']) expect(figures[key], key).toBeGreaterThan(0)
    expect(figures.exportBytes).toBeLessThan((figures.float32Bytes as number) / 10)
    // Each backend's figures were taken on that backend, not on whichever one started first.
    expect(figures['datasets.reader: tfjs backend']).toBe('cpu')
    expect(figures['wasm.backend']).toBe('wasm')
    expect(figures['wasm.kernels']).toMatch(/^wasm \((scalar|simd) popcount\)$/)
    expect(figures['train.backend']).toBe('wasm')
    expect(figures['webgpu.backend']).toBe('webgpu')
    expect(figures['webgpu.kernels']).toBe('webgpu')
    // The popcount bound is a CPU figure: measured with the wasm kernels, not with the GPU ones.
    expect(figures['wasm.conv_8x8x64_popcount_bound_ms']).toBeGreaterThan(0)
    expect(figures['webgpu.binaryConvBound']).toBeUndefined()
    expect(figures['webgpu.exportBytes']).toBe(figures.exportBytes)
    // The PyTorch engine measured on the same widths, batch and input, and a plain PyTorch ResNet-18 beside it.
    expect(figures['train.torch_device']).toBe('cpu')
    for (const key of [
      'torch_resnet18_step_ms',
      'plain_pytorch_step_ms',
      'torch_vs_plain_ratio',
      'torch_bnn_ratio',
    ])
      expect(figures[`train.w0.0625_${key}`], key).toBeGreaterThan(0)
    expect(figures['train.w0.0625_tfjs_over_torch_speedup']).toBeCloseTo(
      (figures['train.w0.0625_resnet18_step_ms'] as number) /
        (figures['train.w0.0625_torch_resnet18_step_ms'] as number),
      1,
    )
    // Data-parallel scaling: the same global batch in 1 and 2 processes under torchrun, and its efficiency.
    expect(figures['train.ddp_backend']).toBe('gloo')
    expect(figures['train.ddp_1proc_images_per_s']).toBeGreaterThan(0)
    expect(figures['train.ddp_2proc_images_per_s']).toBeGreaterThan(0)
    expect(figures['train.ddp_2proc_efficiency']).toBeCloseTo(
      (figures['train.ddp_2proc_images_per_s'] as number) /
        (2 * (figures['train.ddp_1proc_images_per_s'] as number)),
      2,
    )
    expect(stderr).toMatch(
      /bench: datasets[\s\S]*bench: packed inference on wasm[\s\S]*bench: training steps on wasm, then on the PyTorch engine[\s\S]*bench: data-parallel scaling/,
    )
  })
})
