import * as tf from '@tensorflow/tfjs'
import { beforeAll, describe, expect, it } from 'vitest'
import {
  drawTransform,
  normalisation,
  normalisationTable,
  prepareImages,
  transformImage,
  type AugmentOptions,
} from '../../../../src/main/engine/augment'
import { importDataset } from '../../../../src/main/datasets/import'
import { DatasetReader } from '../../../../src/main/datasets/reader'
import type { Batch } from '../../../../src/main/engine/batch'
import { initBackend } from '../../../../src/main/backend/backend'
import { mulberry32 } from '../../../../src/shared/random'
import { cifarPixel, writeCifarFolder } from '../../../fixtures/datasets'
import { useTempDirs } from './helpers'

const tempDir = useTempDirs()

beforeAll(async () => {
  await initBackend('cpu')
})

/** A CIFAR-10 store of 40 training and 8 test images with known pixels. */
let fixtureHome = ''
async function openFixture(): Promise<DatasetReader> {
  const home = await tempDir()
  fixtureHome = home
  const source = await tempDir()
  await writeCifarFolder(source, 'cifar10', { train: 8, test: 8 })
  const { manifest } = await importDataset(source, { home })
  return DatasetReader.open(manifest.id, home)
}

async function collect(batches: AsyncIterable<Batch>) {
  const out: { images: Float32Array; labels: Float32Array; shape: number[] }[] = []
  for await (const batch of batches) {
    out.push({
      images: (await batch.images.data()) as Float32Array,
      labels: (await batch.labels.data()) as Float32Array,
      shape: batch.images.shape,
    })
    batch.images.dispose()
    batch.labels.dispose()
  }
  return out
}

function argmaxRows(labels: Float32Array, k: number): number[] {
  const out: number[] = []
  for (let i = 0; i < labels.length / k; i++) {
    const row = Array.from(labels.subarray(i * k, (i + 1) * k))
    out.push(row.indexOf(Math.max(...row)))
  }
  return out
}

