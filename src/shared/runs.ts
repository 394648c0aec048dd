import { z } from 'zod'
import { BackendReport } from './backend'
import { RunConfig } from './run-config'

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
  name: z.string(),
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
  name: z.string().min(1),
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
 * One line of a run's append-only metrics log (`events.jsonl`): the engine's light records, plus the store's
 * own `checkpoint` lines (the commit points a resume rolls back to) and `resumed` markers. Lines are checked
 * for these common fields when read; their kind-specific fields are the engine's records (src/shared/records).
 */
export const LogLine = z.looseObject({
  kind: z.enum(['stage-start', 'step', 'epoch', 'stage-end', 'checkpoint', 'resumed']),
  stage: z.string(),
  epoch: z.int().nonnegative().optional(),
})
export type LogLine = z.infer<typeof LogLine>

export interface CheckpointLine {
  kind: 'checkpoint'
  stage: string
  /** Epochs completed when it was taken. */
  epoch: number
  step: number
  /** Folder under the run's `checkpoints/`. */
  path: string
  sha256: string
  bytes: number
  /** The last checkpoint of a finished stage: what later stages and other runs load. */
  final: boolean
}

/** The header of a snapshot file: the arrays its binary payload holds, in order (float32, row-major). */
export const SnapshotIndexEntry = z.object({
  kind: z.enum(['attention', 'gates']),
  stage: z.string(),
  epoch: z.int().nonnegative(),
  probes: z.array(z.int().nonnegative()),
  /** File under the run's `snapshots/`. */
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
export type SnapshotIndexEntry = z.infer<typeof SnapshotIndexEntry>
