import { z } from 'zod'
import { BackendReport } from './backend'
import { DisplayName } from './names'
import { EpochRecord, StageEndRecord, StageStartRecord, StepRecord } from './records'
import { EngineName, RunConfig, StageName } from './run-config'

/**
 * A run folder as docs/run-format.md describes it (format 2): `run.json`, the metrics log's lines and the
 * snapshot index. Writers use the plain schemas; readers use the `Stored…` ones, which also read format 1
 * and return format 2.
 */

export const runStatuses = [
  'queued',
  'running',
  'paused',
  'interrupted',
  'finished',
  'failed',
  'stopped',
] as const
export const RunStatus = z.enum(runStatuses)
export type RunStatus = z.infer<typeof RunStatus>

/** A process is training the run (or holds it paused). */
export const isTraining = (status: RunStatus) => status === 'running' || status === 'paused'

export const RunId = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,79}$/, 'a run id is lowercase letters, digits and dashes')
export type RunId = z.infer<typeof RunId>

export const StageProgress = z.object({
  name: StageName,
  status: z.enum(['pending', 'running', 'finished', 'stopped']),
  epochs: z.int().nonnegative(),
  /** Epochs with a checkpoint on disk. */
  epochsCompleted: z.int().nonnegative(),
  testTop1: z.number().nullable(),
  testTop5: z.number().nullable(),
})
export type StageProgress = z.infer<typeof StageProgress>

/**
 * How a data-parallel session trains. The config's batch size is the global batch: each of `worldSize`
 * processes takes `perProcessBatch` = batch / world size images of every step, so the learning rates mean
 * the same at any world size, and a run may resume under another one.
 */
export const DistributedTraining = z.object({
  worldSize: z.int().min(2),
  nodes: z.int().positive(),
  /** torch.distributed's process-group backend: `gloo` (CPU) or `nccl` (CUDA). */
  backend: z.string().min(1),
  perProcessBatch: z.int().positive(),
  /** Batch-norm statistics over the global batch (SyncBatchNorm) rather than each process's share. */
  syncBatchNorm: z.boolean(),
})
export type DistributedTraining = z.infer<typeof DistributedTraining>

/** One line for people: `2 processes (1 node, gloo) × 16 images = global batch 32, SyncBatchNorm off`. */
export function describeDistributed(d: DistributedTraining): string {
  const where = `${d.nodes} node${d.nodes === 1 ? '' : 's'}, ${d.backend}`
  return `${d.worldSize} processes (${where}) × ${d.perProcessBatch} images = global batch ${d.worldSize * d.perProcessBatch}, SyncBatchNorm ${d.syncBatchNorm ? 'on' : 'off'}`
}

/** How many processes a session of the PyTorch engine trains in, on this machine (torchrun, DDP). */
export const DataParallel = z.object({
  /** One per GPU; on a CPU, processes over gloo sharing the cores. */
  processes: z.int().min(1).max(256),
  syncBatchNorm: z.boolean().default(false),
})
export type DataParallel = z.infer<typeof DataParallel>

/** Where and on what a run trains, as the engine reported it. */
export const RunEnvironment = z.object({
  engine: EngineName,
  /** `webgpu`, `wasm`, `cpu` (tfjs); `cuda`, `mps`, `cpu` (PyTorch); null until the engine has started. */
  device: z.object({ kind: z.string(), description: z.string() }).nullable(),
  /** Runtime versions: node and tfjs, or python, torch and CUDA. */
  versions: z.record(z.string(), z.string()),
  platform: z.string(),
  /** The tfjs engine's backend report (why this backend); null for other engines. */
  backend: BackendReport.nullable(),
  /** Data-parallel training (DDP under torchrun); null (or absent) for one process. */
  distributed: DistributedTraining.nullable().default(null),
})
export type RunEnvironment = z.infer<typeof RunEnvironment>

/** The format this release writes; see docs/run-format.md. */
export const RUN_FORMAT_VERSION = 2

