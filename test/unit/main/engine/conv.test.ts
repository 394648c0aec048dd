import * as tf from '@tensorflow/tfjs'
import { beforeAll, describe, expect, it } from 'vitest'
import { testBackend } from '../../../support/test-backend'
import { initBackend } from '../../../../src/main/backend/backend'
import { conv2d } from '../../../../src/main/engine/conv'

beforeAll(async () => {
  await initBackend(testBackend('wasm'))
})

async function maxAbs(a: tf.Tensor, b: tf.Tensor): Promise<number> {
  const d = tf.max(tf.abs(tf.sub(a, b)))
  const v = (await d.data())[0] as number
  d.dispose()
  return v
}

describe('conv2d with a forward-convolution input gradient (wasm)', () => {
  const cases: [number, number, number, 'same' | 'valid'][] = [
    [9, 3, 1, 'same'],
    [8, 3, 2, 'same'],
    [7, 3, 2, 'same'],
    [9, 3, 1, 'valid'],
    [10, 3, 2, 'valid'],
    [11, 7, 2, 'same'],
    [6, 1, 1, 'same'],
  ]
  it.each(cases)(
    'size %i, kernel %i, stride %i, %s: same values and gradients as tf.conv2d',
    async (size, k, s, pad) => {
      const x = tf.randomNormal([2, size, size, 3], 0, 1, 'float32', 1) as tf.Tensor4D
      const w = tf.randomNormal([k, k, 3, 4], 0, 1, 'float32', 2) as tf.Tensor4D
      const weights = tf.randomNormal(tf.conv2d(x, w, s, pad).shape, 0, 1, 'float32', 3)
      const loss = (f: typeof conv2d) => (a: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.mul(f(a as tf.Tensor4D, b as tf.Tensor4D, s, pad), weights))
      const reference = tf.grads(loss((a, b, st, p) => tf.conv2d(a, b, st, p)))([x, w])
      const ours = tf.grads(loss(conv2d))([x, w])
      expect(await maxAbs(conv2d(x, w, s, pad), tf.conv2d(x, w, s, pad))).toBeLessThan(1e-5)
      expect(await maxAbs(ours[0] as tf.Tensor, reference[0] as tf.Tensor)).toBeLessThan(1e-4)
      expect(await maxAbs(ours[1] as tf.Tensor, reference[1] as tf.Tensor)).toBeLessThan(1e-3)
      tf.dispose([x, w, weights, ...reference, ...ours])
    },
  )
})
