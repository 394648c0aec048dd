/**
 * The run config: one validated object describes a whole run (data, model family, the chain of stages with
 * their losses, optimiser, schedule and budget). It is what the UI shows, what the run store keeps and what the
 * CLI replays. Presets fill it; `--set key=value` overrides any leaf.
 *
 * Where the paper is silent the defaults follow larq zoo (see docs/method.md), and the alternatives are options.
 */
import { z } from 'zod'
import { DatasetId } from './datasets'
import { UserError } from './errors'

export const ActivationQuantizer = z.enum(['identity', 'tanh', 'sign', 'approxsign'])
export type ActivationQuantizer = z.infer<typeof ActivationQuantizer>

/**
 * A stage's student: `resnet` is the plain real ResNet-18 (the teacher of step 0); `binary` is the binary
 * architecture of Fig. 1 with the given activation quantizer, weights and output scaling.
 */
export const StudentSpec = z.object({
  architecture: z.enum(['resnet', 'binary']).default('binary'),
  activation: ActivationQuantizer.default('sign'),
  weights: z.enum(['real', 'sign']).default('real'),
  scaling: z.enum(['gate', 'learned', 'none']).default('gate'),
})
export type StudentSpec = z.infer<typeof StudentSpec>

/** `none`, `stage:<name>` (an earlier stage of this run) or `run:<runId>/<stage>` (a stage of another run). */
export const StageRef = z
  .string()
  .regex(
    /^(none|stage:[\w+-]{1,64}|run:[a-z0-9][a-z0-9-]{0,79}\/[\w+-]{1,64})$/,
    'expected none, stage:<name> or run:<runId>/<stage>',
  )
export type StageRef = z.infer<typeof StageRef>

/** A stage reference taken apart: the one place that reads the `stage:` / `run:` syntax. */
export type StageTarget =
  { kind: 'none' } | { kind: 'stage'; stage: string } | { kind: 'run'; run: string; stage: string }

export function parseStageRef(ref: StageRef): StageTarget {
  if (ref === 'none') return { kind: 'none' }
  if (ref.startsWith('stage:')) return { kind: 'stage', stage: ref.slice('stage:'.length) }
  const [run = '', stage = ''] = ref.slice('run:'.length).split('/')
  return { kind: 'run', run, stage }
}

export function formatStageRef(target: StageTarget): StageRef {
  if (target.kind === 'none') return 'none'
  return target.kind === 'stage' ? `stage:${target.stage}` : `run:${target.run}/${target.stage}`
}

export const LossSpec = z.object({
  crossEntropy: z
    .object({
      weight: z.number().min(0).default(1),
      labelSmoothing: z.number().min(0).max(1).default(0),
    })
    .prefault({}),
  attention: z
    .object({
      weight: z.number().min(0).default(0),
      /** paper: Σ_c A², L2-normalised, L2 distance summed over points; larq: mean_c A², max-normalised, MSE averaged. */
      form: z.enum(['paper', 'larq']).default('larq'),
    })
    .prefault({}),
  distillation: z
    .object({
      weight: z.number().min(0).default(0),
      temperature: z.number().positive().default(1),
    })
    .prefault({}),
})
export type LossSpec = z.infer<typeof LossSpec>

export const OptimizerKind = z.enum(['adamw', 'sgd'])
export type OptimizerKind = z.infer<typeof OptimizerKind>

/**
 * `adamw`: Adam with weight decay decoupled from the gradient (AdamW). `sgd`: SGD with momentum (PyTorch's
 * form), with the same decoupled decay. Either way the decay is scaled by the schedule like the learning rate
 * (engine/optimizer.ts has the update rules).
 */
export const OptimizerSpec = z.object({
  kind: OptimizerKind.default('adamw'),
  learningRate: z.number().positive().default(1e-3),
  weightDecay: z.number().min(0).default(0),
  /** Adam's moment decays and ε (unused by SGD). */
  beta1: z.number().min(0).max(1).default(0.9),
  beta2: z.number().min(0).max(1).default(0.999),
  epsilon: z.number().positive().default(1e-7),
  /** SGD's momentum μ (v ← μ·v + g); 0, Keras's default, is plain SGD (unused by Adam). */
  momentum: z.number().min(0).max(1).default(0),
})
export type OptimizerSpec = z.infer<typeof OptimizerSpec>

