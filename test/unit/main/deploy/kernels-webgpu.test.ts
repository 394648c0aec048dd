import * as tf from '@tensorflow/tfjs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { packActivations } from '../../../../src/main/deploy/binary-conv'
import { decodeExport } from '../../../../src/main/deploy/format'
import { modelFromCheckpoint } from '../../../../src/main/engine/checkpoint'
import { convOnGpu, packOnGpu, webgpuKernels } from '../../../../src/main/deploy/kernels-webgpu'
import { PackedModel } from '../../../../src/main/deploy/packed-model'
import { initBackend, releaseBackend } from '../../../../src/main/backend/backend'
import { relativeError } from '../../../support/backend-parity'
import { binaryBuild, convCases, exportOf, randomBinaryCheckpoint, randomCase, randomImages } from './support'

beforeAll(async () => {
  await initBackend('webgpu')
})
afterAll(() => releaseBackend())

const ones = (n: number) => ({ array: new Float32Array(n).fill(1), tensor: tf.ones([n]) })

describe('the WGSL kernels (WebGPU)', () => {
  it.each(convCases)('sign-and-pack and XNOR-popcount conv equal the ±1 convolution: %o', async (c) => {
    const { x, layer, expected } = randomCase(c, 1 + c.cin + c.h)
    const kernels = webgpuKernels()
    const prepared = kernels.prepare(layer)
    const input = tf.tensor4d(x, [c.n, c.h, c.w, c.cin])
    const bits = packOnGpu(input, null)
    expect(Array.from((await bits.data()) as Int32Array).map((v) => v >>> 0)).toEqual(
      Array.from(packActivations(x, c.n * c.h * c.w, c.cin, null, null)),
    )
    const scale = ones(c.cout)
    const out = convOnGpu(bits, [c.n, c.h, c.w], layer, prepared as never, {
      channelScale: scale.tensor,
      spatial: null,
      alpha: null,
      bias: null,
      residual: null,
    })
    expect(Array.from((await out.data()) as Float32Array)).toEqual(Array.from(expected))
    tf.dispose([input, bits, out, scale.tensor])
    kernels.dispose()
  })

  it.each([
    { padValue: 0 as const, downsample: 'binary' as const, inputSize: 9 },
    { padValue: 1 as const, scaling: 'learned' as const, weightScale: 'mean' as const, inputSize: 7 },
  ])("runs a whole packed model as the training graph's eval forward does: %o", async (variant) => {
    const build = binaryBuild(variant)
    const checkpoint = await randomBinaryCheckpoint(build)
    const decoded = decodeExport(exportOf(checkpoint).bytes)
    const images = randomImages(3, build)
    const gpu = new PackedModel(decoded, webgpuKernels())
    const graph = modelFromCheckpoint(checkpoint)
    const a = (await gpu.predict(images).data()) as Float32Array
    const b = (await graph.predict(images).data()) as Float32Array
    expect(relativeError(a, b)).toBeLessThan(1e-4)
    gpu.dispose()
    graph.dispose()
    images.dispose()
  })
})
