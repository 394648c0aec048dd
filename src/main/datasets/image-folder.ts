/**
 * Image folders: `root/<class>/*.{png,jpg,jpeg,webp}`, or `root/train/<class>/…` with `root/test/…` (or
 * `val/`). Without sub-roots a seeded, stratified share of each class is held out for test. Every image is
 * decoded by sharp, resized so its shorter side is `size` and centre-cropped to size×size. The dataset is
 * grayscale (one channel) only if every image is. Images are decoded a few at a time and streamed into the
 * store, so memory does not grow with the folder.
 */
import { createHash } from 'node:crypto'
import type { Dirent } from 'node:fs'
import { readdir, readFile, realpath, stat } from 'node:fs/promises'
import { basename, extname, isAbsolute, join, relative } from 'node:path'
import sharp from 'sharp'
import type { SkippedFile, SplitName } from '../../shared/datasets'
import { mixSeed, mulberry32, permutation } from '../../shared/random'
import { DatasetError, fsReason, throwIfCancelled } from './errors'
import type { ImportContext, ImporterResult } from './importer'
import { MAX_LISTED_SKIPS } from './store'

const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg', '.webp'])
/** Files bigger than this are not read: no sensible training image is, and reading one would cost memory. */
const MAX_FILE_BYTES = 256 * 1024 * 1024
export const DEFAULT_IMAGE_SIZE = 32
export const DEFAULT_TEST_FRACTION = 0.2
const MAX_SIZE = 1024

interface ImageFile {
  path: string
  classIndex: number
  split: SplitName
}

export interface FolderScan {
  classes: string[]
  files: ImageFile[]
  /** Files in class folders that are not a supported image type. */
  unsupported: SkippedFile[]
  subRoots: boolean
}

type EntryKind = 'file' | 'dir'

/**
 * What an entry is, links followed: a symbolic link counts as what it points to when that stays inside the
 * imported folder; a link out of it, a broken link and a link loop are reported, never silently dropped.
 */
async function entryKind(path: string, entry: Dirent, root: string): Promise<EntryKind | SkippedFile> {
  if (!entry.isSymbolicLink()) {
    if (entry.isDirectory()) return 'dir'
    if (entry.isFile()) return 'file'
    return { file: path, reason: 'not a regular file (a pipe, socket or device)' }
  }
  let target: string
  try {
    target = await realpath(path)
  } catch (error) {
    const code = (error as { code?: string }).code
    return { file: path, reason: code === 'ELOOP' ? 'a symbolic link loop' : 'a broken symbolic link' }
  }
  const inside = relative(root, target)
  if (inside.startsWith('..') || isAbsolute(inside))
    return {
      file: path,
      reason: `a symbolic link out of the imported folder (to ${target}): copy it in instead`,
    }
  const info = await stat(target)
  if (info.isDirectory()) return 'dir'
  if (info.isFile()) return 'file'
  return { file: path, reason: 'a link to something that is not a regular file' }
}

/** The visible entries of `dir` of one kind, sorted by name; links that cannot be followed go to `skipped`. */
async function listEntries(
  dir: string,
  kind: EntryKind,
  root: string,
  skipped: SkippedFile[],
): Promise<string[]> {
  let entries: Dirent[]
  try {
    entries = await readdir(dir, { withFileTypes: true })
  } catch (error) {
    throw new DatasetError(`${dir}: ${fsReason(error)}`)
  }
  const names: string[] = []
  for (const entry of entries) {
    if (entry.name.startsWith('.')) continue
    const found = await entryKind(join(dir, entry.name), entry, root)
    if (found === kind) names.push(entry.name)
    else if (typeof found === 'object' && !skipped.some((s) => s.file === found.file)) skipped.push(found)
  }
  return names.sort()
}

/**
 * Lists classes and files and assigns each file to a split. The hold-out depends only on the sorted file
 * names, the seed and the fraction, so the same folder always splits the same way.
 */
