import * as tf from '@tensorflow/tfjs'
import { beforeAll, describe, expect, it } from 'vitest'
import { testBackend } from '../../../support/test-backend'
import { initBackend } from '../../../../src/main/backend/backend'
import { Optimizer } from '../../../../src/main/engine/optimizer'
import { OptimizerSpec } from '../../../../src/shared/run-config'

beforeAll(async () => {
  await initBackend(testBackend('wasm'))
})

/** Read back asynchronously: WebGPU in Node has no synchronous read. */
async function values(t: tf.Tensor): Promise<number[]> {
  return Array.from(await t.data())
}

function expectClose(actual: number[], expected: number[]): void {
  expect(actual).toHaveLength(expected.length)
  actual.forEach((a, i) => expect(a).toBeCloseTo(expected[i] as number, 6))
}

describe('SGD with momentum', () => {
  it('two steps worked by hand: velocity, decoupled decay with the schedule, latent clip', async () => {
    // lr 0.1, μ 0.9, λ 0.01; multipliers 1 then 0.5. w decays, k is clipped.
    const w = tf.variable(tf.tensor1d([0.5, -0.2, 0.9]))
    const k = tf.variable(tf.tensor1d([0.98, -0.5]))
    const opt = new Optimizer(
      OptimizerSpec.parse({ kind: 'sgd', learningRate: 0.1, momentum: 0.9, weightDecay: 0.01 }),
      [
        { name: 'w', variable: w, decay: true, clip: false },
        { name: 'k', variable: k, decay: false, clip: true },
      ],
    )
    expect(opt.slots).toEqual(['velocity'])
    const step = (gw: number[], gk: number[], multiplier: number) => {
      const grads = { [w.name]: tf.tensor1d(gw), [k.name]: tf.tensor1d(gk) }
      opt.apply(grads, multiplier)
      tf.dispose(Object.values(grads))
    }
    step([0.1, -0.3, 0.2], [-0.3, 0], 1)
    // v = g; w − 0.1·v − 0.01·w; k: 0.98 + 0.03 = 1.01, clipped to 1.
    expectClose(await values(w), [0.485, -0.168, 0.871])
    expect(await values(k)).toEqual([1, -0.5])
    step([0.05, 0.1, 2], [-0.1, 0], 0.5)
    // v = 0.9·[0.1, −0.3, 0.2] + [0.05, 0.1, 2] = [0.14, −0.17, 2.18]; w − 0.05·v − 0.005·w.
    expectClose(await values(w), [0.475575, -0.15866, 0.757645])
    expect(await values(k)).toEqual([1, -0.5])
    const state = opt.state()
    expect([...state.keys()]).toEqual(['velocity'])
    expectClose(await values(state.get('velocity')!.get('w')!), [0.14, -0.17, 2.18])
    expectClose(await values(state.get('velocity')!.get('k')!), [-0.37, 0])
    expect(opt.step).toBe(2)
    tf.dispose([...state.get('velocity')!.values()])
    opt.dispose()
    tf.dispose([w, k])
  })

  it('with momentum 0 (Keras’s default) each step is θ − lr·η_t·g', async () => {
    const w = tf.variable(tf.tensor1d([0.5, -0.25]))
    const opt = new Optimizer(OptimizerSpec.parse({ kind: 'sgd', learningRate: 0.1 }), [
      { name: 'w', variable: w, decay: false, clip: false },
    ])
    const expected = tf.tidy(() => tf.sub(w, tf.mul(tf.tensor1d([1, -2]), 0.1)))
    const g1 = tf.tensor1d([1, -2])
    opt.apply({ [w.name]: g1 }, 1)
    expect(await values(w)).toEqual(await values(expected))
    const g2 = tf.tensor1d([0.5, 0.5])
    const expected2 = tf.tidy(() => tf.sub(expected, tf.mul(g2, 0.05)))
    opt.apply({ [w.name]: g2 }, 0.5)
    expect(await values(w)).toEqual(await values(expected2))
    tf.dispose([w, expected, expected2, g1, g2])
    opt.dispose()
  })

  it('Adam keeps its two moments', async () => {
    const w = tf.variable(tf.tensor1d([0.5]))
    const opt = new Optimizer(OptimizerSpec.parse({}), [
      { name: 'w', variable: w, decay: false, clip: false },
    ])
    expect(opt.slots).toEqual(['m', 'v'])
    const g = tf.tensor1d([2])
    opt.apply({ [w.name]: g }, 1)
    const state = opt.state()
    expectClose(await values(state.get('m')!.get('w')!), [0.2])
    expectClose(await values(state.get('v')!.get('w')!), [0.004])
    // The first bias-corrected step is lr·sign(g) (to ε).
    expectClose(await values(w), [0.5 - 1e-3])
    tf.dispose([...state.values()].flatMap((s) => [...s.values()]))
    tf.dispose([w, g])
    opt.dispose()
  })
})
