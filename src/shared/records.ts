import { z } from 'zod'
import { CheckpointManifest } from './checkpoint'
import { StageName } from './run-config'

/**
 * The plain records the engine emits while it trains, for the run store (which persists them) and the UI
 * (which plots them). No tensors: numbers, strings and typed arrays with their shapes.
 *
 * The light records (stage-start, step, epoch, stage-end) are also lines of a run's metrics log, so they are
 * schemas, validated wherever they arrive (from a worker of either engine, or from disk).
 */

/** A dense float32 array with its row-major shape. */
export interface TensorData {
  shape: number[]
  data: Float32Array
}

/**
 * A loss value: JSON has no NaN or Infinity, so a loss that stopped being finite is stored as null and read
 * back as NaN (the trainer stops such a run; the curves show the gap).
 */
const LossValue = z.union([z.number(), z.null()]).transform((v) => v ?? Number.NaN)

export const LossComponents = z.object({
  crossEntropy: LossValue,
  attention: LossValue,
  distillation: LossValue,
  total: LossValue,
})
export type LossComponents = z.infer<typeof LossComponents>

const Epoch = z.int().nonnegative()

export const StageStartRecord = z.object({
  kind: z.literal('stage-start'),
  stage: StageName,
  stageIndex: z.int().nonnegative(),
  epochs: z.int().positive(),
  stepsPerEpoch: z.int().nonnegative(),
  /** Epoch the stage starts at: 0, or the epoch after the checkpoint it resumed from. */
  startEpoch: Epoch,
  teacher: z.string().nullable(),
})
export type StageStartRecord = z.infer<typeof StageStartRecord>

export const StepRecord = z.object({
  kind: z.literal('step'),
  stage: StageName,
  /** The 0-based epoch this step belongs to. */
  epoch: Epoch,
  /** Step within the stage, counting from 0 across epochs. */
  step: z.int().nonnegative(),
  loss: LossComponents,
  learningRate: z.number(),
  imagesPerSecond: LossValue,
})
export type StepRecord = z.infer<typeof StepRecord>

export const Accuracy = z.object({
  top1: z.number().min(0).max(1),
  top5: z.number().min(0).max(1),
  loss: LossValue,
})
export type Accuracy = z.infer<typeof Accuracy>

export const FlipRatio = z.object({
  /** The binary layer's name, e.g. `block_3a.conv`. */
  layer: z.string(),
  /** Fraction of latent weights whose sign changed during the epoch. */
  ratio: z.number().min(0).max(1),
})
export type FlipRatio = z.infer<typeof FlipRatio>

export const EpochRecord = z.object({
  kind: z.literal('epoch'),
  stage: StageName,
  /** The 0-based epoch just trained. */
  epoch: Epoch,
  /** Running accuracy over the epoch's training batches (train mode). */
  train: Accuracy,
  test: Accuracy,
  flipRatios: z.array(FlipRatio),
  seconds: z.number().nonnegative(),
})
export type EpochRecord = z.infer<typeof EpochRecord>

export const StageEndRecord = z.object({
  kind: z.literal('stage-end'),
  stage: StageName,
  stageIndex: z.int().nonnegative(),
  /** The last evaluation of this session; null when it was stopped before finishing an epoch (a resumed
   * stage stopped at once has no new score, and its earlier one stands). */
  test: Accuracy.nullable(),
  seconds: z.number().nonnegative(),
  /** True when the stage stopped early on request; the last checkpoint is at an epoch boundary. */
  stopped: z.boolean(),
})
export type StageEndRecord = z.infer<typeof StageEndRecord>

/** The records that are also metrics-log lines, by kind. */
export const LightRecord = z.discriminatedUnion('kind', [
  StageStartRecord,
  StepRecord,
  EpochRecord,
  StageEndRecord,
])
export type LightRecord = z.infer<typeof LightRecord>

const Float32 = z.custom<Float32Array>((value) => value instanceof Float32Array, 'expected a Float32Array')

/** A dense float32 array with its row-major shape, the shape's size equal to the data's. */
export const TensorDataSchema = z
  .object({ shape: z.array(z.int().nonnegative()), data: Float32 })
  .refine((t) => t.shape.reduce((a, b) => a * b, 1) === t.data.length, 'shape and data length differ')