export async function scanImageFolder(root: string, seed: number, testFraction: number): Promise<FolderScan> {
  const unsupported: SkippedFile[] = []
  const rootReal = await realpath(root).catch(() => root)
  const listDirs = (dir: string) => listEntries(dir, 'dir', rootReal, unsupported)
  const listFiles = (dir: string) => listEntries(dir, 'file', rootReal, unsupported)
  const top = await listDirs(root)
  const lower = new Map(top.map((name) => [name.toLowerCase(), name]))
  const trainRoot = lower.get('train')
  const testRoot = lower.get('test') ?? lower.get('val') ?? lower.get('validation')
  const subRoots = trainRoot !== undefined && testRoot !== undefined
  const roots: { dir: string; split: SplitName | null }[] = subRoots
    ? [
        { dir: join(root, trainRoot), split: 'train' },
        { dir: join(root, testRoot), split: 'test' },
      ]
    : [{ dir: root, split: null }]

  const classSet = new Set<string>()
  const perRoot: { dir: string; split: SplitName | null; classes: string[] }[] = []
  for (const { dir, split } of roots) {
    const classes = await listDirs(dir)
    classes.forEach((name) => classSet.add(name))
    perRoot.push({ dir, split, classes })
  }
  const classes = [...classSet].sort()
  if (classes.length === 0) {
    throw new DatasetError(
      `${subRoots ? join(root, trainRoot!) : root}: no class folders (expected <class>/<image>)`,
    )
  }
  if (classes.length > 65536)
    throw new DatasetError(`${root}: ${classes.length} class folders, at most 65536`)
  const classIndex = new Map(classes.map((name, i) => [name, i]))

  const files: ImageFile[] = []
  for (const { dir, split, classes: present } of perRoot) {
    for (const name of present) {
      const index = classIndex.get(name)!
      const classDir = join(dir, name)
      const images: string[] = []
      for (const file of await listFiles(classDir)) {
        const path = join(classDir, file)
        if (IMAGE_EXTENSIONS.has(extname(file).toLowerCase())) images.push(path)
        else unsupported.push({ file: path, reason: `unsupported file type "${extname(file) || file}"` })
      }
      if (split) {
        for (const path of images) files.push({ path, classIndex: index, split })
        continue
      }
      // Stratified hold-out: a seeded choice of round(n × fraction) images of each class.
      const order = permutation(images.length, mulberry32(mixSeed(seed, index)))
      const testCount =
        images.length > 1 ? Math.min(Math.round(images.length * testFraction), images.length - 1) : 0
      const isTest = new Uint8Array(images.length)
      for (let i = 0; i < testCount; i++) isTest[order[i]!] = 1
      images.forEach((path, i) =>
        files.push({ path, classIndex: index, split: isTest[i] ? 'test' : 'train' }),
      )
    }
  }
  return { classes, files, unsupported, subRoots }
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0]!.trim()
}

interface Probe {
  ok: boolean
  gray: boolean
  bytes: number
  reason?: string
}

async function probe(path: string, maxPixels: number): Promise<Probe> {
  try {
    const info = await stat(path)
    if (!info.isFile())
      return { ok: false, gray: false, bytes: 0, reason: 'not a regular file (a pipe, socket or device)' }
    const { size } = info
    if (size > MAX_FILE_BYTES)
      return { ok: false, gray: false, bytes: size, reason: `file of ${size} bytes is too large` }
    // Only the header is read here; the pixel limit is checked below so the message can say what it is.
    const meta = await sharp(path, { limitInputPixels: false }).metadata()
    const { width, height } = meta
    if (!width || !height) return { ok: false, gray: false, bytes: size, reason: 'no image dimensions' }
    if (width * height > maxPixels) {
      return {
        ok: false,
        gray: false,
        bytes: size,
        reason: `declares ${width}×${height} pixels, over the ${maxPixels}-pixel limit (refused)`,
      }
    }
    const gray = meta.space === 'b-w' || meta.space === 'grey16' || meta.channels === 1 || meta.channels === 2
    return { ok: true, gray, bytes: size }
  } catch (error) {
    return { ok: false, gray: false, bytes: 0, reason: firstLine(error) }
  }
}

async function decode(
  data: Buffer,
  size: number,
  channels: 1 | 3,
  maxPixels: number,
): Promise<{ pixels: Uint8Array } | { reason: string }> {
  try {
    let image = sharp(data, { limitInputPixels: maxPixels, failOn: 'error' })
      .rotate()
      .flatten({ background: '#000000' })
      .resize(size, size, { fit: 'cover', position: 'centre' })
    image = channels === 1 ? image.grayscale() : image.toColourspace('srgb')
    const { data: pixels, info } = await image.raw().toBuffer({ resolveWithObject: true })
    if (info.channels !== channels || info.width !== size || info.height !== size) {
      return {
        reason: `decoded to ${info.width}×${info.height}×${info.channels}, expected ${size}×${size}×${channels}`,
      }
    }
    return { pixels }
  } catch (error) {
    return { reason: firstLine(error) }
  }
}

