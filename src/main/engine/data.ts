/**
 * Where the engine's batches come from. The dataset reader implements DataSource over the dataset store;
 * memoryDataSource serves images already in memory (tests, benchmarks, the bundled Fashion-MNIST).
 */
import * as tf from '@tensorflow/tfjs'
import type { AugmentSpec } from '../../shared/run-config'
import { augmentBatch, augments } from './augment'
import type { Batch } from './batch'
import { Rng, mixSeed } from './random'

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
  const pixels = height * width * channels
  const size = (split: MemorySplit) => split.images.length / pixels
  const scale = new Float32Array(channels)
  const shift = new Float32Array(channels)
  for (let c = 0; c < channels; c++) {
    const std = options.std[c] ?? options.std[0] ?? 1
    const mean = options.mean[c] ?? options.mean[0] ?? 0
    scale[c] = 1 / (255 * std)
    shift[c] = -mean / std
  }

  function gather(split: MemorySplit, indices: ArrayLike<number>): Batch {
    const n = indices.length
    const images = new Float32Array(n * pixels)
    const labels = new Float32Array(n * classes)
    for (let i = 0; i < n; i++) {
      const src = (indices[i] as number) * pixels
      for (let p = 0; p < pixels; p++) {
        const c = p % channels
        images[i * pixels + p] =
          (split.images[src + p] as number) * (scale[c] as number) + (shift[c] as number)
      }
      labels[i * classes + (split.labels[indices[i] as number] as number)] = 1
    }
    return {
      images: tf.tensor4d(images, [n, height, width, channels]),
      labels: tf.tensor2d(labels, [n, classes]),
    }
  }

  return {
    trainSize: size(options.train),
    testSize: size(options.test),
    classes,
    async *trainBatches({ epoch, batchSize, seed, limit, augment }) {
      const order = new Rng(mixSeed(seed, epoch)).shuffle(size(options.train))
      const spec: AugmentSpec = { flip: false, cropPadding: 0, rotationDegrees: 0, mixupAlpha: 0, ...augment }
      const rng = new Rng(mixSeed(seed, epoch, 2))
      let batches = Math.floor(order.length / batchSize)
      if (limit && limit > 0) batches = Math.min(batches, limit)
      for (let b = 0; b < batches; b++) {
        const batch = gather(options.train, order.subarray(b * batchSize, (b + 1) * batchSize))
        if (!augments(spec)) {
          yield batch
          continue
        }
        const augmented = augmentBatch(batch, spec, rng)
        tf.dispose([batch.images, batch.labels])
        yield augmented
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