describe('DatasetReader', () => {
  it('normalises with the stored statistics and keeps the stored order for evaluation', async () => {
    const reader = await openFixture()
    const { mean, std } = reader.manifest.stats
    const batches = await collect(reader.evalBatches('test', { batchSize: 3 }))
    expect(batches.map((b) => b.shape)).toEqual([
      [3, 32, 32, 3],
      [3, 32, 32, 3],
      [2, 32, 32, 3],
    ])
    // Test image 4 is record 44; pixel (y 2, x 5), channel 1.
    const value = batches[1]!.images[(1 * 1024 + 2 * 32 + 5) * 3 + 1]!
    expect(value).toBeCloseTo((cifarPixel(44, 1, 2 * 32 + 5) / 255 - mean[1]!) / std[1]!, 5)
    expect(argmaxRows(batches[0]!.labels, 10)).toEqual([0, 1, 2])
    await reader.close()
  })

  it('evaluates the test split in one fixed shuffled order, so a limited evaluation is a uniform sample', async () => {
    const reader = await openFixture()
    const stored = argmaxRows((await collect(reader.evalBatches('test', { batchSize: 8 })))[0]!.labels, 10)
    const order = Array.from(reader.evaluationOrder())
    expect([...order].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7])
    expect(order).not.toEqual([0, 1, 2, 3, 4, 5, 6, 7])
    const all = (await collect(reader.testBatches({ batchSize: 3 }))).flatMap((b) => argmaxRows(b.labels, 10))
    expect(all).toEqual(order.map((i) => stored[i]))
    const limited = (await collect(reader.testBatches({ batchSize: 3, limit: 4 }))).flatMap((b) =>
      argmaxRows(b.labels, 10),
    )
    expect(limited).toEqual(all.slice(0, 4))
    // The same order in another reader of the same dataset: every epoch and run evaluates the same images.
    const again = await DatasetReader.open(reader.manifest.id, fixtureHome)
    expect(Array.from(again.evaluationOrder())).toEqual(order)
    await Promise.all([reader.close(), again.close()])
  })

  it('shuffles each epoch with a seeded permutation, visiting every image once', async () => {
    const reader = await openFixture()
    const a = reader.epochOrder('train', 7, 0)
    expect(Array.from(a).sort((x, y) => x - y)).toEqual(Array.from({ length: 40 }, (_, i) => i))
    expect(Array.from(reader.epochOrder('train', 7, 0))).toEqual(Array.from(a))
    expect(Array.from(reader.epochOrder('train', 7, 1))).not.toEqual(Array.from(a))
    expect(Array.from(reader.epochOrder('train', 8, 0))).not.toEqual(Array.from(a))

    const batches = await collect(reader.trainBatches({ batchSize: 16, epoch: 0, seed: 7 }))
    expect(batches).toHaveLength(2) // 40 images, last partial batch dropped
    const labels = batches.flatMap((b) => argmaxRows(b.labels, 10))
    expect(labels).toEqual(Array.from(a.subarray(0, 32)).map((i) => i % 10))
    const all = await collect(reader.trainBatches({ batchSize: 16, epoch: 0, seed: 7, dropLast: false }))
    expect(all.map((b) => b.shape[0])).toEqual([16, 16, 8])
    const limited = await collect(reader.trainBatches({ batchSize: 4, epoch: 0, seed: 7, limit: 3 }))
    expect(limited).toHaveLength(3)
    await reader.close()
  })

  it('replays augmented batches exactly for the same seed and epoch', async () => {
    const reader = await openFixture()
    const augment = { cropPadding: 4, flip: true, rotationDegrees: 15, mixupAlpha: 0.4 }
    const first = await collect(reader.trainBatches({ batchSize: 8, epoch: 3, seed: 1, augment }))
    const again = await collect(reader.trainBatches({ batchSize: 8, epoch: 3, seed: 1, augment }))
    const other = await collect(reader.trainBatches({ batchSize: 8, epoch: 4, seed: 1, augment }))
    expect(first).toHaveLength(5)
    expect(first[2]!.images).toEqual(again[2]!.images)
    expect(first[2]!.labels).toEqual(again[2]!.labels)
    expect(first[2]!.images).not.toEqual(other[2]!.images)
    // Geometric augmentation only moves (and interpolates) normalised values: they stay in range.
    const lut = normalisationTable(reader.manifest.stats.mean, reader.manifest.stats.std)
    const lo = Math.min(...lut)
    const hi = Math.max(...lut)
    for (const batch of first) {
      expect(batch.shape).toEqual([8, 32, 32, 3])
      let min = Infinity
      let max = -Infinity
      for (const v of batch.images) {
        min = Math.min(min, v)
        max = Math.max(max, v)
      }
      expect(min).toBeGreaterThanOrEqual(lo - 1e-4)
      expect(max).toBeLessThanOrEqual(hi + 1e-4)
    }
    await reader.close()
  })

  it('flips horizontally and shifts with zero padding, each switchable', async () => {
    const reader = await openFixture()
    const raw = await reader.readRaw('train', [5])
    const lut = normalisationTable(reader.manifest.stats.mean, reader.manifest.stats.std)
    const out = new Float32Array(3072)
    const px = (y: number, x: number, c: number) => out[(y * 32 + x) * 3 + c]!
    const expected = (y: number, x: number, c: number) => lut[c * 256 + cifarPixel(5, c, y * 32 + x)]!

    transformImage(raw.pixels, 0, 32, 32, 3, { dx: 0, dy: 0, flip: true, angle: 0 }, lut, out, 0)
    expect(px(3, 0, 0)).toBeCloseTo(expected(3, 31, 0), 6)
    expect(px(9, 30, 2)).toBeCloseTo(expected(9, 1, 2), 6)

    transformImage(raw.pixels, 0, 32, 32, 3, { dx: 2, dy: -3, flip: false, angle: 0 }, lut, out, 0)
    expect(px(10, 10, 1)).toBeCloseTo(expected(13, 8, 1), 6)
    expect(px(31, 5, 0)).toBeCloseTo(lut[0]!, 6) // shifted in from below: padding
    expect(px(5, 0, 2)).toBeCloseTo(lut[512]!, 6) // shifted in from the left: padding

    // A rotation by a multiple of 90° about the centre is exact.
    transformImage(raw.pixels, 0, 32, 32, 3, { dx: 0, dy: 0, flip: false, angle: Math.PI / 2 }, lut, out, 0)
    // Output (x 7, y 4) reads source (x 4, y 24) for a quarter turn about (15.5, 15.5).
    expect(px(4, 7, 0)).toBeCloseTo(expected(24, 4, 0), 4)
    await reader.close()
  })

  it('draws shifts, flips and angles within their ranges, and nothing when switched off', () => {
    const random = mulberry32(5)
    const off = drawTransform(random, {})
    expect(off).toEqual({ dx: 0, dy: 0, flip: false, angle: 0 })
    const draws = Array.from({ length: 2000 }, () =>
      drawTransform(random, { cropPadding: 4, flip: true, rotationDegrees: 15 }),
    )
    const maxAngle = (15 * Math.PI) / 180
    expect(Math.max(...draws.map((t) => Math.abs(t.angle)))).toBeLessThanOrEqual(maxAngle)
    expect(Math.max(...draws.map((t) => t.angle))).toBeGreaterThan(0.9 * maxAngle)
    expect(Math.min(...draws.map((t) => t.angle))).toBeLessThan(-0.9 * maxAngle)
    expect(new Set(draws.map((t) => t.dx))).toEqual(new Set([-4, -3, -2, -1, 0, 1, 2, 3, 4]))
    expect(new Set(draws.map((t) => t.dy))).toEqual(new Set([-4, -3, -2, -1, 0, 1, 2, 3, 4]))
    const flips = draws.filter((t) => t.flip).length
    expect(flips).toBeGreaterThan(850)
    expect(flips).toBeLessThan(1150)
  })

  it('mixes images and labels with one λ per batch (mixup)', async () => {
    const reader = await openFixture()
    const raw = await reader.readRaw('train', [0, 1, 2, 3, 4, 5])
    const { shape, classes, stats } = reader.manifest
    const norm = normalisation(stats.mean, stats.std)
    const prepare = (augment: AugmentOptions | undefined, seed: number) =>
      prepareImages(raw.pixels, raw.labels, shape, classes.length, norm, augment, mulberry32(seed))
    const plain = prepare(undefined, 1)
    const mixed = prepare({ mixupAlpha: 1 }, 9)
    const k = 10
    let lambda: number | null = null
    for (let i = 0; i < 6; i++) {
      const row = Array.from(mixed.labels.subarray(i * k, (i + 1) * k))
      expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5)
      const own = row[i % 10]!
      expect(own).toBeGreaterThan(0)
      lambda ??= own
      if (own < 0.999) {
        // The partner's label carries 1 − λ, and the pixels are the same convex combination.
        const partnerLabel = row.findIndex((v, j) => j !== i % 10 && v > 0)
        const partner = partnerLabel // label = index for the first 10 records
        expect(row[partnerLabel]!).toBeCloseTo(1 - own, 5)
        for (const p of [0, 100, 3071]) {
          const expected = own * plain.images[i * 3072 + p]! + (1 - own) * plain.images[partner * 3072 + p]!
          expect(mixed.images[i * 3072 + p]!).toBeCloseTo(expected, 4)
        }
      }
    }
    expect(lambda).not.toBeNull()
    await reader.close()
  })

  it('reads probe images by index', async () => {
    const reader = await openFixture()
    const batch = await reader.testImages([7, 0])
    expect(batch.images.shape).toEqual([2, 32, 32, 3])
    expect(argmaxRows((await batch.labels.data()) as Float32Array, 10)).toEqual([7, 0])
    tf.dispose([batch.images, batch.labels])
    await expect(reader.readRaw('test', [8])).rejects.toThrow(/outside the 8 images of test/)
    await reader.close()
  })
})
