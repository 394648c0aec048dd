/**
 * The stage optimisers: Adam with decoupled weight decay (AdamW, Loshchilov & Hutter) and SGD with momentum.
 * The decay shrinks the weights directly instead of entering the gradient as an L2 term, which larq's
 * maintainers found mattered for these networks, and it is the same for both kinds: it follows the
 * learning-rate schedule (θ ← θ − η_t·λ·θ with η_t the schedule multiplier), so `λ` is the per-step shrink at
 * the peak rate, and uses the weights before the step's update. Latent binary weights are clipped to [−1, 1]
 * after each update (larq's weight_clip) when asked.
 *
 * Per step t, with lr_t = lr·η_t, the update that both kinds then decay and clip:
 *   adamw: m ← β1·m + (1 − β1)·g;  v ← β2·v + (1 − β2)·g²;  θ ← θ − (m / (√v + ε))·lr_t·√(1 − β2^t)/(1 − β1^t)
 *   sgd:   v ← μ·v + g;  θ ← θ − lr_t·v
 *
 * SGD takes PyTorch's form (torch.optim.SGD without dampening or Nesterov) rather than Keras's (v ← μ·v −
 * lr_t·g; θ ← θ + v): the velocity is then a plain sum of gradients, independent of the schedule, so a change
 * of rate acts at once and a checkpointed velocity means the same under any learning rate. With μ = 0 both are
 * θ ← θ − lr_t·g, Keras's SGD with its default momentum, which larq zoo's teacher recipe uses.
 *
 * Parameters are updated in flat buckets: a binary network has hundreds of small variables (BN, PReLU, gate),
 * and one update per variable costs more in per-op overhead than in arithmetic. Buckets stay small because
 * slicing a large tensor on the wasm backend copies all of it. Each bucket keeps its optimiser state as flat
 * variables, one per slot (OPTIMIZER_SLOTS: what checkpoints store).
 */
import * as tf from '@tensorflow/tfjs'
import { OPTIMIZER_SLOTS } from '../../shared/checkpoint'
import type { OptimizerSpec } from '../../shared/run-config'

export interface OptimizerParam {
  name: string
  variable: tf.Variable
  decay: boolean
  clip: boolean
}

const BUCKET_SIZE = 1 << 16

/** An optimiser's state over a bucket: one flat variable per slot. */
type State = tf.Variable<tf.Rank.R1>[]

interface Bucket {
  params: OptimizerParam[]
  sizes: number[]
  state: State
  /** Per element: 1 where weight decay applies. */
  decayMask: tf.Tensor1D | null
  /** Per element: true where latent weights are clipped. */
  clipMask: tf.Tensor1D | null
}

/**
 * One kind's update: given a bucket's flat gradient, advances its state (one variable per slot) and returns
 * what to subtract from θ before decay and clipping. Runs inside a tidy.
 */
type UpdateRule = (state: State, g: tf.Tensor1D, step: number, multiplier: number) => tf.Tensor1D

function updateRule(spec: OptimizerSpec): UpdateRule {
  switch (spec.kind) {
    case 'adamw':
      return (state, g, step, multiplier) => {
        const [m, v] = state as [tf.Variable<tf.Rank.R1>, tf.Variable<tf.Rank.R1>]
        const { beta1, beta2, epsilon, learningRate } = spec
        const correction = Math.sqrt(1 - beta2 ** step) / (1 - beta1 ** step)
        m.assign(tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1)) as tf.Tensor1D)
        v.assign(tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2)) as tf.Tensor1D)
        return tf.mul(tf.div(m, tf.add(tf.sqrt(v), epsilon)), learningRate * multiplier * correction)
      }
    case 'sgd':
      return (state, g, _step, multiplier) => {
        const [velocity] = state as [tf.Variable<tf.Rank.R1>]
        velocity.assign(tf.add(tf.mul(velocity, spec.momentum), g) as tf.Tensor1D)
        return tf.mul(velocity, spec.learningRate * multiplier)
      }
  }
}

