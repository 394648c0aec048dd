/**
 * The same engine on WebGPU (Dawn; lavapipe on machines without a GPU, which is slow, so this stays tiny):
 * quantizer values and gradients, ±1 convolution inputs with +1 padding, a flat tensor count, and a tiny run
 * that learns on real images.
 */
import * as tf from '@tensorflow/tfjs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { initBackend, releaseBackend } from '../../../../src/main/backend/backend'
import { steSign } from '../../../../src/main/engine/quantizers'
import { forwardContext } from '../../../../src/main/engine/layers'
import { runStage } from '../../../../src/main/engine/stage'
import type { DataSource } from '../../../../src/main/engine/data'
import type { ResNet18 } from '../../../../src/main/engine/models'
import type { EngineRecord, StageEndRecord } from '../../../../src/shared/records'
import { makeRunConfig } from '../../../../src/shared/run-config'
import { fashionMnistSubset } from './support'

let data: DataSource

beforeAll(async () => {
  const report = await initBackend('webgpu')
  expect(report.backend).toBe('webgpu')
  data = await fashionMnistSubset(100, 20)
})

afterAll(() => {
  releaseBackend()
})

// Width 4 channels, batch 16: a few seconds per step on lavapipe.
const config = makeRunConfig({
  preset: 'quick',
  pipeline: 'r2b',
  set: [
    'model.width=0.0625',
    'data.testLimit=200',
    'eval.probes=2',
    'eval.gateSubset=32',
    'eval.batchSize=100',
    // The sign-activation student learns from the real teacher directly here, to keep the chain short.
    'stages.2.teacher=stage:teacher',
    ...[0, 2].flatMap((i) => [
      `stages.${i}.epochs=1`,
      `stages.${i}.stepsPerEpoch=30`,
      `stages.${i}.batchSize=16`,
      // So few steps learn faster at a constant, higher rate.
      `stages.${i}.schedule.kind=constant`,
      `stages.${i}.schedule.warmupEpochs=0`,
      `stages.${i}.optimizer.learningRate=0.005`,
    ]),
  ],
})

describe('engine on webgpu', () => {
  it('ste sign: sign(0) = +1 and the clipped straight-through gradient', async () => {
    const x = tf.tensor1d([-2, -0.5, 0, 0.5, 2])
    expect(Array.from(await steSign(x).data())).toEqual([-1, -1, 1, 1, 1])
    const grad = tf.grad((v: tf.Tensor) => steSign(v))(x, tf.tensor1d([1, 2, 3, 4, 5]))
    expect(Array.from(await grad.data(), (v) => v + 0)).toEqual([0, 2, 3, 4, 0])
    tf.dispose([x, grad])
  })

  it('a tiny run learns: teacher, then a sign-activation gated student with attention and KD', async () => {
    const before = tf.memory().numTensors
    const stageRecords = async (stageIndex: number, teacher: ResNet18 | null) => {
      const records: EngineRecord[] = []
      const gen = runStage({ config, stageIndex, data, teacher })
      let next = await gen.next()
      while (!next.done) {
        records.push(next.value)
        next = await gen.next()
      }
      return { records, model: next.value }
    }
    const first = await stageRecords(0, null)
    const second = await stageRecords(2, first.model)

    // The student's binary convolutions really see ±1 inputs on this backend too.
    const probe = await data.testImages([0, 1, 2, 3])
    const inputs: tf.Tensor[] = []
    const ctx = forwardContext(true, {
      tap: (name, t) => name === 'block_2a.conv.input' && inputs.push(tf.keep(t)),
    })
    tf.tidy(() => {
      second.model.forward(probe.images, ctx)
    })
    tf.dispose(ctx.bnUpdates.flatMap((u) => [u.mean, u.variance]))
    expect([...new Set(await inputs[0]!.data())].sort()).toEqual([-1, 1])
    tf.dispose([...inputs, probe.images, probe.labels])

    first.model.dispose()
    second.model.dispose()
    expect(tf.memory().numTensors).toBe(before)

    const end = (records: EngineRecord[]) => records.find((r): r is StageEndRecord => r.kind === 'stage-end')!
    // 10 classes, chance 10%: stated margins after 30 steps of 16 images each.
    expect(end(first.records).test?.top1).toBeGreaterThan(0.3)
    expect(end(second.records).test?.top1).toBeGreaterThan(0.2)
    const steps = second.records.filter((r) => r.kind === 'step')
    expect(steps.every((s) => s.loss.attention > 0 && s.loss.distillation > 0)).toBe(true)
  }, 300_000)
})
