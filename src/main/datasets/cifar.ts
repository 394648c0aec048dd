/**
 * CIFAR-10 / CIFAR-100, binary version, from the official .tar.gz or its extracted folder. A record is the
 * label byte(s) then 3072 pixel bytes stored planar (the R, G and B planes, each 32×32 row-major); the store
 * keeps images interleaved H×W×C, so each record is transposed on the way through.
 */
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { open, readdir, readFile } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { Parser, type ReadEntry } from 'tar'
import type { SplitName } from '../../shared/datasets'
import { DatasetError, fsReason, throwIfCancelled } from './errors'
import type { ImportContext, ImporterResult } from './importer'
import type { DatasetWriter } from './store'
import type { ProgressTracker } from './progress'
import { regularFileSize, streamFile } from './streams'

export type CifarKind = 'cifar10' | 'cifar100'

const PIXELS = 32 * 32
const IMAGE_BYTES = PIXELS * 3

export const CIFAR10_CLASSES = [
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
]

export function cifarRecordBytes(kind: CifarKind): number {
  return kind === 'cifar10' ? 1 + IMAGE_BYTES : 2 + IMAGE_BYTES
}

function classCount(kind: CifarKind, labelSet: 'fine' | 'coarse'): number {
  return kind === 'cifar10' ? 10 : labelSet === 'fine' ? 100 : 20
}

/** Which file of which CIFAR variant a (base) file name is, or null for anything else in the archive. */
export function cifarDataFile(name: string): { kind: CifarKind; split: SplitName } | null {
  if (/^data_batch_\d+\.bin$/.test(name)) return { kind: 'cifar10', split: 'train' }
  if (name === 'test_batch.bin') return { kind: 'cifar10', split: 'test' }
  if (name === 'train.bin') return { kind: 'cifar100', split: 'train' }
  if (name === 'test.bin') return { kind: 'cifar100', split: 'test' }
  return null
}

const NAME_FILES = new Set(['batches.meta.txt', 'fine_label_names.txt', 'coarse_label_names.txt'])

/** Splits a CIFAR data file into records, transposes the pixels and appends them to the writer. */
class RecordStream {
  private readonly recordBytes: number
  private readonly carry: Uint8Array
  private carried = 0
  private index = 0
  private readonly image = new Uint8Array(IMAGE_BYTES)
  private readonly labelOffset: number
  private readonly numClasses: number

  constructor(
    private readonly file: string,
    kind: CifarKind,
    labelSet: 'fine' | 'coarse',
    private readonly split: SplitName,
    private readonly writer: DatasetWriter,
    private readonly progress: ProgressTracker,
  ) {
    this.recordBytes = cifarRecordBytes(kind)
    this.carry = new Uint8Array(this.recordBytes)
    // CIFAR-100 records are <coarse label><fine label><pixels>.
    this.labelOffset = kind === 'cifar100' && labelSet === 'fine' ? 1 : 0
    this.numClasses = classCount(kind, labelSet)
  }

  private record(bytes: Uint8Array, offset: number): void {
    const label = bytes[offset + this.labelOffset]!
    if (label >= this.numClasses) {
      throw new DatasetError(
        `${this.file}: record ${this.index} has label ${label}, outside the ${this.numClasses} classes`,
      )
    }
    const pixels = offset + this.recordBytes - IMAGE_BYTES
    const image = this.image
    for (let p = 0, o = 0; p < PIXELS; p++, o += 3) {
      image[o] = bytes[pixels + p]!
      image[o + 1] = bytes[pixels + PIXELS + p]!
      image[o + 2] = bytes[pixels + 2 * PIXELS + p]!
    }
    this.writer.append(this.split, image, label)
    this.index++
  }

