/**
 * One stage of a pipeline: a student trained on labels and, when the stage has a teacher, on the teacher's
 * attention maps and logits. The teacher runs in inference mode outside the gradient tape: no gradient can
 * reach it and its BN statistics stay where they are.
 *
 * runStage is an async generator of plain records: a worker pauses it by not pulling, stops it through the
 * signal (it then finishes at the next step and reports `stopped`), and resumes it from an epoch checkpoint.
 */
import * as tf from '@tensorflow/tfjs'
import type { RunConfig, StageSpec } from '../../shared/run-config'
import type {
  Accuracy,
  AttentionPoint,
  AttentionRecord,
  EngineRecord,
  FlipRatio,
  GateRecord,
  GateValues,
  LossComponents,
  StepRecord,
} from '../../shared/records'
import { attentionLoss, attentionMap } from './attention'
import type { Batch } from './batch'
import { copyMatchingWeights, restoreCheckpoint, saveCheckpoint, type Checkpoint } from './checkpoint'
import type { DataSource } from './data'
import { applyBnUpdates, forwardContext, type ForwardContext } from './layers'
import { crossEntropy, distillationLoss, topKCorrect } from './losses'
import { ResNet18, TRANSFER_POINTS, modelBuild, type ForwardResult } from './models'
import { Optimizer } from './optimizer'
import { signPlusOne } from './quantizers'
import { mixSeed } from '../../shared/random'
import { scheduleMultiplier } from './schedule'

export interface StopSignal {
  readonly aborted: boolean
}

export interface StageOptions {
  config: RunConfig
  stageIndex: number
  data: DataSource
  /** The frozen teacher; required when the stage's losses use one. */
  teacher?: ResNet18 | null
  /** A trained model to initialise the student from (matching names and shapes). */
  init?: ResNet18 | null
  /** Resume from this epoch checkpoint of the same stage (weights, BN statistics, optimiser state). */
  resume?: Checkpoint | null
  signal?: StopSignal
}

export interface StepTensors {
  total: tf.Scalar
  crossEntropy: tf.Scalar
  attention: tf.Scalar
  distillation: tf.Scalar
  logits: tf.Tensor2D
}

/** Whether a stage's losses need its teacher. */
export function usesTeacher(spec: StageSpec): boolean {
  return spec.teacher !== 'none' && (spec.losses.attention.weight > 0 || spec.losses.distillation.weight > 0)
}

/** The trainer of one stage: the student, its optimiser and the step; runStage drives it. */
export class StageTrainer {
  readonly spec: StageSpec
  readonly student: ResNet18
  readonly optimizer: Optimizer
  readonly teacher: ResNet18 | null

  constructor(
    readonly config: RunConfig,
    readonly stageIndex: number,
    options: { teacher?: ResNet18 | null; init?: ResNet18 | null } = {},
  ) {
    const spec = config.stages[stageIndex]
    if (!spec) throw new Error(`no stage ${stageIndex}`)
    this.spec = spec
    this.teacher = usesTeacher(spec) ? (options.teacher ?? null) : null
    if (usesTeacher(spec) && !this.teacher)
      throw new Error(`stage ${spec.name} needs its teacher (${spec.teacher})`)
    this.student = new ResNet18(modelBuild(config, spec.student, mixSeed(config.seed, stageIndex)), spec.name)
    if (options.init) copyMatchingWeights(options.init, this.student)
    const clip = config.model.latentClip
    this.optimizer = new Optimizer(
      spec.optimizer,
      [...this.student.store.weights].map(([name, variable]) => ({
        name,
        variable,
        decay: this.student.store.decayed.has(name),
        clip: clip && this.student.store.binaryKernels.has(name),
      })),
    )
  }

  /** Teacher outputs for a batch, computed outside any tape; the caller disposes them. */
  teacherOutputs(images: tf.Tensor4D): { logits: tf.Tensor2D; points: tf.Tensor4D[] } | null {
    const teacher = this.teacher
    if (!teacher) return null
    return tf.tidy(() => {
      const out = teacher.forward(images, forwardContext(false))
      return { logits: out.logits, points: out.points }
    })
  }

  /** The stage's loss on a batch, its components kept in `parts` (for use inside a gradient function). */
  private loss(
    out: ForwardResult,
    labels: tf.Tensor2D,
    teacher: { logits: tf.Tensor2D; points: tf.Tensor4D[] } | null,
  ): StepTensors {
    const { losses } = this.spec
    const ce = crossEntropy(out.logits, labels, losses.crossEntropy.labelSmoothing)
    const att =
      teacher && losses.attention.weight > 0
        ? attentionLoss(out.points, teacher.points, losses.attention.form)
        : tf.scalar(0)
    const kd =
      teacher && losses.distillation.weight > 0
        ? distillationLoss(out.logits, teacher.logits, losses.distillation.temperature)
        : tf.scalar(0)
    const total = tf.addN([
      tf.mul(ce, losses.crossEntropy.weight),
      tf.mul(att, losses.attention.weight),
      tf.mul(kd, losses.distillation.weight),
    ]) as tf.Scalar
    return { total, crossEntropy: ce, attention: att, distillation: kd, logits: out.logits }
  }

