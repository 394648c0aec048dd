import * as tf from '@tensorflow/tfjs'
import { beforeAll, describe, expect, it } from 'vitest'
import { testBackend } from '../../../support/test-backend'
import { initBackend } from '../../../../src/main/backend/backend'
import {
  approxSign,
  quantizeActivation,
  quantizeWeights,
  signPlusOne,
  steSign,
} from '../../../../src/main/engine/quantizers'

beforeAll(async () => {
  await initBackend(testBackend('cpu'))
})

const xs = [-2, -1, -0.5, 0, 0.25, 1, 2]

async function values(t: tf.Tensor): Promise<number[]> {
  // -0 and +0 are the same value here.
  return Array.from(await t.data(), (v) => v + 0)
}

describe('sign quantizers', () => {
  it('sign(0) is +1 (unlike tf.sign)', async () => {
    expect(await values(signPlusOne(tf.tensor1d(xs)))).toEqual([-1, -1, -1, 1, 1, 1, 1])
    expect(await values(tf.sign(tf.tensor1d([0])))).toEqual([0])
  })

  it('ste sign: forward ±1, gradient dy·1{|x| ≤ clip}', async () => {
    const x = tf.tensor1d(xs)
    const dy = tf.tensor1d([1, 2, 3, 4, 5, 6, 7])
    expect(await values(steSign(x))).toEqual([-1, -1, -1, 1, 1, 1, 1])
    const grad = tf.grad((v: tf.Tensor) => steSign(v))(x, dy)
    expect(await values(grad)).toEqual([0, 2, 3, 4, 5, 6, 0])
    const clipped = tf.grad((v: tf.Tensor) => steSign(v, 0.5))(x, dy)
    expect(await values(clipped)).toEqual([0, 0, 3, 4, 5, 0, 0])
  })

  it('ApproxSign: gradient dy·(2 − 2|x|) inside [−1, 1], zero outside', async () => {
    const x = tf.tensor1d(xs)
    expect(await values(approxSign(x))).toEqual([-1, -1, -1, 1, 1, 1, 1])
    const grad = tf.grad((v: tf.Tensor) => approxSign(v))(x)
    expect(await values(grad)).toEqual([0, 0, 1, 2, 1.5, 0, 0])
  })

  it('tanh and identity are what they say, with their true gradients', async () => {
    const x = tf.tensor1d(xs)
    const tanh = await values(quantizeActivation(x, 'tanh'))
    xs.forEach((v, i) => expect(tanh[i]).toBeCloseTo(Math.tanh(v), 6))
    const grad = await values(tf.grad((v: tf.Tensor) => quantizeActivation(v, 'tanh'))(x))
    xs.forEach((v, i) => expect(grad[i]).toBeCloseTo(1 - Math.tanh(v) ** 2, 5))
    expect(await values(quantizeActivation(x, 'identity'))).toEqual(xs)
  })
})

describe('weight quantizer', () => {
  // [1, 1, 2, 2]: two input channels, two output channels; latent weights in [-1, 1].
  const latent = () => tf.tensor4d([0.5, -0.2, -0.1, 0.0], [1, 1, 2, 2])

  it('sign with the STE on latent weights', async () => {
    const w = latent()
    expect(await values(quantizeWeights(w, 'none'))).toEqual([1, -1, -1, 1])
    const grad = tf.grad((v: tf.Tensor) => quantizeWeights(v as tf.Tensor4D, 'none'))(
      w,
      tf.ones([1, 1, 2, 2]),
    )
    expect(await values(grad)).toEqual([1, 1, 1, 1])
  })

  it('analytic XNOR scale: sign(w) · mean|w| per output channel', async () => {
    // channel 0: |0.5|, |−0.1| → 0.3; channel 1: |−0.2|, |0| → 0.1
    const q = await values(quantizeWeights(latent(), 'mean'))
    ;[0.3, -0.1, -0.3, 0.1].forEach((v, i) => expect(q[i]).toBeCloseTo(v, 6))
  })

  it('learned scale multiplies per output channel and receives a gradient', async () => {
    const scale = tf.tensor1d([2, 3])
    const q = await values(quantizeWeights(latent(), 'learned', scale))
    expect(q).toEqual([2, -3, -2, 3])
    const grad = tf.grad((s: tf.Tensor) => quantizeWeights(latent(), 'learned', s as tf.Tensor1D))(scale)
    // d/ds_c Σ sign(w)·s_c = Σ_over_inputs sign(w[:, c]): channel 0: 1 − 1 = 0; channel 1: −1 + 1 = 0
    expect(await values(grad)).toEqual([0, 0])
  })
})
