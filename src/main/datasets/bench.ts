/**
 * `npm run r2b -- bench datasets`: import throughput for the CIFAR format next to the raw read speed of
 * the same bytes in the same run, image-folder import speed, the resident-memory peak of a large folder
 * import, and reader batches per second. Everything runs in a temporary data dir that is removed after.
 */
import { createReadStream } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createGunzip } from 'node:zlib'
import * as tf from '@tensorflow/tfjs'
import sharp from 'sharp'
import * as tar from 'tar'
import { initBackend } from '../backend/backend'
import { importDataset } from './import'
import { DatasetReader } from './reader'

function cifar10Batch(records: number, first: number): Buffer {
  const out = Buffer.alloc(records * 3073)
  for (let i = 0; i < records; i++) {
    const r = first + i
    out[i * 3073] = r % 10
    for (let p = 0; p < 3072; p++) out[i * 3073 + 1 + p] = (r * 7 + p * 3 + (p >> 10) * 85) & 255
  }
  return out
}

async function writeCifar10(root: string, perBatch: number, test: number): Promise<string> {
  const dir = join(root, 'cifar-10-batches-bin')
  await mkdir(dir, { recursive: true })
  for (let b = 0; b < 5; b++)
    await writeFile(join(dir, `data_batch_${b + 1}.bin`), cifar10Batch(perBatch, b * perBatch))
  await writeFile(join(dir, 'test_batch.bin'), cifar10Batch(test, 5 * perBatch))
  return dir
}

/** Reads files start to end (optionally inflating) and discards the bytes: the floor any import pays. */
async function rawRead(files: string[], gunzip = false): Promise<{ seconds: number; bytes: number }> {
  const start = performance.now()
  let bytes = 0
  for (const file of files) {
    const source = createReadStream(file, { highWaterMark: 1 << 20 })
    const stream = gunzip ? source.pipe(createGunzip()) : source
    for await (const chunk of stream) bytes += (chunk as Buffer).length
  }
  return { seconds: (performance.now() - start) / 1000, bytes }
}

async function timed<T>(work: () => Promise<T>): Promise<{ seconds: number; value: T }> {
  const start = performance.now()
  const value = await work()
  return { seconds: (performance.now() - start) / 1000, value }
}

function round(value: number, digits = 1): number {
  const scale = 10 ** digits
  return Math.round(value * scale) / scale
}

async function writeFolder(root: string, classes: number, perClass: number, side: number): Promise<void> {
  for (let c = 0; c < classes; c++) {
    const dir = join(root, `class${c}`)
    await mkdir(dir, { recursive: true })
    for (let i = 0; i < perClass; i++) {
      const raw = Buffer.alloc(side * side * 3)
      for (let p = 0; p < raw.length; p++) raw[p] = (p * 31 + i * 7 + c * 50) & 255
      await sharp(raw, { raw: { width: side, height: side, channels: 3 } })
        .png()
        .toFile(join(dir, `${i}.png`))
    }
  }
}

export interface BenchDatasetsOptions {
  /** Fraction of the default sizes (`bench --quick` uses a small one: every figure, not representative). */
  scale?: number
}

export async function benchDatasets({ scale = 1 }: BenchDatasetsOptions = {}): Promise<
  Record<string, number | string>
