/**
 * IDX files (MNIST, Fashion-MNIST, KMNIST, ...): `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
 * `t10k-…`, plain or gzipped. The header is a big-endian magic (0x0000 08 <ndims>) then one uint32 per
 * dimension; the data follows, uint8. Images are streamed into the store; labels (one byte each) are held.
 */
import { createHash, type Hash } from 'node:crypto'
import { readdir, stat } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import type { SplitName } from '../../shared/datasets'
import { DatasetError, fsReason, throwIfCancelled } from './errors'
import type { ImportContext, ImporterResult } from './importer'
import { regularFileSize, streamFile } from './streams'

const IDX_NAME = /^(train|t10k|test)-(images|labels)[.-]idx([13])-ubyte(\.gz)?$/
const MAX_SIDE = 4096
/**
 * How many times larger than its .gz an IDX file may claim to be. Real image data compresses 2-8x (MNIST's
 * images 4.8x, Fashion-MNIST's 1.8x); a header claiming gigabytes behind a few megabytes is a decompression
 * bomb, refused before anything is written.
 */
const MAX_INFLATION = 64

export interface IdxFiles {
  dir: string
  train: { images: string; labels: string }
  test: { images: string; labels: string } | null
}

/** Finds the IDX files in a folder (or the folder of a given IDX file); null when there are none. */
export async function findIdxFiles(path: string): Promise<IdxFiles | null> {
  let dir = path
  try {
    if (!(await stat(path)).isDirectory()) dir = dirname(path)
  } catch (error) {
    throw new DatasetError(`${path}: ${fsReason(error)}`)
  }
  const found: Record<string, string> = {}
  for (const name of (await readdir(dir)).sort()) {
    const match = IDX_NAME.exec(name)
    if (!match) continue
    const split = match[1] === 'train' ? 'train' : 'test'
    const role = match[2]!
    // The plain file wins over its .gz if both are there.
    const key = `${split}-${role}`
    if (!found[key] || !name.endsWith('.gz')) found[key] = join(dir, name)
  }
  if (Object.keys(found).length === 0) return null
  const pair = (split: string): { images: string; labels: string } | null => {
    const images = found[`${split}-images`]
    const labels = found[`${split}-labels`]
    if (!images && !labels) return null
    if (!images)
      throw new DatasetError(`${labels}: no matching ${split} images file (…-images-idx3-ubyte[.gz])`)
    if (!labels)
      throw new DatasetError(`${images}: no matching ${split} labels file (…-labels-idx1-ubyte[.gz])`)
    return { images, labels }
  }
  const train = pair('train')
  if (!train) throw new DatasetError(`${dir}: IDX test files but no train-images / train-labels files`)
  return { dir, train, test: pair('test') }
}

interface IdxHeader {
  dims: number[]
  headerBytes: number
  dataBytes: number
}

function describeDims(dims: number[]): string {
  return dims.length === 1 ? `${dims[0]} labels` : `${dims[0]} images of ${dims.slice(1).join('×')}`
}

/**
 * Streams one IDX file: checks the magic and dimensions, then hands the data bytes to `onData`. Fails if
 * the data is shorter or longer than the header says, without reading (or inflating) more than that.
 */
async function streamIdx(
  context: ImportContext,
  file: string,
  ndims: 1 | 3,
  hash: Hash,
  onHeader: (header: IdxHeader) => void,
  onData: (chunk: Uint8Array) => void | Promise<void>,
): Promise<IdxHeader> {
  const gzipped = file.endsWith('.gz')
  const size = await regularFileSize(file)
  let pending = Buffer.alloc(0)
  let header: IdxHeader | null = null
  let received = 0
  const what = ndims === 3 ? 'images (idx3)' : 'labels (idx1)'

  const parseHeader = (bytes: Buffer): IdxHeader | null => {
    if (bytes.length < 4) return null
    const magic = bytes.readUInt32BE(0)
    const expected = 0x800 + ndims
    if (magic !== expected) {
      throw new DatasetError(
        `${file}: wrong IDX magic 0x${magic.toString(16).padStart(8, '0')}, expected 0x${expected.toString(16).padStart(8, '0')} for ${what}`,
      )
    }
    const headerBytes = 4 + 4 * ndims
    if (bytes.length < headerBytes) return null
    const dims = Array.from({ length: ndims }, (_, i) => bytes.readUInt32BE(4 + 4 * i))
    if (dims[0] === 0) throw new DatasetError(`${file}: the header says the file holds no items`)
    if (ndims === 3 && dims.slice(1).some((side) => side === 0 || side > MAX_SIDE)) {
      throw new DatasetError(
        `${file}: image size ${dims.slice(1).join('×')} is not between 1 and ${MAX_SIDE}`,
      )
    }
    const dataBytes = dims.reduce((a, b) => a * b, 1)
    if (gzipped && dataBytes > Math.max(size, 1 << 20) * MAX_INFLATION) {
      throw new DatasetError(
        `${file}: the header says ${describeDims(dims)} (${dataBytes} bytes), over ${MAX_INFLATION}× its ${size} compressed bytes: ` +
          'refused as a decompression bomb (gunzip it first if it is genuine)',
      )
    }
    if (dataBytes > context.limits.maxDatasetBytes) {
      throw new DatasetError(
        `${file}: the header says ${describeDims(dims)} (${dataBytes} bytes), more than the ${context.limits.maxDatasetBytes}-byte import limit`,
      )
    }
    if (!gzipped && size !== headerBytes + dataBytes) {
      const problem = size < headerBytes + dataBytes ? 'truncated' : 'longer than its header says'
      throw new DatasetError(
        `${file}: ${problem}: the header says ${describeDims(dims)} (${headerBytes + dataBytes} bytes), the file has ${size}`,
      )
    }
    return { dims, headerBytes, dataBytes }
  }

  try {
    await streamFile(
      file,
      gzipped,
      (chunk) => {
        hash.update(chunk)
        context.progress.add(0, chunk.length)
      },
      async (chunks) => {
        for await (const raw of chunks) {
          throwIfCancelled(context.signal)
          let chunk: Buffer = raw
          if (!header) {
            pending = Buffer.concat([pending, chunk])
            header = parseHeader(pending)
            if (!header) continue
            onHeader(header)
            chunk = pending.subarray(header.headerBytes)
            pending = Buffer.alloc(0)
          }
          if (received + chunk.length > header.dataBytes) {
            throw new DatasetError(
              `${file}: longer than its header says (${describeDims(header.dims)}, ${header.dataBytes} data bytes)`,
            )
          }
          received += chunk.length
          if (chunk.length > 0) await onData(chunk)
        }
      },
    )
  } catch (error) {
    if (error instanceof DatasetError) throw error
    throw new DatasetError(`${file}: ${fsReason(error)}`)
  }
  const done = header as IdxHeader | null
  if (!done) throw new DatasetError(`${file}: truncated, shorter than an IDX ${what} header`)
  if (received < done.dataBytes) {
    throw new DatasetError(
      `${file}: truncated: the header says ${describeDims(done.dims)} (${done.dataBytes} data bytes), only ${received} present`,
    )
  }
  return done
}