/** Normalised attention maps at one transfer point, for every probe image: shape [probes, H, W]. */
export const AttentionPoint = z.object({
  point: z.string(),
  student: TensorDataSchema,
  /** Null in a stage without a teacher. */
  teacher: TensorDataSchema.nullable(),
})
export type AttentionPoint = z.infer<typeof AttentionPoint>

/** Epochs of the stage completed when a snapshot or checkpoint was taken (≥ 1). */
const EpochsCompleted = z.int().positive()

export const AttentionRecord = z.object({
  kind: z.literal('attention'),
  stage: StageName,
  epochsCompleted: EpochsCompleted,
  /** Indices of the probe images in the test split. */
  probes: z.array(z.int().nonnegative()),
  /** The normalisation of the stage's attention loss (`paper`: L2, `larq`: max). */
  form: z.enum(['paper', 'larq']),
  points: z.array(AttentionPoint),
})
export type AttentionRecord = z.infer<typeof AttentionRecord>

/** Gate values of one binary convolution: sigmoid outputs per output channel. */
export const GateValues = z.object({
  /** Half-block name, e.g. `block_3a`. */
  block: z.string(),
  /** Mean over the evaluation subset: [channels]. */
  mean: Float32,
  /** Per probe image: [probes, channels]. */
  perProbe: TensorDataSchema,
})
export type GateValues = z.infer<typeof GateValues>

export const GateRecord = z.object({
  kind: z.literal('gates'),
  stage: StageName,
  epochsCompleted: EpochsCompleted,
  probes: z.array(z.int().nonnegative()),
  /** Images the mean runs over. */
  subset: z.int().nonnegative(),
  gates: z.array(GateValues),
})
export type GateRecord = z.infer<typeof GateRecord>

/** Weights, BN moving statistics and optimiser state: the manifest as JSON, the values as one float32 buffer. */
export const CheckpointRecord = z.object({
  kind: z.literal('checkpoint'),
  stage: StageName,
  epochsCompleted: EpochsCompleted,
  manifest: CheckpointManifest,
  data: z.instanceof(ArrayBuffer),
})
export type CheckpointRecord = z.infer<typeof CheckpointRecord>

/** Everything a training worker (of either engine) reports as it trains. */
export const EngineRecord = z.discriminatedUnion('kind', [
  StageStartRecord,
  StepRecord,
  EpochRecord,
  AttentionRecord,
  GateRecord,
  CheckpointRecord,
  StageEndRecord,
])
export type EngineRecord = z.infer<typeof EngineRecord>

/** One row of the larq-style model summary. */
export interface SummaryRow {
  name: string
  kind: string
  /** Bits of the layer's input as the layer sees it: 1 for binarised inputs, 32 otherwise. */
  inputPrecision: 1 | 32
  outputShape: number[]
  /** Binary (1-bit) parameters. */
  binaryParams: number
  /** Trainable float parameters. */
  floatParams: number
  /** Non-trainable float parameters (BN moving statistics). */
  nonTrainableParams: number
  memoryBytes: number
  /** MACs of binary × binary products. */
  bops: number
  /** MACs of real products plus the element-wise multiplications counted (see summary.ts). */
  flops: number
}

export interface SummaryTotals {
  params: number
  trainableParams: number
  nonTrainableParams: number
  binaryParams: number
  bops: number
  flops: number
  /** Binary weights at 1 bit, everything else at 32. */
  packedBytes: number
  float32Bytes: number
  compressionRatio: number
  /** BOPs / (BOPs + real MACs). */
  binarisedMacFraction: number
  /** BOPs / 64 + FLOPs, the single figure of Bi-Real and ReActNet. */
  ops: number
}

export interface ModelSummary {
  model: string
  layers: SummaryRow[]
  totals: SummaryTotals
}

/** Maps and gates of one image, on demand (interactive inspection). */
export const InspectionResult = z.object({
  logits: Float32,
  points: z.array(AttentionPoint),
  gates: z.array(z.object({ block: z.string(), values: Float32 })),
})
export type InspectionResult = z.infer<typeof InspectionResult>
