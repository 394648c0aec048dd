/**
 * Conformance dump: what the tfjs engine computes for a set of models and one fixed batch, for the PyTorch
 * engine (python/) to reproduce. python/tests runs this script and compares.
 *
 *   npx tsx test/conformance/dump.ts <out dir> [wasm|cpu]
 *
 * Per case (the teacher and each student kind, both stems, width 0.125, inputs 28 and 32, Adam and SGD), in
 * <out>/<case>/:
 *   case.json       the run config, the stage index, the teacher case, the schedule multipliers of the steps
 *   ckpt0/          the model before training: seeded init, then every BN statistic, BN affine, PReLU slope,
 *                   scale and bias set to seeded random values (so a transposed or misnamed tensor shows)
 *   ckpt1/, ckpt2/  after one and two optimiser steps (weights, BN statistics, the optimiser's state: Adam's
 *                   moments or SGD's velocity; step count)
 *   tensors.*       the batch; inference-mode logits, transfer points (NHWC), attention maps (both forms),
 *                   gate values, loss functions on them against the case's teacher; per step the loss
 *                   components, training-mode logits and the gradient of every weight (tfjs layout); the
 *                   elements near each kink (see below).
 * And in <out>/data/ the dataset reader's batches over a small store it writes (several augmentations), and
 * in <out>/rng.json the seeded generators' and schedules' values.
 *
 * Kinks: where a pre-activation lies within rounding of a ReLU, PReLU, sign or STE-mask kink, two correct
 * engines may take different sides, and one such element moves upstream gradients by ~1e-2. Per pass the dump
 * lists, for every kink site, the elements within 1e-4 (relative) of the kink and their values; the PyTorch
 * tests take tfjs's side there and count the flips. Observing the layers' inputs and outputs for this wraps
 * BatchNorm/PReLU/Dense/QuantConv2d.prototype.apply in this process only (each calls the original).
 */
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import * as tf from '@tensorflow/tfjs'
import { attentionLoss, attentionMap } from '../../src/main/engine/attention'
import { modelFromCheckpoint, saveCheckpoint, type Checkpoint } from '../../src/main/engine/checkpoint'
import {
  applyBnUpdates,
  BatchNorm,
  Dense,
  forwardContext,
  ParamStore,
  PReLU,
  QuantConv2d,
  type ForwardContext,
} from '../../src/main/engine/layers'
import { crossEntropy, distillationLoss } from '../../src/main/engine/losses'
import { TRANSFER_POINTS, type ResNet18 } from '../../src/main/engine/models'
import { scheduleMultiplier } from '../../src/main/engine/schedule'
import { StageTrainer } from '../../src/main/engine/stage'
import { DatasetReader } from '../../src/main/datasets/reader'
import { DatasetWriter } from '../../src/main/datasets/store'
import { initBackend } from '../../src/main/backend/backend'
import { beta, mixSeed, mulberry32, normal, permutation, randomInt } from '../../src/shared/random'
import { RunConfig, ScheduleSpec, type RunConfigInput } from '../../src/shared/run-config'
import type { BackendRequest } from '../../src/shared/backend'
import { TensorBundle, writeCheckpointDir } from './bundle'

const BATCH = 6
const MULTIPLIERS = [0.5, 0.8]

interface Group {
  stem: 'cifar' | 'imagenet'
  inputSize: number
  channels: 1 | 3
  classes: number
}

const GROUPS: Record<string, Group> = {
  c28: { stem: 'cifar', inputSize: 28, channels: 1, classes: 10 },
  i28: { stem: 'imagenet', inputSize: 28, channels: 3, classes: 7 },
  c32: { stem: 'cifar', inputSize: 32, channels: 3, classes: 10 },
}

type StageInput = NonNullable<RunConfigInput['stages']>[number]
type ModelInput = NonNullable<RunConfigInput['model']>

interface Case {
  name: string
  group: string
  /** Absent for the teacher case of the group. */
  student?: StageInput['student']
  model?: ModelInput
  losses?: StageInput['losses']
  optimizer?: StageInput['optimizer']
}

const ATT_LARQ = { weight: 30, form: 'larq' as const }
const ATT_PAPER = { weight: 2, form: 'paper' as const }