export const RunMeta = z.object({
  version: z.literal(RUN_FORMAT_VERSION),
  id: RunId,
  name: DisplayName,
  createdAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
  status: RunStatus,
  /** Why the run failed or was interrupted, in words a user can act on. */
  error: z.string().nullable(),
  config: RunConfig,
  environment: RunEnvironment,
  stages: z.array(StageProgress),
})
export type RunMeta = z.infer<typeof RunMeta>

type Json = Record<string, unknown>
const isObject = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

/** run.json of format 1 (before docs/run-format.md), in format 2's terms. */
function migrateRunMeta(value: unknown): unknown {
  if (!isObject(value) || value.version !== 1) return value
  const environment = isObject(value.environment) ? value.environment : {}
  const backend = isObject(environment.backend) ? environment.backend : null
  return {
    ...value,
    version: RUN_FORMAT_VERSION,
    environment: {
      engine: 'tfjs',
      device: backend ? { kind: backend.backend, description: backend.reason } : null,
      versions: {
        ...(typeof environment.node === 'string' ? { node: environment.node } : {}),
        ...(backend && typeof backend.tfjsVersion === 'string' ? { tfjs: backend.tfjsVersion } : {}),
      },
      platform: environment.platform,
      backend,
      distributed: null,
    },
    stages: Array.isArray(value.stages)
      ? value.stages.map((stage: unknown) =>
          isObject(stage) && 'epochsDone' in stage
            ? { ...stage, epochsCompleted: stage.epochsDone, epochsDone: undefined }
            : stage,
        )
      : value.stages,
  }
}

/** What readers parse run.json with: either format, format 2 out. */
export const StoredRunMeta = z.preprocess(migrateRunMeta, RunMeta)

/**
 * The store's own lines in the metrics log. A checkpoint line is the commit point of its epoch: resuming rolls
 * the log back to the last one.
 */
export const CheckpointLine = z.object({
  kind: z.literal('checkpoint'),
  stage: StageName,
  epochsCompleted: z.int().positive(),
  /** Optimiser steps completed. */
  step: z.int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  bytes: z.int().nonnegative(),
  /** The last checkpoint of a finished stage: what later stages and other runs load. */
  final: z.boolean(),
})
export type CheckpointLine = z.infer<typeof CheckpointLine>

/** Where a checkpoint lives under `checkpoints/`: derived from its line, never read from a stored path. */
export function checkpointPath(stage: string, epochsCompleted: number): string {
  return `${stage}/e${epochsCompleted}`
}

/** Written when a run continues from its last checkpoint. */
export const ResumedLine = z.object({
  kind: z.literal('resumed'),
  stage: StageName,
  epochsCompleted: z.int().nonnegative(),
})
export type ResumedLine = z.infer<typeof ResumedLine>

/** One line of a run's append-only metrics log (`events.jsonl`): the engine's light records and the store's. */
export const LogLine = z.discriminatedUnion('kind', [
  StageStartRecord,
  StepRecord,
  EpochRecord,
  StageEndRecord,
  CheckpointLine,
  ResumedLine,
])
export type LogLine = z.infer<typeof LogLine>

/** A format-1 log line in format 2's terms: checkpoint and resumed lines counted `epoch`; a path was stored. */
function migrateLogLine(value: unknown, ctx: z.core.$RefinementCtx<unknown>): unknown {
  if (!isObject(value) || !('epoch' in value) || 'epochsCompleted' in value) return value
  if (value.kind === 'checkpoint') {
    // Format 1 stored the folder; it must be the one its fields name, or the line is refused.
    const { path, epoch, ...rest } = value
    if (path !== checkpointPath(String(value.stage), Number(epoch)))
      ctx.addIssue({
        code: 'custom',
        path: ['path'],
        message: 'path must be <stage>/e<epoch> inside checkpoints/',
      })
    return { ...rest, epochsCompleted: epoch }
  }
  if (value.kind === 'resumed') {
    const { epoch, ...rest } = value
    return { ...rest, epochsCompleted: epoch }
  }
  return value
}