  /**
   * Gradients of the stage loss with respect to `variables` (the student's trainable variables by default);
   * variables the loss does not reach are absent from the result. Used by the step and by tests.
   */
  gradients(
    batch: Batch,
    variables: tf.Variable[] = this.student.trainableVariables(),
    ctx: ForwardContext = forwardContext(true),
  ): { grads: tf.NamedTensorMap; parts: StepTensors } {
    const teacher = this.teacherOutputs(batch.images)
    let parts: StepTensors | null = null
    const { grads, value } = tf.variableGrads(() => {
      const step = this.loss(this.student.forward(batch.images, ctx), batch.labels, teacher)
      parts = {
        total: step.total,
        crossEntropy: tf.keep(step.crossEntropy),
        attention: tf.keep(step.attention),
        distillation: tf.keep(step.distillation),
        logits: tf.keep(step.logits),
      }
      return step.total
    }, variables)
    if (teacher) tf.dispose([teacher.logits, ...teacher.points])
    const kept = parts as unknown as StepTensors
    return { grads, parts: { ...kept, total: value } }
  }

  /** One optimiser step at learning-rate multiplier `multiplier`; the caller disposes the returned tensors. */
  step(batch: Batch, multiplier: number): StepTensors {
    const ctx = forwardContext(true)
    const { grads, parts } = this.gradients(batch, undefined, ctx)
    this.optimizer.apply(grads, multiplier)
    tf.dispose(Object.values(grads))
    applyBnUpdates(ctx)
    return parts
  }

  dispose(): void {
    this.optimizer.dispose()
  }
}

/** Batches per epoch: the training split in whole batches, capped by the stage's budget. */
export function stepsPerEpoch(spec: StageSpec, trainSize: number): number {
  const full = Math.floor(trainSize / spec.batchSize)
  return spec.stepsPerEpoch > 0 ? Math.min(full, spec.stepsPerEpoch) : full
}

/** Evenly spaced fixed test images whose maps and gates are recorded every epoch. */
export function probeIndices(count: number, testSize: number): number[] {
  const n = Math.min(count, testSize)
  return Array.from({ length: n }, (_, i) => Math.floor((i * testSize) / n))
}

/** Top-1/top-5 and mean cross-entropy on the test split, plus the gates' mean over the first images. */
export async function evaluate(
  model: ResNet18,
  data: DataSource,
  options: { batchSize: number; limit?: number; gateSubset?: number },
): Promise<{ accuracy: Accuracy; gateMeans: Map<string, Float32Array>; gateImages: number }> {
  let count = 0
  let top1 = 0
  let top5 = 0
  let loss = 0
  let gateImages = 0
  const gateSums = new Map<string, tf.Tensor1D>()
  for await (const batch of data.testBatches({ batchSize: options.batchSize, limit: options.limit })) {
    const n = batch.images.shape[0]
    const takeGates = gateImages < (options.gateSubset ?? 0)
    const result = tf.tidy(() => {
      const out = model.forward(batch.images, forwardContext(false))
      const { top1: t1, topK } = topKCorrect(out.logits, batch.labels, 5)
      const ce = tf.mul(crossEntropy(out.logits, batch.labels), n)
      if (takeGates) {
        for (const gate of out.gates) {
          const sum = tf.sum(gate.values, 0) as tf.Tensor1D
          const previous = gateSums.get(gate.block)
          gateSums.set(gate.block, tf.keep(previous ? tf.add(previous, sum) : sum))
          previous?.dispose()
        }
      }
      return tf.stack([t1, topK, ce])
    })
    const [c1, c5, l] = (await result.data()) as Float32Array
    result.dispose()
    tf.dispose([batch.images, batch.labels])
    if (takeGates) gateImages += n
    count += n
    top1 += c1 as number
    top5 += c5 as number
    loss += l as number
  }
  const gateMeans = new Map<string, Float32Array>()
  for (const [block, sum] of gateSums) {
    const values = (await sum.data()) as Float32Array
    gateMeans.set(
      block,
      values.map((v) => v / Math.max(1, gateImages)),
    )
    sum.dispose()
  }
  return { accuracy: { top1: top1 / count, top5: top5 / count, loss: loss / count }, gateMeans, gateImages }
}