export const CASES: Case[] = [
  { name: 'teacher-c28', group: 'c28', optimizer: { learningRate: 1e-3, weightDecay: 5e-3 } },
  {
    name: 'tanh-gate',
    group: 'c28',
    student: { architecture: 'binary', activation: 'tanh', weights: 'real', scaling: 'gate' },
    losses: { attention: ATT_LARQ, distillation: { weight: 3, temperature: 1 } },
    optimizer: { learningRate: 2e-3, weightDecay: 1e-3 },
  },
  {
    name: 'ban-gate-paper',
    group: 'c28',
    student: { architecture: 'binary', activation: 'sign', weights: 'real', scaling: 'gate' },
    losses: {
      crossEntropy: { weight: 1, labelSmoothing: 0.1 },
      attention: ATT_PAPER,
      distillation: { weight: 3, temperature: 2 },
    },
    optimizer: { learningRate: 1e-3, weightDecay: 1e-3 },
  },
  {
    name: 'bnn-gate',
    group: 'c28',
    student: { architecture: 'binary', activation: 'sign', weights: 'sign', scaling: 'gate' },
    model: { binaryPadding: 'one' },
    losses: { distillation: { weight: 0.8, temperature: 1 } },
    optimizer: { learningRate: 1e-2, weightDecay: 0 },
  },
  {
    name: 'ban-none-bds',
    group: 'c28',
    student: { architecture: 'binary', activation: 'sign', weights: 'real', scaling: 'none' },
    model: { downsample: 'binary', binaryPadding: 'zero' },
    losses: { attention: ATT_LARQ },
    optimizer: { learningRate: 1e-3, weightDecay: 1e-3 },
  },
  {
    name: 'bnn-learned-bds',
    group: 'c28',
    student: { architecture: 'binary', activation: 'sign', weights: 'sign', scaling: 'learned' },
    model: { downsample: 'binary', binaryPadding: 'one', weightScale: 'learned', steClip: 1.25 },
    losses: { distillation: { weight: 0.8, temperature: 1 } },
    optimizer: { learningRate: 1e-2, weightDecay: 1e-3 },
  },
  { name: 'teacher-i28', group: 'i28', optimizer: { learningRate: 1e-3, weightDecay: 5e-3 } },
  {
    name: 'bnn-gate-bds-mean',
    group: 'i28',
    student: { architecture: 'binary', activation: 'sign', weights: 'sign', scaling: 'gate' },
    model: { downsample: 'binary', binaryPadding: 'zero', weightScale: 'mean' },
    losses: { distillation: { weight: 0.8, temperature: 1 } },
    optimizer: { learningRate: 1e-2, weightDecay: 0 },
  },
  {
    name: 'approx-learned',
    group: 'i28',
    student: { architecture: 'binary', activation: 'approxsign', weights: 'real', scaling: 'learned' },
    model: { binaryPadding: 'one' },
    losses: { attention: ATT_LARQ, distillation: { weight: 3, temperature: 1 } },
    optimizer: { learningRate: 1e-3, weightDecay: 1e-3 },
  },
  {
    name: 'tanh-none-bds',
    group: 'i28',
    student: { architecture: 'binary', activation: 'tanh', weights: 'real', scaling: 'none' },
    model: { downsample: 'binary' },
    losses: { attention: { weight: 1, form: 'paper' }, distillation: { weight: 3, temperature: 1.5 } },
    optimizer: { learningRate: 1e-3, weightDecay: 1e-3 },
  },
  { name: 'teacher-c32', group: 'c32', optimizer: { learningRate: 1e-3, weightDecay: 5e-3 } },
  {
    name: 'ban-learned-c32',
    group: 'c32',
    student: { architecture: 'binary', activation: 'sign', weights: 'real', scaling: 'learned' },
    model: { binaryPadding: 'one', steClip: 1.5 },
    losses: { attention: ATT_LARQ, distillation: { weight: 3, temperature: 1 } },
    optimizer: { learningRate: 1e-3, weightDecay: 1e-3 },
  },
  {
    name: 'bnn-gate-bds-c32',
    group: 'c32',
    student: { architecture: 'binary', activation: 'sign', weights: 'sign', scaling: 'gate' },
    model: { downsample: 'binary', binaryPadding: 'one' },
    losses: { distillation: { weight: 0.8, temperature: 1 } },
    optimizer: { learningRate: 1e-2, weightDecay: 1e-3 },
  },
  // SGD (last, so the cases above keep their seeds): with momentum, so that the second step uses the velocity
  // restored from ckpt1, and with decay; a fully binary student for the latent clip under SGD.
  {
    name: 'teacher-sgd-c28',
    group: 'c28',
    optimizer: { kind: 'sgd', learningRate: 0.05, momentum: 0.9, weightDecay: 5e-3 },
  },
  {
    name: 'bnn-sgd-c32',
    group: 'c32',
    student: { architecture: 'binary', activation: 'sign', weights: 'sign', scaling: 'gate' },
    model: { binaryPadding: 'one' },
    losses: { distillation: { weight: 0.8, temperature: 1 } },
    optimizer: { kind: 'sgd', learningRate: 1, momentum: 0.9, weightDecay: 1e-3 },
  },
]