export const ScheduleSpec = z.object({
  kind: z.enum(['step', 'cosine', 'constant']).default('step'),
  /** Linear warm-up from 0, in epochs (fractions allowed). */
  warmupEpochs: z.number().min(0).default(0),
  /** Epochs at which a step schedule multiplies the learning rate by `factor`. */
  milestones: z.array(z.number().min(0)).default([]),
  factor: z.number().positive().max(1).default(0.1),
})
export type ScheduleSpec = z.infer<typeof ScheduleSpec>

/** Training augmentation, applied by the data source (the dataset reader) as it prepares each batch. */
export const AugmentSpec = z.object({
  flip: z.boolean().default(false),
  /** Random crop of the image padded by this many pixels per side; 0 disables. */
  cropPadding: z.number().int().min(0).max(1024).default(0),
  /** Rotation uniform in ± this many degrees; 0 disables. */
  rotationDegrees: z.number().min(0).max(180).default(0),
  /** Mixup with λ ~ Beta(α, α); 0 disables. */
  mixupAlpha: z.number().min(0).default(0),
  /** Random-resized crop: a box of this fraction to all of the stored area, aspect 3/4–4/3, resized to the input; 0 disables. */
  resizedCropMinArea: z.number().min(0).max(1).default(0),
  /** Brightness, contrast and saturation factors uniform in [1 − j, 1 + j]; 0 disables. */
  colorJitter: z.number().min(0).max(1).default(0),
})
export type AugmentSpec = z.infer<typeof AugmentSpec>

/** The resized crop and colour jitter (the crop path) go with flips and mixup only. */
function checkCropPath(augment: AugmentSpec): string | null {
  if (augment.resizedCropMinArea === 0 && augment.colorJitter === 0) return null
  if (augment.cropPadding > 0 || augment.rotationDegrees > 0)
    return 'the resized crop and colour jitter go with flips and mixup only: set cropPadding and rotationDegrees to 0'
  return null
}

/** A stage's name: a folder name in the run (`checkpoints/<stage>/`), so letters, digits, `_`, `+`, `-`. */
export const StageName = z
  .string()
  .regex(/^[\w+-]{1,64}$/, 'a stage name is 1-64 of letters, digits, _, + and -')
export type StageName = z.infer<typeof StageName>

export const StageSpec = z.object({
  name: StageName,
  student: StudentSpec.prefault({}),
  teacher: StageRef.default('none'),
  init: StageRef.default('none'),
  losses: LossSpec.prefault({}),
  optimizer: OptimizerSpec.prefault({}),
  schedule: ScheduleSpec.prefault({}),
  augment: AugmentSpec.prefault({}),
  epochs: z.number().int().positive().max(100_000).default(1),
  /** Cap on steps per epoch (a budget knob); 0 means the whole training split each epoch. */
  stepsPerEpoch: z.number().int().min(0).max(1e9).default(0),
  batchSize: z.number().int().positive().max(65_536).default(32),
})
export type StageSpec = z.infer<typeof StageSpec>

export const ModelSpec = z.object({
  /** Channel multiplier on ResNet-18's 64/128/256/512. */
  width: z.number().positive().max(8, 'width is at most 8 (4,096 channels in the last stage)').default(1),
  /** `auto` picks the CIFAR stem below 64 px and the ImageNet stem from 64 px. */
  stem: z.enum(['auto', 'imagenet', 'cifar']).default('auto'),
  downsample: z.enum(['real', 'binary']).default('real'),
  /**
   * What binary-activation convolutions pad with. `one` (larq's pad_values=1) keeps the input strictly ±1, so
   * packed XNOR inference reproduces training exactly; `zero` is what tfjs (and larq zoo's R2B nets) do.
   */
  binaryPadding: z.enum(['one', 'zero']).default('one'),
  /** Straight-through estimator of the sign: clipped identity (larq ste_sign) or Bi-Real's ApproxSign. */
  steClip: z.number().positive().default(1),
  gateReduction: z.number().int().positive().max(4096).default(8),
  /** Per-output-channel scale on binary weights. */
  weightScale: z.enum(['none', 'mean', 'learned']).default('none'),
  /** Clip latent weights to [-1, 1] after each update in stages with sign weights (larq's weight_clip). */
  latentClip: z.boolean().default(true),
  bnMomentum: z.number().min(0).max(1).default(0.99),
  bnEpsilon: z.number().positive().default(1e-3),
  /** Initial PReLU slope; Keras (larq zoo) starts at 0. */
  preluInit: z.number().default(0),
})
export type ModelSpec = z.infer<typeof ModelSpec>

