import * as tf from '@tensorflow/tfjs'
import { beforeAll, describe, expect, it } from 'vitest'
import { testBackend } from '../../../support/test-backend'
import { initBackend } from '../../../../src/main/backend/backend'
import { attentionLoss, attentionMap } from '../../../../src/main/engine/attention'
import { crossEntropy, distillationLoss, topKCorrect } from '../../../../src/main/engine/losses'
import { scheduleMultiplier } from '../../../../src/main/engine/schedule'
import { ScheduleSpec } from '../../../../src/shared/run-config'

beforeAll(async () => {
  await initBackend(testBackend('cpu'))
})

async function scalar(t: tf.Tensor): Promise<number> {
  return (await t.data())[0] as number
}

// One image, 2×2 pixels, 2 channels. Per pixel (c0, c1): (1, 2) (0, 1) (2, 2) (1, 0).
const A = () => tf.tensor4d([1, 2, 0, 1, 2, 2, 1, 0], [1, 2, 2, 2])
// Per pixel: (1, 1) (1, 1) (0, 0) (3, 1).
const B = () => tf.tensor4d([1, 1, 1, 1, 0, 0, 3, 1], [1, 2, 2, 2])

describe('attention maps', () => {
  it('paper form: Σ_c A², divided by its L2 norm', async () => {
    // Σ_c A² = [5, 1, 8, 1]; ‖·‖ = √91
    const got = Array.from(await attentionMap(A(), 'paper').data())
    ;[5, 1, 8, 1].forEach((v, i) => expect(got[i]).toBeCloseTo(v / Math.sqrt(91), 6))
  })

  it('larq form: mean_c A², divided by its maximum', async () => {
    // mean_c A² = [2.5, 0.5, 4, 0.5]; max 4
    const got = Array.from(await attentionMap(A(), 'larq').data())
    ;[0.625, 0.125, 1, 0.125].forEach((v, i) => expect(got[i]).toBeCloseTo(v, 6))
  })
})

describe('attention losses', () => {
  // B: Σ_c = [2, 2, 0, 10] (‖·‖ = √108); mean_c = [1, 1, 0, 5] (max 5)
  const qa = [5, 1, 8, 1].map((v) => v / Math.sqrt(91))
  const qb = [2, 2, 0, 10].map((v) => v / Math.sqrt(108))
  const la = [0.625, 0.125, 1, 0.125]
  const lb = [0.2, 0.2, 0, 1]

  it('paper form: L2 distance per point, summed over points', async () => {
    const d1 = Math.sqrt(qa.reduce((s, v, i) => s + (v - (qb[i] as number)) ** 2, 0))
    // second point: identical maps → 0
    const loss = await scalar(attentionLoss([A(), B()], [B(), B()], 'paper'))
    expect(loss).toBeCloseTo(d1 + 0, 5)
  })

  it('larq form: mean squared difference per point, averaged over points', async () => {
    const m1 = la.reduce((s, v, i) => s + (v - (lb[i] as number)) ** 2, 0) / 4
    const loss = await scalar(attentionLoss([A(), B()], [B(), B()], 'larq'))
    expect(loss).toBeCloseTo((m1 + 0) / 2, 6)
  })

  it('is zero for a student that matches its teacher up to scale', async () => {
    const scaled = tf.mul(A(), 3) as tf.Tensor4D
    expect(await scalar(attentionLoss([scaled], [A()], 'larq'))).toBeCloseTo(0, 6)
    expect(await scalar(attentionLoss([scaled], [A()], 'paper'))).toBeLessThan(1e-5)
  })
})

function softmax(v: number[], t = 1): number[] {
  const e = v.map((x) => Math.exp(x / t))
  const s = e.reduce((a, b) => a + b, 0)
  return e.map((x) => x / s)
}

describe('logit matching and cross-entropy', () => {
  it('KD: T²·KL(softmax(t/T) ‖ softmax(s/T)), batch mean', async () => {
    const s = [
      [1, 2, 0.5],
      [0, 0, 3],
    ]
    const t = [
      [2, 1, 0],
      [1, 0, 2],
    ]
    for (const T of [1, 2.5]) {
      const expected =
        (T *
          T *
          s
            .map((row, i) => {
              const p = softmax(t[i] as number[], T)
              const q = softmax(row, T)
              return p.reduce((acc, pv, k) => acc + pv * Math.log(pv / (q[k] as number)), 0)
            })
            .reduce((a, b) => a + b, 0)) /
        2
      const got = await scalar(distillationLoss(tf.tensor2d(s), tf.tensor2d(t), T))
      expect(got).toBeCloseTo(expected, 5)
    }
  })

  it('cross-entropy with label smoothing and mixed (mixup) targets', async () => {
    const logits = [[1, 2, 0.5]]
    const targets = [[0.7, 0.3, 0]]
    const p = softmax(logits[0] as number[])
    const smooth = (targets[0] as number[]).map((v) => v * 0.9 + 0.1 / 3)
    const expected = -smooth.reduce((acc, v, k) => acc + v * Math.log(p[k] as number), 0)
    expect(await scalar(crossEntropy(tf.tensor2d(logits), tf.tensor2d(targets), 0.1))).toBeCloseTo(
      expected,
      5,
    )
  })

  it('top-1 and top-k counts', async () => {
    const logits = tf.tensor2d([
      [0.1, 0.9, 0.0],
      [0.8, 0.1, 0.3],
    ])
    const targets = tf.tensor2d([
      [0, 1, 0],
      [0, 1, 0],
    ])
    const { top1, topK } = topKCorrect(logits, targets, 2)
    expect(await scalar(top1)).toBe(1)
    expect(await scalar(topK)).toBe(1)
  })
})

describe('schedules', () => {
  it('warm-up, step decay and cosine', () => {
    const step = ScheduleSpec.parse({ kind: 'step', warmupEpochs: 2, milestones: [4, 6], factor: 0.3 })
    expect(scheduleMultiplier(step, 1, 10)).toBeCloseTo(0.5)
    expect(scheduleMultiplier(step, 3, 10)).toBe(1)
    expect(scheduleMultiplier(step, 5, 10)).toBeCloseTo(0.3)
    expect(scheduleMultiplier(step, 7, 10)).toBeCloseTo(0.09)
    const cosine = ScheduleSpec.parse({ kind: 'cosine', warmupEpochs: 0 })
    expect(scheduleMultiplier(cosine, 0, 10)).toBe(1)
    expect(scheduleMultiplier(cosine, 5, 10)).toBeCloseTo(0.5)
    expect(scheduleMultiplier(cosine, 10, 10)).toBeCloseTo(0)
  })
})