const TEACHER_STAGE: StageInput = {
  name: 'teacher',
  student: { architecture: 'resnet', activation: 'identity', weights: 'real', scaling: 'none' },
}

function caseConfig(c: Case): { config: RunConfig; stageIndex: number } {
  const g = GROUPS[c.group]!
  const stages: StageInput[] = c.student
    ? [
        TEACHER_STAGE,
        {
          name: 'student',
          student: c.student,
          teacher: 'stage:teacher',
          losses: c.losses ?? {},
          optimizer: c.optimizer ?? {},
        },
      ]
    : [{ ...TEACHER_STAGE, losses: c.losses ?? {}, optimizer: c.optimizer ?? {} }]
  const config = RunConfig.parse({
    seed: 11,
    data: { inputSize: g.inputSize, channels: g.channels, classes: g.classes },
    model: { width: 0.125, stem: g.stem, bnMomentum: 0.9, ...(c.model ?? {}) },
    stages,
  })
  return { config, stageIndex: stages.length - 1 }
}

/** Seeded uniform values in [lo, hi). */
function uniform(random: () => number, n: number, lo: number, hi: number): Float32Array {
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * random())
}

/**
 * Replaces the freshly initialised values that would hide layout mistakes (ones, zeros, equal factors) by
 * seeded random ones; latent binary kernels become uniform in [-1, 1] so that a step clips some of them.
 */
function perturb(model: ResNet18, seed: number): void {
  const random = mulberry32(seed)
  const all = [...model.store.weights, ...model.store.state]
  for (const [name, v] of all) {
    let values: Float32Array | null = null
    if (name.endsWith('.gamma')) values = uniform(random, v.size, 0.6, 1.4)
    else if (name.endsWith('.beta')) values = uniform(random, v.size, -0.3, 0.3)
    else if (name.endsWith('.moving_mean')) values = uniform(random, v.size, -0.3, 0.3)
    else if (name.endsWith('.moving_variance')) values = uniform(random, v.size, 0.5, 1.5)
    else if (name.endsWith('.alpha')) values = uniform(random, v.size, -0.1, 0.35)
    else if (/\.scale_[hwc]$/.test(name) || name.endsWith('.weight_scale'))
      values = uniform(random, v.size, 0.6, 1.4)
    else if (name === 'head.logits.bias') values = uniform(random, v.size, -0.2, 0.2)
    else if (model.store.binaryKernels.has(name)) values = uniform(random, v.size, -1, 1)
    if (values) {
      const t = tf.tensor(values, v.shape)
      v.assign(t)
      t.dispose()
    }
  }
}

/** The fixed batch of a group: standard normal images and uniformly drawn labels, from one seed. */
function fixedBatch(g: Group, seed: number): { images: tf.Tensor4D; labels: tf.Tensor2D } {
  const random = mulberry32(seed)
  const size = BATCH * g.inputSize * g.inputSize * g.channels
  const images = Float32Array.from({ length: size }, () => normal(random))
  const labels = new Float32Array(BATCH * g.classes)
  for (let i = 0; i < BATCH; i++) labels[i * g.classes + randomInt(random, g.classes)] = 1
  return {
    images: tf.tensor4d(images, [BATCH, g.inputSize, g.inputSize, g.channels]),
    labels: tf.tensor2d(labels, [BATCH, g.classes]),
  }
}

