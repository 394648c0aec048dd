/**
 * Entry point of every import: detects the format, runs the importer into a DatasetWriter and publishes the
 * result, or removes every trace of it on failure or cancellation.
 */
import { readdir, stat } from 'node:fs/promises'
import { resolve } from 'node:path'
import type { DatasetManifest, ImportFormat } from '../../shared/datasets'
import { DisplayName } from '../../shared/names'
import { findCifarFolder, importCifarArchive, importCifarFolder } from './cifar'
import { DatasetError, fsReason, throwIfCancelled } from './errors'
import { BUNDLED_ID, importBundledFashionMnist } from './fashion-mnist'
import { findIdxFiles, importIdx } from './idx'
import { importImageFolder } from './image-folder'
import { DEFAULT_LIMITS, type ImportOptions, type ImportResult, type Importer } from './importer'
import { ProgressTracker } from './progress'
import { regularFileSize } from './streams'
import { dataHome } from '../paths'
import { DatasetWriter, readManifest } from './store'

const ARCHIVE = /\.(tar\.gz|tgz|tar)$/i

/** Decides how to read `path`: a named format is trusted for dispatch and checked while reading. */
async function detectFormat(path: string, named?: ImportFormat): Promise<Importer> {
  let isDirectory: boolean
  try {
    isDirectory = (await stat(path)).isDirectory()
    if (isDirectory) await readdir(path)
  } catch (error) {
    throw new DatasetError(`${path}: ${fsReason(error)}`)
  }
  if (!isDirectory) await regularFileSize(path)
  if (named === 'cifar10' || named === 'cifar100') {
    return isDirectory ? importCifarFolder : importCifarArchive
  }
  if (named === 'idx') return importIdx
  if (named === 'imagefolder') {
    if (!isDirectory) throw new DatasetError(`${path}: an image folder import needs a folder, this is a file`)
    return importImageFolder
  }
  if (!isDirectory) {
    if (ARCHIVE.test(path)) return importCifarArchive
    if (/-idx[13]-ubyte(\.gz)?$/.test(path)) return importIdx
    throw new DatasetError(
      `${path}: cannot tell the format (expected a CIFAR .tar.gz, an IDX file or a folder); name it with --format`,
    )
  }
  const cifar = await findCifarFolder(path)
  if (cifar) return importCifarFolder
  if (await findIdxFiles(path)) return importIdx
  const entries = await readdir(path, { withFileTypes: true })
  if (entries.some((entry) => entry.isDirectory() && !entry.name.startsWith('.'))) {
    return importImageFolder
  }
  throw new DatasetError(
    `${path}: no CIFAR files, IDX files or class folders found; name the format with --format if it is one of them`,
  )
}

async function runImport(
  path: string,
  importer: Importer,
  options: ImportOptions,
  id?: string,
): Promise<ImportResult> {
  let name: string | undefined
  if (options.name !== undefined) {
    const parsed = DisplayName.safeParse(options.name)
    if (!parsed.success) throw new DatasetError(`dataset name: ${parsed.error.issues[0]?.message}`)
    name = parsed.data
  }
  const progress = new ProgressTracker(options.onProgress)
  throwIfCancelled(options.signal)
  const writer = await DatasetWriter.create(options.home)
  try {
    const result = await importer({
      path,
      options,
      limits: { ...DEFAULT_LIMITS, ...options.limits },
      writer,
      progress,
      signal: options.signal,
    })
    throwIfCancelled(options.signal)
    progress.setPhase('finishing')
    const { defaultName, ...info } = result
    const manifest = await writer.commit({
      ...info,
      // A file or folder name may hold anything; the default name keeps it printable.
      name:
        name ??
        (defaultName
          .replace(/\p{Cc}+/gu, ' ')
          .trim()
          .slice(0, 200) ||
          'dataset'),
      ...(id ? { id } : {}),
    })
    progress.emit(true)
    return { manifest, skipped: manifest.skipped }
  } catch (error) {
    await writer.abort()
    throw error
  }
}

/** Imports a CIFAR archive or folder, IDX files or an image folder into the store. */
export async function importDataset(path: string, options: ImportOptions = {}): Promise<ImportResult> {
  const absolute = resolve(path)
  const importer = await detectFormat(absolute, options.format)
  return runImport(absolute, importer, options)
}

const bundledImports = new Map<string, Promise<DatasetManifest>>()

/**
 * The bundled Fashion-MNIST, registered as `fashion-mnist` on first call (a few seconds: the package ships
 * 150 MB of JSON) and read from the store afterwards.
 */
export async function ensureBundledDataset(
  options: Pick<ImportOptions, 'home' | 'onProgress' | 'signal'> = {},
): Promise<DatasetManifest> {
  try {
    return await readManifest(BUNDLED_ID, options.home)
  } catch (error) {
    if (!(error instanceof DatasetError) || !error.message.startsWith('no dataset')) throw error
  }
  const key = resolve(options.home ?? dataHome())
  let running = bundledImports.get(key)
  if (!running) {
    running = runImport(BUNDLED_ID, importBundledFashionMnist, options, BUNDLED_ID)
      .then((result) => result.manifest)
      .catch(async (error: unknown) => {
        // Another process may have registered it first.
        if (error instanceof DatasetError && error.message.includes('already exists')) {
          return readManifest(BUNDLED_ID, options.home)
        }
        throw error
      })
      .finally(() => bundledImports.delete(key))
    bundledImports.set(key, running)
  }
  return running
}
