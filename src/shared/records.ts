/**
 * The plain records the engine emits while it trains, for the run store (which persists them) and the UI
 * (which plots them). No tensors: numbers, strings and typed arrays with their shapes.
 */

/** A dense float32 array with its row-major shape. */
export interface TensorData {
  shape: number[]
  data: Float32Array
}

export interface LossComponents {
  crossEntropy: number
  attention: number
  distillation: number
  total: number
}

export interface StageStartRecord {
  kind: 'stage-start'
  stage: string
  stageIndex: number
  epochs: number
  stepsPerEpoch: number
  /** Epoch the stage starts at: 0, or the epoch after the checkpoint it resumed from. */
  startEpoch: number
  teacher: string | null
}

export interface StepRecord {
  kind: 'step'
  stage: string
  epoch: number
  /** Step within the stage, counting from 0 across epochs. */
  step: number
  loss: LossComponents
  learningRate: number
  imagesPerSecond: number
}

export interface Accuracy {
  top1: number
  top5: number
  loss: number
}

export interface FlipRatio {
  /** The binary layer's name, e.g. `block_3a.conv`. */
  layer: string
  /** Fraction of latent weights whose sign changed during the epoch. */
  ratio: number
}

export interface EpochRecord {
  kind: 'epoch'
  stage: string
  epoch: number
  /** Running accuracy over the epoch's training batches (train mode). */
  train: Accuracy
  test: Accuracy
  flipRatios: FlipRatio[]
  seconds: number
}

/** Normalised attention maps at one transfer point, for every probe image: shape [probes, H, W]. */
export interface AttentionPoint {
  point: string
  student: TensorData
  /** Null in a stage without a teacher. */
  teacher: TensorData | null
}

export interface AttentionRecord {
  kind: 'attention'
  stage: string
  epoch: number
  /** Indices of the probe images in the test split. */
  probes: number[]
  /** The normalisation of the stage's attention loss (`paper`: L2, `larq`: max). */
  form: 'paper' | 'larq'
  points: AttentionPoint[]
}

/** Gate values of one binary convolution: sigmoid outputs per output channel. */
export interface GateValues {
  /** Half-block name, e.g. `block_3a`. */
  block: string
  /** Mean over the evaluation subset: [channels]. */
  mean: Float32Array
  /** Per probe image: [probes, channels]. */
  perProbe: TensorData
}

export interface GateRecord {
  kind: 'gates'
  stage: string
  epoch: number
  probes: number[]
  /** Images the mean runs over. */
  subset: number
  gates: GateValues[]
}

export interface CheckpointTensor {
  name: string
  group: 'weights' | 'state' | 'optimizer'
  shape: number[]
  /** Element offset into the float32 payload. */
  offset: number
}

export interface CheckpointManifest {
  format: 'r2b-checkpoint'
  version: 1
  stage: string
  /** Epochs completed: training resumes at this epoch. */
  epoch: number
  /** Optimiser steps completed. */
  step: number
  /** The model's build description (engine-defined, plain JSON). */
  model: Record<string, unknown>
  tensors: CheckpointTensor[]
}

/** Weights, BN moving statistics and optimiser state: the manifest as JSON, the values as one float32 buffer. */
export interface CheckpointRecord {
  kind: 'checkpoint'
  stage: string
  epoch: number
  manifest: CheckpointManifest
  data: ArrayBuffer
}

export interface StageEndRecord {
  kind: 'stage-end'
  stage: string
  stageIndex: number
  test: Accuracy
  seconds: number
  /** True when the stage stopped early on request; the last checkpoint is at an epoch boundary. */
  stopped: boolean
}

export type EngineRecord =
  | StageStartRecord
  | StepRecord
  | EpochRecord
  | AttentionRecord
  | GateRecord
  | CheckpointRecord
  | StageEndRecord

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
export interface InspectionResult {
  logits: Float32Array
  points: AttentionPoint[]
  gates: { block: string; values: Float32Array }[]
}