> {
  const count = (n: number) => Math.max(1, Math.round(n * scale))
  const work = await mkdtemp(join(tmpdir(), 'r2b-bench-datasets-'))
  const home = join(work, 'home')
  const figures: Record<string, number | string> = {}
  try {
    // CIFAR-10 at full size (60,000 records, 184 MB) as an extracted folder.
    const perBatch = count(10000)
    const cifarDir = await writeCifar10(join(work, 'cifar'), perBatch, perBatch)
    const files = [1, 2, 3, 4, 5]
      .map((b) => join(cifarDir, `data_batch_${b}.bin`))
      .concat(join(cifarDir, 'test_batch.bin'))
    await rawRead(files) // warm the page cache so both measurements read from memory
    const raw = await rawRead(files)
    const folderImport = await timed(() => importDataset(join(work, 'cifar'), { home, name: 'bench-cifar' }))
    figures['cifar folder: MB'] = round(raw.bytes / 1e6)
    figures['cifar folder: raw read MB/s'] = round(raw.bytes / 1e6 / raw.seconds)
    figures['cifar folder: import MB/s'] = round(raw.bytes / 1e6 / folderImport.seconds)
    figures['cifar folder: import records/s'] = Math.round((6 * perBatch) / folderImport.seconds)

    // The official archive form (.tar.gz) of a 12,000-record subset.
    const small = await writeCifar10(join(work, 'cifar-small'), count(2000), count(2000))
    const archive = join(work, 'cifar-10-binary.tar.gz')
    await tar.c({ gzip: true, file: archive, cwd: join(work, 'cifar-small'), portable: true }, [
      small.slice(join(work, 'cifar-small').length + 1),
    ])
    await rawRead([archive])
    const inflate = await rawRead([archive], true)
    const archiveImport = await timed(() => importDataset(archive, { home, name: 'bench-cifar-archive' }))
    figures['cifar archive: unpacked MB'] = round(inflate.bytes / 1e6)
    figures['cifar archive: read + gunzip MB/s (unpacked)'] = round(inflate.bytes / 1e6 / inflate.seconds)
    figures['cifar archive: import MB/s (unpacked)'] = round(inflate.bytes / 1e6 / archiveImport.seconds)

    // Image folder: 2,000 PNGs of 32×32 imported at 32×32.
    const folder = join(work, 'folder')
    await writeFolder(folder, 10, count(200), 32)
    const folderRun = await timed(() => importDataset(folder, { home, name: 'bench-folder', size: 32 }))
    figures['image folder: images/s (32×32 PNG → 32)'] = Math.round((10 * count(200)) / folderRun.seconds)

    // A large folder: 3,000 images stored at 224×224×3 (450 MB); resident memory sampled during the import.
    const large = join(work, 'large')
    const largeImages = 6 * count(500)
    await writeFolder(large, 6, count(500), 64)
    const baseline = process.memoryUsage().rss
    let peak = baseline
    const largeRun = await timed(() =>
      importDataset(large, {
        home,
        name: 'bench-large',
        size: 224,
        onProgress: () => {
          peak = Math.max(peak, process.memoryUsage().rss)
        },
      }),
    )
    figures['large folder: stored MB'] = round((largeImages * 224 * 224 * 3) / 1e6)
    figures['large folder: images/s (64×64 PNG → 224)'] = Math.round(largeImages / largeRun.seconds)
    figures['large folder: peak RSS MB'] = round(peak / 1e6)
    figures['large folder: RSS growth MB'] = round((peak - baseline) / 1e6)

    // Reader: batches of 128 from the full CIFAR store, tensors created on the tfjs cpu backend.
    const backend = await initBackend('cpu')
    figures['reader: tfjs backend'] = backend.backend
    const reader = await DatasetReader.open(folderImport.value.manifest.id, home)
    try {
      for (const [label, augment] of [
        ['none', undefined],
        ['crop+flip', { cropPadding: 4, flip: true }],
        ['crop+flip+rotate+mixup', { cropPadding: 4, flip: true, rotationDegrees: 15, mixupAlpha: 0.2 }],
      ] as const) {
        const run = await timed(async () => {
          let batches = 0
          for await (const batch of reader.trainBatches({
            batchSize: 128,
            epoch: 0,
            seed: 1,
            augment,
            limit: count(100),
          })) {
            tf.dispose([batch.images, batch.labels])
            batches++
          }
          return batches
        })
        figures[`reader: batches/s (128, aug ${label})`] = round(run.value / run.seconds)
      }
      const evalRun = await timed(async () => {
        let batches = 0
        for await (const batch of reader.evalBatches('test', { batchSize: 256 })) {
          tf.dispose([batch.images, batch.labels])
          batches++
        }
        return batches
      })
      figures['reader: eval batches/s (256)'] = round(evalRun.value / evalRun.seconds)
    } finally {
      await reader.close()
    }
  } finally {
    await rm(work, { recursive: true, force: true })
  }
  return figures
}
