import { z } from 'zod'
import { AblationSummary } from './ablation'
import { BackendReport, TorchEngineReport } from './backend'
import type { ApiMethod } from './api-methods'
import { DatasetId, DatasetManifest, ImportFormat, ImportProgress, ImageShape, SplitName } from './datasets'
import { DisplayName } from './names'
import {
  ConfigOverride,
  EngineName,
  PipelineName,
  PresetName,
  RunConfig,
  StageName,
  TeacherRecipe,
} from './run-config'
import { DataParallel, LogLine, RunId, RunMeta, SnapshotIndexEntry } from './runs'

/**
 * WorkbenchApi: the one contract between the UI and the backend host. Both transports (Electron IPC through
 * the preload, and the local WebSocket of `serve`) carry exactly these calls and events; the host validates
 * every call's arguments with these schemas before acting.
 *
 * Binary payloads (images, attention maps, gates) are base64 strings of their little-endian bytes
 * (src/shared/binary.ts), so the same results cross IPC and the JSON WebSocket.
 */

export const AboutInfo = z.object({
  appVersion: z.string(),
  /** Versions of the runtime pieces: node, tfjs, and electron/chrome/v8 inside the app. */
  versions: z.record(z.string(), z.string()),
  dataHome: z.string(),
  /** Which backend the training worker selected and why; null until the worker has started. */
  backend: BackendReport.nullable(),
  /** Set when the worker failed to start or select a backend. */
  backendError: z.string().nullable(),
  /** Whether the host can show a native file picker (the desktop app can; a browser against `serve` cannot). */
  canPickFiles: z.boolean(),
  /** The PyTorch engine: whether it can train here, on which devices, and if not why. */
  torch: TorchEngineReport,
})
export type AboutInfo = z.infer<typeof AboutInfo>

/** base64 of little-endian bytes: float32 for maps and gates, uint8 for pixels. */
const Base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/)

export const EncodedTensor = z.object({ shape: z.array(z.int().nonnegative()), data: Base64 })
export type EncodedTensor = z.infer<typeof EncodedTensor>

export const DatasetListing = z.object({
  datasets: z.array(DatasetManifest),
  problems: z.array(z.object({ id: z.string(), reason: z.string() })),
})
export type DatasetListing = z.infer<typeof DatasetListing>

/** Raw uint8 pixels (n×H×W×C) of some images of one split, with their labels. */
export const ImageBatch = z.object({
  split: SplitName,
  shape: ImageShape,
  indices: z.array(z.int().nonnegative()),
  labels: z.array(z.int().nonnegative()),
  pixels: Base64,
})
export type ImageBatch = z.infer<typeof ImageBatch>

const ImageIndices = z.array(z.int().nonnegative()).min(1).max(256)

export const ImportRequest = z.object({
  path: z.string().min(1).max(4096),
  name: DisplayName.optional(),
  format: ImportFormat.optional(),
})
export type ImportRequest = z.infer<typeof ImportRequest>

const ImportId = z.string().regex(/^imp-[0-9]+$/)

export const NewRunRequest = z.object({
  dataset: DatasetId,
  preset: PresetName.optional(),
  pipeline: PipelineName.optional(),
  downsample: z.enum(['real', 'binary']).optional(),
  /** How the teacher stage trains (default `students`: the preset's Adam recipe; `reference`: larq zoo's). */
  teacherRecipe: TeacherRecipe.optional(),
  seed: z
    .int()
    .min(0)
    .max(2 ** 31)
    .optional(),
  /** Config overrides, applied in order after the dataset's shape: typed (what the UI sends), or the CLI's
   * `--set key=value` text. */
  set: z
    .array(z.union([ConfigOverride, z.string().max(500)]))
    .max(200)
    .optional(),
  /** Which engine trains it (default: tfjs). */
  engine: EngineName.optional(),
  /** Data-parallel processes (PyTorch engine only; default one). */
  dataParallel: DataParallel.optional(),
  name: DisplayName.optional(),
})
export type NewRunRequest = z.infer<typeof NewRunRequest>

export const RunListing = z.object({
  runs: z.array(RunMeta),
  problems: z.array(z.string()),
  /** Runs shown from folders elsewhere, written by another process or machine: followed, read-only. */
  attached: z.array(RunId),
})
export type RunListing = z.infer<typeof RunListing>

/** The ablation groups of the data home (`<data dir>/ablations/*.json`), newest first; a group file that
 * cannot be read is a problem, not a failure of the listing. */
export const AblationListing = z.object({
  groups: z.array(AblationSummary),
  problems: z.array(z.string()),
})
export type AblationListing = z.infer<typeof AblationListing>

export const RunHistory = z.object({
  run: RunMeta,
  /** The metrics log: stage-start, step, epoch, stage-end, checkpoint and resumed lines. */
  log: z.array(LogLine),
  snapshots: z.array(SnapshotIndexEntry),
})
export type RunHistory = z.infer<typeof RunHistory>

const SnapshotKind = z.enum(['attention', 'gates'])