/** Runs `work` over `items` with at most `limit` in flight, handing results to `take` in input order. */
async function orderedPool<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<R>,
  take: (result: R, item: T) => void | Promise<void>,
  signal: AbortSignal | undefined,
): Promise<void> {
  const window = new Map<number, Promise<R>>()
  let next = 0
  for (let i = 0; i < items.length; i++) {
    while (next < items.length && next < i + limit) {
      window.set(next, work(items[next]!))
      next++
    }
    const result = await window.get(i)!
    window.delete(i)
    throwIfCancelled(signal)
    await take(result, items[i]!)
  }
}

export async function importImageFolder(context: ImportContext): Promise<ImporterResult> {
  const root = context.path
  const { options, writer, progress } = context
  const size = options.size ?? DEFAULT_IMAGE_SIZE
  if (!Number.isInteger(size) || size < 1 || size > MAX_SIZE) {
    throw new DatasetError(`--size ${size}: an image size is a whole number from 1 to ${MAX_SIZE}`)
  }
  const testFraction = options.testFraction ?? DEFAULT_TEST_FRACTION
  if (!(testFraction >= 0 && testFraction < 1)) {
    throw new DatasetError(`test fraction ${testFraction}: must be at least 0 and below 1`)
  }
  const concurrency = Math.max(1, options.concurrency ?? 4)
  const maxPixels = context.limits.maxImagePixels
  // libvips' operation cache would hold decoded images across calls; nothing here is decoded twice.
  sharp.cache(false)

  progress.setPhase('scanning')
  const scan = await scanImageFolder(root, options.seed ?? 0, testFraction)
  const skipped: SkippedFile[] = [...scan.unsupported]
  if (scan.files.length === 0) throw new DatasetError(`${root}: no readable images in the class folders`)

  // Pass 1 reads only headers: whether every image is grayscale must be known before the first is stored.
  progress.setTotals(scan.files.length, null)
  const usable: (ImageFile & { bytes: number })[] = []
  let allGray = true
  await orderedPool(
    scan.files,
    concurrency * 4,
    (file) => probe(file.path, maxPixels),
    (result, file) => {
      progress.add(1, 0)
      if (!result.ok) {
        skipped.push({ file: file.path, reason: result.reason ?? 'unreadable' })
        return
      }
      allGray &&= result.gray
      usable.push({ ...file, bytes: result.bytes })
    },
    context.signal,
  )
  if (usable.length === 0) {
    throw new DatasetError(
      `${root}: no readable images (${skipped.length} files skipped, e.g. ${skipped[0]?.file}: ${skipped[0]?.reason})`,
    )
  }
  const channels = allGray ? 1 : 3
  writer.begin([size, size, channels], scan.classes.length)
  progress.setTotals(
    usable.length,
    usable.reduce((sum, file) => sum + file.bytes, 0),
  )
  progress.restart('importing')

  const hash = createHash('sha256')
  await orderedPool(
    usable,
    concurrency,
    async (file) => {
      let data: Buffer
      try {
        data = await readFile(file.path)
      } catch (error) {
        return { data: null, result: { reason: fsReason(error) } }
      }
      return { data, result: await decode(data, size, channels, maxPixels) }
    },
    async ({ data, result }, file) => {
      progress.add(1, file.bytes)
      if ('reason' in result) {
        skipped.push({ file: file.path, reason: result.reason })
        return
      }
      hash.update(relative(root, file.path))
      hash.update(data!)
      writer.append(file.split, result.pixels, file.classIndex)
      await writer.drain()
    },
    context.signal,
  )
  if (writer.count('train') + writer.count('test') === 0) {
    throw new DatasetError(
      `${root}: no readable images (${skipped.length} files skipped, e.g. ${skipped[0]?.file}: ${skipped[0]?.reason})`,
    )
  }
  return {
    defaultName: basename(root),
    format: 'imagefolder',
    source: {
      path: root,
      sha256: hash.digest('hex'),
      bytes: usable.reduce((sum, file) => sum + file.bytes, 0),
    },
    classes: scan.classes,
    skipped: { count: skipped.length, files: skipped.slice(0, MAX_LISTED_SKIPS) },
  }
}