function add(bundle: TensorBundle, name: string, t: tf.Tensor): void {
  bundle.add(name, t.shape.slice(), t.dataSync() as Float32Array)
}

/** What the layers see, by name: BN outputs, PReLU and conv inputs, dense outputs (see installTaps). */
function collector(kept: Map<string, tf.Tensor>): ForwardContext['tap'] {
  return (name, tensor) => {
    // A clone: a tapped tensor may be the caller's (the batch images), which disposing the taps must not free.
    if (/\.(out|in|pre)$/.test(name)) kept.set(name, tf.keep(tensor.clone()))
  }
}

/**
 * Observation only: BatchNorm, PReLU, Dense and QuantConv2d call the original method and hand what the kink
 * sites need to the context's tap (the engine's own taps cover quantized conv inputs and kernels only).
 */
function installTaps(): void {
  const bn = BatchNorm.prototype.apply
  BatchNorm.prototype.apply = function (this: BatchNorm, x: tf.Tensor4D, ctx: ForwardContext) {
    const y = bn.call(this, x, ctx)
    ctx.tap?.(`${this.name}.out`, y)
    return y
  }
  const prelu = PReLU.prototype.apply
  PReLU.prototype.apply = function (this: PReLU, x: tf.Tensor4D, ctx: ForwardContext) {
    ctx.tap?.(`${this.name}.in`, x)
    return prelu.call(this, x, ctx)
  }
  const dense = Dense.prototype.apply
  Dense.prototype.apply = function (this: Dense, x: tf.Tensor2D, ctx: ForwardContext, traced?: boolean) {
    const y = dense.call(this, x, ctx, traced)
    ctx.tap?.(`${this.name}.out`, y)
    return y
  }
  const conv = QuantConv2d.prototype.apply
  QuantConv2d.prototype.apply = function (this: QuantConv2d, x: tf.Tensor4D, ctx: ForwardContext) {
    ctx.tap?.(`${this.name}.pre`, x)
    return conv.call(this, x, ctx)
  }
}

// The band either side of a kink, relative to the tensor's largest magnitude, whose elements are listed.
const NEAR = 1e-4

/**
 * The kink sites of one pass (python/src/r2b_torch/kinks.py names them): for each, the flat indices (tfjs
 * layout) and values of the elements within NEAR of the kink, which the PyTorch side aligns to.
 */
function kinkSites(
  model: ResNet18,
  taps: Map<string, tf.Tensor>,
): Map<string, { tensor: tf.Tensor; kink: number }> {
  const sites = new Map<string, { tensor: tf.Tensor; kink: number }>()
  const get = (name: string) => {
    const t = taps.get(name)
    if (!t) throw new Error(`no tap ${name}`)
    return t
  }
  const b = model.build
  sites.set('stem.relu', { tensor: get('stem.bn.out'), kink: 0 })
  for (const point of TRANSFER_POINTS) {
    if (b.architecture === 'resnet') {
      sites.set(`${point}a.relu`, { tensor: get(`${point}a.bn.out`), kink: 0 })
      const shortcut = taps.get(`${point}.shortcut.bn.out`) ?? get(`${point}a.conv.pre`)
      // The same tf.add as RealBlock's, on the same backend: bit-identical to the value it took the ReLU of.
      sites.set(`${point}.relu`, { tensor: tf.add(get(`${point}b.bn.out`), shortcut), kink: 0 })
      continue
    }
    for (const half of [`${point}a`, `${point}b`]) {
      const convs = [
        `${half}.conv`,
        ...(b.downsample === 'binary' && taps.has(`${half}.shortcut.conv.pre`)
          ? [`${half}.shortcut.conv`]
          : []),
      ]
      if (b.activation === 'sign' || b.activation === 'approxsign') {
        for (const conv of convs) {
          sites.set(`${conv}.sign`, { tensor: get(`${conv}.pre`), kink: 0 })
          if (b.activation === 'sign')
            sites.set(`${conv}.ste`, { tensor: get(`${conv}.pre`), kink: b.steClip })
        }
      }
      sites.set(`${half}.prelu`, { tensor: get(`${half}.prelu.in`), kink: 0 })
      if (b.scaling === 'gate')
        sites.set(`${half}.gate.relu`, { tensor: get(`${half}.gate.reduce.out`), kink: 0 })
    }
  }
  return sites
}