export const DataSpec = z
  .object({
    /** A dataset id of the store (never a path: the store resolves it inside its own folder). */
    dataset: DatasetId.default('fashion-mnist'),
    /** The model's input side. */
    inputSize: z.number().int().positive().max(4096).default(28),
    /**
     * The side of the images as the dataset stores them, when larger than the input (ImageNet stored at 256 for
     * an input of 224): evaluation takes their centred window, training a resized crop of them. 0: the same.
     */
    storedSize: z.number().int().min(0).max(4096).default(0),
    channels: z.union([z.literal(1), z.literal(3)]).default(1),
    classes: z.number().int().min(2).max(65_536).default(10),
    /** Cap on test images evaluated each epoch; 0 means all. */
    testLimit: z.number().int().min(0).default(0),
  })
  .refine((data) => data.storedSize === 0 || data.storedSize >= data.inputSize, {
    path: ['storedSize'],
    message: 'the stored images must be at least as large as the input (storedSize ≥ inputSize, or 0)',
  })
export type DataSpec = z.infer<typeof DataSpec>

export const EvalSpec = z.object({
  /** Fixed test images whose attention maps and gates are recorded each epoch. */
  probes: z.number().int().min(0).max(256).default(8),
  /** Test images over which gate values are averaged each epoch. */
  gateSubset: z.number().int().min(0).default(256),
  batchSize: z.number().int().positive().max(65_536).default(64),
})
export type EvalSpec = z.infer<typeof EvalSpec>

export const pipelineNames = [
  'r2b',
  'baseline',
  'sb',
  'sb+att',
  'sb+att+kd',
  'sb+gate',
  'sb+progressive',
] as const
export const PipelineName = z.enum(pipelineNames)
export type PipelineName = z.infer<typeof PipelineName>

export const presetNames = ['quick', 'ablation-small', 'cifar100-paper', 'imagenet-paper'] as const
export const PresetName = z.enum(presetNames)
export type PresetName = z.infer<typeof PresetName>

/**
 * How the real ResNet-18 teacher (the `teacher` stage) trains: `students`, with the preset's Adam recipe of
 * the real-weight students; `reference`, with larq zoo's own recipe for it (TrainFPResnet18: SGD at 0.1,
 * cosine decay after a warm-up, no weight decay). docs/recipes.md has the values per preset.
 */
export const teacherRecipes = ['students', 'reference'] as const
export const TeacherRecipe = z.enum(teacherRecipes)
export type TeacherRecipe = z.infer<typeof TeacherRecipe>

/** The engines that train a run: tfjs (TypeScript: WebGPU, wasm) and PyTorch (python/: CUDA, MPS, CPU). */
export const EngineName = z.enum(['tfjs', 'torch'])
export type EngineName = z.infer<typeof EngineName>

