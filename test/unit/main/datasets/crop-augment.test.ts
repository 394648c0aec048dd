/**
 * The crop path of the augmentation (imagenet-paper's real-weight stages): Inception's resized crop, the
 * colour jitter, and the centred window a store larger than the input is evaluated through.
 */
import * as tf from '@tensorflow/tfjs'
import { beforeAll, describe, expect, it } from 'vitest'
import {
  centreCrop,
  cropImage,
  drawCropTransform,
  normalisation,
  prepareImages,
  type CropTransform,
} from '../../../../src/main/engine/augment'
import { DatasetReader } from '../../../../src/main/datasets/reader'
import { importDataset } from '../../../../src/main/datasets/import'
import { mulberry32 } from '../../../../src/shared/random'
import { writeCifarFolder } from '../../../fixtures/datasets'
import { initBackend } from '../../../../src/main/backend/backend'
import { newRunConfig } from '../../../../src/main/training/new-run'
import { useTempDirs } from './helpers'

const tempDir = useTempDirs()

beforeAll(async () => {
  await initBackend('cpu')
})

/** Raw values back from a normalised image made with mean 0 and std 1: v/255. */
const identity = normalisation([0, 0, 0], [1, 1, 1])
const grey = normalisation([0], [1])

/** An h×w×c image whose pixel (y, x, c) is 10·y + x + 100·c (distinct, and linear in x and y). */
function ramp(h: number, w: number, c: number): Uint8Array {
  const image = new Uint8Array(h * w * c)
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) for (let k = 0; k < c; k++) image[(y * w + x) * c + k] = 10 * y + x + 100 * k
  return image
}

function crop(
  src: Uint8Array,
  shape: [number, number, number],
  out: number,
  t: CropTransform,
  norm = identity,
) {
  const dst = new Float32Array(out * out * shape[2])
  cropImage(src, 0, shape, out, t, norm, dst, 0)
  return Array.from(dst, (v) => Math.round(v * 255 * 1000) / 1000)
}

describe('the resized crop', () => {
  it('draws boxes of 8–100% of the area with aspect ratios within 3/4–4/3, inside the image', () => {
    const random = mulberry32(7)
    const areas: number[] = []
    for (let i = 0; i < 2000; i++) {
      const { box } = drawCropTransform(random, 256, 256, 224, { resizedCropMinArea: 0.08 })
      expect(box.x).toBeGreaterThanOrEqual(0)
      expect(box.y).toBeGreaterThanOrEqual(0)
      expect(box.x + box.width).toBeLessThanOrEqual(256)
      expect(box.y + box.height).toBeLessThanOrEqual(256)
      const area = (box.width * box.height) / 256 ** 2
      // Rounding each side to whole pixels moves the area and the ratio a little off the drawn values.
      expect(area).toBeGreaterThan(0.075)
      expect(box.width / box.height).toBeGreaterThan(0.74)
      expect(box.width / box.height).toBeLessThan(1.35)
      areas.push(area)
    }
    // Area fractions are uniform in [0.08, 1] before the tries that do not fit: small and large boxes both occur.
    expect(Math.min(...areas)).toBeLessThan(0.1)
    expect(Math.max(...areas)).toBeGreaterThan(0.95)
  })

  it('falls back to the centred window when no try fits (a very wide image)', () => {
    // 4×200: almost every box of the drawn area and ratio is taller than 4 pixels.
    const random = mulberry32(3)
    const fallbacks = Array.from({ length: 50 }, () =>
      drawCropTransform(random, 4, 200, 4, { resizedCropMinArea: 0.9 }),
    )
    expect(fallbacks.every((t) => t.box.width === 4 && t.box.height === 4 && t.box.x === 98)).toBe(true)
  })

  it('resizes the box bilinearly: a box the size of the output copies its pixels, a wider one interpolates', () => {
    const src = ramp(6, 6, 1)
    const exact = crop(src, [6, 6, 1], 3, {
      box: { x: 2, y: 1, width: 3, height: 3 },
      flip: false,
      jitter: null,
    })
    expect(exact).toEqual([12, 13, 14, 22, 23, 24, 32, 33, 34])
    // A 6-wide box onto 3 columns samples at x = 0.5, 2.5, 4.5: on a ramp, the averages of neighbours.
    const wide = crop(src, [6, 6, 1], 3, {
      box: { x: 0, y: 0, width: 6, height: 3 },
      flip: false,
      jitter: null,
    })
    expect(wide.slice(0, 3)).toEqual([0.5, 2.5, 4.5])
    const flipped = crop(src, [6, 6, 1], 3, {
      box: { x: 2, y: 1, width: 3, height: 3 },
      flip: true,
      jitter: null,
    })
    expect(flipped).toEqual([14, 13, 12, 24, 23, 22, 34, 33, 32])
  })
})

