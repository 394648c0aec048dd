/**
 * Where the engine's batches come from. The dataset reader implements DataSource over the dataset store;
 * memoryDataSource serves images already in memory (tests, benchmarks, the bundled Fashion-MNIST).
 */
import * as tf from '@tensorflow/tfjs'
import type { AugmentSpec } from '../../shared/run-config'
import { normalisation, prepareImages } from './augment'
import type { Batch } from './batch'
import { mixSeed, mulberry32, permutation, type Random } from '../../shared/random'

export interface DataSource {
  readonly trainSize: number
  readonly testSize: number
  readonly classes: number
  /**
   * A shuffled, augmented pass over the training split (the same for the same seed and epoch), in whole
   * batches, at most `limit` of them.
   */
  trainBatches(options: {
    epoch: number
    batchSize: number
    seed: number
    limit?: number
    augment?: Partial<AugmentSpec>
  }): AsyncIterable<Batch>
  /** The test split in order, the last batch possibly smaller. */
  testBatches(options: { batchSize: number; limit?: number }): AsyncIterable<Batch>
  /** Test images by index (probe sets, inspection). */
  testImages(indices: number[]): Promise<Batch>
}

export interface MemorySplit {
  /** uint8 pixels N×H×W×C. */
  images: Uint8Array
  labels: Uint8Array | Int32Array
}

export interface MemoryDataOptions {
  train: MemorySplit
  test: MemorySplit
  height: number
  width: number
  channels: number
  classes: number
  /** Per-channel mean and std of pixel/255. */
  mean: number[]
  std: number[]
}

export function memoryDataSource(options: MemoryDataOptions): DataSource {
  const { height, width, channels, classes } = options
  const shape = [height, width, channels] as const
  const pixels = height * width * channels
  const size = (split: MemorySplit) => split.images.length / pixels
  const norm = normalisation(options.mean, options.std)

  function gather(
    split: MemorySplit,
    indices: ArrayLike<number>,
    augment?: Partial<AugmentSpec>,
    random?: Random,
  ): Batch {
    const n = indices.length
    const raw = new Uint8Array(n * pixels)
    const labels = new Int32Array(n)
    for (let i = 0; i < n; i++) {
      const index = indices[i] as number
      raw.set(split.images.subarray(index * pixels, (index + 1) * pixels), i * pixels)
      labels[i] = split.labels[index] as number
    }
    const prepared = prepareImages(raw, labels, shape, classes, norm, augment, random ?? (() => 0))
    return {
      images: tf.tensor4d(prepared.images, [n, height, width, channels]),
      labels: tf.tensor2d(prepared.labels, [n, classes]),
    }
  }

  return {
    trainSize: size(options.train),
    testSize: size(options.test),
    classes,
    // The same seeded streams as the dataset reader: shuffle from (seed, epoch, 1), draws from (seed, epoch, 2).
    async *trainBatches({ epoch, batchSize, seed, limit, augment }) {
      const order = permutation(size(options.train), mulberry32(mixSeed(seed, epoch, 1)))
      const random = mulberry32(mixSeed(seed, epoch, 2))
      let batches = Math.floor(order.length / batchSize)
      if (limit && limit > 0) batches = Math.min(batches, limit)
      for (let b = 0; b < batches; b++) {
        yield gather(options.train, order.subarray(b * batchSize, (b + 1) * batchSize), augment, random)
      }
    },
    async *testBatches({ batchSize, limit }) {
      const total = limit && limit > 0 ? Math.min(limit, size(options.test)) : size(options.test)
      for (let start = 0; start < total; start += batchSize) {
        const indices = Array.from({ length: Math.min(batchSize, total - start) }, (_, i) => start + i)
        yield gather(options.test, indices)
      }
    },
    async testImages(indices) {
      return gather(options.test, indices)
    },
  }
}