export const RunConfig = z.object({
  version: z.literal(1).default(1),
  /** Which engine trains it; everything it writes follows docs/run-format.md either way. */
  engine: EngineName.default('tfjs'),
  preset: PresetName.default('quick'),
  pipeline: PipelineName.default('r2b'),
  seed: z
    .number()
    .int()
    .min(0)
    .max(2 ** 31 - 1)
    .default(1),
  data: DataSpec.prefault({}),
  model: ModelSpec.prefault({}),
  eval: EvalSpec.prefault({}),
  stages: z
    .array(StageSpec)
    .min(1)
    .superRefine((stages, ctx) => {
      const seen = new Set<string>()
      stages.forEach((stage, i) => {
        const crop = checkCropPath(stage.augment)
        if (crop) ctx.addIssue({ code: 'custom', path: [i, 'augment'], message: crop })
        if (seen.has(stage.name))
          ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `duplicate stage ${stage.name}` })
        for (const key of ['teacher', 'init'] as const) {
          const ref = stage[key]
          const target = parseStageRef(ref)
          if (target.kind === 'stage' && !seen.has(target.stage)) {
            ctx.addIssue({ code: 'custom', path: [i, key], message: `${ref} is not an earlier stage` })
          }
        }
        seen.add(stage.name)
      })
    }),
})
export type RunConfig = z.infer<typeof RunConfig>
export type RunConfigInput = z.input<typeof RunConfig>

// ---------------------------------------------------------------------------------------------------------
// Presets: a budget (data, width, epochs, schedule) times a pipeline (which stages, which losses).

interface Budget {
  data: z.input<typeof DataSpec>
  model: z.input<typeof ModelSpec>
  eval?: z.input<typeof EvalSpec>
  epochs: number
  stepsPerEpoch: number
  batchSize: number
  /** Per stage role: schedule for real-weight stages and for the fully binary stage. */
  schedule: z.input<typeof ScheduleSpec>
  binarySchedule: z.input<typeof ScheduleSpec>
  /** The strong-baseline pipelines' schedules where the reference gives them their own (docs/recipes.md). */
  baseline?: { schedule: z.input<typeof ScheduleSpec>; binarySchedule: z.input<typeof ScheduleSpec> }
  augment: z.input<typeof AugmentSpec>
  binaryAugment: z.input<typeof AugmentSpec>
  learningRate: number
  binaryLearningRate: number
  weightDecay: number
  /**
   * The teacher's length, batch and warm-up under the `reference` teacher recipe, where larq zoo gives them;
   * elsewhere the preset's own (epochs, batch, real-weight warm-up).
   */
  referenceTeacher?: { epochs: number; batchSize: number; warmupEpochs: number }
}

const quick: Budget = {
  data: { dataset: 'fashion-mnist', inputSize: 28, channels: 1, classes: 10, testLimit: 1000 },
  model: { width: 0.125, bnMomentum: 0.9 },
  eval: { probes: 8, gateSubset: 256, batchSize: 100 },
  epochs: 2,
  stepsPerEpoch: 100,
  batchSize: 32,
  schedule: { kind: 'cosine', warmupEpochs: 0.1 },
  binarySchedule: { kind: 'cosine', warmupEpochs: 0.1 },
  augment: {},
  binaryAugment: {},
  learningRate: 2e-3,
  // Measured on this budget: the fully binary stage reached 59% at 1e-3 and 67% at 3e-3 (75% with
  // model.weightScale=mean, which departs from the method's gate-only scaling).
  binaryLearningRate: 3e-3,
  weightDecay: 1e-5,
}