/** Normalised attention maps [P, H, W] at every transfer point, and gate values [P, C] per block. */
export async function probeSnapshot(
  model: ResNet18,
  images: tf.Tensor4D,
  form: 'paper' | 'larq',
): Promise<{
  maps: { point: string; shape: number[]; data: Float32Array }[]
  gates: { block: string; shape: number[]; data: Float32Array }[]
}> {
  const { maps, gates } = tf.tidy(() => {
    const out = model.forward(images, forwardContext(false))
    return {
      maps: out.points.map((p) => tf.reshape(attentionMap(p, form), [p.shape[0], p.shape[1], p.shape[2]])),
      gates: out.gates.map((g) => ({ block: g.block, values: g.values })),
    }
  })
  const mapData = await Promise.all(maps.map((m) => m.data() as Promise<Float32Array>))
  const gateData = await Promise.all(gates.map((g) => g.values.data() as Promise<Float32Array>))
  const result = {
    maps: maps.map((m, j) => ({
      point: TRANSFER_POINTS[j] as string,
      shape: m.shape.slice(),
      data: mapData[j] as Float32Array,
    })),
    gates: gates.map((g, j) => ({
      block: g.block,
      shape: g.values.shape.slice(),
      data: gateData[j] as Float32Array,
    })),
  }
  tf.dispose([...maps, ...gates.map((g) => g.values)])
  return result
}

/** Signs of every binary layer's latent weights, kept to measure flips over an epoch. */
function signSnapshot(model: ResNet18): Map<string, tf.Tensor> {
  return new Map(model.binaryLayerKernels().map(({ layer, kernel }) => [layer, tf.keep(signPlusOne(kernel))]))
}

async function flipRatios(model: ResNet18, before: Map<string, tf.Tensor>): Promise<FlipRatio[]> {
  const kernels = model.binaryLayerKernels()
  if (kernels.length === 0) return []
  const ratios = tf.tidy(() =>
    tf.stack(
      kernels.map(({ layer, kernel }) =>
        tf.mean(tf.cast(tf.notEqual(before.get(layer) as tf.Tensor, signPlusOne(kernel)), 'float32')),
      ),
    ),
  )
  const values = (await ratios.data()) as Float32Array
  ratios.dispose()
  tf.dispose([...before.values()])
  return kernels.map(({ layer }, i) => ({ layer, ratio: values[i] as number }))
}

const now = (): number => globalThis.performance.now()

interface EpochResult {
  /** Running accuracy over the epoch's training batches (train mode). */
  train: Accuracy
  /** True when the signal stopped the epoch before its end. */
  stopped: boolean
}

/** One epoch of training: a `step` record per optimiser step; the running accuracy at the end. */
async function* trainEpoch(
  trainer: StageTrainer,
  data: DataSource,
  options: { epoch: number; perEpoch: number; signal?: StopSignal },
): AsyncGenerator<StepRecord, EpochResult> {
  const { spec, config, stageIndex } = trainer
  const { epoch, perEpoch } = options
  let seen = 0
  let correct1 = 0
  let correct5 = 0
  let lossSum = 0
  let step = epoch * perEpoch
  const batches = data.trainBatches({
    epoch,
    batchSize: spec.batchSize,
    seed: mixSeed(config.seed, stageIndex),
    limit: perEpoch,
    augment: spec.augment,
  })
  for await (const batch of batches) {
    if (options.signal?.aborted) {
      tf.dispose([batch.images, batch.labels])
      return { train: { top1: 0, top5: 0, loss: 0 }, stopped: true }
    }
    const t0 = now()
    const multiplier = scheduleMultiplier(spec.schedule, step / perEpoch, spec.epochs)
    const parts = trainer.step(batch, multiplier)
    const stats = tf.tidy(() => {
      const { top1, topK } = topKCorrect(parts.logits, batch.labels, 5)
      return tf.stack([parts.crossEntropy, parts.attention, parts.distillation, parts.total, top1, topK])
    })
    const [ce, att, kd, total, c1, c5] = (await stats.data()) as Float32Array
    tf.dispose([stats, parts.total, parts.crossEntropy, parts.attention, parts.distillation, parts.logits])
    const n = batch.images.shape[0]
    tf.dispose([batch.images, batch.labels])
    seen += n
    correct1 += c1 as number
    correct5 += c5 as number
    lossSum += (total as number) * n
    const loss: LossComponents = {
      crossEntropy: ce as number,
      attention: att as number,
      distillation: kd as number,
      total: total as number,
    }
    yield {
      kind: 'step',
      stage: spec.name,
      epoch,
      step,
      loss,
      learningRate: spec.optimizer.learningRate * multiplier,
      imagesPerSecond: (n * 1000) / (now() - t0),
    }
    step++
  }
  const per = Math.max(1, seen)
  return { train: { top1: correct1 / per, top5: correct5 / per, loss: lossSum / per }, stopped: false }
}

