/**
 * A run's curves, on one axis across the stage chain: per-epoch accuracy and flip ratios, per-step loss
 * components, learning rate and throughput, with where each stage begins. The one implementation behind the
 * HTML report and the UI, so both draw the same points at the same places.
 */
import type { RunConfig } from '../run-config'
import type { LogLine, RunMeta } from '../runs'

export interface StageSpan {
  name: string
  /** Epochs of earlier stages: the stage's epoch e (0-based) is drawn at x = epochOffset + e + 1. */
  epochOffset: number
  epochs: number
  /** Steps of earlier stages: the stage's step s (0-based) is drawn at x = stepOffset + s + 1. */
  stepOffset: number
  /** Steps of the stage; null while unknown (not started, no step budget). */
  steps: number | null
}

export interface EpochPoint {
  /** Epochs completed across the chain (1-based). */
  x: number
  stage: string
  /** The 0-based epoch index within the stage. */
  epoch: number
  trainTop1: number
  trainTop5: number
  testTop1: number
  testTop5: number
  /** Mean over binary layers of the fraction of latent weights whose sign changed in the epoch; null when the
   * stage has no binary weights. */
  flipRatio: number | null
  seconds: number
}

export interface StepPoint {
  /** Steps completed across the chain (1-based). */
  x: number
  stage: string
  crossEntropy: number
  attention: number
  distillation: number
  total: number
  learningRate: number
  imagesPerSecond: number
}

export interface RunCurves {
  stages: StageSpan[]
  epochs: EpochPoint[]
  steps: StepPoint[]
  /** The last evaluation of each stage that ended with one. */
  stageEnds: Record<string, { top1: number; top5: number; stopped: boolean }>
}

export function runCurves(config: RunConfig, log: readonly LogLine[]): RunCurves {
  const started = new Map<string, { epochs: number; stepsPerEpoch: number }>()
  const stepsSeen = new Map<string, number>()
  for (const line of log) {
    if (line.kind === 'stage-start' && !started.has(line.stage))
      started.set(line.stage, { epochs: line.epochs, stepsPerEpoch: line.stepsPerEpoch })
    if (line.kind === 'step')
      stepsSeen.set(line.stage, Math.max(stepsSeen.get(line.stage) ?? 0, line.step + 1))
  }
  let epochOffset = 0
  let stepOffset = 0
  const stages = config.stages.map((stage): StageSpan => {
    // Steps per stage: the stage-start record's budget, else the most seen so far (a stage still running).
    const start = started.get(stage.name)
    const steps = start ? start.epochs * start.stepsPerEpoch : (stepsSeen.get(stage.name) ?? null)
    const span = { name: stage.name, epochOffset, epochs: stage.epochs, stepOffset, steps }
    epochOffset += stage.epochs
    stepOffset += steps ?? (stage.stepsPerEpoch > 0 ? stage.stepsPerEpoch * stage.epochs : 0)
    return span
  })
  const byName = new Map(stages.map((s) => [s.name, s]))
  const curves: RunCurves = { stages, epochs: [], steps: [], stageEnds: {} }
  for (const line of log) {
    const stage = byName.get(line.stage)
    if (!stage) continue
    if (line.kind === 'epoch') {
      const ratios = line.flipRatios.map((f) => f.ratio)
      curves.epochs.push({
        x: stage.epochOffset + line.epoch + 1,
        stage: line.stage,
        epoch: line.epoch,
        trainTop1: line.train.top1,
        trainTop5: line.train.top5,
        testTop1: line.test.top1,
        testTop5: line.test.top5,
        flipRatio: ratios.length ? ratios.reduce((a, b) => a + b, 0) / ratios.length : null,
        seconds: line.seconds,
      })
    } else if (line.kind === 'step') {
      curves.steps.push({
        x: stage.stepOffset + line.step + 1,
        stage: line.stage,
        ...line.loss,
        learningRate: line.learningRate,
        imagesPerSecond: line.imagesPerSecond,
      })
    } else if (line.kind === 'stage-end' && line.test) {
      curves.stageEnds[line.stage] = { top1: line.test.top1, top5: line.test.top5, stopped: line.stopped }
    }
  }
  return curves
}

/** Vertical lines and labels where each stage begins, on the epoch or the step axis (Plotly layout parts). */
export function stageMarks(curves: RunCurves, axis: 'epoch' | 'step') {
  const shapes: object[] = []
  const annotations: object[] = []
  curves.stages.forEach((stage, i) => {
    const x = (axis === 'epoch' ? stage.epochOffset : stage.stepOffset) + 0.5
    if (i > 0)
      shapes.push({
        type: 'line',
        xref: 'x',
        yref: 'paper',
        x0: x,
        x1: x,
        y0: 0,
        y1: 1,
        line: { dash: 'dot', width: 1, color: '#888' },
      })
    annotations.push({
      x,
      xref: 'x',
      y: 1,
      yref: 'paper',
      yanchor: 'bottom',
      xanchor: 'left',
      text: stage.name,
      showarrow: false,
      font: { size: 10 },
    })
  })
  return { shapes, annotations }
}

/** Seconds left for the whole chain, from the epochs timed so far; null before the first epoch ends. */
export function etaSeconds(run: RunMeta, curves: RunCurves): number | null {
  const timed = curves.epochs.filter((e) => Number.isFinite(e.seconds))
  if (timed.length === 0) return null
  const perEpoch = timed.slice(-3).reduce((sum, e) => sum + e.seconds, 0) / Math.min(3, timed.length)
  const left = run.stages.reduce((sum, s) => sum + Math.max(0, s.epochs - s.epochsCompleted), 0)
  return left * perEpoch
}