const budgets: Record<PresetName, Budget> = {
  quick,
  // quick's recipe with 4× the steps at twice the batch, evaluated on the whole test split: the budget at
  // which the ablation's rows were compared on Fashion-MNIST over seeds on a CPU (docs/recipes.md has the
  // table and its time). Every row shares it: nothing is tuned per row.
  'ablation-small': {
    ...quick,
    data: { ...quick.data, testLimit: 0 },
    eval: { probes: 8, gateSubset: 256, batchSize: 250 },
    epochs: 4,
    stepsPerEpoch: 200,
    batchSize: 64,
  },
  'cifar100-paper': {
    data: { dataset: 'cifar-100', inputSize: 32, channels: 3, classes: 100 },
    model: { width: 1 },
    epochs: 350,
    stepsPerEpoch: 0,
    batchSize: 128,
    schedule: { kind: 'step', milestones: [150, 250, 320], factor: 0.1, warmupEpochs: 5 },
    // The same warm-up in the binary-weight stage: Adam's first steps on freshly binarised weights are the
    // least stable (larq zoo warms up every stage).
    binarySchedule: { kind: 'step', milestones: [150, 250, 320], factor: 0.1, warmupEpochs: 5 },
    augment: { flip: true, cropPadding: 4, rotationDegrees: 15, mixupAlpha: 0.2 },
    binaryAugment: { flip: true, cropPadding: 4, rotationDegrees: 15, mixupAlpha: 0.2 },
    learningRate: 1e-3,
    binaryLearningRate: 2e-4,
    weightDecay: 1e-5,
  },
  'imagenet-paper': {
    // Stored with the shorter side at 256 (`import --size 256`): evaluation's centred 224 window is larq zoo's
    // crop of 224/256 of the shorter side, and training has room for the resized crop.
    data: { dataset: 'imagenet', inputSize: 224, storedSize: 256, channels: 3, classes: 1000 },
    model: { width: 1 },
    epochs: 75,
    stepsPerEpoch: 0,
    batchSize: 256,
    schedule: { kind: 'step', milestones: [40, 60, 70], factor: 0.3, warmupEpochs: 5 },
    binarySchedule: { kind: 'cosine', warmupEpochs: 10 },
    // larq zoo's strong baseline: step decay ×0.1 with 5 warm-up epochs in both of its stages.
    baseline: {
      schedule: { kind: 'step', milestones: [40, 60, 70], factor: 0.1, warmupEpochs: 5 },
      binarySchedule: { kind: 'step', milestones: [40, 60, 70], factor: 0.1, warmupEpochs: 5 },
    },
    // Inception's resized crop and the flip as larq zoo trains ImageNet, and the paper's colour jitter (it gives
    // no strength: 0.4 is the usual one, timm's default).
    augment: { flip: true, resizedCropMinArea: 0.08, colorJitter: 0.4 },
    // The paper turns augmentation off in the binary-weight stage: the centred window only.
    binaryAugment: {},
    learningRate: 1e-3,
    binaryLearningRate: 2e-4,
    weightDecay: 1e-5,
    // larq zoo's TrainFPResnet18: 100 epochs at batch 512, 5 warm-up epochs.
    referenceTeacher: { epochs: 100, batchSize: 512, warmupEpochs: 5 },
  },
}

type StageInput = z.input<typeof StageSpec>

function stage(budget: Budget, binaryWeights: boolean, spec: StageInput): StageInput {
  return {
    epochs: budget.epochs,
    stepsPerEpoch: budget.stepsPerEpoch,
    batchSize: budget.batchSize,
    schedule: binaryWeights ? budget.binarySchedule : budget.schedule,
    augment: binaryWeights ? budget.binaryAugment : budget.augment,
    optimizer: binaryWeights
      ? { learningRate: budget.binaryLearningRate, weightDecay: 0 }
      : { learningRate: budget.learningRate, weightDecay: budget.weightDecay },
    ...spec,
  }
}

/**
 * The teacher stage under the `reference` recipe: larq zoo's TrainFPResnet18 trains ResNet18FP with Keras's
 * SGD (momentum 0) at 0.1 under CosineDecayWithWarmup (linear from 0, then cosine to 0: this project's
 * `cosine` schedule), and ResNet18FP has no kernel regularizer, so no weight decay.
 */
function referenceTeacher(budget: Budget): Partial<StageInput> {
  const own = budget.referenceTeacher ?? {
    epochs: budget.epochs,
    batchSize: budget.batchSize,
    warmupEpochs: budget.schedule.warmupEpochs ?? 0,
  }
  return {
    epochs: own.epochs,
    batchSize: own.batchSize,
    optimizer: { kind: 'sgd', learningRate: 0.1, momentum: 0, weightDecay: 0 },
    schedule: { kind: 'cosine', warmupEpochs: own.warmupEpochs },
  }
}

/** Loss weights of larq zoo's multi-stage experiments (method.md §3). */
const ATTENTION_WEIGHT = 30
const KD = { weight: 3, temperature: 1 }
const KD_BINARY = { weight: 0.8, temperature: 1 }