export const StoredLogLine = z.preprocess(migrateLogLine, LogLine)

const ArraySlot = z.object({
  shape: z.array(z.int().nonnegative()),
  /** Offset into the payload, in float32 elements. */
  offset: z.int().nonnegative(),
})
export type ArraySlot = z.infer<typeof ArraySlot>

/** A payload file under `snapshots/`: `<stage>/<name>.bin`, one plain name inside the stage's folder. */
const SnapshotFile = z
  .string()
  .regex(/^[\w+-]{1,64}\/[\w.+-]{1,64}\.bin$/, 'file must be <stage>/<name>.bin inside snapshots/')
  .refine((file) => !file.split('/').includes('..'), 'file must stay inside snapshots/')

const SnapshotBase = {
  stage: StageName,
  /** Epochs of the stage completed when the snapshot was taken (the checkpoint of the same moment has it too). */
  epochsCompleted: z.int().positive(),
  /** Indices of the probe images in the test split. */
  probes: z.array(z.int().nonnegative()),
  file: SnapshotFile,
}

/** The header of one snapshot payload: which arrays it holds, where (float32, row-major). */
export const SnapshotIndexEntry = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('attention'),
    ...SnapshotBase,
    /** The normalisation of the stage's attention loss (`paper`: L2, `larq`: max). */
    form: z.enum(['paper', 'larq']),
    /** Per transfer point, the maps of all probes: [probes, H, W]; `teacher` null without a teacher. */
    points: z.array(z.object({ point: z.string(), student: ArraySlot, teacher: ArraySlot.nullable() })),
  }),
  z.object({
    kind: z.literal('gates'),
    ...SnapshotBase,
    /** Test images the means run over. */
    subset: z.int().nonnegative(),
    /** Per gated half block: the mean over the subset [C] and the values per probe [probes, C]. */
    gates: z.array(z.object({ block: z.string(), mean: ArraySlot, perProbe: ArraySlot })),
  }),
])
export type SnapshotIndexEntry = z.infer<typeof SnapshotIndexEntry>

/** A format-1 snapshot entry (flat `arrays` named `<point>/<role>`, 0-based `epoch`) in format 2's terms. */
function migrateSnapshotEntry(value: unknown): unknown {
  if (!isObject(value) || !Array.isArray(value.arrays) || !('epoch' in value)) return value
  const { arrays, meta, epoch, ...rest } = value
  const slots = new Map<string, ArraySlot>()
  for (const array of arrays as { name?: unknown; shape?: unknown; offset?: unknown }[])
    slots.set(String(array.name), { shape: array.shape as number[], offset: array.offset as number })
  const owners = [...new Set([...slots.keys()].map((name) => name.split('/')[0] as string))]
  const common = { ...rest, epochsCompleted: typeof epoch === 'number' ? epoch + 1 : epoch }
  const extra = isObject(meta) ? meta : {}
  if (value.kind === 'attention')
    return {
      ...common,
      form: extra.form,
      points: owners.map((point) => ({
        point,
        student: slots.get(`${point}/student`),
        teacher: slots.get(`${point}/teacher`) ?? null,
      })),
    }
  return {
    ...common,
    subset: extra.subset,
    gates: owners.map((block) => ({
      block,
      mean: slots.get(`${block}/mean`),
      perProbe: slots.get(`${block}/probes`),
    })),
  }
}

export const StoredSnapshotIndexEntry = z.preprocess(migrateSnapshotEntry, SnapshotIndexEntry)

/** Where format 2 stores a snapshot payload under `snapshots/`. */
export function snapshotFile(stage: string, kind: 'attention' | 'gates', epochsCompleted: number): string {
  return `${stage}/${kind}-${epochsCompleted}.bin`
}