/** A snapshot as the UI reads it: the record the engine wrote, its arrays base64-encoded. */
export const SnapshotData = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('attention'),
    stage: StageName,
    epochsCompleted: z.int().positive(),
    probes: z.array(z.int().nonnegative()),
    form: z.enum(['paper', 'larq']),
    points: z.array(
      z.object({ point: z.string(), student: EncodedTensor, teacher: EncodedTensor.nullable() }),
    ),
  }),
  z.object({
    kind: z.literal('gates'),
    stage: StageName,
    epochsCompleted: z.int().positive(),
    probes: z.array(z.int().nonnegative()),
    subset: z.int().nonnegative(),
    gates: z.array(z.object({ block: z.string(), mean: EncodedTensor, perProbe: EncodedTensor })),
  }),
])
export type SnapshotData = z.infer<typeof SnapshotData>

export const InspectRequest = z.object({
  run: RunId,
  /** null: the last stage with a checkpoint. */
  stage: StageName.nullable(),
  /** Epochs of the stage completed at the checkpoint (as snapshots count them); null: its last one. */
  epochsCompleted: z.int().positive().nullable(),
  /** Index in the test split. */
  image: z.int().nonnegative(),
})
export type InspectRequest = z.infer<typeof InspectRequest>

export const Inspection = z.object({
  stage: z.string(),
  epochsCompleted: z.int().nonnegative(),
  image: z.int().nonnegative(),
  label: z.int().nonnegative(),
  logits: Base64,
  points: z.array(z.object({ point: z.string(), student: EncodedTensor, teacher: EncodedTensor.nullable() })),
  gates: z.array(z.object({ block: z.string(), values: Base64 })),
})
export type Inspection = z.infer<typeof Inspection>

/** Where an export went and how small it is: next to the minimum (1 bit per binary weight, 32 per real
 * parameter) and to the float32 model. */
export const ExportSummary = z.object({
  file: z.string(),
  fileBytes: z.int().nonnegative(),
  minimumBytes: z.int().nonnegative(),
  float32Bytes: z.int().nonnegative(),
  epochsCompleted: z.int().nonnegative(),
})
export type ExportSummary = z.infer<typeof ExportSummary>

export const SummaryRow = z.object({
  name: z.string(),
  kind: z.string(),
  inputPrecision: z.union([z.literal(1), z.literal(32)]),
  outputShape: z.array(z.number()),
  binaryParams: z.number(),
  floatParams: z.number(),
  nonTrainableParams: z.number(),
  memoryBytes: z.number(),
  bops: z.number(),
  flops: z.number(),
})
export const ModelSummary = z.object({
  model: z.string(),
  layers: z.array(SummaryRow),
  totals: z.object({
    params: z.number(),
    trainableParams: z.number(),
    nonTrainableParams: z.number(),
    binaryParams: z.number(),
    bops: z.number(),
    flops: z.number(),
    packedBytes: z.number(),
    float32Bytes: z.number(),
    compressionRatio: z.number(),
    binarisedMacFraction: z.number(),
    ops: z.number(),
  }),
})
export type ModelSummary = z.infer<typeof ModelSummary>

/**
 * How long a config would train here, from step times measured on this machine before it starts: each stage's
 * networks timed for a few steps on synthetic inputs by the engine that would train it.
 */
export const RunEstimate = z.object({
  engine: EngineName,
  /** Where it was measured: the tfjs backend, or the PyTorch device. */
  device: z.string(),
  /** The batch the steps were timed at; step times are scaled linearly to each stage's batch. */
  measuredBatch: z.int().positive(),
  stages: z.array(
    z.object({
      stage: StageName,
      /** Milliseconds per step at the stage's batch. */
      stepMs: z.number().nonnegative(),
      /** Optimiser steps of the stage (epochs × steps per epoch). */
      steps: z.int().nonnegative(),
      seconds: z.number().nonnegative(),
    }),
  ),
  /** Optimiser steps only: evaluation, probes and checkpoints come on top. */
  totalSeconds: z.number().nonnegative(),
  /** How it was measured, in words. */
  basis: z.string(),
})
export type RunEstimate = z.infer<typeof RunEstimate>

