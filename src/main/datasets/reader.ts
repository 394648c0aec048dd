/**
 * The batch reader the training worker uses (it has the shape of the engine's DataSource). It opens a stored dataset read-only and reads images by
 * offset, one batch (plus one prefetched) at a time, so a store of any size trains in bounded memory; only
 * the labels (2 bytes per image) are held. Shuffling and augmentation are seeded per (seed, epoch).
 */
import { open, readFile, stat, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import * as tf from '@tensorflow/tfjs'
import type { DatasetManifest, SplitName } from '../../shared/datasets'
import type { DataSpec } from '../../shared/run-config'
import { mixSeed, mulberry32, permutation } from '../../shared/random'
import type { Batch } from '../engine/batch'
import {
  centreCrop,
  normalisation,
  normaliseBatch,
  oneHot,
  prepareImages,
  type AugmentOptions,
  type Normalisation,
} from '../engine/augment'
import { DatasetError } from './errors'
import { datasetDir, imagesFile, labelsFile, readManifest } from './store'

export type { AugmentOptions } from '../engine/augment'

export interface TrainBatchOptions {
  batchSize: number
  /** Epoch number: with `seed`, picks the shuffle order and the augmentation draws. */
  epoch: number
  seed: number
  augment?: AugmentOptions
  /** At most this many batches (a steps-per-epoch budget); 0 or absent: the whole split. */
  limit?: number
  /** Drop the last partial batch (default true: every training step sees batchSize images). */
  dropLast?: boolean
  split?: SplitName
}

export interface EvalBatchOptions {
  batchSize: number
  /** Only the first `limit` images of the split. */
  limit?: number
}

export interface RawImages {
  /** n × H × W × C uint8. */
  pixels: Uint8Array
  labels: Uint16Array
}

interface SplitFiles {
  images: FileHandle
  labels: Uint16Array
  count: number
}

/** Seed of the fixed evaluation order of every dataset's test split. */
const EVALUATION_ORDER_SEED = 0x7e57

export interface ReaderOptions {
  /**
   * The model's input side, when smaller than the stored images: evaluation takes their centred window,
   * training a resized crop (or the centred window) of them. Absent: images as stored.
   */
  inputSize?: number
}

/** The reader options of a run: the input side when the run crops a larger store. */
export function runReaderOptions(data: Pick<DataSpec, 'inputSize' | 'storedSize'>): ReaderOptions {
  return data.storedSize > 0 ? { inputSize: data.inputSize } : {}
}

export class DatasetReader {
  private readonly imageBytes: number
  private readonly norm: Normalisation
  /** The shape of the images the reader hands out. */
  readonly inputShape: readonly [number, number, number]

  private constructor(
    readonly manifest: DatasetManifest,
    private readonly splits: Record<SplitName, SplitFiles>,
    private readonly inputSize: number | undefined,
  ) {
    const [h, w, c] = manifest.shape
    this.imageBytes = h * w * c
    this.norm = normalisation(manifest.stats.mean, manifest.stats.std)
    this.inputShape = inputSize === undefined ? manifest.shape : [inputSize, inputSize, c]
  }

  static async open(id: string, home?: string, options: ReaderOptions = {}): Promise<DatasetReader> {
    const manifest = await readManifest(id, home)
    const { inputSize } = options
    if (inputSize !== undefined && inputSize > Math.min(manifest.shape[0], manifest.shape[1]))
      throw new DatasetError(
        `dataset ${id} stores ${manifest.shape[0]}×${manifest.shape[1]} images, smaller than the input of ${inputSize}: import it again with --size ${inputSize} or more`,
      )
    const dir = datasetDir(id, home)
    const [h, w, c] = manifest.shape
    const imageBytes = h * w * c
    const opened: Partial<Record<SplitName, SplitFiles>> = {}
    try {
      for (const split of ['train', 'test'] as const) {
        const count = manifest.splits[split]
        const imagePath = join(dir, imagesFile(split))
        const size = (await stat(imagePath)).size
        if (size !== count * imageBytes) {
          throw new DatasetError(
            `${imagePath}: ${size} bytes, the manifest says ${count} images of ${imageBytes} bytes`,
          )
        }
        const labelBytes = await readFile(join(dir, labelsFile(split)))
        if (labelBytes.length !== count * 2) {
          throw new DatasetError(
            `${join(dir, labelsFile(split))}: ${labelBytes.length} bytes, expected ${count * 2}`,
          )
        }
        const labels = new Uint16Array(count)
        for (let i = 0; i < count; i++) labels[i] = labelBytes.readUInt16LE(i * 2)
        opened[split] = { images: await open(imagePath, 'r'), labels, count }
      }
    } catch (error) {
      await Promise.all(Object.values(opened).map((files) => files.images.close()))
      throw error
    }
    return new DatasetReader(manifest, opened as Record<SplitName, SplitFiles>, inputSize)
  }

  /** Number of classes (the engine's DataSource shape; names are in manifest.classes). */
  get classes(): number {
    return this.manifest.classes.length
  }

  get trainSize(): number {
    return this.splits.train.count
  }

  get testSize(): number {
    return this.splits.test.count
  }

  size(split: SplitName): number {
    return this.splits[split].count
  }

  /** The order images are visited in an epoch: a seeded permutation, different for each epoch. */
  epochOrder(split: SplitName, seed: number, epoch: number): Uint32Array {
    return permutation(this.size(split), mulberry32(mixSeed(seed, epoch, 1)))
  }

  /** Reads the given images (any order, repeats allowed) with one positioned read each. */
  async readRaw(split: SplitName, indices: ArrayLike<number>): Promise<RawImages> {
    const files = this.splits[split]
    const n = indices.length
    const pixels = new Uint8Array(n * this.imageBytes)
    const labels = new Uint16Array(n)
    const reads: Promise<unknown>[] = []
    for (let i = 0; i < n; i++) {
      const index = indices[i]!
      if (!Number.isInteger(index) || index < 0 || index >= files.count) {
        throw new RangeError(`image ${index} is outside the ${files.count} images of ${split}`)
      }
      labels[i] = files.labels[index]!
      reads.push(files.images.read(pixels, i * this.imageBytes, this.imageBytes, index * this.imageBytes))
    }
    await Promise.all(reads)
    return { pixels, labels }
  }

  /** The labels of a split (kept in memory: they are small next to the images). */
  labels(split: SplitName): Uint16Array {
    return this.splits[split].labels
  }

  /** Reads `count` consecutive images with a single read. */
  async readRange(split: SplitName, start: number, count: number): Promise<RawImages> {
    const files = this.splits[split]
    if (start < 0 || start + count > files.count)
      throw new RangeError(`images ${start}..${start + count} outside ${split}`)
    const pixels = new Uint8Array(count * this.imageBytes)
    await files.images.read(pixels, 0, pixels.length, start * this.imageBytes)
    return { pixels, labels: files.labels.slice(start, start + count) }
  }

  private toBatch(images: Float32Array, labels: Float32Array, n: number): Batch {
    const [h, w, c] = this.inputShape
    return {
      images: tf.tensor4d(images, [n, h, w, c], 'float32'),
      labels: tf.tensor2d(labels, [n, this.classes], 'float32'),
    }
  }

  /** Raw images as the model sees them un-augmented: the centred window of a larger store (`inputShape`). */
  inputPixels(pixels: Uint8Array): Uint8Array {
    return this.inputSize === undefined ? pixels : centreCrop(pixels, this.manifest.shape, this.inputSize)
  }

  /** Normalised, un-augmented images: the evaluation path. */
  private normalised(pixels: Uint8Array): Float32Array {
    return normaliseBatch(this.inputPixels(pixels), this.manifest.shape[2], this.norm.lut)
  }

  /** Normalised, un-augmented images and one-hot labels for the given indices (probe sets, inspection). */
  async readImages(split: SplitName, indices: ArrayLike<number>): Promise<Batch> {
    const raw = await this.readRaw(split, indices)
    return this.toBatch(this.normalised(raw.pixels), oneHot(raw.labels, this.classes), indices.length)
  }

  /** Shuffled, augmented training batches for one epoch; the next batch's bytes are read while one is used. */
  async *trainBatches(options: TrainBatchOptions): AsyncGenerator<Batch> {
    const split = options.split ?? 'train'
    const { batchSize } = options
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batch size ${batchSize}`)
    const order = this.epochOrder(split, options.seed, options.epoch)
    const random = mulberry32(mixSeed(options.seed, options.epoch, 2))
    let total = options.dropLast === false ? order.length : order.length - (order.length % batchSize)
    if (options.limit && options.limit > 0) total = Math.min(total, options.limit * batchSize)
    const read = (start: number): Promise<RawImages> | null =>
      start < total ? this.readRaw(split, order.subarray(start, Math.min(start + batchSize, total))) : null
    let pending = read(0)
    try {
      for (let start = 0; pending; start += batchSize) {
        const raw = await pending
        pending = read(start + batchSize)
        const { images, labels } = prepareImages(
          raw.pixels,
          raw.labels,
          this.manifest.shape,
          this.classes,
          this.norm,
          options.augment,
          random,
          this.inputSize,
        )
        yield this.toBatch(images, labels, raw.labels.length)
      }
    } finally {
      // A consumer that stops early must not leave a read running against a file it may close next.
      await pending?.catch(() => undefined)
    }
  }

  /** Every image of a split (or the first `limit`) in stored order, normalised, never augmented. */
  evalBatches(split: SplitName, options: EvalBatchOptions): AsyncGenerator<Batch> {
    const total = Math.min(options.limit && options.limit > 0 ? options.limit : Infinity, this.size(split))
    return this.unaugmentedBatches(total, options.batchSize, (start, count) =>
      this.readRange(split, start, count),
    )
  }

  /**
   * The test split, un-augmented, in one fixed shuffled order: the engine's DataSource.testBatches. Stores
   * are often sorted by class (image folders, the bundled Fashion-MNIST), so an evaluation limit or the
   * gates' averaging subset, which take a prefix, must not see the stored order: any prefix of this one is
   * a uniform sample, the same in every epoch and every run.
   */
  testBatches(options: EvalBatchOptions): AsyncGenerator<Batch> {
    const order = this.evaluationOrder()
    const total = Math.min(options.limit && options.limit > 0 ? options.limit : Infinity, order.length)
    return this.unaugmentedBatches(total, options.batchSize, (start, count) =>
      this.readRaw('test', order.subarray(start, start + count)),
    )
  }

  /** Normalised batches of `total` images fetched by `read`, the next batch's bytes read while one is used. */
  private async *unaugmentedBatches(
    total: number,
    batchSize: number,
    read: (start: number, count: number) => Promise<RawImages>,
  ): AsyncGenerator<Batch> {
    const fetch = (start: number) => (start < total ? read(start, Math.min(batchSize, total - start)) : null)
    let pending = fetch(0)
    try {
      for (let start = 0; pending; start += batchSize) {
        const raw = await pending
        pending = fetch(start + batchSize)
        yield this.toBatch(this.normalised(raw.pixels), oneHot(raw.labels, this.classes), raw.labels.length)
      }
    } finally {
      // A consumer that stops early must not leave a read running against a file it may close next.
      await pending?.catch(() => undefined)
    }
  }

  private evaluationOrderCache: Uint32Array | null = null

  /** A seeded permutation of the test split, fixed for the dataset (not tied to a run's seed). */
  evaluationOrder(): Uint32Array {
    this.evaluationOrderCache ??= permutation(this.size('test'), mulberry32(EVALUATION_ORDER_SEED))
    return this.evaluationOrderCache
  }

  /** Test images by index (probe sets): the engine's DataSource.testImages. */
  testImages(indices: ArrayLike<number>): Promise<Batch> {
    return this.readImages('test', indices)
  }

  async close(): Promise<void> {
    await Promise.all(Object.values(this.splits).map((files) => files.images.close()))
  }
}

export function openDataset(id: string, home?: string, options?: ReaderOptions): Promise<DatasetReader> {
  return DatasetReader.open(id, home, options)
}