  push(chunk: Uint8Array): void {
    let offset = 0
    const before = this.index
    if (this.carried > 0) {
      const take = Math.min(this.recordBytes - this.carried, chunk.length)
      this.carry.set(chunk.subarray(0, take), this.carried)
      this.carried += take
      offset = take
      if (this.carried < this.recordBytes) return
      this.record(this.carry, 0)
      this.carried = 0
    }
    while (offset + this.recordBytes <= chunk.length) {
      this.record(chunk, offset)
      offset += this.recordBytes
    }
    if (offset < chunk.length) {
      this.carry.set(chunk.subarray(offset), 0)
      this.carried = chunk.length - offset
    }
    this.progress.add(this.index - before, 0)
  }

  finish(): void {
    if (this.carried > 0) {
      throw new DatasetError(
        `${this.file}: truncated, ends with a partial ${this.recordBytes}-byte record (${this.carried} bytes)`,
      )
    }
  }
}

function checkWholeRecords(file: string, size: number, kind: CifarKind): void {
  const recordBytes = cifarRecordBytes(kind)
  if (size === 0 || size % recordBytes !== 0) {
    throw new DatasetError(
      `${file}: ${size} bytes is not a whole number of ${recordBytes}-byte ${kind === 'cifar10' ? 'CIFAR-10' : 'CIFAR-100'} records (truncated?)`,
    )
  }
}

function parseNames(file: string, text: string, expected: number): string[] {
  const names = text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter(Boolean)
  if (names.length !== expected) {
    throw new DatasetError(`${file}: lists ${names.length} class names, expected ${expected}`)
  }
  return names
}

function classNames(
  kind: CifarKind,
  labelSet: 'fine' | 'coarse',
  texts: Map<string, [string, string]>,
): string[] {
  const n = classCount(kind, labelSet)
  const wanted = kind === 'cifar10' ? 'batches.meta.txt' : `${labelSet}_label_names.txt`
  const found = texts.get(wanted)
  if (found) return parseNames(found[0], found[1], n)
  if (kind === 'cifar10') return [...CIFAR10_CLASSES]
  return Array.from({ length: n }, (_, i) => `${labelSet} ${i}`)
}

class CifarState {
  kind: CifarKind | null = null
  readonly texts = new Map<string, [string, string]>()
  constructor(
    private readonly context: ImportContext,
    private readonly labelSet: 'fine' | 'coarse',
  ) {}

  /** Fixes the variant on the first data file; a named --format or a mix of variants is checked here. */
  variant(file: string, kind: CifarKind): void {
    const named = this.context.options.format
    if (named && named !== kind) {
      throw new DatasetError(
        `${file}: a ${kind === 'cifar10' ? 'CIFAR-10' : 'CIFAR-100'} file, but --format ${named}`,
      )
    }
    if (this.kind && this.kind !== kind)
      throw new DatasetError(`${file}: CIFAR-10 and CIFAR-100 files are mixed`)
    if (!this.kind) {
      this.kind = kind
      this.context.writer.begin([32, 32, 3], classCount(kind, this.labelSet))
    }
  }

  records(file: string, kind: CifarKind, split: SplitName): RecordStream {
    return new RecordStream(file, kind, this.labelSet, split, this.context.writer, this.context.progress)
  }

  result(source: string, sha256: string, bytes: number, defaultName: string): ImporterResult {
    if (!this.kind || this.context.writer.count('train') === 0) {
      throw new DatasetError(
        `${source}: no CIFAR training data (data_batch_*.bin for CIFAR-10, train.bin for CIFAR-100)`,
      )
    }
    return {
      defaultName,
      format: this.kind,
      source: { path: source, sha256, bytes },
      classes: classNames(this.kind, this.labelSet, this.texts),
      ...(this.kind === 'cifar100' ? { labelSet: this.labelSet } : {}),
    }
  }
}

function labelSetOf(context: ImportContext): 'fine' | 'coarse' {
  return context.options.labels ?? 'fine'
}

const UNSAFE_SEGMENT = /(^|[\\/])\.\.([\\/]|$)/

