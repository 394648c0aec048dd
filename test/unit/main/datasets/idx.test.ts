import { readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { importDataset } from '../../../../src/main/datasets/import'
import { datasetDir, imagesFile, labelsFile } from '../../../../src/main/datasets/store'
import { idxFile, idxImages, idxLabels, idxPixel, writeIdxSet } from '../../../fixtures/datasets'
import { storeEntries, useTempDirs } from './helpers'

const tempDir = useTempDirs()

describe('IDX import', () => {
  for (const gzip of [false, true]) {
    it(`imports ${gzip ? 'gzipped' : 'plain'} MNIST-style files with exact pixels and labels`, async () => {
      const home = await tempDir()
      const source = await tempDir()
      await writeIdxSet(source, { train: 50, test: 20, rows: 28, cols: 28, classes: 10, gzip })
      const { manifest } = await importDataset(source, { home, name: 'digits' })
      expect(manifest.format).toBe('idx')
      expect(manifest.shape).toEqual([28, 28, 1])
      expect(manifest.splits).toEqual({ train: 50, test: 20 })
      expect(manifest.classes).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'])
      expect(manifest.classCounts.test).toEqual([2, 2, 2, 2, 2, 2, 2, 2, 2, 2])
      const dir = datasetDir(manifest.id, home)
      const train = await readFile(join(dir, imagesFile('train')))
      expect(train[13 * 784 + 5 * 28 + 27]).toBe(idxPixel(13, 5, 27))
      const test = await readFile(join(dir, imagesFile('test')))
      expect(test[19 * 784 + 27 * 28 + 0]).toBe(idxPixel(69, 27, 0))
      const labels = await readFile(join(dir, labelsFile('test')))
      expect(labels.readUInt16LE(2 * 3)).toBe(53 % 10)
    })
  }

  it('accepts the path of one of the files and non-square images', async () => {
    const home = await tempDir()
    const source = await tempDir()
    await writeIdxSet(source, { train: 6, test: 3, rows: 5, cols: 7, classes: 3 })
    const { manifest } = await importDataset(join(source, 'train-images-idx3-ubyte'), { home })
    expect(manifest.shape).toEqual([5, 7, 1])
    expect(manifest.classes).toEqual(['0', '1', '2'])
  })
})

describe('IDX bad input', () => {
  async function expectRefused(setup: (dir: string) => Promise<void>, message: RegExp): Promise<void> {
    const home = await tempDir()
    const source = await tempDir()
    await writeIdxSet(source, { train: 10, test: 4, rows: 4, cols: 4, classes: 5 })
    await setup(source)
    const before = await storeEntries(home)
    await expect(importDataset(source, { home })).rejects.toThrow(message)
    expect(await storeEntries(home)).toEqual(before)
  }

  it('refuses a wrong magic number, naming the file', async () => {
    await expectRefused(
      (dir) =>
        writeFile(join(dir, 'train-images-idx3-ubyte'), idxFile([10, 4, 4], idxImages(10, 4, 4), 0x00000801)),
      /train-images-idx3-ubyte: wrong IDX magic 0x00000801, expected 0x00000803/,
    )
  })

  it('refuses a file shorter than its header says', async () => {
    await expectRefused(async (dir) => {
      const full = idxFile([10, 4, 4], idxImages(10, 4, 4))
      await writeFile(join(dir, 'train-images-idx3-ubyte'), full.subarray(0, full.length - 5))
    }, /train-images-idx3-ubyte: truncated: the header says 10 images of 4×4 \(176 bytes\), the file has 171/)
  })

  it('refuses a gzipped file shorter than its header says', async () => {
    await expectRefused(async (dir) => {
      await rm(join(dir, 'train-labels-idx1-ubyte'))
      await writeFile(join(dir, 'train-labels-idx1-ubyte.gz'), gzipSync(idxFile([10], idxLabels(9, 5))))
    }, /train-labels-idx1-ubyte\.gz: truncated: the header says 10 labels \(10 data bytes\), only 9 present/)
  })

  it('refuses a truncated gzip stream', async () => {
    await expectRefused(async (dir) => {
      const packed = gzipSync(idxFile([10, 4, 4], idxImages(10, 4, 4)))
      await rm(join(dir, 'train-images-idx3-ubyte'))
      await writeFile(join(dir, 'train-images-idx3-ubyte.gz'), packed.subarray(0, packed.length - 12))
    }, /train-images-idx3-ubyte\.gz: (corrupt or truncated gzip data|truncated)/)
  })

  it('refuses image and label counts that differ', async () => {
    await expectRefused(
      (dir) => writeFile(join(dir, 't10k-labels-idx1-ubyte'), idxFile([5], idxLabels(5, 5, 10))),
      /t10k-images-idx3-ubyte: 4 images but .*t10k-labels-idx1-ubyte has 5 labels/,
    )
  })

  it('refuses a test label outside the training classes', async () => {
    await expectRefused(
      (dir) => writeFile(join(dir, 't10k-labels-idx1-ubyte'), idxFile([4], Uint8Array.from([0, 1, 9, 2]))),
      /t10k-labels-idx1-ubyte: label 9 at index 2 is outside the 5 classes of the training labels/,
    )
  })
})
