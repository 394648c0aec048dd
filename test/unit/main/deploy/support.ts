/** Fixtures: fully binary models with every parameter randomised, as checkpoints. */
import type { ModelBuild } from '../../../../src/shared/checkpoint'
import * as tf from '@tensorflow/tfjs'
import { saveCheckpoint, type Checkpoint } from '../../../../src/main/engine/checkpoint'
import { ResNet18 } from '../../../../src/main/engine/models'
import { Rng } from '../../../../src/shared/random'
import { binaryConvLayer, convGeometry, signConvReference } from '../../../../src/main/deploy/binary-conv'
import { foldCheckpoint, type ExportMeta } from '../../../../src/main/deploy/fold'
import { encodeExport, packSignStream } from '../../../../src/main/deploy/format'

export function binaryBuild(overrides: Partial<ModelBuild> = {}): ModelBuild {
  return {
    architecture: 'binary',
    activation: 'sign',
    weights: 'sign',
    scaling: 'gate',
    width: 0.0625,
    stem: 'cifar',
    downsample: 'real',
    padValue: 1,
    steClip: 1,
    gateReduction: 2,
    weightScale: 'none',
    bnMomentum: 0.9,
    bnEpsilon: 1e-3,
    preluInit: 0.25,
    inputSize: 13,
    channels: 1,
    classes: 10,
    seed: 5,
    ...overrides,
  }
}

/**
 * A model whose BN statistics, affine parameters, slopes and scales are random (a fresh model's identity BN
 * and equal slopes would hide folding mistakes), returned as a checkpoint.
 */
export async function randomBinaryCheckpoint(build: ModelBuild, seed = 11): Promise<Checkpoint> {
  const model = new ResNet18(build, 'random')
  const rng = new Rng(seed)
  const fill = (v: tf.Variable, draw: () => number) =>
    v.assign(tf.tensor(Float32Array.from({ length: v.size }, draw), v.shape))
  for (const [name, v] of [...model.store.weights, ...model.store.state]) {
    if (name.endsWith('.gamma')) fill(v, () => (rng.next() < 0.15 ? -1 : 1) * (0.5 + rng.next()))
    else if (name.endsWith('.beta') || name.endsWith('.moving_mean')) fill(v, () => rng.next() - 0.5)
    else if (name.endsWith('.moving_variance')) fill(v, () => 0.3 + 2 * rng.next())
    else if (name.endsWith('.alpha')) fill(v, () => rng.next() * 0.5)
    else if (/scale_[hwc]$|weight_scale$/.test(name)) fill(v, () => 0.5 + rng.next())
    else if (name.endsWith('.bias')) fill(v, () => rng.next() - 0.5)
  }
  const checkpoint = await saveCheckpoint(model, { stage: 'bnn', epochsCompleted: 1, step: 1 })
  model.dispose()
  return checkpoint
}

/** Random normal images [n, size, size, channels]. */
export function randomImages(n: number, build: ModelBuild, seed = 3): tf.Tensor4D {
  return tf.randomNormal([n, build.inputSize, build.inputSize, build.channels], 0, 1, 'float32', seed)
}

export interface ConvCase {
  n: number
  h: number
  w: number
  cin: number
  cout: number
  k: number
  stride: number
  padValue: 0 | 1
}

/** Odd and even sizes, channel counts below, at and across word boundaries, both strides, both paddings. */
export const convCases: ConvCase[] = [
  { n: 1, h: 5, w: 5, cin: 3, cout: 2, k: 3, stride: 1, padValue: 0 },
  { n: 1, h: 5, w: 5, cin: 3, cout: 2, k: 3, stride: 1, padValue: 1 },
  { n: 2, h: 7, w: 6, cin: 33, cout: 5, k: 3, stride: 2, padValue: 0 },
  { n: 2, h: 7, w: 6, cin: 33, cout: 5, k: 3, stride: 2, padValue: 1 },
  { n: 1, h: 4, w: 4, cin: 64, cout: 7, k: 3, stride: 2, padValue: 1 },
  { n: 1, h: 3, w: 3, cin: 32, cout: 4, k: 3, stride: 1, padValue: 0 },
  { n: 2, h: 1, w: 1, cin: 70, cout: 3, k: 3, stride: 1, padValue: 0 },
  { n: 2, h: 1, w: 1, cin: 70, cout: 3, k: 3, stride: 1, padValue: 1 },
  { n: 2, h: 3, w: 5, cin: 40, cout: 6, k: 1, stride: 1, padValue: 0 },
  // A 1×1 stride-2 kernel on an even size reads fewer rows than the image has.
  { n: 1, h: 6, w: 6, cin: 36, cout: 5, k: 1, stride: 2, padValue: 1 },
  // Wide rows: more byte-popcount steps than fit a byte before widening, a word tail, rows of 9 pixels.
  { n: 1, h: 4, w: 9, cin: 520, cout: 6, k: 3, stride: 1, padValue: 0 },
  { n: 1, h: 3, w: 6, cin: 1024, cout: 5, k: 3, stride: 1, padValue: 1 },
]

export function randomCase(c: ConvCase, seed: number) {
  const rng = new Rng(seed)
  const x = Float32Array.from({ length: c.n * c.h * c.w * c.cin }, () => rng.next() * 2 - 1)
  // Exact zeros must count as +1 (sign(0) = +1).
  for (let i = 0; i < x.length; i += 17) x[i] = 0
  const kernel = Float32Array.from({ length: c.k * c.k * c.cin * c.cout }, () => rng.next() * 2 - 1)
  const shape = [c.k, c.k, c.cin, c.cout]
  const layer = binaryConvLayer(packSignStream(kernel, shape), shape, c.stride, c.padValue === 1)
  const expected = signConvReference(x, [c.n, c.h, c.w, c.cin], kernel, c.k, c.cout, c.stride, c.padValue)
  return { x, kernel, layer, expected, geometry: convGeometry(c.h, c.w, c.k, c.stride) }
}

/** A checkpoint folded and encoded as an export file (its bytes, size report and header). */
export function exportOf(
  checkpoint: Checkpoint,
  meta: ExportMeta = { runId: 't', stage: 'bnn', classes: [], normalisation: { mean: [0], std: [1] } },
) {
  const folded = foldCheckpoint(checkpoint, meta)
  return encodeExport(folded.meta, folded.tensors)
}