/** The probes' attention maps (student and teacher) and gate values after an epoch. */
async function probeRecords(
  trainer: StageTrainer,
  probe: { images: tf.Tensor4D; probes: number[] },
  epochsCompleted: number,
  gateMeans: { means: Map<string, Float32Array>; images: number },
): Promise<(AttentionRecord | GateRecord)[]> {
  const { spec } = trainer
  const form = spec.losses.attention.form
  const student = await probeSnapshot(trainer.student, probe.images, form)
  const teacher = trainer.teacher ? await probeSnapshot(trainer.teacher, probe.images, form) : null
  const points: AttentionPoint[] = student.maps.map((m, j) => {
    const t = teacher?.maps[j]
    return {
      point: m.point,
      student: { shape: m.shape, data: m.data },
      teacher: t ? { shape: t.shape, data: t.data } : null,
    }
  })
  const base = { stage: spec.name, epochsCompleted, probes: probe.probes }
  const records: (AttentionRecord | GateRecord)[] = [{ kind: 'attention', ...base, form, points }]
  if (student.gates.length) {
    const gates: GateValues[] = student.gates.map((g) => ({
      block: g.block,
      mean: gateMeans.means.get(g.block) ?? new Float32Array(g.shape[1] ?? 0),
      perProbe: { shape: g.shape, data: g.data },
    }))
    records.push({ kind: 'gates', ...base, subset: gateMeans.images, gates })
  }
  return records
}

/**
 * Trains one stage and yields its records: per epoch, its steps (trainEpoch), its evaluation, the probes'
 * maps and gates (probeRecords) and its checkpoint. Returns the trained student (the caller owns it). The
 * trainer and every per-step tensor are disposed here.
 */
export async function* runStage(options: StageOptions): AsyncGenerator<EngineRecord, ResNet18> {
  const { config, stageIndex, data, signal } = options
  const trainer = new StageTrainer(config, stageIndex, { teacher: options.teacher, init: options.init })
  const { spec, student } = trainer
  const perEpoch = stepsPerEpoch(spec, data.trainSize)
  let startEpoch = 0
  if (options.resume) {
    restoreCheckpoint(student, options.resume, trainer.optimizer)
    startEpoch = options.resume.manifest.epochsCompleted
  }
  const probes = probeIndices(config.eval.probes, data.testSize)
  const probeBatch = probes.length ? await data.testImages(probes) : null
  const started = now()
  let test: Accuracy | null = null
  let stopped = false
  let completed = false

  yield {
    kind: 'stage-start',
    stage: spec.name,
    stageIndex,
    epochs: spec.epochs,
    stepsPerEpoch: perEpoch,
    startEpoch,
    teacher: trainer.teacher ? spec.teacher : null,
  }

  try {
    for (let epoch = startEpoch; epoch < spec.epochs && !stopped; epoch++) {
      const epochStart = now()
      const signs = signSnapshot(student)
      const { train, stopped: cut } = yield* trainEpoch(trainer, data, { epoch, perEpoch, signal })
      if (cut) {
        tf.dispose([...signs.values()])
        stopped = true
        break
      }
      const flips = await flipRatios(student, signs)
      const evaluation = await evaluate(student, data, {
        batchSize: config.eval.batchSize,
        limit: config.data.testLimit,
        gateSubset: config.eval.gateSubset,
      })
      test = evaluation.accuracy
      yield {
        kind: 'epoch',
        stage: spec.name,
        epoch,
        train,
        test,
        flipRatios: flips,
        seconds: (now() - epochStart) / 1000,
      }
      if (probeBatch) {
        const gateMeans = { means: evaluation.gateMeans, images: evaluation.gateImages }
        const probe = { images: probeBatch.images as tf.Tensor4D, probes }
        for (const record of await probeRecords(trainer, probe, epoch + 1, gateMeans)) yield record
      }
      const meta = { stage: spec.name, epochsCompleted: epoch + 1, step: (epoch + 1) * perEpoch }
      const checkpoint = await saveCheckpoint(student, meta, trainer.optimizer)
      yield { kind: 'checkpoint', stage: spec.name, epochsCompleted: epoch + 1, ...checkpoint }
    }
    yield {
      kind: 'stage-end',
      stage: spec.name,
      stageIndex,
      test,
      seconds: (now() - started) / 1000,
      stopped,
    }
    completed = true
    return student
  } finally {
    // Stopped from outside (generator return) or failed: the student is nobody's, so free it.
    if (!completed) student.dispose()
    trainer.dispose()
    if (probeBatch) tf.dispose([probeBatch.images, probeBatch.labels])
  }
}
