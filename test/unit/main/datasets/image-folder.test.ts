import { copyFile, mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { importDataset } from '../../../../src/main/datasets/import'
import { scanImageFolder } from '../../../../src/main/datasets/image-folder'
import { datasetDir, imagesFile, labelsFile } from '../../../../src/main/datasets/store'
import { folderColour, pngDeclaring, solidImage, writeImageFolder } from '../../../fixtures/datasets'
import { storeEntries, useTempDirs } from './helpers'

const tempDir = useTempDirs()

async function storedLabels(home: string, id: string, split: 'train' | 'test'): Promise<number[]> {
  const bytes = await readFile(join(datasetDir(id, home), labelsFile(split)))
  return Array.from({ length: bytes.length / 2 }, (_, i) => bytes.readUInt16LE(i * 2))
}

describe('image folder import', () => {
  it('decodes PNG, JPEG and WebP, resizes to the chosen size and holds out a stratified share', async () => {
    const home = await tempDir()
    const root = await tempDir()
    await writeImageFolder(root, ['cat', 'dog', 'emu'], [10, 5, 20], {
      width: 48,
      height: 24,
      kinds: ['png', 'jpg', 'webp'],
    })
    const { manifest } = await importDataset(root, { home, size: 16, name: 'pets' })
    expect(manifest.format).toBe('imagefolder')
    expect(manifest.classes).toEqual(['cat', 'dog', 'emu'])
    expect(manifest.shape).toEqual([16, 16, 3])
    // round(n × 0.2) per class.
    expect(manifest.classCounts.test).toEqual([2, 1, 4])
    expect(manifest.classCounts.train).toEqual([8, 4, 16])

    // Solid images: every pixel of a stored image is its colour (JPEG within a few levels).
    const images = await readFile(join(datasetDir(manifest.id, home), imagesFile('train')))
    const labels = await storedLabels(home, manifest.id, 'train')
    const scan = await scanImageFolder(root, 0, 0.2)
    const trainFiles = scan.files.filter((f) => f.split === 'train')
    expect(labels).toEqual(trainFiles.map((f) => f.classIndex))
    trainFiles.forEach((file, k) => {
      const i = Number(file.path.slice(-9, -4).replace(/\D/g, ''))
      const colour = folderColour(file.classIndex, Number(/(\d+)\.\w+$/.exec(file.path)![1]))
      const tolerance = file.path.endsWith('.jpg') ? 3 : 0
      for (const p of [0, 7 * 16 + 9, 255]) {
        for (let c = 0; c < 3; c++) {
          expect(
            Math.abs(images[(k * 256 + p) * 3 + c]! - colour[c]!),
            `${file.path} ${i}`,
          ).toBeLessThanOrEqual(tolerance)
        }
      }
    })
  })

  it('splits deterministically for a seed and differently for another', async () => {
    const root = await tempDir()
    await writeImageFolder(root, ['a', 'b'], [30, 30], { width: 8, height: 8 })
    const first = await scanImageFolder(root, 1, 0.3)
    const again = await scanImageFolder(root, 1, 0.3)
    const other = await scanImageFolder(root, 2, 0.3)
    const tests = (scan: typeof first) => scan.files.filter((f) => f.split === 'test').map((f) => f.path)
    expect(tests(again)).toEqual(tests(first))
    expect(tests(other)).not.toEqual(tests(first))
    expect(tests(first).filter((p) => p.includes('/a/'))).toHaveLength(9)
    expect(tests(first).filter((p) => p.includes('/b/'))).toHaveLength(9)
  })

  it('uses train/ and val/ sub-roots when present', async () => {
    const home = await tempDir()
    const root = await tempDir()
    await writeImageFolder(join(root, 'train'), ['x', 'y'], [3, 4], { width: 10, height: 10 })
    await writeImageFolder(join(root, 'val'), ['x', 'y'], [2, 1], { width: 10, height: 10 })
    const { manifest } = await importDataset(root, { home, size: 8 })
    expect(manifest.splits).toEqual({ train: 7, test: 3 })
    expect(manifest.classCounts.test).toEqual([2, 1])
  })

  it('keeps one channel when every image is grayscale', async () => {
    const home = await tempDir()
    const root = await tempDir()
    await writeImageFolder(root, ['p', 'q'], [3, 3], { width: 12, height: 12, gray: true })
    await mkdir(join(root, 'train'))
    await mkdir(join(root, 'test'))
    for (const c of ['p', 'q']) {
      await rename(join(root, c), join(root, 'train', c))
      await mkdir(join(root, 'test', c))
      await copyFile(join(root, 'train', c, '00000.png'), join(root, 'test', c, '00000.png'))
    }
    const { manifest } = await importDataset(root, { home, size: 6 })
    expect(manifest.shape).toEqual([6, 6, 1])
    const images = await readFile(join(datasetDir(manifest.id, home), imagesFile('train')))
    expect(images.length).toBe(6 * 36)
    expect(images[36 * 4 + 20]).toBe(folderColour(1, 1)[1])
  })

  it('centre-crops after resizing the shorter side', async () => {
    const home = await tempDir()
    const root = await tempDir()
    // 90×30: left third red, middle third green, right third blue. Cropped to the centre square: green.
    const raw = Buffer.alloc(90 * 30 * 3)
    for (let y = 0; y < 30; y++) {
      for (let x = 0; x < 90; x++) raw[(y * 90 + x) * 3 + Math.floor(x / 30)] = 255
    }
    await mkdir(join(root, 'only'), { recursive: true })
    const sharp = (await import('sharp')).default
    await sharp(raw, { raw: { width: 90, height: 30, channels: 3 } })
      .png()
      .toFile(join(root, 'only', 'a.png'))
    // A second copy, held out for test: a dataset needs both splits.
    await copyFile(join(root, 'only', 'a.png'), join(root, 'only', 'b.png'))
    const { manifest } = await importDataset(root, { home, size: 5, testFraction: 0.5 })
    const images = await readFile(join(datasetDir(manifest.id, home), imagesFile('train')))
    // Resampling blurs the edges a little; the crop keeps only the middle third.
    for (const x of [0, 2, 4]) {
      const [r, g, b] = images.subarray((2 * 5 + x) * 3, (2 * 5 + x) * 3 + 3)
      expect(g).toBeGreaterThan(200)
      expect(r! + b!).toBeLessThan(60)
    }
  })

  it('skips, counts and lists corrupt and unsupported files', async () => {
    const home = await tempDir()
    const root = await tempDir()
    await writeImageFolder(root, ['a', 'b'], [4, 4], { width: 8, height: 8 })
    await writeFile(join(root, 'a', 'broken.png'), Buffer.from('not a png at all'))
    const jpeg = await solidImage(32, 32, [1, 2, 3], 'jpg')
    await writeFile(join(root, 'b', 'cut.jpg'), jpeg.subarray(0, jpeg.length / 2))
    await writeFile(join(root, 'b', 'notes.txt'), 'hello')
    const { manifest, skipped } = await importDataset(root, { home, size: 8 })
    expect(manifest.splits.train + manifest.splits.test).toBe(8)
    expect(skipped.count).toBe(3)
    expect(skipped.files.map((f) => f.file.slice(root.length + 1)).sort()).toEqual([
      'a/broken.png',
      'b/cut.jpg',
      'b/notes.txt',
    ])
    expect(manifest.skipped.count).toBe(3)
  })

  it('refuses an image whose declared size is absurd (decompression bomb) and skips it', async () => {
    const home = await tempDir()
    const root = await tempDir()
    await writeImageFolder(root, ['a'], [3], { width: 8, height: 8 })
    await writeFile(join(root, 'a', 'bomb.png'), await pngDeclaring(20000, 20000))
    const { skipped } = await importDataset(root, { home, size: 8, testFraction: 0.5 })
    expect(skipped.files).toEqual([
      {
        file: join(root, 'a', 'bomb.png'),
        reason: expect.stringMatching(/declares 20000×20000 pixels, over the 67108864-pixel limit/),
      },
    ])
  })

  it('fails with one line when there are no class folders or no readable images, leaving the store as it was', async () => {
    const home = await tempDir()
    const empty = await tempDir()
    await writeFile(join(empty, 'loose.png'), await solidImage(4, 4, [0, 0, 0], 'png'))
    await expect(importDataset(empty, { home, format: 'imagefolder' })).rejects.toThrow(/no class folders/)
    const bad = await tempDir()
    await mkdir(join(bad, 'a'))
    await writeFile(join(bad, 'a', 'x.png'), 'garbage')
    await expect(importDataset(bad, { home })).rejects.toThrow(
      /no readable images \(1 files skipped, e\.g\. .*x\.png: /,
    )
    const none = await tempDir()
    await mkdir(join(none, 'a'))
    await expect(importDataset(none, { home })).rejects.toThrow(/no readable images in the class folders/)
    expect(await storeEntries(home)).toEqual([])
  })
})
