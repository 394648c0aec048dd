import * as tf from '@tensorflow/tfjs'
import { beforeAll, describe, expect, it } from 'vitest'
import {
  binaryConvJs,
  binaryConvLayer,
  packActivations,
  signConvReference,
  type Epilogue,
} from '../../../../src/main/deploy/binary-conv'
import { decodeExport, packSignStream } from '../../../../src/main/deploy/format'
import { jsKernels } from '../../../../src/main/deploy/kernels-js'
import { popcountMeter, wasmKernels } from '../../../../src/main/deploy/kernels-wasm'
import { PackedModel, type BinaryKernels } from '../../../../src/main/deploy/packed-model'
import type { ModelBuild } from '../../../../src/shared/checkpoint'
import { Rng } from '../../../../src/shared/random'
import { initBackend } from '../../../../src/main/backend/backend'
import { binaryBuild, convCases, exportOf, randomBinaryCheckpoint, randomCase, randomImages } from './support'

beforeAll(async () => {
  await initBackend('wasm')
})

const param = (array: Float32Array) => ({ array, tensor: tf.tensor1d(array) })

// Both ways of counting bits run here (x64 and arm64 each default to one), so both are checked everywhere.
describe.each(['simd', 'scalar'] as const)('the WebAssembly kernels, %s popcount', (popcount) => {
  let kernels: BinaryKernels
  beforeAll(async () => {
    kernels = await wasmKernels(popcount)
  })

  it.each(convCases)('equal the ±1 convolution: %o', (c) => {
    const { x, layer, expected } = randomCase(c, 1 + c.cin + c.h)
    const prepared = kernels.prepare(layer)
    const ones = param(new Float32Array(c.cout).fill(1))
    const input = tf.tensor4d(x, [c.n, c.h, c.w, c.cin])
    const out = kernels.conv(input, null, layer, prepared, {
      channelScale: ones.tensor,
      spatial: null,
      alpha: null,
      bias: null,
      residual: null,
    })
    expect(Array.from(out.dataSync())).toEqual(Array.from(expected))
    tf.dispose([input, out, ones.tensor])
  })

  it('count every bit of a wide layer whose inputs and weights all disagree (no byte count overflows)', () => {
    // Every step then adds 8 to every byte lane, the most it can; 1024 channels give 24 steps per row.
    const [h, w, cin, cout] = [3, 5, 1024, 2]
    const shape = [3, 3, cin, cout]
    const layer = binaryConvLayer(
      packSignStream(new Float32Array(9 * cin * cout).fill(1), shape),
      shape,
      1,
      true,
    )
    const ones = param(new Float32Array(cout).fill(1))
    const input = tf.fill([1, h, w, cin], -1) as tf.Tensor4D
    const out = kernels.conv(input, null, layer, kernels.prepare(layer), {
      channelScale: ones.tensor,
      spatial: null,
      alpha: null,
      bias: null,
      residual: null,
    })
    // With +1 padding, an input tap disagrees on all cin bits and a padded one agrees on all of them.
    const expected = signConvReference(
      new Float32Array(h * w * cin).fill(-1),
      [1, h, w, cin],
      new Float32Array(9 * cin * cout).fill(1),
      3,
      cout,
      1,
      1,
    )
    expect(Array.from(out.dataSync())).toEqual(Array.from(expected))
    expect(Math.min(...out.dataSync())).toBe(-9 * cin)
    tf.dispose([input, out, ones.tensor])
  })

  it.each(convCases.filter((c) => c.k === 3))(
    'fuse affine sign, per-image scale, spatial scale, PReLU, bias and residual as the reference: %o',
    (c) => {
      const { x, layer, geometry } = randomCase(c, 7 + c.cin)
      const rng = new Rng(c.cout)
      const draw = (n: number) => Float32Array.from({ length: n }, () => rng.next() * 2 - 1)
      const outCount = c.n * geometry.oh * geometry.ow * c.cout
      const reference: Epilogue = {
        channelScale: draw(c.n * c.cout),
        perImage: true,
        spatial: draw(geometry.oh * geometry.ow),
        alpha: draw(c.cout),
        bias: draw(c.cout),
        residual: draw(outCount),
      }
      const scale = param(draw(c.cin))
      const shift = param(draw(c.cin))
      const bits = packActivations(x, c.n * c.h * c.w, c.cin, scale.array, shift.array)
      const expected = binaryConvJs(bits, c.n, c.h, c.w, layer, reference)
      const tensors = {
        channelScale: tf.tensor2d(reference.channelScale, [c.n, c.cout]),
        spatial: tf.tensor2d(reference.spatial!, [geometry.oh, geometry.ow]),
        residual: tf.tensor4d(reference.residual!, [c.n, geometry.oh, geometry.ow, c.cout]),
      }
      const input = tf.tensor4d(x, [c.n, c.h, c.w, c.cin])
      const out = kernels.conv(input, { scale, shift }, layer, kernels.prepare(layer), {
        ...tensors,
        alpha: param(reference.alpha!),
        bias: param(reference.bias!),
      })
      expect(Array.from(out.dataSync())).toEqual(Array.from(expected))
      tf.dispose([input, out, scale.tensor, shift.tensor, ...Object.values(tensors)])
    },
  )

  const variants: Partial<ModelBuild>[] = [
    { padValue: 1 },
    { padValue: 0, downsample: 'binary', weightScale: 'mean' },
    { padValue: 1, scaling: 'learned', weightScale: 'learned', downsample: 'binary' },
  ]
  it.each(variants)('run a whole packed model exactly as the JavaScript kernels: %o', async (variant) => {
    const build = binaryBuild(variant)
    const checkpoint = await randomBinaryCheckpoint(build)
    const decoded = decodeExport(exportOf(checkpoint).bytes)
    const images = randomImages(4, build)
    const wasm = new PackedModel(decoded, kernels)
    const js = new PackedModel(decoded, jsKernels())
    expect(Array.from(wasm.predict(images).dataSync())).toEqual(Array.from(js.predict(images).dataSync()))
    wasm.dispose()
    js.dispose()
    images.dispose()
  })
})

describe('the XOR-popcount throughput that bounds the packed conv on the CPU', () => {
  it.each(['simd', 'scalar'] as const)(
    'is measured, over a count checked in JavaScript, with %s popcount',
    async (p) => {
      const bitsPerMs = (await popcountMeter(p)).bitsPerMs()
      // At least one 64-bit popcount every 10 ns, and no more than a 128-bit one per clock at 10 GHz.
      expect(bitsPerMs).toBeGreaterThan(64 / 1e-5)
      expect(bitsPerMs).toBeLessThan(128 * 1e7)
    },
  )
})