describe('the colour jitter', () => {
  const t = (jitter: [number, number, number]): CropTransform => ({
    box: { x: 0, y: 0, width: 2, height: 1 },
    flip: false,
    jitter,
  })

  it('scales brightness, then contrast about the mean grey, then saturation about each pixel’s grey', () => {
    // Two pixels: (100, 50, 0) and (200, 150, 100).
    const src = Uint8Array.from([100, 50, 0, 200, 150, 100])
    const out = (j: [number, number, number]) => {
      const dst = new Float32Array(4 * 3)
      cropImage(src, 0, [1, 2, 3], 2, { ...t(j), box: { x: 0, y: 0, width: 2, height: 1 } }, identity, dst, 0)
      return dst
    }
    expect(Array.from(out([1, 1, 1]).slice(0, 3), (v) => Math.round(v * 255))).toEqual([100, 50, 0])
    const bright = Array.from(out([1.2, 1, 1]), (v) => Math.round(v * 255))
    expect(bright.slice(0, 3)).toEqual([120, 60, 0])
    // Contrast 0: every value becomes the image's mean grey.
    const flat = Array.from(out([1, 0, 1]), (v) => v * 255)
    expect(new Set(flat.map((v) => v.toFixed(6))).size).toBe(1)
    // Saturation 0: each pixel becomes its own grey (0.299 R + 0.587 G + 0.114 B).
    const greyed = Array.from(out([1, 1, 0]).slice(0, 3), (v) => v * 255)
    for (const v of greyed) expect(v).toBeCloseTo(0.299 * 100 + 0.587 * 50, 4)
    // Clamped to [0, 255].
    expect(Math.max(...Array.from(out([2, 1, 1]), (v) => v * 255))).toBeCloseTo(255, 4)
  })

  it('leaves saturation alone on one channel and still applies contrast there', () => {
    const src = Uint8Array.from([50, 150])
    const dst = new Float32Array(4)
    cropImage(
      src,
      0,
      [1, 2, 1],
      2,
      { ...t([1, 0.5, 0]), box: { x: 0, y: 0, width: 2, height: 1 } },
      grey,
      dst,
      0,
    )
    // Mean 100; contrast ½ pulls 50 → 75 and 150 → 125; saturation 0 would do nothing on grey.
    expect(Math.round(dst[0]! * 255)).toBe(75)
  })
})

describe('a store larger than the input', () => {
  it('is evaluated through its centred window and trained on resized crops of the whole image', async () => {
    const home = await tempDir()
    const source = await tempDir()
    await writeCifarFolder(source, 'cifar10', { train: 8, test: 8 })
    const { manifest } = await importDataset(source, { home })
    const full = await DatasetReader.open(manifest.id, home)
    const cropped = await DatasetReader.open(manifest.id, home, { inputSize: 24 })
    try {
      expect(cropped.inputShape).toEqual([24, 24, 3])
      const whole = await full.readImages('test', [0, 5])
      const window = await cropped.readImages('test', [0, 5])
      expect(window.images.shape).toEqual([2, 24, 24, 3])
      // 32 → 24: the window starts at (32 − 24 + 1) >> 1 = 4 on each side.
      const expected = whole.images.slice([0, 4, 4, 0], [2, 24, 24, 3])
      expect(Array.from(await window.images.data())).toEqual(Array.from(await expected.data()))
      expected.dispose()
      for (const b of [whole, window]) tf.dispose([b.images, b.labels])
      const augment = { resizedCropMinArea: 0.08, flip: true, colorJitter: 0.4 }
      for await (const batch of cropped.trainBatches({ batchSize: 4, epoch: 0, seed: 1, augment })) {
        expect(batch.images.shape).toEqual([4, 24, 24, 3])
        batch.images.dispose()
        batch.labels.dispose()
      }
      await expect(DatasetReader.open(manifest.id, home, { inputSize: 33 })).rejects.toThrow(
        /stores 32×32 images, smaller than the input of 33: import it again with --size 33 or more/,
      )
    } finally {
      await full.close()
      await cropped.close()
    }
  })

  it('a cropping preset keeps its input and records the stored size; others take the stored size', async () => {
    const home = await tempDir()
    const source = await tempDir()
    await writeCifarFolder(source, 'cifar10', { train: 8, test: 8 })
    const { manifest } = await importDataset(source, { home })
    const batch = 'stages.*.batchSize=8'
    const request = { dataset: manifest.id, preset: 'imagenet-paper' as const, set: [batch] }
    // 32 stored, smaller than 224: the input is the whole stored image.
    const whole = await newRunConfig(home, request, { engineHere: false })
    expect(whole.config.data).toMatchObject({ inputSize: 32, storedSize: 32 })
    const cropped = await newRunConfig(
      home,
      { ...request, set: [batch, 'data.inputSize=24'] },
      { engineHere: false },
    )
    expect(cropped.config.data).toMatchObject({ inputSize: 24, storedSize: 32 })
    const quick = await newRunConfig(home, { dataset: manifest.id, preset: 'quick' }, { engineHere: false })
    expect(quick.config.data).toMatchObject({ inputSize: 32, storedSize: 0 })
    await expect(
      newRunConfig(home, { ...request, set: [batch, 'data.storedSize=40'] }, { engineHere: false }),
    ).rejects.toThrow(/must match dataset .*data\.storedSize 40 is the size it stores/)
  })

  it('takes the same centred window in training without a resized crop', () => {
    const pixels = ramp(9, 9, 1)
    const raw = centreCrop(pixels, [9, 9, 1], 5)
    expect(Array.from(raw.slice(0, 5))).toEqual([22, 23, 24, 25, 26])
    const { images } = prepareImages(pixels, [0], [9, 9, 1], 2, grey, undefined, mulberry32(1), 5)
    expect(Array.from(images, (v) => Math.round(v * 255))).toEqual(Array.from(raw))
  })

  it('refuses shifts or rotation with the crop path', () => {
    expect(() =>
      prepareImages(
        ramp(4, 4, 1),
        [0],
        [4, 4, 1],
        2,
        grey,
        { colorJitter: 0.2, cropPadding: 2 },
        mulberry32(1),
      ),
    ).toThrow(/flips only/)
  })
})
