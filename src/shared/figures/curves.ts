/**
 * A run's curves, on one axis across the stage chain: per-epoch accuracy and flip ratios, per-step loss
 * components, learning rate and throughput, with where each stage begins. The one implementation behind the
 * HTML report and the UI, so both draw the same points at the same places.
 */
import type { RunConfig, StageSpec } from '../run-config'
import type { LogLine, RunMeta } from '../runs'
import { emaSmooth } from './series'

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
  trainLoss: number
  testLoss: number
  /** Mean over binary layers of the fraction of latent weights whose sign changed in the epoch; null when the
   * stage has no binary weights. */
  flipRatio: number | null
  seconds: number
}

export interface StepPoint {
  /** Steps completed across the chain (1-based). */
  x: number
  stage: string
  /** The 0-based epoch of the stage this step belongs to. */
  epoch: number
  /** The 0-based step within the stage (across its epochs). */
  step: number
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
        trainLoss: line.train.loss,
        testLoss: line.test.loss,
        flipRatio: ratios.length ? ratios.reduce((a, b) => a + b, 0) / ratios.length : null,
        seconds: line.seconds,
      })
    } else if (line.kind === 'step') {
      curves.steps.push({
        x: stage.stepOffset + line.step + 1,
        stage: line.stage,
        epoch: line.epoch,
        step: line.step,
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

/**
 * Vertical lines and labels where each stage begins, on the epoch or the step axis (Plotly layout parts).
 * Labels sit inside the plot's top edge, left of nothing else, so the plot's toolbar (in the top margin)
 * never covers them.
 */
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
      yanchor: 'top',
      xanchor: 'left',
      text: stage.name,
      showarrow: false,
      font: { size: 10 },
      opacity: 0.8,
    })
  })
  return { shapes, annotations }
}

/** A curve, one stage at a time: drawn as one line per stage, never joined across a stage boundary. */
export interface StageSegment {
  stage: string
  /** Position on the chain's axis (epochs or steps across stages, 1-based). */
  x: number[]
  /** Position within the stage: its epoch (1-based) or its step (1-based). */
  local: number[]
  y: number[]
}

export const EPOCH_METRICS = [
  'testTop1',
  'testTop5',
  'trainTop1',
  'trainTop5',
  'testLoss',
  'trainLoss',
  'flipRatio',
] as const
export const STEP_METRICS = [
  'crossEntropy',
  'attention',
  'distillation',
  'total',
  'learningRate',
  'imagesPerSecond',
] as const
export type EpochMetric = (typeof EPOCH_METRICS)[number]
export type StepMetric = (typeof STEP_METRICS)[number]
export type Metric = EpochMetric | StepMetric

export interface MetricInfo {
  label: string
  axis: 'epoch' | 'step'
  /** The y axis title, with its unit. */
  unit: string
  /** Plotly tick/hover format of the value. */
  format: string
  /** Whether a log axis is the better default (values over orders of magnitude). */
  log: boolean
}

/** What each metric is, in words, with its unit: one table for the dashboard, Compare and the report. */
export const METRICS: Record<Metric, MetricInfo> = {
  testTop1: { label: 'test top-1', axis: 'epoch', unit: 'accuracy', format: '.1%', log: false },
  testTop5: { label: 'test top-5', axis: 'epoch', unit: 'accuracy', format: '.1%', log: false },
  trainTop1: { label: 'train top-1', axis: 'epoch', unit: 'accuracy', format: '.1%', log: false },
  trainTop5: { label: 'train top-5', axis: 'epoch', unit: 'accuracy', format: '.1%', log: false },
  testLoss: { label: 'test loss', axis: 'epoch', unit: 'cross-entropy (nats)', format: '.4f', log: false },
  trainLoss: { label: 'train loss', axis: 'epoch', unit: 'cross-entropy (nats)', format: '.4f', log: false },
  flipRatio: {
    label: 'latent-weight sign flips',
    axis: 'epoch',
    unit: 'fraction of binary weights',
    format: '.3%',
    log: false,
  },
  crossEntropy: { label: 'cross-entropy', axis: 'step', unit: 'nats', format: '.4f', log: false },
  attention: {
    label: 'attention loss (unweighted)',
    axis: 'step',
    unit: 'L_att (unitless: normalised maps)',
    format: '.4g',
    log: false,
  },
  distillation: {
    label: 'KD (unweighted, T²·KL)',
    axis: 'step',
    unit: 'nats',
    format: '.4f',
    log: false,
  },
  total: { label: 'total (weighted sum minimised)', axis: 'step', unit: 'loss', format: '.4f', log: false },
  learningRate: { label: 'learning rate', axis: 'step', unit: 'learning rate', format: '.2e', log: false },
  imagesPerSecond: { label: 'throughput', axis: 'step', unit: 'images / s', format: '.0f', log: false },
}

/**
 * One metric of a run as per-stage segments. `stage` keeps one stage only (its own axis then counts from 1);
 * `smoothing` is TensorBoard's debiased EMA weight, applied within each stage (a stage's first steps are not
 * pulled toward the last ones of the stage before).
 */
export function metricSegments(
  curves: RunCurves,
  metric: Metric,
  options: { stage?: string | null; smoothing?: number } = {},
): StageSegment[] {
  const info = METRICS[metric]
  const segments: StageSegment[] = []
  for (const span of curves.stages) {
    if (options.stage && span.name !== options.stage) continue
    const x: number[] = []
    const local: number[] = []
    let y: number[] = []
    if (info.axis === 'epoch') {
      for (const e of curves.epochs) {
        if (e.stage !== span.name) continue
        const value = e[metric as EpochMetric]
        if (value === null) continue
        x.push(options.stage ? e.epoch + 1 : e.x)
        local.push(e.epoch + 1)
        y.push(value)
      }
    } else {
      for (const s of curves.steps) {
        if (s.stage !== span.name) continue
        x.push(options.stage ? s.step + 1 : s.x)
        local.push(s.step + 1)
        y.push(s[metric as StepMetric])
      }
      if (options.smoothing) y = emaSmooth(y, options.smoothing)
    }
    if (x.length > 0) segments.push({ stage: span.name, x, local, y })
  }
  return segments
}

