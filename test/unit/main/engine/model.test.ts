import * as tf from '@tensorflow/tfjs'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { testBackend } from '../../../support/test-backend'
import { initBackend } from '../../../../src/main/backend/backend'
import { forwardContext } from '../../../../src/main/engine/layers'
import { ResNet18, TRANSFER_POINTS, modelBuild } from '../../../../src/main/engine/models'
import { StageTrainer } from '../../../../src/main/engine/stage'
import {
  copyMatchingWeights,
  modelFromCheckpoint,
  restoreCheckpoint,
  saveCheckpoint,
} from '../../../../src/main/engine/checkpoint'
import { syntheticBatch, tinyConfig } from './support'
import type { RunConfig } from '../../../../src/shared/run-config'

beforeAll(async () => {
  await initBackend(testBackend('wasm'))
})

let live: { dispose(): void }[] = []
afterEach(() => {
  for (const item of live) item.dispose()
  live = []
})

function model(config: RunConfig, stage: number, seed = 3): ResNet18 {
  const m = new ResNet18(modelBuild(config, config.stages[stage]!.student, seed))
  live.push(m)
  return m
}

async function read(t: tf.Tensor): Promise<Float32Array> {
  return (await t.data()) as Float32Array
}

/**
 * Runs a training-mode pass (batch statistics: a fresh model's moving statistics would leave every BN output
 * of a ReLU'd input positive) and keeps the tapped tensors whose name matches.
 */
function tapped(m: ResNet18, images: tf.Tensor4D, match: RegExp): Map<string, tf.Tensor> {
  const taps = new Map<string, tf.Tensor>()
  const ctx = forwardContext(true, { tap: (name, t) => match.test(name) && taps.set(name, tf.keep(t)) })
  tf.tidy(() => {
    m.forward(images, ctx)
  })
  tf.dispose(ctx.bnUpdates.flatMap((u) => [u.mean, u.variance]))
  return taps
}

/** Gate values of one half block in a training-mode pass. */
function gateValues(m: ResNet18, images: tf.Tensor4D, block: string): tf.Tensor {
  const ctx = forwardContext(true)
  const values = tf.tidy(() => m.forward(images, ctx).gates.find((g) => g.block === block)!.values)
  tf.dispose(ctx.bnUpdates.flatMap((u) => [u.mean, u.variance]))
  return values
}

describe('the binary block', () => {
  it('exposes the 8 transfer points for teacher and student alike, with matching spatial sizes', () => {
    const config = tinyConfig()
    const images = tf.randomNormal([2, 16, 16, 1]) as tf.Tensor4D
    const shapes = (m: ResNet18) =>
      tf.tidy(() => m.forward(images, forwardContext(false)).points.map((p) => p.shape))
    const teacher = shapes(model(config, 0))
    const student = shapes(model(config, 3))
    expect(teacher).toHaveLength(TRANSFER_POINTS.length)
    expect(teacher).toEqual(student)
    expect(teacher.map((s) => s[3])).toEqual([8, 8, 16, 16, 32, 32, 64, 64])
    expect(teacher.map((s) => s[1])).toEqual([16, 16, 8, 8, 4, 4, 2, 2])
  })

  it('the gate reads the BN output before the quantizer: changing the conv leaves it, changing BN moves it', async () => {
    const config = tinyConfig()
    const m = model(config, 2)
    const images = syntheticBatch(4, 16, 1, 10).images
    const gateOf = async () => {
      const values = gateValues(m, images, 'block_3a')
      const out = await read(values)
      values.dispose()
      return out
    }
    const convOut = async () => {
      const taps = tapped(m, images, /^block_3a\.conv\.output$/)
      const out = await read(taps.get('block_3a.conv.output')!)
      tf.dispose([...taps.values()])
      return out
    }
    const gate0 = await gateOf()
    const conv0 = await convOut()
    const kernel = m.store.weights.get('block_3a.conv.kernel')!
    kernel.assign(tf.randomNormal(kernel.shape, 0, 1, 'float32', 99))
    const conv1 = await convOut()
    expect(Math.max(...conv1.map((v, i) => Math.abs(v - (conv0[i] as number))))).toBeGreaterThan(0.1)
    expect(Array.from(await gateOf())).toEqual(Array.from(gate0))
    const beta = m.store.weights.get('block_3a.bn.beta')!
    beta.assign(tf.fill(beta.shape, 0.7))
    const gate2 = await gateOf()
    expect(Math.max(...gate2.map((v, i) => Math.abs(v - (gate0[i] as number))))).toBeGreaterThan(1e-3)
  })

  it('a fully binary stage convolves ±1 activations with ±1 weights, padding with +1', async () => {
    const config = tinyConfig('r2b', ['model.downsample=binary'])
    const m = model(config, 3)
    const images = syntheticBatch(2, 16, 1, 10).images
    const taps = tapped(m, images, /^block_\d[ab]\.(conv|shortcut\.conv)\.(input|kernel|output)$/)
    const convs = [...taps.keys()]
      .filter((k) => k.endsWith('.input'))
      .map((k) => k.slice(0, -'.input'.length))
    expect(convs.length).toBe(16 + 3)
    for (const name of convs) {
      for (const part of ['input', 'kernel']) {
        const values = new Set(await read(taps.get(`${name}.${part}`)!))
        expect([...values].sort(), `${name}.${part}`).toEqual([-1, 1])
      }
    }
    // Output pixel (0, 0) of the first binary conv by hand: the 3×3 window hangs over the top-left border,
    // where the padded input is +1.
    const input = await read(taps.get('block_1a.conv.input')!)
    const kernel = await read(taps.get('block_1a.conv.kernel')!)
    const output = await read(taps.get('block_1a.conv.output')!)
    const [c, size] = [8, 16]
    for (let co = 0; co < c; co++) {
      let sum = 0
      for (let kh = 0; kh < 3; kh++) {
        for (let kw = 0; kw < 3; kw++) {
          for (let ci = 0; ci < c; ci++) {
            const h = kh - 1
            const w = kw - 1
            const x = h < 0 || w < 0 ? 1 : (input[(h * size + w) * c + ci] as number)
            sum += x * (kernel[((kh * 3 + kw) * c + ci) * c + co] as number)
          }
        }
      }
      expect(output[co]).toBeCloseTo(sum, 4)
    }
    tf.dispose([...taps.values()])
  })

  it('sign-activation stage binarises inputs only; the tanh stage binarises nothing', async () => {
    const config = tinyConfig()
    const images = syntheticBatch(2, 16, 1, 10).images
    const ban = tapped(model(config, 2), images, /^block_2b\.conv\.(input|kernel)$/)
    expect(new Set(await read(ban.get('block_2b.conv.input')!)).size).toBe(2)
    expect(new Set(await read(ban.get('block_2b.conv.kernel')!)).size).toBeGreaterThan(2)
    const tanh = tapped(model(config, 1), images, /^block_2b\.conv\.input$/)
    expect(new Set(await read(tanh.get('block_2b.conv.input')!)).size).toBeGreaterThan(2)
    tf.dispose([...ban.values(), ...tanh.values()])
  })
})