/** Archive entries are never written to disk, but a hostile path or a link is refused outright. */
function checkEntry(archive: string, entry: ReadEntry, maxEntryBytes: number): void {
  const path = entry.path
  if (path.startsWith('/') || path.startsWith('\\') || /^[a-zA-Z]:/.test(path)) {
    throw new DatasetError(`${archive}: entry "${path}" has an absolute path (refused)`)
  }
  if (UNSAFE_SEGMENT.test(path)) throw new DatasetError(`${archive}: entry "${path}" contains ".." (refused)`)
  const type = entry.type
  if (type === 'SymbolicLink' || type === 'Link') {
    throw new DatasetError(
      `${archive}: entry "${path}" is a ${type === 'Link' ? 'hard' : 'symbolic'} link (refused)`,
    )
  }
  if (type !== 'File' && type !== 'OldFile' && type !== 'ContiguousFile' && type !== 'Directory') {
    throw new DatasetError(`${archive}: entry "${path}" is a ${type} (refused)`)
  }
  if ((entry.size ?? 0) > maxEntryBytes) {
    throw new DatasetError(
      `${archive}: entry "${path}" declares ${entry.size} bytes, over the ${maxEntryBytes}-byte limit (refused)`,
    )
  }
}

export async function importCifarArchive(context: ImportContext): Promise<ImporterResult> {
  const archive = context.path
  const labelSet = labelSetOf(context)
  const state = new CifarState(context, labelSet)
  const { maxEntryBytes, maxArchiveBytes } = context.limits
  const size = await regularFileSize(archive)
  context.progress.setTotals(null, size)
  context.progress.setPhase('importing')

  const head = new Uint8Array(2)
  const fd = await open(archive, 'r')
  try {
    await fd.read(head, 0, 2, 0)
  } finally {
    await fd.close()
  }
  const gzipped = head[0] === 0x1f && head[1] === 0x8b

  let failure: unknown = null
  let current: { name: string; size: number; seen: number } | null = null
  const fail = (error: unknown): void => {
    failure ??= error
  }
  const parser = new Parser({
    strict: true,
    onReadEntry: (entry: ReadEntry) => {
      try {
        if (failure !== null) throw failure
        checkEntry(archive, entry, maxEntryBytes)
        const name = basename(entry.path)
        const label = `${archive}:${entry.path}`
        const data = cifarDataFile(name)
        const entrySize = entry.size ?? 0
        const tracked = { name: label, size: entrySize, seen: 0 }
        current = tracked
        if (data && entry.type !== 'Directory') {
          checkWholeRecords(label, entrySize, data.kind)
          state.variant(label, data.kind)
          const records = state.records(label, data.kind, data.split)
          entry.on('data', (chunk: Buffer) => {
            tracked.seen += chunk.length
            if (failure !== null) return
            try {
              records.push(chunk)
            } catch (error) {
              fail(error)
            }
          })
          entry.on('end', () => {
            if (failure !== null) return
            try {
              records.finish()
            } catch (error) {
              fail(error)
            }
          })
        } else if (NAME_FILES.has(name) && entrySize <= 1 << 20) {
          const parts: Buffer[] = []
          entry.on('data', (chunk: Buffer) => {
            tracked.seen += chunk.length
            parts.push(chunk)
          })
          entry.on('end', () => state.texts.set(name, [label, Buffer.concat(parts).toString('utf8')]))
        } else {
          entry.on('data', (chunk: Buffer) => {
            tracked.seen += chunk.length
          })
        }
      } catch (error) {
        fail(error)
        entry.resume()
      }
    },
  })
  parser.on('error', (error: Error) =>
    fail(
      new DatasetError(
        /Truncated input/.test(error.message)
          ? `${archive}: archive truncated (${error.message})`
          : `${archive}: not a valid tar archive (${error.message})`,
      ),
    ),
  )

  const hash = createHash('sha256')
  let unpacked = 0
  await streamFile(
    archive,
    gzipped,
    (chunk) => {
      hash.update(chunk)
      context.progress.add(0, chunk.length)
    },
    async (chunks) => {
      for await (const chunk of chunks) {
        throwIfCancelled(context.signal)
        unpacked += chunk.length
        if (unpacked > maxArchiveBytes) {
          throw new DatasetError(`${archive}: unpacks to more than ${maxArchiveBytes} bytes (refused)`)
        }
        parser.write(chunk)
        if (failure !== null) throw failure
        await context.writer.drain()
      }
      parser.end()
      if (failure !== null) throw failure
    },
  )
  const last = current as { name: string; size: number; seen: number } | null
  if (last && last.seen < last.size) {
    throw new DatasetError(`${last.name}: archive truncated, ${last.seen} of ${last.size} bytes present`)
  }
  return state.result(
    archive,
    hash.digest('hex'),
    size,
    basename(archive).replace(/\.(tar\.gz|tgz|tar)$/i, ''),
  )
}

