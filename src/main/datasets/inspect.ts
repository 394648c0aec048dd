import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import sharp from 'sharp'
import type { DatasetManifest, SplitName } from '../../shared/datasets'
import { DatasetReader } from './reader'
import { slugify } from './store'

export interface ClassCountRow {
  name: string
  train: number
  test: number
}

export interface DatasetInspection {
  manifest: DatasetManifest
  classes: ClassCountRow[]
  /** Sample PNGs written, when a folder was given. */
  samples: string[]
}

/** Per-class counts and, optionally, the first `perClass` images of each class as PNGs in `samplesDir`. */
export async function inspectDataset(
  id: string,
  options: { home?: string; samplesDir?: string; perClass?: number; split?: SplitName } = {},
): Promise<DatasetInspection> {
  const reader = await DatasetReader.open(id, options.home)
  try {
    const { manifest } = reader
    const classes = manifest.classes.map((name, i) => ({
      name,
      train: manifest.classCounts.train[i] ?? 0,
      test: manifest.classCounts.test[i] ?? 0,
    }))
    const samples: string[] = []
    if (options.samplesDir) {
      const split = options.split ?? (manifest.splits.train > 0 ? 'train' : 'test')
      const perClass = options.perClass ?? 1
      const labels = reader.labels(split)
      const picked = new Map<number, number[]>()
      labels.forEach((label, index) => {
        const list = picked.get(label) ?? []
        if (list.length < perClass) picked.set(label, [...list, index])
      })
      await mkdir(options.samplesDir, { recursive: true })
      const [height, width, channels] = manifest.shape
      for (const [label, indices] of [...picked].sort((a, b) => a[0] - b[0])) {
        const raw = await reader.readRaw(split, indices)
        for (let k = 0; k < indices.length; k++) {
          const bytes = raw.pixels.subarray(
            k * height * width * channels,
            (k + 1) * height * width * channels,
          )
          const file = join(
            options.samplesDir,
            `${label}-${slugify(manifest.classes[label] ?? String(label))}-${indices[k]}.png`,
          )
          await sharp(Buffer.from(bytes), { raw: { width, height, channels } }).png().toFile(file)
          samples.push(file)
        }
      }
    }
    return { manifest, classes, samples }
  } finally {
    await reader.close()
  }
}
