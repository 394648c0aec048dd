/**
 * `bench train`: the cost of the method's extra work. In one run, on the backend already initialised, with the
 * same width, batch and input: the time of a plain real ResNet-18 training step and of each R2B stage's step
 * (student forward and backward, teacher forward, losses, optimiser), and their ratio. Synthetic inputs: the
 * step time does not depend on pixel values.
 */
import * as tf from '@tensorflow/tfjs'
import { makeRunConfig, parseStageRef, StudentSpec, type RunConfig } from '../../shared/run-config'
import type { Batch } from './batch'
import { StageTrainer } from './stage'
import { modelBuild, ResNet18 } from './models'

export interface BenchTrainOptions {
  /** Width multipliers to measure, each in its own round of all networks. */
  widths?: number[]
  batch?: number
  input?: number
  channels?: 1 | 3
  classes?: number
  /** Timed steps per network, after `warmup` untimed ones. */
  steps?: number
  warmup?: number
}

async function step(trainer: StageTrainer, batch: Batch): Promise<number> {
  const t0 = globalThis.performance.now()
  const parts = trainer.step(batch, 1)
  // Reading the loss waits for the whole step, as the training loop does every step.
  await parts.total.data()
  tf.dispose(Object.values(parts))
  return globalThis.performance.now() - t0
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] as number
}

/**
 * Figures per width, keys prefixed `w<width>_`. The default measures two widths because the ratio depends on
 * it: at small widths the convolutions are cheap and the method's extra element-wise work (quantizers, gate,
 * PReLU, the teacher's forward pass) weighs more than it does at full width.
 */
export async function benchTrain(options: BenchTrainOptions = {}): Promise<Record<string, number | string>> {
  const figures: Record<string, number | string> = { backend: tf.getBackend() }
  for (const width of options.widths ?? [0.25, 0.5]) {
    for (const [key, value] of Object.entries(await benchWidth(width, options)))
      figures[`w${width}_${key}`] = value
  }
  figures['target_ratio'] = 1.4
  return figures
}

async function benchWidth(
  width: number,
  options: BenchTrainOptions,
): Promise<Record<string, number | string>> {
  const batchSize = options.batch ?? 32
  const input = options.input ?? 28
  const channels = options.channels ?? 1
  const classes = options.classes ?? 10
  const steps = options.steps ?? 5
  const warmup = options.warmup ?? 2
  const config = makeRunConfig({
    preset: 'quick',
    pipeline: 'r2b',
    set: [
      `model.width=${width}`,
      `data.inputSize=${input}`,
      `data.channels=${channels}`,
      `data.classes=${classes}`,
      ...[0, 1, 2, 3].map((i) => `stages.${i}.batchSize=${batchSize}`),
    ],
  })
  const labels = new Float32Array(batchSize * classes)
  for (let i = 0; i < batchSize; i++) labels[i * classes + (i % classes)] = 1
  const batch: Batch = {
    images: tf.randomNormal([batchSize, input, input, channels], 0, 1, 'float32', 1) as tf.Tensor4D,
    labels: tf.tensor2d(labels, [batchSize, classes]),
  }
  const figures: Record<string, number | string> = {
    channels: Math.max(1, Math.round(64 * width)),
    batch: batchSize,
    input: `${input}x${input}x${channels}`,
    steps,
  }
  // All networks are built first and timed in rounds, one step each per round, so that drift in the machine's
  // load (other processes, heap growth) spreads evenly over them; each figure is a median over rounds.
  const trainers: StageTrainer[] = []
  try {
    let teacher: ResNet18 | null = null
    for (let index = 0; index < config.stages.length; index++) {
      const trainer: StageTrainer = new StageTrainer(config, index, { teacher, init: teacher })
      trainers.push(trainer)
      teacher = trainer.student
    }
    for (let round = 0; round < warmup; round++) for (const trainer of trainers) await step(trainer, batch)
    const times = trainers.map(() => [] as number[])
    for (let round = 0; round < steps; round++) {
      for (const [i, trainer] of trainers.entries()) times[i]!.push(await step(trainer, batch))
    }
    const realMs = median(times[0]!)
    figures['resnet18_step_ms'] = Math.round(realMs)
    trainers.slice(1).forEach((trainer, i) => {
      const ms = median(times[i + 1]!)
      figures[`${trainer.spec.name}_step_ms`] = Math.round(ms)
      figures[`${trainer.spec.name}_ratio`] = Number((ms / realMs).toFixed(2))
    })
  } finally {
    for (const trainer of trainers) {
      trainer.dispose()
      trainer.student.dispose()
    }
    tf.dispose([batch.images, batch.labels])
  }
  const ratios = Object.entries(figures)
    .filter(([k]) => k.endsWith('_ratio'))
    .map(([, v]) => v as number)
  figures['max_ratio'] = Math.max(...ratios)
  return figures
}

/**
 * Median milliseconds of one training step of each stage of a run's config, at a given batch, on synthetic
 * inputs of the config's shape: what an estimate before the run measures (the run's own networks, teachers
 * and losses, on the backend the worker selected). Stages are timed in rounds, like `bench train`.
 */
export async function benchStages(
  config: RunConfig,
  options: { batch: number; steps: number; warmup?: number },
): Promise<Record<string, number>> {
  const { inputSize: input, channels, classes } = config.data
  const batchSize = options.batch
  const labels = new Float32Array(batchSize * classes)
  for (let i = 0; i < batchSize; i++) labels[i * classes + (i % classes)] = 1
  const batch: Batch = {
    images: tf.randomNormal([batchSize, input, input, channels], 0, 1, 'float32', 1) as tf.Tensor4D,
    labels: tf.tensor2d(labels, [batchSize, classes]),
  }
  const trainers: StageTrainer[] = []
  const byName = new Map<string, ResNet18>()
  const extra: ResNet18[] = []
  try {
    for (let index = 0; index < config.stages.length; index++) {
      const spec = config.stages[index]!
      // Teachers and inits of this run are the stages built before. Another run's stage stands in as a real
      // ResNet-18 of this config's shape: a step's time does not depend on weights.
      const ref = (value: string) => {
        const target = parseStageRef(value)
        if (target.kind === 'stage') return byName.get(target.stage) ?? null
        if (target.kind === 'none') return null
        const standIn = new ResNet18(
          modelBuild(
            config,
            StudentSpec.parse({ architecture: 'resnet', activation: 'identity', scaling: 'none' }),
          ),
          `${target.stage}-stand-in`,
        )
        extra.push(standIn)
        return standIn
      }
      const trainer = new StageTrainer(config, index, { teacher: ref(spec.teacher), init: null })
      trainers.push(trainer)
      byName.set(spec.name, trainer.student)
    }
    for (let round = 0; round < (options.warmup ?? 1); round++)
      for (const trainer of trainers) await step(trainer, batch)
    const times = trainers.map(() => [] as number[])
    for (let round = 0; round < options.steps; round++)
      for (const [i, trainer] of trainers.entries()) times[i]!.push(await step(trainer, batch))
    return Object.fromEntries(trainers.map((t, i) => [t.spec.name, median(times[i]!)]))
  } finally {
    for (const model of extra) model.dispose()
    for (const trainer of trainers) {
      trainer.dispose()
      trainer.student.dispose()
    }
    tf.dispose([batch.images, batch.labels])
  }
}
