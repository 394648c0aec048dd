/**
 * Adam with decoupled weight decay (AdamW, Loshchilov & Hutter): the decay shrinks the weights directly
 * instead of entering the gradient as an L2 term, which larq's maintainers found mattered for these networks.
 * The decay follows the learning-rate schedule (θ ← θ − η_t·λ·θ with η_t the schedule multiplier), so `λ` is
 * the per-step shrink at the peak rate. Latent binary weights are clipped to [−1, 1] after each update
 * (larq's weight_clip) when asked.
 *
 * Parameters are updated in flat buckets: a binary network has hundreds of small variables (BN, PReLU, gate),
 * and one update per variable costs more in per-op overhead than in arithmetic. Buckets stay small because
 * slicing a large tensor on the wasm backend copies all of it.
 */
import * as tf from '@tensorflow/tfjs'
import type { OptimizerSpec } from '../../shared/run-config'

export interface OptimizerParam {
  name: string
  variable: tf.Variable
  decay: boolean
  clip: boolean
}

const BUCKET_SIZE = 1 << 16

interface Bucket {
  params: OptimizerParam[]
  sizes: number[]
  m: tf.Variable<tf.Rank.R1>
  v: tf.Variable<tf.Rank.R1>
  /** Per element: 1 where weight decay applies. */
  decayMask: tf.Tensor1D | null
  /** Per element: true where latent weights are clipped. */
  clipMask: tf.Tensor1D | null
}

function zerosVariable(size: number): tf.Variable<tf.Rank.R1> {
  const zeros = tf.zeros([size]) as tf.Tensor1D
  const variable = tf.variable(zeros, false)
  zeros.dispose()
  return variable
}

function makeBucket(params: OptimizerParam[]): Bucket {
  const sizes = params.map((p) => p.variable.size)
  const total = sizes.reduce((a, b) => a + b, 0)
  const mask = (pick: (p: OptimizerParam) => boolean) => {
    if (!params.some(pick)) return null
    const values = new Float32Array(total)
    let offset = 0
    params.forEach((p, i) => {
      if (pick(p)) values.fill(1, offset, offset + (sizes[i] as number))
      offset += sizes[i] as number
    })
    return tf.tensor1d(values)
  }
  return {
    params,
    sizes,
    m: zerosVariable(total),
    v: zerosVariable(total),
    decayMask: mask((p) => p.decay),
    clipMask: mask((p) => p.clip),
  }
}

export class AdamW {
  /** Optimiser steps taken. */
  step = 0
  private readonly buckets: Bucket[] = []

  constructor(
    readonly spec: OptimizerSpec,
    readonly params: OptimizerParam[],
  ) {
    let pending: OptimizerParam[] = []
    let size = 0
    for (const p of params) {
      if (size + p.variable.size > BUCKET_SIZE && pending.length) {
        this.buckets.push(makeBucket(pending))
        pending = []
        size = 0
      }
      pending.push(p)
      size += p.variable.size
    }
    if (pending.length) this.buckets.push(makeBucket(pending))
  }

  /**
   * Applies one update from gradients keyed by tf variable name; `multiplier` is the schedule's factor on the
   * base learning rate. A parameter without a gradient gets a zero gradient (its moments still decay).
   */
  apply(grads: tf.NamedTensorMap, multiplier: number): void {
    this.step += 1
    const { beta1, beta2, epsilon, learningRate, weightDecay } = this.spec
    const lr = learningRate * multiplier
    const correction = Math.sqrt(1 - beta2 ** this.step) / (1 - beta1 ** this.step)
    for (const bucket of this.buckets) {
      tf.tidy(() => {
        const flat = (tensors: tf.Tensor[]) =>
          tensors.length === 1
            ? tf.reshape(tensors[0] as tf.Tensor, [-1])
            : tf.concat(tensors.map((t) => tf.reshape(t, [-1])))
        const g = flat(bucket.params.map((p) => grads[p.variable.name] ?? tf.zerosLike(p.variable)))
        const theta = flat(bucket.params.map((p) => p.variable))
        const m = tf.add(tf.mul(bucket.m, beta1), tf.mul(g, 1 - beta1)) as tf.Tensor1D
        const v = tf.add(tf.mul(bucket.v, beta2), tf.mul(tf.square(g), 1 - beta2)) as tf.Tensor1D
        bucket.m.assign(m)
        bucket.v.assign(v)
        let next = tf.sub(theta, tf.mul(tf.div(m, tf.add(tf.sqrt(v), epsilon)), lr * correction))
        if (weightDecay > 0 && bucket.decayMask) {
          next = tf.sub(next, tf.mul(tf.mul(theta, bucket.decayMask), weightDecay * multiplier))
        }
        if (bucket.clipMask)
          next = tf.where(tf.cast(bucket.clipMask, 'bool'), tf.clipByValue(next, -1, 1), next)
        const parts = bucket.params.length === 1 ? [next] : tf.split(next, bucket.sizes)
        bucket.params.forEach((p, i) =>
          p.variable.assign(tf.reshape(parts[i] as tf.Tensor, p.variable.shape)),
        )
      })
    }
  }

  /** First and second moments per parameter name (new tensors; the caller disposes them). */
  moments(): Map<string, { m: tf.Tensor; v: tf.Tensor }> {
    const out = new Map<string, { m: tf.Tensor; v: tf.Tensor }>()
    for (const bucket of this.buckets) {
      const ms = tf.split(bucket.m, bucket.sizes)
      const vs = tf.split(bucket.v, bucket.sizes)
      bucket.params.forEach((p, i) => {
        out.set(p.name, {
          m: tf.reshape(ms[i] as tf.Tensor, p.variable.shape),
          v: tf.reshape(vs[i] as tf.Tensor, p.variable.shape),
        })
      })
      tf.dispose([...ms, ...vs])
    }
    return out
  }

  /** Restores the moments (shaped as the parameters) and the step count. */
  setMoments(moments: (name: string) => { m: tf.Tensor; v: tf.Tensor }, step: number): void {
    for (const bucket of this.buckets) {
      tf.tidy(() => {
        const all = bucket.params.map((p) => moments(p.name))
        bucket.m.assign(tf.concat(all.map((x) => tf.reshape(x.m, [-1]))) as tf.Tensor1D)
        bucket.v.assign(tf.concat(all.map((x) => tf.reshape(x.v, [-1]))) as tf.Tensor1D)
      })
    }
    this.step = step
  }

  dispose(): void {
    for (const b of this.buckets) {
      tf.dispose([b.m, b.v, ...(b.decayMask ? [b.decayMask] : []), ...(b.clipMask ? [b.clipMask] : [])])
    }
  }
}