function zerosVariable(size: number): tf.Variable<tf.Rank.R1> {
  const zeros = tf.zeros([size]) as tf.Tensor1D
  const variable = tf.variable(zeros, false)
  zeros.dispose()
  return variable
}

function makeBucket(params: OptimizerParam[], slots: number): Bucket {
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
    state: Array.from({ length: slots }, () => zerosVariable(total)),
    decayMask: mask((p) => p.decay),
    clipMask: mask((p) => p.clip),
  }
}

export class Optimizer {
  /** Optimiser steps taken. */
  step = 0
  /** The state slots of this kind, in checkpoint order (`m`, `v` for Adam; `velocity` for SGD). */
  readonly slots: readonly string[]
  private readonly rule: UpdateRule
  private readonly buckets: Bucket[] = []

  constructor(
    readonly spec: OptimizerSpec,
    readonly params: OptimizerParam[],
  ) {
    this.slots = OPTIMIZER_SLOTS[spec.kind]
    this.rule = updateRule(spec)
    let pending: OptimizerParam[] = []
    let size = 0
    for (const p of params) {
      if (size + p.variable.size > BUCKET_SIZE && pending.length) {
        this.buckets.push(makeBucket(pending, this.slots.length))
        pending = []
        size = 0
      }
      pending.push(p)
      size += p.variable.size
    }
    if (pending.length) this.buckets.push(makeBucket(pending, this.slots.length))
  }

  /**
   * Applies one update from gradients keyed by tf variable name; `multiplier` is the schedule's factor on the
   * base learning rate. A parameter without a gradient gets a zero gradient (its state still decays).
   */
  apply(grads: tf.NamedTensorMap, multiplier: number): void {
    this.step += 1
    const { weightDecay } = this.spec
    for (const bucket of this.buckets) {
      tf.tidy(() => {
        const flat = (tensors: tf.Tensor[]) =>
          tensors.length === 1
            ? tf.reshape(tensors[0] as tf.Tensor, [-1])
            : tf.concat(tensors.map((t) => tf.reshape(t, [-1])))
        const g = flat(bucket.params.map((p) => grads[p.variable.name] ?? tf.zerosLike(p.variable)))
        const theta = flat(bucket.params.map((p) => p.variable))
        let next = tf.sub(theta, this.rule(bucket.state, g as tf.Tensor1D, this.step, multiplier))
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

  /**
   * The state per slot, then per parameter name, both in checkpoint order, each tensor shaped as its parameter
   * (new tensors; the caller disposes them).
   */
  state(): Map<string, Map<string, tf.Tensor>> {
    const out = new Map(this.slots.map((slot) => [slot, new Map<string, tf.Tensor>()]))
    for (const bucket of this.buckets) {
      this.slots.forEach((slot, s) => {
        const parts = tf.split(bucket.state[s] as tf.Variable, bucket.sizes)
        bucket.params.forEach((p, i) =>
          out.get(slot)?.set(p.name, tf.reshape(parts[i] as tf.Tensor, p.variable.shape)),
        )
        tf.dispose(parts)
      })
    }
    return out
  }

  /** Restores the state (`read(slot, name)`, shaped as the parameter; the caller keeps it) and the step count. */
  setState(read: (slot: string, name: string) => tf.Tensor, step: number): void {
    for (const bucket of this.buckets) {
      tf.tidy(() => {
        this.slots.forEach((slot, s) => {
          const values = bucket.params.map((p) => tf.reshape(read(slot, p.name), [-1]))
          ;(bucket.state[s] as tf.Variable).assign(tf.concat(values) as tf.Tensor1D)
        })
      })
    }
    this.step = step
  }

  dispose(): void {
    for (const b of this.buckets) {
      tf.dispose([...b.state, ...(b.decayMask ? [b.decayMask] : []), ...(b.clipMask ? [b.clipMask] : [])])
    }
  }
}
