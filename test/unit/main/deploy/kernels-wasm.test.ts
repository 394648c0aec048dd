import * as tf from '@tensorflow/tfjs'
import { beforeAll, describe, expect, it } from 'vitest'
import { binaryConvJs, packActivations, type Epilogue } from '../../../../src/main/deploy/binary-conv'
import { foldCheckpoint } from '../../../../src/main/deploy/fold'
import { decodeExport, encodeExport } from '../../../../src/main/deploy/format'
import { jsKernels } from '../../../../src/main/deploy/kernels-js'
import { wasmKernels } from '../../../../src/main/deploy/kernels-wasm'
import { PackedModel, type BinaryKernels } from '../../../../src/main/deploy/packed-model'
import type { ModelBuild } from '../../../../src/main/engine/models'
import { Rng } from '../../../../src/shared/random'
import { initBackend } from '../../../../src/main/worker/backend'
import { binaryBuild, convCases, randomBinaryCheckpoint, randomCase, randomImages } from './support'

let kernels: BinaryKernels

beforeAll(async () => {
  await initBackend('wasm')
  kernels = await wasmKernels()
})

const param = (array: Float32Array) => ({ array, tensor: tf.tensor1d(array) })

describe('the WebAssembly SIMD kernels', () => {
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
    const folded = foldCheckpoint(checkpoint, {
      runId: 't',
      stage: 'bnn',
      classes: [],
      normalisation: { mean: [0], std: [1] },
    })
    const decoded = decodeExport(encodeExport(folded.meta, folded.tensors).bytes)
    const images = randomImages(4, build)
    const wasm = new PackedModel(decoded, kernels)
    const js = new PackedModel(decoded, jsKernels())
    expect(Array.from(wasm.predict(images).dataSync())).toEqual(Array.from(js.predict(images).dataSync()))
    wasm.dispose()
    js.dispose()
    images.dispose()
  })
})