function pipelineStages(pipeline: PipelineName, budget: Budget, teacherRecipe: TeacherRecipe): StageInput[] {
  const teacher = stage(budget, false, {
    name: 'teacher',
    student: { architecture: 'resnet', activation: 'identity', weights: 'real', scaling: 'none' },
    ...(teacherRecipe === 'reference' ? referenceTeacher(budget) : {}),
  })
  const sb = (
    name: string,
    scaling: 'gate' | 'learned',
    losses: StageInput['losses'],
    withTeacher: boolean,
  ) => [
    stage(budget, false, {
      name: `${name}-ban`,
      student: { architecture: 'binary', activation: 'sign', weights: 'real', scaling },
      teacher: withTeacher ? 'stage:teacher' : 'none',
      losses,
      ...(budget.baseline ? { schedule: budget.baseline.schedule } : {}),
    }),
    stage(budget, true, {
      name: `${name}-bnn`,
      student: { architecture: 'binary', activation: 'sign', weights: 'sign', scaling },
      teacher: withTeacher ? `stage:${name}-ban` : 'none',
      init: `stage:${name}-ban`,
      losses: withTeacher ? { distillation: KD_BINARY } : {},
      ...(budget.baseline ? { schedule: budget.baseline.binarySchedule } : {}),
    }),
  ]
  const attention = { attention: { weight: ATTENTION_WEIGHT } }
  switch (pipeline) {
    case 'baseline':
    case 'sb':
      return sb('sb', 'learned', {}, false)
    case 'sb+gate':
      return sb('sb', 'gate', {}, false)
    case 'sb+att':
      return [teacher, ...sb('sb', 'learned', attention, true).map(dropDistillation)]
    case 'sb+att+kd':
      return [teacher, ...sb('sb', 'learned', { ...attention, distillation: KD }, true)]
    case 'sb+progressive':
    case 'r2b': {
      const scaling = pipeline === 'r2b' ? 'gate' : 'learned'
      return [
        teacher,
        stage(budget, false, {
          name: 'tanh',
          student: { architecture: 'binary', activation: 'tanh', weights: 'real', scaling },
          teacher: 'stage:teacher',
          losses: { ...attention, distillation: KD },
        }),
        stage(budget, false, {
          name: 'ban',
          student: { architecture: 'binary', activation: 'sign', weights: 'real', scaling },
          teacher: 'stage:tanh',
          losses: { ...attention, distillation: KD },
        }),
        stage(budget, true, {
          name: 'bnn',
          student: { architecture: 'binary', activation: 'sign', weights: 'sign', scaling },
          teacher: 'stage:ban',
          init: 'stage:ban',
          losses: { distillation: KD_BINARY },
        }),
      ]
    }
  }
}

function dropDistillation(spec: StageInput): StageInput {
  return { ...spec, losses: { ...spec.losses, distillation: { weight: 0 } } }
}

/**
 * One override of a config leaf, typed: what the UI sends. The CLI's `--set key=value` text becomes one of
 * these by the leaf's own type (a number stays a number on the way).
 */
export const ConfigOverride = z.object({
  key: z.string().min(1).max(200),
  value: z.union([z.number(), z.string().max(500), z.boolean(), z.array(z.number()).max(100)]),
})
export type ConfigOverride = z.infer<typeof ConfigOverride>

export interface MakeRunConfigOptions {
  preset?: PresetName
  pipeline?: PipelineName
  downsample?: 'real' | 'binary'
  /** How the teacher stage trains (default `students`); pipelines without a teacher ignore it. */
  teacherRecipe?: TeacherRecipe
  seed?: number
  /** Overrides applied last, in order: typed, or `key=value` text (`stages.1.epochs=3`, `model.width=0.5`). */
  set?: readonly (ConfigOverride | string)[]
}

/** Builds a validated run config from a preset, a pipeline and overrides. Throws ConfigError on a bad override. */
export function makeRunConfig(options: MakeRunConfigOptions = {}): RunConfig {
  const preset = options.preset ?? 'quick'
  const pipeline = options.pipeline ?? 'r2b'
  const budget = budgets[preset]
  const base = RunConfig.parse({
    preset,
    pipeline,
    seed: options.seed ?? 1,
    data: budget.data,
    model: { ...budget.model, ...(options.downsample ? { downsample: options.downsample } : {}) },
    eval: budget.eval ?? {},
    stages: pipelineStages(pipeline, budget, options.teacherRecipe ?? 'students'),
  })
  return applyOverrides(base, options.set ?? [])
}