/** The folder that holds the data files: the path itself, or its one CIFAR sub-folder. */
export async function findCifarFolder(path: string): Promise<{ dir: string; kind: CifarKind } | null> {
  for (const dir of [path, join(path, 'cifar-10-batches-bin'), join(path, 'cifar-100-binary')]) {
    let names: string[]
    try {
      names = await readdir(dir)
    } catch {
      continue
    }
    const kinds = names.map((name) => cifarDataFile(name)?.kind).filter(Boolean)
    if (kinds.includes('cifar10')) return { dir, kind: 'cifar10' }
    if (kinds.includes('cifar100')) return { dir, kind: 'cifar100' }
  }
  return null
}

export async function importCifarFolder(context: ImportContext): Promise<ImporterResult> {
  const found = await findCifarFolder(context.path)
  if (!found) {
    throw new DatasetError(
      `${context.path}: no CIFAR data files (data_batch_*.bin, test_batch.bin, train.bin, test.bin)`,
    )
  }
  const { dir, kind } = found
  const labelSet = labelSetOf(context)
  const state = new CifarState(context, labelSet)
  const names = (await readdir(dir)).sort((a, b) => a.localeCompare(b, 'en', { numeric: true }))
  const files = names
    .map((name) => ({ name, data: cifarDataFile(name) }))
    .filter((file) => file.data?.kind === kind)
    // Training files first, so the stored order does not depend on how the folder sorts "test".
    .sort((a, b) => Number(a.data?.split === 'test') - Number(b.data?.split === 'test'))
  const sizes: number[] = []
  for (const file of files) {
    const full = join(dir, file.name)
    const size = await regularFileSize(full)
    checkWholeRecords(full, size, kind)
    sizes.push(size)
  }
  for (const name of names) {
    if (!NAME_FILES.has(name)) continue
    const full = join(dir, name)
    await regularFileSize(full)
    try {
      state.texts.set(name, [full, await readFile(full, 'utf8')])
    } catch (error) {
      throw new DatasetError(`${full}: ${fsReason(error)}`)
    }
  }
  const total = sizes.reduce((a, b) => a + b, 0)
  context.progress.setTotals(total / cifarRecordBytes(kind), total)
  context.progress.setPhase('importing')
  const hash = createHash('sha256')
  for (const file of files) {
    const full = join(dir, file.name)
    state.variant(full, kind)
    const records = state.records(full, kind, file.data!.split)
    for await (const chunk of createReadStream(full, { highWaterMark: 1 << 20 })) {
      throwIfCancelled(context.signal)
      const bytes = chunk as Buffer
      hash.update(bytes)
      records.push(bytes)
      context.progress.add(0, bytes.length)
      await context.writer.drain()
    }
    records.finish()
  }
  return state.result(context.path, hash.digest('hex'), total, basename(dir))
}
