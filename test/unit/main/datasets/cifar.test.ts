import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { importDataset } from '../../../../src/main/datasets/import'
import { datasetDir, imagesFile, labelsFile, listDatasets } from '../../../../src/main/datasets/store'
import {
  CIFAR100_COARSE,
  CIFAR100_FINE,
  cifarCoarse,
  cifarPixel,
  writeCifarArchive,
  writeCifarFolder,
} from '../../../fixtures/datasets'
import { useTempDirs } from './helpers'

const tempDir = useTempDirs()

async function stored(home: string, id: string, split: 'train' | 'test') {
  const dir = datasetDir(id, home)
  const images = await readFile(join(dir, imagesFile(split)))
  const labelBytes = await readFile(join(dir, labelsFile(split)))
  const labels = Array.from({ length: labelBytes.length / 2 }, (_, i) => labelBytes.readUInt16LE(i * 2))
  return { images, labels }
}

/** Stored pixel (y, x, c) of image i: interleaved H×W×C. */
function at(images: Buffer, i: number, y: number, x: number, c: number): number {
  return images[i * 3072 + (y * 32 + x) * 3 + c]!
}

describe('CIFAR-10 import', () => {
  it('imports the official archive layout, interleaving the planar pixels', async () => {
    const home = await tempDir()
    const archive = join(await tempDir(), 'cifar-10-binary.tar.gz')
    await writeCifarArchive(archive, 'cifar10', { train: 7, test: 5 })
    const { manifest } = await importDataset(archive, { home })

    expect(manifest.id).toBe('cifar-10-binary')
    expect(manifest.format).toBe('cifar10')
    expect(manifest.shape).toEqual([32, 32, 3])
    expect(manifest.splits).toEqual({ train: 35, test: 5 })
    expect(manifest.classes).toEqual([
      'airplane',
      'automobile',
      'bird',
      'cat',
      'deer',
      'dog',
      'frog',
      'horse',
      'ship',
      'truck',
    ])
    expect(manifest.source.sha256).toBe(
      createHash('sha256')
        .update(await readFile(archive))
        .digest('hex'),
    )

    const train = await stored(home, manifest.id, 'train')
    expect(train.labels).toEqual(Array.from({ length: 35 }, (_, r) => r % 10))
    for (const [i, y, x] of [
      [0, 0, 0],
      [3, 0, 1],
      [12, 5, 31],
      [34, 31, 31],
    ] as const) {
      for (let c = 0; c < 3; c++) expect(at(train.images, i, y, x, c)).toBe(cifarPixel(i, c, y * 32 + x))
    }
    const test = await stored(home, manifest.id, 'test')
    expect(test.labels).toEqual([5, 6, 7, 8, 9])
    expect(at(test.images, 2, 7, 9, 1)).toBe(cifarPixel(37, 1, 7 * 32 + 9))

    // The stored statistics are those of the training pixels.
    for (let c = 0; c < 3; c++) {
      let sum = 0
      for (let i = 0; i < 35 * 1024; i++) sum += train.images[i * 3 + c]!
      expect(manifest.stats.mean[c]).toBeCloseTo(sum / (35 * 1024) / 255, 10)
    }
  })

  it('imports the extracted folder the same way as the archive', async () => {
    const home = await tempDir()
    const source = await tempDir()
    await writeCifarFolder(source, 'cifar10', { train: 4, test: 3 })
    const { manifest } = await importDataset(source, { home, name: 'My CIFAR' })
    expect(manifest.id).toBe('my-cifar')
    expect(manifest.name).toBe('My CIFAR')
    expect(manifest.splits).toEqual({ train: 20, test: 3 })
    expect(manifest.classCounts.train).toEqual([2, 2, 2, 2, 2, 2, 2, 2, 2, 2])
    const train = await stored(home, manifest.id, 'train')
    // data_batch_2's first record is record 4.
    expect(train.labels[4]).toBe(4)
    expect(at(train.images, 4, 1, 2, 2)).toBe(cifarPixel(4, 2, 34))
  })
})

describe('CIFAR-100 import', () => {
  it('uses fine labels and fine class names by default', async () => {
    const home = await tempDir()
    const archive = join(await tempDir(), 'cifar-100-binary.tar.gz')
    await writeCifarArchive(archive, 'cifar100', { train: 120, test: 30 })
    const { manifest } = await importDataset(archive, { home })
    expect(manifest.format).toBe('cifar100')
    expect(manifest.labelSet).toBe('fine')
    expect(manifest.classes).toEqual(CIFAR100_FINE)
    expect(manifest.splits).toEqual({ train: 120, test: 30 })
    const train = await stored(home, manifest.id, 'train')
    expect(train.labels.slice(0, 3)).toEqual([0, 1, 2])
    expect(train.labels[110]).toBe(10)
    expect(at(train.images, 110, 31, 0, 0)).toBe(cifarPixel(110, 0, 31 * 32))
    expect(at(train.images, 110, 31, 0, 2)).toBe(cifarPixel(110, 2, 31 * 32))
  })

  it('uses coarse labels and names when asked', async () => {
    const home = await tempDir()
    const source = await tempDir()
    await writeCifarFolder(source, 'cifar100', { train: 40, test: 10 })
    const { manifest } = await importDataset(source, { home, labels: 'coarse', format: 'cifar100' })
    expect(manifest.labelSet).toBe('coarse')
    expect(manifest.classes).toEqual(CIFAR100_COARSE)
    const test = await stored(home, manifest.id, 'test')
    expect(test.labels).toEqual(Array.from({ length: 10 }, (_, i) => cifarCoarse(40 + i)))
    const listing = await listDatasets(home)
    expect(listing.datasets.map((d) => d.id)).toEqual([manifest.id])
  })
})