export class ConfigError extends UserError {
  override name = 'ConfigError'
}

type Json = string | number | boolean | null | Json[] | { [key: string]: Json }

function leafPaths(value: Json, prefix: string, out: string[]): string[] {
  if (Array.isArray(value)) {
    if (value.length === 0 || typeof value[0] !== 'object' || value[0] === null) out.push(prefix)
    else value.forEach((item, i) => leafPaths(item, `${prefix}.${i}`, out))
  } else if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) leafPaths(item, prefix ? `${prefix}.${key}` : key, out)
  } else out.push(prefix)
  return out
}

/** Every key `--set` accepts for this config. */
export function overridableKeys(config: RunConfig): string[] {
  return leafPaths(config as unknown as Json, '', [])
}

function parseValue(raw: string, current: Json): Json {
  if (Array.isArray(current)) {
    const trimmed = raw.trim()
    if (trimmed === '') return []
    return trimmed.split(',').map((item) => parseValue(item.trim(), current[0] ?? 0))
  }
  if (typeof current === 'number') {
    const value = Number(raw)
    if (raw.trim() === '' || !Number.isFinite(value)) throw new ConfigError(`"${raw}" is not a number`)
    return value
  }
  if (typeof current === 'boolean') {
    if (raw === 'true' || raw === '1') return true
    if (raw === 'false' || raw === '0') return false
    throw new ConfigError(`"${raw}" is not true or false`)
  }
  return raw
}

/** Names what a rejected value could have been, from the schema's own error. */
function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_value') return `allowed values: ${issue.values.map(String).join(', ')}`
  return issue.message
}

/**
 * Applies overrides, typed or `key=value` text. Unknown keys are rejected with the closest allowed keys; a
 * value the schema refuses is rejected with the allowed values.
 */
export function applyOverrides(
  config: RunConfig,
  overrides: readonly (ConfigOverride | string)[],
): RunConfig {
  if (overrides.length === 0) return config
  const draft = structuredClone(config) as unknown as { [key: string]: Json }
  const keys = overridableKeys(config)
  for (const override of overrides) {
    let key: string
    let value: ConfigOverride['value'] | null = null
    let raw = ''
    if (typeof override === 'string') {
      const eq = override.indexOf('=')
      if (eq <= 0) throw new ConfigError(`--set ${override}: expected key=value`)
      key = override.slice(0, eq).trim()
      raw = override.slice(eq + 1)
    } else {
      key = override.key
      value = override.value
    }
    // `stages.*.epochs`: the same setting for every stage, whatever the pipeline's number of stages.
    const targets = key.startsWith('stages.*.')
      ? config.stages.map((_, i) => key.replace('stages.*.', `stages.${i}.`))
      : [key]
    for (const target of targets) {
      if (!keys.includes(target)) {
        const tail = target.split('.').pop() ?? target
        const near = keys.filter((k) => k.endsWith(`.${tail}`) || k === tail).slice(0, 6)
        throw new ConfigError(
          `--set ${key}: unknown key${near.length ? `; did you mean ${near.join(', ')}?` : ''} (keys: ${keys
            .map((k) => k.replace(/\.\d+\./, '.<i>.'))
            .filter((k, i, all) => all.indexOf(k) === i)
            .join(', ')}; stages.*.<key> sets every stage)`,
        )
      }
      const path = target.split('.')
      let node: Json = draft
      for (const part of path.slice(0, -1)) node = (node as { [key: string]: Json })[part] as Json
      const leaf = path[path.length - 1] as string
      const parent = node as { [key: string]: Json }
      try {
        parent[leaf] = value ?? parseValue(raw, parent[leaf] as Json)
      } catch (error) {
        throw new ConfigError(`--set ${key}: ${(error as Error).message}`)
      }
    }
  }
  const parsed = RunConfig.safeParse(draft)
  if (!parsed.success) {
    const issue = parsed.error.issues[0] as z.core.$ZodIssue
    throw new ConfigError(`--set: ${issue.path.join('.')}: ${describeIssue(issue)}`)
  }
  return parsed.data
}