/**
 * What a stage trains, as a role shared across pipelines: the real network, the tanh student, binary
 * activations with real weights, or fully binary. Compare aligns runs by it (r2b's `ban` with the baseline's
 * `sb-ban`), whatever the stages are called.
 */
export function stageRole(student: StageSpec['student']): { key: string; label: string } {
  if (student.architecture === 'resnet') return { key: 'real', label: 'real network' }
  const weights = student.weights === 'sign' ? 'binary weights' : 'real weights'
  const activation =
    student.activation === 'tanh'
      ? 'tanh activations'
      : student.activation === 'identity'
        ? 'real activations'
        : 'binary activations'
  const key = `${student.activation === 'approxsign' ? 'sign' : student.activation}/${student.weights}`
  return { key, label: `${activation}, ${weights}` }
}

export interface LiveProgress {
  stage: string
  stageIndex: number
  /** The 0-based epoch being trained. */
  epoch: number
  epochs: number
  /** Steps done in the current epoch, and its length (null when unknown). */
  stepInEpoch: number
  stepsPerEpoch: number | null
  /** Steps done in the stage and its length (null when unknown). */
  stepsDone: number
  stepsTotal: number | null
}

/** Where a run is within its current stage, step by step, from its log; null before its first step. */
export function liveProgress(run: RunMeta, curves: RunCurves): LiveProgress | null {
  const last = curves.steps.at(-1)
  if (!last) return null
  const stageIndex = curves.stages.findIndex((s) => s.name === last.stage)
  const span = curves.stages[stageIndex]
  const meta = run.stages.find((s) => s.name === last.stage)
  if (!span || !meta) return null
  const stepsPerEpoch = span.steps !== null ? span.steps / Math.max(1, span.epochs) : null
  const stepsDone = last.step + 1
  return {
    stage: last.stage,
    stageIndex,
    epoch: last.epoch,
    epochs: span.epochs,
    stepInEpoch: stepsPerEpoch ? stepsDone - last.epoch * stepsPerEpoch : stepsDone,
    stepsPerEpoch,
    stepsDone,
    stepsTotal: span.steps,
  }
}

export interface TimeLeft {
  seconds: number
  /** Steps the figure counts and the stages it could not count (size not known yet). */
  stepsLeft: number
  uncounted: string[]
  /** How the step time was measured, in words. */
  basis: string
}

const median = (values: number[]) => {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b)
  return sorted.length ? (sorted[Math.floor(sorted.length / 2)] as number) : Number.NaN
}

/**
 * Seconds left for the whole chain, from the first steps on: each stage's step time is the median over its
 * last 50 steps of batch / images per second (a stage not started yet takes that of the last stage with the
 * same architecture, else of the current one), plus the measured time per epoch outside the steps
 * (evaluation, probes, checkpoint). Null before the first step.
 */
export function timeLeft(run: RunMeta, config: RunConfig, curves: RunCurves): TimeLeft | null {
  if (curves.steps.length === 0) return null
  const stepSeconds = new Map<string, number>()
  for (const stage of config.stages) {
    const recent = curves.steps.filter((s) => s.stage === stage.name).slice(-50)
    const t = median(recent.map((s) => stage.batchSize / s.imagesPerSecond))
    if (Number.isFinite(t)) stepSeconds.set(stage.name, t)
  }
  const current = curves.steps.at(-1)!.stage
  // Time per epoch outside the optimiser steps: epoch seconds minus its steps' time.
  const overheads: number[] = []
  for (const e of curves.epochs) {
    const span = curves.stages.find((s) => s.name === e.stage)
    const t = stepSeconds.get(e.stage)
    if (span?.steps && t !== undefined)
      overheads.push(Math.max(0, e.seconds - (span.steps / span.epochs) * t))
  }
  const overhead = overheads.length ? median(overheads) : 0
  let seconds = 0
  let stepsLeft = 0
  const uncounted: string[] = []
  config.stages.forEach((stage, i) => {
    const meta = run.stages[i]
    const span = curves.stages[i]
    if (!meta || !span || meta.status === 'finished') return
    const done = curves.steps.filter((s) => s.stage === stage.name).at(-1)?.step ?? -1
    const total = span.steps ?? (stage.stepsPerEpoch > 0 ? stage.stepsPerEpoch * stage.epochs : null)
    if (total === null) return void uncounted.push(stage.name)
    const sameKind = config.stages
      .slice(0, i)
      .reverse()
      .find((s) => s.student.architecture === stage.student.architecture && stepSeconds.has(s.name))
    const t =
      stepSeconds.get(stage.name) ??
      (sameKind ? stepSeconds.get(sameKind.name) : undefined) ??
      stepSeconds.get(current) ??
      0
    const left = Math.max(0, total - (done + 1))
    stepsLeft += left
    const epochsLeft = Math.max(0, stage.epochs - meta.epochsCompleted)
    seconds += left * t + epochsLeft * overhead
  })
  return {
    seconds,
    stepsLeft,
    uncounted,
    basis:
      'median step time of the last 50 steps per stage, plus the measured time per epoch outside the steps',
  }
}