async function readLabels(context: ImportContext, file: string, hash: Hash): Promise<Uint8Array> {
  let labels = new Uint8Array(0)
  let offset = 0
  await streamIdx(
    context,
    file,
    1,
    hash,
    (header) => {
      labels = new Uint8Array(header.dataBytes)
    },
    (chunk) => {
      labels.set(chunk, offset)
      offset += chunk.length
    },
  )
  return labels
}

export async function importIdx(context: ImportContext): Promise<ImporterResult> {
  const files = await findIdxFiles(context.path)
  if (!files) throw new DatasetError(`${context.path}: no IDX files (train-images-idx3-ubyte[.gz], …)`)
  const all = [
    files.train.labels,
    files.train.images,
    ...(files.test ? [files.test.labels, files.test.images] : []),
  ]
  let total = 0
  for (const file of all) total += await regularFileSize(file)
  context.progress.setTotals(null, total)
  context.progress.setPhase('importing')
  const hash = createHash('sha256')

  const trainLabels = await readLabels(context, files.train.labels, hash)
  const testLabels = files.test ? await readLabels(context, files.test.labels, hash) : null
  let numClasses = 0
  for (const label of trainLabels) numClasses = Math.max(numClasses, label + 1)
  // Classes are 0…K-1: a class without a single training image means a stray label (a 255 among 0-9 would
  // otherwise make 256 classes), not a real class.
  const seen = new Uint8Array(numClasses)
  for (const label of trainLabels) seen[label] = 1
  const missing = seen.indexOf(0)
  if (missing >= 0) {
    const stray = trainLabels.findIndex((label) => label > missing)
    throw new DatasetError(
      `${files.train.labels}: no training image has label ${missing}, yet label ${trainLabels[stray]} appears (at index ${stray}): ` +
        'IDX labels must be the classes 0…K-1; the file looks damaged',
    )
  }
  if (testLabels) {
    const bad = testLabels.findIndex((label) => label >= numClasses)
    if (bad >= 0) {
      throw new DatasetError(
        `${files.test!.labels}: label ${testLabels[bad]} at index ${bad} is outside the ${numClasses} classes of the training labels`,
      )
    }
  }

  let shape: [number, number] | null = null
  const importImages = async (split: SplitName, images: string, labelsFile: string, labels: Uint8Array) => {
    let index = 0
    let imageBytes = 0
    let carry = new Uint8Array(0)
    let carried = 0
    await streamIdx(
      context,
      images,
      3,
      hash,
      (header) => {
        const [count, rows, cols] = header.dims as [number, number, number]
        if (count !== labels.length) {
          throw new DatasetError(`${images}: ${count} images but ${labelsFile} has ${labels.length} labels`)
        }
        if (shape && (shape[0] !== rows || shape[1] !== cols)) {
          throw new DatasetError(
            `${images}: images are ${rows}×${cols}, the training images ${shape[0]}×${shape[1]}`,
          )
        }
        if (!shape) {
          shape = [rows, cols]
          context.writer.begin([rows, cols, 1], numClasses)
          context.progress.setTotals(trainLabels.length + (testLabels?.length ?? 0), total)
        }
        imageBytes = rows * cols
        carry = new Uint8Array(imageBytes)
      },
      async (chunk) => {
        let offset = 0
        const before = index
        if (carried > 0) {
          const take = Math.min(imageBytes - carried, chunk.length)
          carry.set(chunk.subarray(0, take), carried)
          carried += take
          offset = take
          if (carried === imageBytes) {
            context.writer.append(split, carry, labels[index++]!)
            carried = 0
          }
        }
        while (offset + imageBytes <= chunk.length) {
          context.writer.append(split, chunk.subarray(offset, offset + imageBytes), labels[index++]!)
          offset += imageBytes
        }
        if (offset < chunk.length) {
          carry.set(chunk.subarray(offset), 0)
          carried = chunk.length - offset
        }
        context.progress.add(index - before, 0)
        await context.writer.drain()
      },
    )
  }
  await importImages('train', files.train.images, files.train.labels, trainLabels)
  if (files.test && testLabels) await importImages('test', files.test.images, files.test.labels, testLabels)

  return {
    defaultName: basename(files.dir),
    format: 'idx',
    source: { path: files.dir, sha256: hash.digest('hex'), bytes: total },
    classes: Array.from({ length: numClasses }, (_, i) => String(i)),
  }
}