function addKinks(bundle: TensorBundle, prefix: string, model: ResNet18, taps: Map<string, tf.Tensor>): void {
  const sites = kinkSites(model, taps)
  for (const [site, { tensor, kink }] of sites) {
    const values = tensor.dataSync() as Float32Array
    let scale = 0
    for (const v of values) scale = Math.max(scale, Math.abs(v))
    const index: number[] = []
    const near: number[] = []
    values.forEach((v, i) => {
      if (Math.abs(Math.abs(v) - kink) <= NEAR * scale) {
        index.push(i)
        near.push(v)
      }
    })
    bundle.add(`${prefix}/kink/${site}/shape`, [tensor.rank], tensor.shape)
    bundle.add(`${prefix}/kink/${site}/index`, [index.length], index)
    bundle.add(`${prefix}/kink/${site}/value`, [near.length], near)
  }
  for (const { tensor } of sites.values()) if (![...taps.values()].includes(tensor)) tensor.dispose()
}

async function dumpCase(
  out: string,
  c: Case,
  teacherCheckpoints: Map<string, Checkpoint>,
  backend: string,
): Promise<void> {
  const { config, stageIndex } = caseConfig(c)
  const dir = join(out, c.name)
  const g = GROUPS[c.group]!
  const teacherCase = CASES.find((x) => x.group === c.group && !x.student)!
  const teacher = c.student ? modelFromCheckpoint(teacherCheckpoints.get(teacherCase.name)!, 'teacher') : null
  const trainer = new StageTrainer(config, stageIndex, { teacher })
  const student = trainer.student
  perturb(student, mixSeed(config.seed, CASES.indexOf(c), 99))
  const bundle = new TensorBundle()
  const batch = fixedBatch(g, mixSeed(7, Object.keys(GROUPS).indexOf(c.group)))
  add(bundle, 'batch/images', batch.images)
  add(bundle, 'batch/labels', batch.labels)

  const ckpt0 = await saveCheckpoint(
    student,
    { stage: c.name, epochsCompleted: 0, step: 0 },
    trainer.optimizer,
  )
  await writeCheckpointDir(join(dir, 'ckpt0'), ckpt0)
  if (!c.student) teacherCheckpoints.set(c.name, ckpt0)

  // Inference mode: logits, transfer points, attention maps, gates, loss functions against the teacher.
  const evalTaps = new Map<string, tf.Tensor>()
  tf.tidy(() => {
    const result = student.forward(batch.images, forwardContext(false, { tap: collector(evalTaps) }))
    add(bundle, 'eval/logits', result.logits)
    result.points.forEach((p, j) => {
      const point = TRANSFER_POINTS[j]!
      add(bundle, `eval/point/${point}`, p)
      add(bundle, `eval/map/paper/${point}`, attentionMap(p, 'paper'))
      add(bundle, `eval/map/larq/${point}`, attentionMap(p, 'larq'))
    })
    for (const gate of result.gates) add(bundle, `eval/gate/${gate.block}`, gate.values)
    add(bundle, 'eval/loss/ce', crossEntropy(result.logits, batch.labels))
    add(bundle, 'eval/loss/ce_smooth', crossEntropy(result.logits, batch.labels, 0.2))
    if (teacher) {
      const t = teacher.forward(batch.images, forwardContext(false))
      add(bundle, 'eval/loss/kd_t1', distillationLoss(result.logits, t.logits, 1))
      add(bundle, 'eval/loss/kd_t2.5', distillationLoss(result.logits, t.logits, 2.5))
      add(bundle, 'eval/loss/att_paper', attentionLoss(result.points, t.points, 'paper'))
      add(bundle, 'eval/loss/att_larq', attentionLoss(result.points, t.points, 'larq'))
    }
  })
  addKinks(bundle, 'eval', student, evalTaps)
  tf.dispose([...evalTaps.values()])

  // Two optimiser steps, exactly as StageTrainer.step takes them, with the gradients kept.
  const localName = new Map([...student.store.weights].map(([name, v]) => [v.name, name]))
  for (let s = 0; s < MULTIPLIERS.length; s++) {
    const prefix = `train${s + 1}`
    const taps = new Map<string, tf.Tensor>()
    const ctx = forwardContext(true, { tap: collector(taps) })
    const { grads, parts } = trainer.gradients(batch, undefined, ctx)
    add(bundle, `${prefix}/loss/total`, parts.total)
    add(bundle, `${prefix}/loss/ce`, parts.crossEntropy)
    add(bundle, `${prefix}/loss/att`, parts.attention)
    add(bundle, `${prefix}/loss/kd`, parts.distillation)
    add(bundle, `${prefix}/logits`, parts.logits)
    for (const [variable, grad] of Object.entries(grads))
      add(bundle, `${prefix}/grad/${localName.get(variable)}`, grad)
    addKinks(bundle, prefix, student, taps)
    trainer.optimizer.apply(grads, MULTIPLIERS[s]!)
    applyBnUpdates(ctx)
    tf.dispose([...Object.values(grads), ...taps.values(), ...Object.values(parts)])
    const ckpt = await saveCheckpoint(
      student,
      { stage: c.name, epochsCompleted: 0, step: s + 1 },
      trainer.optimizer,
    )
    await writeCheckpointDir(join(dir, `ckpt${s + 1}`), ckpt)
  }

  await bundle.write(dir, 'tensors')
  await writeFile(
    join(dir, 'case.json'),
    `${JSON.stringify(
      {
        name: c.name,
        teacher: c.student ? teacherCase.name : null,
        stageIndex,
        multipliers: MULTIPLIERS,
        backend,
        config,
      },
      null,
      2,
    )}\n`,
  )
  tf.dispose([batch.images, batch.labels])
  trainer.dispose()
  student.dispose()
  teacher?.dispose()
}

