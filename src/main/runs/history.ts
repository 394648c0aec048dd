/**
 * A run's history as plottable series: per-epoch accuracy across stages on one epoch axis (with the stage
 * boundaries), per-step loss components and learning rate (downsampled to a cap), and the latest snapshots.
 * Read by the HTML report and the API host.
 */
import type { EpochRecord, StageStartRecord, StepRecord } from '../../shared/records'
import type { LogLine, RunMeta } from '../../shared/runs'
import type { RunStore } from './run-store'

export interface StageSpan {
  stage: string
  /** First global epoch of the stage (epochs of earlier stages come first). */
  firstEpoch: number
  /** First global step of the stage. */
  firstStep: number
}

export interface RunHistory {
  run: RunMeta
  stages: StageSpan[]
  /** Epoch records with their position on the global epoch axis (epochs completed, 1-based). */
  epochs: (EpochRecord & { globalEpoch: number })[]
  /** Step records (every k-th when there are more than `maxSteps`) with their global step. */
  steps: (StepRecord & { globalStep: number })[]
  stepStride: number
}

export async function loadHistory(store: RunStore, runId: string, maxSteps = 4000): Promise<RunHistory> {
  const run = await store.read(runId)
  const lines: LogLine[] = await store.readLog(runId)
  const stages: StageSpan[] = []
  let epochOffset = 0
  let stepOffset = 0
  const spans = new Map<string, StageSpan>()
  for (const spec of run.config.stages) {
    const span = { stage: spec.name, firstEpoch: epochOffset, firstStep: stepOffset }
    spans.set(spec.name, span)
    stages.push(span)
    epochOffset += spec.epochs
    const perEpoch = lines.find(
      (l): l is StageStartRecord => l.kind === 'stage-start' && l.stage === spec.name,
    )?.stepsPerEpoch
    stepOffset += spec.epochs * (perEpoch ?? spec.stepsPerEpoch)
  }
  const epochs = lines
    .filter((l): l is EpochRecord => l.kind === 'epoch')
    .map((record) => ({
      ...record,
      globalEpoch: (spans.get(record.stage)?.firstEpoch ?? 0) + record.epoch + 1,
    }))
  const allSteps = lines.filter((l): l is StepRecord => l.kind === 'step')
  const stepStride = Math.max(1, Math.ceil(allSteps.length / maxSteps))
  const steps = allSteps
    .filter((_, i) => i % stepStride === 0)
    .map((record) => ({ ...record, globalStep: (spans.get(record.stage)?.firstStep ?? 0) + record.step }))
  return { run, stages, epochs, steps, stepStride }
}
