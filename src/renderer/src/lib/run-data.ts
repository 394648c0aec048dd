import type { RunConfig } from '../../../shared/run-config'
import type { LogLine, RunMeta } from '../../../shared/runs'

/** What the plots need from a run's metrics log, on one global axis across the stage chain. */
export interface RunCurves {
  stages: { name: string; epochOffset: number; epochs: number; stepOffset: number; steps: number | null }[]
  /** Global epoch (1-based, counted across stages) per epoch record. */
  epochs: {
    x: number
    stage: string
    epoch: number
    trainTop1: number
    trainTop5: number
    testTop1: number
    testTop5: number
    /** Mean over binary layers of the fraction of latent weights whose sign changed in the epoch; null
     * when the stage has no binary weights. */
    flipRatio: number | null
    seconds: number
  }[]
  steps: {
    x: number
    stage: string
    crossEntropy: number
    attention: number
    distillation: number
    total: number
    learningRate: number
    imagesPerSecond: number
  }[]
  stageEnds: Record<string, { top1: number; top5: number; stopped: boolean }>
}

interface Accuracy {
  top1: number
  top5: number
}

const num = (value: unknown): number => (typeof value === 'number' ? value : Number.NaN)

export function runCurves(config: RunConfig, log: readonly LogLine[]): RunCurves {
  const startOf: Record<string, { epochs: number; stepsPerEpoch: number }> = {}
  for (const line of log) {
    if (line.kind === 'stage-start' && !startOf[line.stage])
      startOf[line.stage] = { epochs: num(line.epochs), stepsPerEpoch: num(line.stepsPerEpoch) }
  }
  // Steps per stage: the stage-start record's budget, else the most seen so far (a stage still running).
  const maxStep: Record<string, number> = {}
  for (const line of log) {
    if (line.kind === 'step') maxStep[line.stage] = Math.max(maxStep[line.stage] ?? 0, num(line.step) + 1)
  }
  let epochOffset = 0
  let stepOffset = 0
  const stages = config.stages.map((stage) => {
    const started = startOf[stage.name]
    const steps = started ? started.epochs * started.stepsPerEpoch : (maxStep[stage.name] ?? null)
    const entry = { name: stage.name, epochOffset, epochs: stage.epochs, stepOffset, steps }
    epochOffset += stage.epochs
    stepOffset += steps ?? (stage.stepsPerEpoch > 0 ? stage.stepsPerEpoch * stage.epochs : 0)
    return entry
  })
  const byName = Object.fromEntries(stages.map((s) => [s.name, s]))
  const curves: RunCurves = { stages, epochs: [], steps: [], stageEnds: {} }
  for (const line of log) {
    const stage = byName[line.stage]
    if (!stage) continue
    if (line.kind === 'epoch') {
      const train = line.train as Accuracy
      const test = line.test as Accuracy
      curves.epochs.push({
        x: stage.epochOffset + num(line.epoch) + 1,
        stage: line.stage,
        epoch: num(line.epoch),
        trainTop1: train.top1,
        trainTop5: train.top5,
        testTop1: test.top1,
        testTop5: test.top5,
        flipRatio: meanFlipRatio(line.flipRatios),
        seconds: num(line.seconds),
      })
    } else if (line.kind === 'step') {
      const loss = line.loss as {
        crossEntropy: number
        attention: number
        distillation: number
        total: number
      }
      curves.steps.push({
        x: stage.stepOffset + num(line.step) + 1,
        stage: line.stage,
        ...loss,
        learningRate: num(line.learningRate),
        imagesPerSecond: num(line.imagesPerSecond),
      })
    } else if (line.kind === 'stage-end') {
      const test = line.test as Accuracy | null
      if (test)
        curves.stageEnds[line.stage] = { top1: test.top1, top5: test.top5, stopped: line.stopped === true }
    }
  }
  return curves
}

/** Seconds left for the whole chain, from the epochs timed so far; null before the first epoch ends. */
export function etaSeconds(run: RunMeta, curves: RunCurves): number | null {
  const timed = curves.epochs.filter((e) => Number.isFinite(e.seconds))
  if (timed.length === 0) return null
  const perEpoch = timed.slice(-3).reduce((sum, e) => sum + e.seconds, 0) / Math.min(3, timed.length)
  const left = run.stages.reduce((sum, s) => sum + Math.max(0, s.epochs - s.epochsDone), 0)
  return left * perEpoch
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '—'
  if (seconds < 60) return `${Math.round(seconds)} s`
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`
  return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`
}

export function percent(value: number | null | undefined): string {
  return value === null || value === undefined || !Number.isFinite(value)
    ? '—'
    : `${(value * 100).toFixed(1)}%`
}

/** Who teaches whom in a config: per stage, its teacher and the stage it starts from. */
export function stageChain(config: RunConfig) {
  const describe = (ref: string) =>
    ref === 'none' ? null : ref.startsWith('stage:') ? ref.slice(6) : ref.replace(/^run:/, 'run ')
  return config.stages.map((stage) => ({
    name: stage.name,
    teacher: describe(stage.teacher),
    init: describe(stage.init),
    student: stage.student,
    losses: stage.losses,
    epochs: stage.epochs,
  }))
}

function meanFlipRatio(value: unknown): number | null {
  if (!Array.isArray(value) || value.length === 0) return null
  const ratios = value.map((entry) => num((entry as { ratio?: unknown }).ratio))
  return ratios.reduce((a, b) => a + b, 0) / ratios.length
}