/** A small store written by the project's DatasetWriter, read back through the DatasetReader. */
async function dumpData(out: string): Promise<void> {
  const home = join(out, 'data', 'home')
  const writer = await DatasetWriter.create(home)
  const shape: [number, number, 3] = [9, 11, 3]
  const classes = 5
  writer.begin(shape, classes)
  const random = mulberry32(2024)
  const size = shape[0] * shape[1] * shape[2]
  for (const [split, count] of [
    ['train', 37],
    ['test', 13],
  ] as const) {
    for (let i = 0; i < count; i++) {
      const pixels = Uint8Array.from({ length: size }, () => randomInt(random, 256))
      writer.append(split, pixels, randomInt(random, classes))
    }
  }
  await writer.commit({
    id: 'conformance',
    name: 'conformance',
    format: 'imagefolder',
    source: { path: 'synthetic', sha256: '0'.repeat(64), bytes: 0 },
    classes: ['a', 'b', 'c', 'd', 'e'],
  })
  const reader = await DatasetReader.open('conformance', home)
  const bundle = new TensorBundle()
  const settings = {
    plain: undefined,
    cropflip: { cropPadding: 2, flip: true },
    full: { cropPadding: 2, flip: true, rotationDegrees: 15, mixupAlpha: 0.4 },
  }
  const put = (name: string, b: { images: tf.Tensor; labels: tf.Tensor }) => {
    add(bundle, `${name}/images`, b.images)
    add(bundle, `${name}/labels`, b.labels)
    tf.dispose([b.images, b.labels])
  }
  for (const [setting, augment] of Object.entries(settings)) {
    for (const epoch of [0, 1]) {
      let i = 0
      for await (const b of reader.trainBatches({ batchSize: 8, epoch, seed: 5, augment }))
        put(`train/${setting}/e${epoch}/b${i++}`, b)
    }
  }
  let i = 0
  for await (const b of reader.trainBatches({ batchSize: 8, epoch: 2, seed: 5, limit: 2, dropLast: false }))
    put(`train/limit/e2/b${i++}`, b)
  i = 0
  for await (const b of reader.testBatches({ batchSize: 5, limit: 11 })) put(`test/b${i++}`, b)
  put('probe', await reader.testImages([3, 0, 12]))
  await reader.close()
  // A store larger than the input (7 of 9×11): the crop path and the centred window.
  const cropped = await DatasetReader.open('conformance', home, { inputSize: 7 })
  const cropSettings = {
    rrc: { resizedCropMinArea: 0.08, flip: true, colorJitter: 0.4 },
    jitter: { colorJitter: 0.4, mixupAlpha: 0.4 },
    centre: { flip: true },
  }
  for (const [setting, augment] of Object.entries(cropSettings)) {
    for (const epoch of [0, 1]) {
      let b = 0
      for await (const batch of cropped.trainBatches({ batchSize: 8, epoch, seed: 5, augment }))
        put(`crop/${setting}/e${epoch}/b${b++}`, batch)
    }
  }
  i = 0
  for await (const b of cropped.testBatches({ batchSize: 5, limit: 11 })) put(`crop/test/b${i++}`, b)
  put('crop/probe', await cropped.testImages([3, 0, 12]))
  await cropped.close()
  await bundle.write(join(out, 'data'), 'batches')
}

