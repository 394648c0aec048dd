import type { DatasetManifest, ImportFormat, ImportProgress, SkippedFile } from '../../shared/datasets'
import type { ProgressTracker } from './progress'
import type { CommitInfo, DatasetWriter } from './store'

/** Limits that keep a hostile or broken input from exhausting memory or disk. */
export interface ImportLimits {
  /** Largest single archive entry; CIFAR-100's train.bin (the largest official file) is 153.7 MB. */
  maxEntryBytes: number
  /** Largest total of decompressed archive bytes; the official CIFAR archives unpack to about 185 MB. */
  maxArchiveBytes: number
  /** Largest image, in pixels, that an image-folder import decodes. */
  maxImagePixels: number
  /** Largest dataset, in stored bytes, any import may write (IDX headers are checked against it up front). */
  maxDatasetBytes: number
}

export const DEFAULT_LIMITS: ImportLimits = {
  maxEntryBytes: 256 * 1024 * 1024,
  maxArchiveBytes: 512 * 1024 * 1024,
  maxImagePixels: 64 * 1024 * 1024,
  maxDatasetBytes: 64 * 1024 * 1024 * 1024,
}

export interface ImportOptions {
  /** Skips detection; an input that is not this format is an error. */
  format?: ImportFormat
  /** Display name; defaults to the source's file or folder name. */
  name?: string
  /** Image folders: the square side images are resized and centre-cropped to (default 32). */
  size?: number
  /** CIFAR-100: fine (100 classes, default) or coarse (20 superclasses). */
  labels?: 'fine' | 'coarse'
  /** Image folders without train/test sub-roots: the seed of the stratified hold-out (default 0). */
  seed?: number
  /** Image folders without train/test sub-roots: the fraction held out for test (default 0.2). */
  testFraction?: number
  signal?: AbortSignal
  onProgress?: (event: ImportProgress) => void
  /** Data dir; defaults to dataHome(). */
  home?: string
  limits?: Partial<ImportLimits>
  /** Image folders: how many images are decoded at once (default 4). */
  concurrency?: number
}

export interface ImportContext {
  path: string
  options: ImportOptions
  limits: ImportLimits
  writer: DatasetWriter
  progress: ProgressTracker
  signal: AbortSignal | undefined
}

/** What an importer hands back: everything the manifest needs beyond what the writer counted. */
export type ImporterResult = Omit<CommitInfo, 'name' | 'id'> & { defaultName: string }

export type Importer = (context: ImportContext) => Promise<ImporterResult>

export interface ImportResult {
  manifest: DatasetManifest
  skipped: { count: number; files: SkippedFile[] }
}
