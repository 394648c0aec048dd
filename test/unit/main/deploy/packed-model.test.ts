import * as tf from '@tensorflow/tfjs'
import { beforeAll, describe, expect, it } from 'vitest'
import { modelFromCheckpoint } from '../../../../src/main/engine/checkpoint'
import type { ModelBuild } from '../../../../src/shared/checkpoint'
import { decodeExport } from '../../../../src/main/deploy/format'
import { jsKernels } from '../../../../src/main/deploy/kernels-js'
import { PackedModel } from '../../../../src/main/deploy/packed-model'
import { initBackend } from '../../../../src/main/backend/backend'
import { relativeError } from '../../../support/backend-parity'
import { binaryBuild, exportOf, randomBinaryCheckpoint, randomImages } from './support'

beforeAll(async () => {
  await initBackend('wasm')
})

const meta = {
  runId: 'test',
  stage: 'bnn',
  classes: Array.from({ length: 10 }, (_, i) => `c${i}`),
  normalisation: { mean: [0.5], std: [0.25] },
}

async function compare(build: ModelBuild) {
  const checkpoint = await randomBinaryCheckpoint(build)
  const { bytes } = exportOf(checkpoint, meta)
  const packed = new PackedModel(decodeExport(bytes), jsKernels())
  const graph = modelFromCheckpoint(checkpoint)
  const images = randomImages(6, build)
  const expected = (await graph.predict(images).data()) as Float32Array
  const actual = (await packed.predict(images).data()) as Float32Array
  tf.dispose(images)
  graph.dispose()
  packed.dispose()
  return { expected, actual }
}

const variants: Partial<ModelBuild>[] = [
  { padValue: 1 },
  { padValue: 0 },
  { padValue: 0, downsample: 'binary', weightScale: 'mean' },
  { padValue: 1, downsample: 'binary', scaling: 'learned', weightScale: 'learned' },
  { padValue: 0, scaling: 'none', weightScale: 'learned', stem: 'imagenet', inputSize: 17, channels: 3 },
]

describe('the packed model (JavaScript kernels)', () => {
  it.each(variants)('matches the training graph in eval mode: %o', async (variant) => {
    const { expected, actual } = await compare(binaryBuild(variant))
    expect(relativeError(actual, expected)).toBeLessThan(1e-4)
  })
})
