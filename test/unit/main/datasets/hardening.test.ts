/**
 * Imports that used to fill the disk, hang, or store a dataset that cannot train: each is refused with one
 * line that names the file and what to do, and the store is left as it was.
 */
import { execFileSync } from 'node:child_process'
import { cp, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { importDataset } from '../../../../src/main/datasets/import'
import { listDatasets, readManifest } from '../../../../src/main/datasets/store'
import {
  CIFAR10_META,
  cifarRecords,
  idxFile,
  idxImages,
  idxLabels,
  writeIdxSet,
  writeImageFolder,
} from '../../../fixtures/datasets'
import { storeEntries, useTempDirs } from './helpers'

const tempDir = useTempDirs()

async function expectRefused(home: string, source: string, pattern: RegExp): Promise<void> {
  const before = await storeEntries(home)
  await expect(importDataset(source, { home })).rejects.toThrow(pattern)
  expect(await storeEntries(home)).toEqual(before)
}

describe('imports that are refused before they cost anything', () => {
  it('refuses an IDX gzip bomb (a small .gz whose header claims gigabytes) without writing it', async () => {
    const home = await tempDir()
    const source = await tempDir()
    await writeIdxSet(source, { train: 20, test: 10, rows: 8, cols: 8, classes: 2, gzip: true })
    // 200 images of 4096×4096 (3.2 GB) of zeros: a few megabytes gzipped.
    const header = idxFile([200, 4096, 4096], new Uint8Array(0))
    const zeros = Buffer.alloc(64 << 20)
    const bomb = gzipSync(Buffer.concat([header, zeros]), { level: 9 })
    await writeFile(join(source, 'train-images-idx3-ubyte.gz'), bomb)
    await writeFile(join(source, 'train-labels-idx1-ubyte.gz'), gzipSync(idxFile([200], idxLabels(200, 2))))
    await expectRefused(home, source, /decompression bomb/)
  })

  it('refuses IDX files without a test split, and CIFAR without its test batch', async () => {
    const home = await tempDir()
    const idx = await tempDir()
    await writeFile(join(idx, 'train-images-idx3-ubyte'), idxFile([6, 4, 4], idxImages(6, 4, 4)))
    await writeFile(join(idx, 'train-labels-idx1-ubyte'), idxFile([6], idxLabels(6, 3)))
    await expectRefused(home, idx, /no test images found \(IDX needs .*t10k/)
    const cifar = await tempDir()
    await writeFile(join(cifar, 'data_batch_1.bin'), cifarRecords('cifar10', 10))
    await writeFile(join(cifar, 'batches.meta.txt'), CIFAR10_META)
    await expectRefused(home, cifar, /no test images found \(CIFAR-10 needs .*test_batch\.bin/)
  })

  it('refuses an IDX label that skips classes (a stray 255 among 0-9) instead of making 256 classes', async () => {
    const home = await tempDir()
    const source = await tempDir()
    await writeIdxSet(source, { train: 20, test: 10, rows: 4, cols: 4, classes: 10 })
    const labels = idxLabels(20, 10)
    labels[7] = 255
    await writeFile(join(source, 'train-labels-idx1-ubyte'), idxFile([20], labels))
    await expectRefused(home, source, /label 255 appears \(at index 7\).*0…K-1/)
  })

  it('refuses a named pipe as the file to import, at once (it would block forever)', async () => {
    const home = await tempDir()
    const dir = await tempDir()
    const fifo = join(dir, 'train-images-idx3-ubyte')
    execFileSync('mkfifo', [fifo])
    await expectRefused(home, fifo, /a named pipe, not a file: refusing to read it/)
    // Inside a folder, found by name, too.
    await writeFile(join(dir, 'train-labels-idx1-ubyte'), idxFile([2], idxLabels(2, 2)))
    await expectRefused(home, dir, /train-images-idx3-ubyte: a named pipe/)
  })
})

describe('a copied dataset folder', () => {
  it('whose manifest names another id is refused and listed as a problem, not shown twice', async () => {
    const home = await tempDir()
    const source = await tempDir()
    await writeIdxSet(source, { train: 4, test: 2, rows: 4, cols: 4, classes: 2 })
    const { manifest } = await importDataset(source, { home, name: 'digits' })
    const copy = join(home, 'datasets', 'copy')
    await cp(join(home, 'datasets', manifest.id), copy, { recursive: true })
    await expect(readManifest('copy', home)).rejects.toThrow(
      /says it is dataset "digits", but its folder is "copy"/,
    )
    const listing = await listDatasets(home)
    expect(listing.datasets.map((d) => d.id)).toEqual(['digits'])
    expect(listing.problems.map((p) => p.id)).toEqual(['copy'])
  })
})

describe('image folders with symbolic links', () => {
  it('follows links inside the folder and reports links out of it, broken links and loops', async () => {
    const home = await tempDir()
    const root = await tempDir()
    const outside = await tempDir()
    await writeImageFolder(root, ['cat', 'dog'], [4, 4], { width: 8, height: 8 })
    await writeImageFolder(outside, ['cat'], [1], { width: 8, height: 8 })
    const cat = join(root, 'cat')
    await symlink(join(cat, '00000.png'), join(cat, 'inside-link.png'))
    await symlink(join(outside, 'cat', '00000.png'), join(cat, 'outside-link.png'))
    await symlink(join(cat, 'missing.png'), join(cat, 'broken-link.png'))
    await symlink(join(cat, 'loop-b.png'), join(cat, 'loop-a.png'))
    await symlink(join(cat, 'loop-a.png'), join(cat, 'loop-b.png'))
    await symlink(join(outside, 'cat'), join(root, 'linked-class'))
    const { manifest } = await importDataset(root, { home })
    const reasons = Object.fromEntries(
      manifest.skipped.files.map((s) => [s.file.slice(root.length + 1), s.reason]),
    )
    expect(reasons['cat/outside-link.png']).toMatch(/link out of the imported folder/)
    expect(reasons['cat/broken-link.png']).toBe('a broken symbolic link')
    expect(reasons['cat/loop-a.png']).toBe('a symbolic link loop')
    expect(reasons['linked-class']).toMatch(/link out of the imported folder/)
    // The link inside the folder counts as an image of its class: 4 + 1 cat images, 4 dogs.
    const total = (counts: number[]) => counts.reduce((a, b) => a + b, 0)
    expect(total(manifest.classCounts.train) + total(manifest.classCounts.test)).toBe(9)
    expect((await readManifest(manifest.id, home)).skipped.count).toBe(manifest.skipped.count)
  })
})
