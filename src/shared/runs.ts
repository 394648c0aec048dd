import { z } from 'zod'
import { BackendReport } from './backend'
import { DisplayName } from './names'
import { EpochRecord, StageEndRecord, StageStartRecord, StepRecord } from './records'
import { RunConfig, StageName } from './run-config'

/**
 * A run on disk: its metadata (`run.json`), validated whenever it is read. The metrics log, snapshots and
 * checkpoints next to it are described in src/main/runs/run-store.ts.
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

export const RunId = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,79}$/, 'a run id is lowercase letters, digits and dashes')
export type RunId = z.infer<typeof RunId>

export const StageProgress = z.object({
  name: StageName,
  status: z.enum(['pending', 'running', 'finished', 'stopped']),
  epochs: z.int().nonnegative(),
  /** Epochs with a checkpoint on disk. */
  epochsDone: z.int().nonnegative(),
  testTop1: z.number().nullable(),
  testTop5: z.number().nullable(),
})
export type StageProgress = z.infer<typeof StageProgress>

export const RunMeta = z.object({
  version: z.literal(1),
  id: RunId,
  name: DisplayName,
  createdAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
  status: RunStatus,
  /** Why the run failed or was interrupted, in words a user can act on. */
  error: z.string().nullable(),
  config: RunConfig,
  environment: z.object({
    backend: BackendReport.nullable(),
    node: z.string(),
    platform: z.string(),
  }),
  stages: z.array(StageProgress),
})
export type RunMeta = z.infer<typeof RunMeta>

/**
 * The store's own lines in the metrics log. A checkpoint line is the commit point of its epoch: resuming rolls
 * the log back to the last one.
 */
export const CheckpointLine = z
  .object({
    kind: z.literal('checkpoint'),
    stage: StageName,
    /** Epochs completed when it was taken. */
    epoch: z.int().nonnegative(),
    step: z.int().nonnegative(),
    /** Folder under the run's `checkpoints/`: always `<stage>/e<epoch>`. */
    path: z.string(),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    bytes: z.int().nonnegative(),
    /** The last checkpoint of a finished stage: what later stages and other runs load. */
    final: z.boolean(),
  })
  .refine((line) => line.path === checkpointPath(line.stage, line.epoch), {
    message: 'path must be <stage>/e<epoch> inside checkpoints/',
    path: ['path'],
  })
export type CheckpointLine = z.infer<typeof CheckpointLine>

/** Where a checkpoint lives under `checkpoints/`: derived, so a stored path can never point elsewhere. */
export function checkpointPath(stage: string, epoch: number): string {
  return `${stage}/e${epoch}`
}

/** Written when a run continues from its last checkpoint. */
export const ResumedLine = z.object({
  kind: z.literal('resumed'),
  stage: StageName,
  epoch: z.int().nonnegative(),
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

/** The header of a snapshot file: the arrays its binary payload holds, in order (float32, row-major). */
export const SnapshotIndexEntry = z
  .object({
    kind: z.enum(['attention', 'gates']),
    stage: StageName,
    /** The 0-based epoch the snapshot was taken after. */
    epoch: z.int().nonnegative(),
    probes: z.array(z.int().nonnegative()),
    /** File under the run's `snapshots/`: always `<stage>/e<epoch>-<kind>.bin`. */
    file: z.string(),
    /** attention: `form`; gates: `subset`. */
    meta: z.record(z.string(), z.union([z.string(), z.number()])),
    arrays: z.array(
      z.object({
        /** `<point>/student`, `<point>/teacher`, `<block>/mean`, `<block>/probes`. */
        name: z.string(),
        shape: z.array(z.int().nonnegative()),
        /** Offset in float32 elements. */
        offset: z.int().nonnegative(),
      }),
    ),
  })
  .refine((entry) => entry.file === snapshotFile(entry.stage, entry.epoch, entry.kind), {
    message: 'file must be <stage>/e<epoch>-<kind>.bin inside snapshots/',
    path: ['file'],
  })
export type SnapshotIndexEntry = z.infer<typeof SnapshotIndexEntry>

/** Where a snapshot lives under `snapshots/`: derived, so a stored name can never point elsewhere. */
export function snapshotFile(stage: string, epoch: number, kind: 'attention' | 'gates'): string {
  return `${stage}/e${epoch}-${kind}.bin`
}
