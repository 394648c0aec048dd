/** Shared test fixtures: a small real Fashion-MNIST subset and tiny configs. */
import * as tf from '@tensorflow/tfjs'
import { readFashionMnistClass } from '../../../../src/main/datasets/fashion-mnist'
import { memoryDataSource, type DataSource } from '../../../../src/main/engine/data'
import type { Batch } from '../../../../src/main/engine/batch'
import { Rng } from '../../../../src/shared/random'
import { makeRunConfig, type PipelineName, type RunConfig } from '../../../../src/shared/run-config'

export const FASHION_MEAN = 0.286
export const FASHION_STD = 0.353

/**
 * Per class, the first `trainPerClass` images for training and the last `testPerClass` for testing (the
 * package keeps no split, so the two ends of each class are disjoint by construction).
 */
export async function fashionMnistSubset(trainPerClass: number, testPerClass: number): Promise<DataSource> {
  const pixels = 28 * 28
  const classes = await Promise.all(Array.from({ length: 10 }, (_, c) => readFashionMnistClass(c)))
  const take = (from: 'start' | 'end', perClass: number) => {
    const images = new Uint8Array(perClass * 10 * pixels)
    const labels = new Uint8Array(perClass * 10)
    // Interleave classes so a prefix of the test split covers every class.
    for (let i = 0; i < perClass; i++) {
      classes.forEach((all, c) => {
        const n = all.length / pixels
        const src = from === 'start' ? i : n - perClass + i
        images.set(all.subarray(src * pixels, (src + 1) * pixels), (i * 10 + c) * pixels)
        labels[i * 10 + c] = c
      })
    }
    return { images, labels }
  }
  return memoryDataSource({
    train: take('start', trainPerClass),
    test: take('end', testPerClass),
    height: 28,
    width: 28,
    channels: 1,
    classes: 10,
    mean: [FASHION_MEAN],
    std: [FASHION_STD],
  })
}

/** Random normal images with random one-hot labels. */
export function syntheticBatch(n: number, size: number, channels: number, classes: number, seed = 7): Batch {
  const rng = new Rng(seed)
  const labels = new Float32Array(n * classes)
  for (let i = 0; i < n; i++) labels[i * classes + rng.int(classes)] = 1
  return {
    images: tf.randomNormal([n, size, size, channels], 0, 1, 'float32', seed) as tf.Tensor4D,
    labels: tf.tensor2d(labels, [n, classes]),
  }
}

/** A run config small enough for unit tests: 16×16×1 inputs, width 0.125 (8…64 channels), 10 classes. */
export function tinyConfig(pipeline: PipelineName = 'r2b', set: string[] = []): RunConfig {
  return makeRunConfig({
    pipeline,
    set: ['model.width=0.125', 'data.inputSize=16', 'data.channels=1', 'data.classes=10', ...set],
  })
}
