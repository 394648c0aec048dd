/** Fixtures: fully binary models with every parameter randomised, as checkpoints. */
import * as tf from '@tensorflow/tfjs'
import { saveCheckpoint, type Checkpoint } from '../../../../src/main/engine/checkpoint'
import { ResNet18, type ModelBuild } from '../../../../src/main/engine/models'
import { Rng } from '../../../../src/main/engine/random'

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
  const checkpoint = await saveCheckpoint(model, { stage: 'bnn', epoch: 1, step: 1 })
  model.dispose()
  return checkpoint
}

/** Random normal images [n, size, size, channels]. */
export function randomImages(n: number, build: ModelBuild, seed = 3): tf.Tensor4D {
  return tf.randomNormal([n, build.inputSize, build.inputSize, build.channels], 0, 1, 'float32', seed)
}
