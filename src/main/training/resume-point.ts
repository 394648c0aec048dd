/**
 * What a run needs to (re)start, read and verified before anything on disk changes: the final checkpoint of
 * every completed stage, the last checkpoint of the stage in progress, and the final checkpoints of other
 * runs' stages it refers to (`run:<id>/<stage>`). A missing or corrupted checkpoint is an error naming it.
 */
import type { Checkpoint } from '../../shared/checkpoint'
import { parseStageRef } from '../../shared/run-config'
import type { CheckpointLine, RunMeta } from '../../shared/runs'
import type { RunStore } from '../runs/run-store'
import { TrainingError } from './errors'

export interface ResumePoint {
  /** The last checkpoint of the run; null when no epoch was completed yet. */
  last: CheckpointLine | null
  completed: Record<string, Checkpoint>
  current: Checkpoint | null
}

export async function loadResumePoint(store: RunStore, runId: string): Promise<ResumePoint> {
  const lines = await store.checkpoints(runId)
  const last = lines.at(-1) ?? null
  const completed: Record<string, Checkpoint> = {}
  for (const line of lines.filter((l) => l.final))
    completed[line.stage] = await store.readCheckpoint(runId, line)
  const current = last && !last.final ? await store.readCheckpoint(runId, last) : null
  return { last, completed, current }
}

export async function externalCheckpoints(
  store: RunStore,
  meta: RunMeta,
): Promise<Record<string, Checkpoint>> {
  const out: Record<string, Checkpoint> = {}
  for (const stage of meta.config.stages) {
    for (const ref of [stage.teacher, stage.init]) {
      const target = parseStageRef(ref)
      if (target.kind !== 'run' || out[ref]) continue
      const line = (await store.checkpoints(target.run))
        .filter((l) => l.stage === target.stage && l.final)
        .at(-1)
      if (!line) throw new TrainingError(`${ref}: run ${target.run} has no finished stage "${target.stage}"`)
      out[ref] = await store.readCheckpoint(target.run, line)
    }
  }
  return out
}
