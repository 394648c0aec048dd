/**
 * Adam with decoupled weight decay (AdamW, Loshchilov & Hutter): the decay shrinks the weights directly
 * instead of entering the gradient as an L2 term, which larq's maintainers found mattered for these networks.
 * The decay follows the learning-rate schedule (θ ← θ − η_t·λ·θ with η_t the schedule multiplier), so `λ` is
 * the per-step shrink at the peak rate. Latent binary weights are clipped to [−1, 1] after each update
 * (larq's weight_clip) when asked.
 */
import * as tf from '@tensorflow/tfjs'
import type { OptimizerSpec } from '../../shared/run-config'

export interface OptimizerParam {
  name: string
  variable: tf.Variable
  decay: boolean
  clip: boolean
}

export class AdamW {
  /** Optimiser steps taken. */
  step = 0
  readonly m = new Map<string, tf.Variable>()
  readonly v = new Map<string, tf.Variable>()

  constructor(
    readonly spec: OptimizerSpec,
    readonly params: OptimizerParam[],
  ) {
    for (const p of params) {
      this.m.set(p.name, zerosVariable(p.variable))
      this.v.set(p.name, zerosVariable(p.variable))
    }
  }

  /** Applies one update; `multiplier` is the schedule's factor on the base learning rate. */
  apply(grads: tf.NamedTensorMap, byVariableName: Map<string, string>, multiplier: number): void {
    this.step += 1
    const { beta1, beta2, epsilon, learningRate, weightDecay } = this.spec
    const lr = learningRate * multiplier
    const correction = Math.sqrt(1 - beta2 ** this.step) / (1 - beta1 ** this.step)
    const byName = new Map<string, tf.Tensor>()
    for (const [variableName, grad] of Object.entries(grads)) {
      const name = byVariableName.get(variableName)
      if (name) byName.set(name, grad)
    }
    for (const p of this.params) {
      const grad = byName.get(p.name)
      if (!grad) continue
      const m = this.m.get(p.name) as tf.Variable
      const v = this.v.get(p.name) as tf.Variable
      tf.tidy(() => {
        const mNext = tf.add(tf.mul(m, beta1), tf.mul(grad, 1 - beta1))
        const vNext = tf.add(tf.mul(v, beta2), tf.mul(tf.square(grad), 1 - beta2))
        m.assign(mNext)
        v.assign(vNext)
        let next = tf.sub(p.variable, tf.mul(tf.div(mNext, tf.add(tf.sqrt(vNext), epsilon)), lr * correction))
        if (p.decay && weightDecay > 0) next = tf.sub(next, tf.mul(p.variable, weightDecay * multiplier))
        if (p.clip) next = tf.clipByValue(next, -1, 1)
        p.variable.assign(next)
      })
    }
  }

  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose()
    this.m.clear()
    this.v.clear()
  }
}

function zerosVariable(like: tf.Tensor): tf.Variable {
  const zeros = tf.zerosLike(like)
  const variable = tf.variable(zeros, false)
  zeros.dispose()
  return variable
}