/** Values of the seeded generators and schedules, as doubles (JSON numbers round-trip exactly). */
async function dumpRng(out: string): Promise<void> {
  const stream = mulberry32(12345)
  const draw = (n: number, f: () => number) => Array.from({ length: n }, f)
  const schedules = [
    { spec: { kind: 'step', milestones: [3, 6], factor: 0.3, warmupEpochs: 1.5 }, total: 10 },
    { spec: { kind: 'cosine', warmupEpochs: 0.1 }, total: 2 },
    { spec: { kind: 'cosine', warmupEpochs: 0 }, total: 7 },
    { spec: { kind: 'constant', warmupEpochs: 2 }, total: 5 },
  ].map(({ spec, total }) => {
    const parsed = ScheduleSpec.parse(spec)
    const epochs = draw(25, () => 0).map((_, k) => (k * total * 1.1) / 24)
    return { spec: parsed, total, epochs, values: epochs.map((e) => scheduleMultiplier(parsed, e, total)) }
  })
  const store = new ParamStore('rng', 7)
  const names = ['stem.conv', 'block_1a.conv', 'head.logits', 'block_8b.gate.expand']
  const rng = {
    mulberry32: draw(20, stream),
    mixSeed: [
      mixSeed(0),
      mixSeed(1, 2),
      mixSeed(11, 1),
      mixSeed(5, 0, 1),
      mixSeed(5, 3, 2),
      mixSeed(4294967295, 7),
    ],
    permutation: Array.from(permutation(17, mulberry32(3))),
    normal: draw(
      10,
      (() => {
        const r = mulberry32(8)
        return () => normal(r)
      })(),
    ),
    beta: [0.2, 0.4, 1.5].map((a) => {
      const r = mulberry32(9)
      return draw(10, () => beta(r, a, a))
    }),
    seedFor: names.map((name) => ({ name, seed: store.seedFor(name) })),
    schedules,
  }
  await writeFile(join(out, 'rng.json'), `${JSON.stringify(rng, null, 2)}\n`)
}

async function main(): Promise<void> {
  const [outArg, backendArg] = process.argv.slice(2)
  if (!outArg) throw new Error('usage: tsx test/conformance/dump.ts <out dir> [wasm|cpu]')
  const out = resolve(outArg)
  const report = await initBackend((backendArg ?? 'wasm') as BackendRequest)
  await rm(out, { recursive: true, force: true })
  await mkdir(out, { recursive: true })
  installTaps()
  const started = performance.now()
  const teacherCheckpoints = new Map<string, Checkpoint>()
  for (const c of CASES) await dumpCase(out, c, teacherCheckpoints, report.backend)
  await dumpData(out)
  await dumpRng(out)
  await writeFile(
    join(out, 'meta.json'),
    `${JSON.stringify({ cases: CASES.map((c) => c.name), backend: report.backend, tfjs: tf.version.tfjs }, null, 2)}\n`,
  )
  console.log(
    `conformance dump: ${CASES.length} cases on ${report.backend} in ${((performance.now() - started) / 1000).toFixed(1)} s -> ${out}`,
  )
}

main().catch((error: unknown) => {
  console.error(error)
  process.exit(1)
})