/** Argument tuples and result of every request method. */
export const apiSchemas = {
  about: { args: z.tuple([]), result: AboutInfo },

  listDatasets: { args: z.tuple([]), result: DatasetListing },
  /** The first `perClass` training images of every class (test images when there is no training split). */
  datasetSamples: { args: z.tuple([DatasetId, z.int().min(1).max(16)]), result: ImageBatch },
  readImages: { args: z.tuple([DatasetId, SplitName, ImageIndices]), result: ImageBatch },
  /** Indices of the first `count` images of a class in a split (choosing an image by class). */
  findImages: {
    args: z.tuple([DatasetId, SplitName, z.int().nonnegative(), z.int().min(1).max(256)]),
    result: z.array(z.int().nonnegative()),
  },
  /** Starts an import in main; progress and the outcome come as `import` events with the returned id. */
  importDataset: { args: z.tuple([ImportRequest]), result: z.object({ importId: ImportId }) },
  cancelImport: { args: z.tuple([ImportId]), result: z.null() },
  /** The desktop app's native picker; null when cancelled or when the host has no display. */
  pickImportPath: { args: z.tuple([]), result: z.string().nullable() },
  renameDataset: { args: z.tuple([DatasetId, DisplayName]), result: DatasetManifest },
  removeDataset: { args: z.tuple([DatasetId]), result: z.null() },

  listRuns: { args: z.tuple([]), result: RunListing },
  runHistory: { args: z.tuple([RunId]), result: RunHistory },
  readSnapshot: {
    /** Run, kind, stage, epochs completed. */
    args: z.tuple([RunId, SnapshotKind, StageName, z.int().positive()]),
    result: SnapshotData,
  },
  /** Maps and gates of any test image under a saved checkpoint, computed by the worker. */
  inspectImage: { args: z.tuple([InspectRequest]), result: Inspection },
  /** Creates the run (validated like the CLI's `train`) and queues it. */
  startRun: { args: z.tuple([NewRunRequest]), result: RunMeta },
  pauseRun: { args: z.tuple([RunId]), result: z.null() },
  /** Continues a paused run, or queues an interrupted/stopped/failed one from its last checkpoint. */
  resumeRun: { args: z.tuple([RunId]), result: z.null() },
  stopRun: { args: z.tuple([RunId]), result: z.null() },
  /** Deletes a run (refused while any process trains it); an attached run is only forgotten. */
  removeRun: { args: z.tuple([RunId]), result: z.null() },
  /** Shows and follows a run folder that another process or machine writes (shared storage), read-only. */
  attachRun: { args: z.tuple([z.string().min(1).max(4096)]), result: RunMeta },
  /** The larq-style summary of one stage's model under a config. */
  modelSummary: { args: z.tuple([RunConfig, StageName]), result: ModelSummary },
  /** Times a few steps of each stage on this machine's engine and scales them to the config's budget. */
  estimateRun: { args: z.tuple([RunConfig]), result: RunEstimate },
  /** The ablation groups (Table 3 runs) with their tables as their runs stand now. */
  listAblations: { args: z.tuple([]), result: AblationListing },
  /** Exports a trained fully binary stage (bit-packed) into the run folder; refuses other stages. */
  exportStage: { args: z.tuple([RunId, StageName]), result: ExportSummary },
} satisfies Record<ApiMethod, { args: z.ZodTuple; result: z.ZodType }>

/** The records the host forwards live: the light ones of the metrics log. */
export const LiveRecord = LogLine

export const WorkbenchEvent = z.discriminatedUnion('type', [
  z.object({ type: z.literal('backend'), backend: BackendReport.nullable(), error: z.string().nullable() }),
  /** A run's metadata changed (status, stage progress). */
  z.object({ type: z.literal('run'), run: RunMeta }),
  /** A metrics-log record, after it is on disk. */
  z.object({ type: z.literal('record'), runId: RunId, record: LiveRecord }),
  /** A snapshot was written; read it with readSnapshot. */
  z.object({
    type: z.literal('snapshot'),
    runId: RunId,
    kind: SnapshotKind,
    stage: StageName,
    epochsCompleted: z.int().positive(),
  }),
  z.object({
    type: z.literal('import'),
    importId: ImportId,
    state: z.enum(['progress', 'done', 'failed', 'cancelled']),
    path: z.string(),
    progress: ImportProgress.nullable(),
    dataset: DatasetManifest.nullable(),
    error: z.string().nullable(),
  }),
])
export type WorkbenchEvent = z.infer<typeof WorkbenchEvent>

type Args<M extends ApiMethod> = z.infer<(typeof apiSchemas)[M]['args']>
type Result<M extends ApiMethod> = z.infer<(typeof apiSchemas)[M]['result']>

export type WorkbenchApi = { [M in ApiMethod]: (...args: Args<M>) => Promise<Result<M>> } & {
  /** Subscribes to the host's event stream; returns the unsubscribe function. */
  onEvent(listener: (event: WorkbenchEvent) => void): () => void
  /** Desktop app only: the file-system path of a dropped file (the preload asks Electron for it). */
  pathForFile?(file: Blob): string
}

/** What a transport hands the host: an untrusted method name and argument list. */
export const ApiCall = z.object({ method: z.string(), args: z.array(z.unknown()) })

/** The WebSocket transport's frames: requests carry an id that the response repeats; events have none. */
export const WsRequest = ApiCall.extend({ id: z.number().int().nonnegative() })
export type WsRequest = z.infer<typeof WsRequest>
/** An answer, an error or an event; the error form first, as an answer's `result` may be absent (null). */
export const WsServerMessage = z.union([
  z.object({ id: z.number().int(), error: z.string() }),
  z.object({ event: WorkbenchEvent }),
  z.object({ id: z.number().int(), result: z.unknown() }),
])
export type WsServerMessage = z.infer<typeof WsServerMessage>