describe('gradients in every stage', () => {
  for (const [pipeline, downsample] of [
    ['r2b', 'real'],
    ['baseline', 'binary'],
  ] as const) {
    it(`${pipeline} (${downsample} downsample): every trainable variable gets a non-zero gradient, the teacher none`, async () => {
      const config = tinyConfig(pipeline, [`model.downsample=${downsample}`])
      const batch = syntheticBatch(16, 16, 1, 10)
      let teacher: ResNet18 | null = null
      for (let index = 0; index < config.stages.length; index++) {
        const trainer: StageTrainer = new StageTrainer(config, index, { teacher, init: teacher })
        const studentVars = trainer.student.trainableVariables()
        const teacherVars = teacher?.trainableVariables() ?? []
        const teacherState = teacher ? await Promise.all([...teacher.store.state.values()].map(read)) : []
        const { grads, parts } = trainer.gradients(batch, [...studentVars, ...teacherVars])
        for (const v of teacherVars) expect(grads[v.name], `teacher ${v.name}`).toBeUndefined()
        for (const v of studentVars) {
          const g = grads[v.name]
          expect(g, `${config.stages[index]!.name}: ${v.name}`).toBeDefined()
          const norm = (await read(tf.tidy(() => tf.max(tf.abs(g!)))))[0] as number
          expect(norm, `${config.stages[index]!.name}: ${v.name}`).toBeGreaterThan(0)
        }
        tf.dispose([...Object.values(grads), ...Object.values(parts)])
        // A real step leaves the teacher's BN statistics where they were.
        tf.dispose(Object.values(trainer.step(batch, 1)))
        if (teacher) {
          const after = await Promise.all([...teacher.store.state.values()].map(read))
          after.forEach((values, i) => expect(Array.from(values)).toEqual(Array.from(teacherState[i]!)))
          teacher.dispose()
        }
        trainer.dispose()
        teacher = trainer.student
      }
      teacher?.dispose()
      tf.dispose([batch.images, batch.labels])
    })
  }
})

