import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { importDataset } from '../../../../src/main/datasets/import'
import { datasetDir, imagesFile } from '../../../../src/main/datasets/store'
import { writeImageFolder } from '../../../fixtures/datasets'
import { useTempDirs } from './helpers'

const tempDir = useTempDirs()

describe('image folder import memory', () => {
  it('stays bounded while importing far more image data than it may hold', async () => {
    const home = await tempDir()
    const root = await tempDir()
    // 2,400 small PNGs, upscaled to 192×192×3 on import: 265 MB of decoded images to store.
    await writeImageFolder(root, ['a', 'b', 'c', 'd'], [600, 600, 600, 600], { width: 16, height: 16 })
    const baseline = process.memoryUsage().rss
    let peak = baseline
    const { manifest } = await importDataset(root, {
      home,
      size: 192,
      testFraction: 0.1,
      onProgress: () => {
        peak = Math.max(peak, process.memoryUsage().rss)
      },
    })
    const stored =
      (await stat(join(datasetDir(manifest.id, home), imagesFile('train')))).size +
      (await stat(join(datasetDir(manifest.id, home), imagesFile('test')))).size
    expect(stored).toBe(2400 * 192 * 192 * 3)
    const growth = peak - baseline
    // Holding the decoded images would grow by at least `stored`; the writer may buffer up to ~40 MB.
    expect(growth).toBeLessThan(stored / 2)
  })
})