describe('stage chaining and checkpoints', () => {
  it('the fully binary student starts from the previous stage’s weights and BN statistics', async () => {
    const config = tinyConfig()
    const ban = model(config, 2, 11)
    const bnn = new StageTrainer(config, 3, { teacher: ban, init: ban })
    live.push(bnn.student, bnn)
    expect(copyMatchingWeights(ban, bnn.student)).toEqual([])
    for (const [name, v] of [...bnn.student.store.weights, ...bnn.student.store.state]) {
      const source = ban.store.weights.get(name) ?? ban.store.state.get(name)
      expect(Array.from(await read(v)), name).toEqual(Array.from(await read(source!)))
    }
  })

  it('a checkpoint round trip gives identical outputs and optimiser state', async () => {
    const config = tinyConfig()
    const trainer = new StageTrainer(config, 1, { teacher: model(config, 0) })
    live.push(trainer.student, trainer)
    const batch = syntheticBatch(8, 16, 1, 10)
    for (let i = 0; i < 2; i++) tf.dispose(Object.values(trainer.step(batch, 1)))
    const checkpoint = await saveCheckpoint(
      trainer.student,
      { stage: 'tanh', epochsCompleted: 1, step: 2 },
      trainer.optimizer,
    )
    // The payload must survive a trip through plain JSON + bytes, as the run store keeps it.
    const copy = {
      manifest: JSON.parse(JSON.stringify(checkpoint.manifest)) as typeof checkpoint.manifest,
      data: checkpoint.data.slice(0),
    }
    const restored = modelFromCheckpoint(copy)
    live.push(restored)
    const a = await read(trainer.student.predict(batch.images))
    const b = await read(restored.predict(batch.images))
    expect(Array.from(b)).toEqual(Array.from(a))

    const resumed = new StageTrainer(config, 1, { teacher: model(config, 0) })
    live.push(resumed.student, resumed)
    restoreCheckpoint(resumed.student, copy, resumed.optimizer)
    expect(resumed.optimizer.step).toBe(2)
    expect(resumed.optimizer.slots).toEqual(['m', 'v'])
    await expectSameState(trainer, resumed)
    tf.dispose([batch.images, batch.labels])
  })

  it('an SGD stage resumes with its velocity: the next step is the uninterrupted one, bit for bit', async () => {
    const config = tinyConfig('r2b', [
      'stages.0.optimizer.kind=sgd',
      'stages.0.optimizer.momentum=0.9',
      'stages.0.optimizer.learningRate=0.05',
      'stages.0.optimizer.weightDecay=1e-3',
    ])
    const trainer = new StageTrainer(config, 0)
    live.push(trainer.student, trainer)
    const batch = syntheticBatch(8, 16, 1, 10)
    for (let i = 0; i < 2; i++) tf.dispose(Object.values(trainer.step(batch, 0.7)))
    const checkpoint = await saveCheckpoint(
      trainer.student,
      { stage: 'teacher', epochsCompleted: 1, step: 2 },
      trainer.optimizer,
    )
    const optimizerNames = checkpoint.manifest.tensors
      .filter((t) => t.group === 'optimizer')
      .map((t) => t.name)
    expect(optimizerNames).toEqual(
      [...trainer.student.store.weights.keys()].map((name) => `velocity/${name}`),
    )
    const copy = {
      manifest: JSON.parse(JSON.stringify(checkpoint.manifest)) as typeof checkpoint.manifest,
      data: checkpoint.data.slice(0),
    }
    const resumed = new StageTrainer(config, 0)
    live.push(resumed.student, resumed)
    restoreCheckpoint(resumed.student, copy, resumed.optimizer)
    expect(resumed.optimizer.step).toBe(2)
    await expectSameState(trainer, resumed)
    // With momentum the third step depends on the velocity: a lost one would move the weights differently.
    tf.dispose(Object.values(trainer.step(batch, 0.4)))
    tf.dispose(Object.values(resumed.step(batch, 0.4)))
    for (const [name, v] of trainer.student.store.weights)
      expect(Array.from(await read(resumed.student.store.weights.get(name)!)), name).toEqual(
        Array.from(await read(v)),
      )
    // Adam's state is not SGD's: the wrong kind is refused, not read as something else.
    const adam = new StageTrainer(tinyConfig(), 0)
    live.push(adam.student, adam)
    expect(() => restoreCheckpoint(adam.student, copy, adam.optimizer)).toThrow(
      /holds optimiser state velocity, not the adamw optimiser's m, v/,
    )
    tf.dispose([batch.images, batch.labels])
  })
})

/** Both trainers' optimisers hold the same state, value for value. */
async function expectSameState(a: StageTrainer, b: StageTrainer): Promise<void> {
  const before = a.optimizer.state()
  const after = b.optimizer.state()
  expect([...after.keys()]).toEqual([...before.keys()])
  for (const [slot, tensors] of before)
    for (const [name, t] of tensors)
      expect(Array.from(await read(after.get(slot)!.get(name)!)), `${slot}/${name}`).toEqual(
        Array.from(await read(t)),
      )
  tf.dispose([...before.values(), ...after.values()].flatMap((tensors) => [...tensors.values()]))
}
