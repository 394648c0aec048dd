/**
 * Training on wasm: the tensor count stays flat, a tiny chain learns on real Fashion-MNIST images, stages
 * chain (each teacher is the previous student), a run stops and resumes at an epoch boundary.
 */
import * as tf from '@tensorflow/tfjs'
import { beforeAll, describe, expect, it } from 'vitest'
import { testBackend } from '../../../support/test-backend'
import { initBackend } from '../../../../src/main/backend/backend'
import type { DataSource } from '../../../../src/main/engine/data'
import { runPipeline } from '../../../../src/main/engine/pipeline'
import { StageTrainer, runStage } from '../../../../src/main/engine/stage'
import { ResNet18, modelBuild } from '../../../../src/main/engine/models'
import { inspectImage } from '../../../../src/main/engine/inspect'
import type { Checkpoint } from '../../../../src/main/engine/checkpoint'
import type {
  AttentionRecord,
  CheckpointRecord,
  EngineRecord,
  EpochRecord,
  GateRecord,
  StageEndRecord,
} from '../../../../src/shared/records'
import { makeRunConfig, type RunConfig } from '../../../../src/shared/run-config'
import { fashionMnistSubset, syntheticBatch, tinyConfig } from './support'

let data: DataSource

beforeAll(async () => {
  await initBackend(testBackend('wasm'))
  data = await fashionMnistSubset(200, 30)
})

async function collect(gen: AsyncGenerator<EngineRecord, unknown>): Promise<EngineRecord[]> {
  const records: EngineRecord[] = []
  for await (const record of gen) records.push(record)
  return records
}

/** The quick preset's model (28×28, width 0.125) with a small per-stage budget. */
function smallRun(steps: number, extra: string[] = []): RunConfig {
  const perStage = [0, 1, 2, 3].flatMap((i) => [`stages.${i}.epochs=1`, `stages.${i}.stepsPerEpoch=${steps}`])
  return makeRunConfig({
    preset: 'quick',
    set: [...perStage, 'data.testLimit=200', 'eval.probes=4', 'eval.gateSubset=100', ...extra],
  })
}

describe('memory', () => {
  it('the tensor count is flat over many steps of a gated, distilled binary stage', async () => {
    const config = tinyConfig()
    const teacher = new ResNet18(modelBuild(config, config.stages[1]!.student))
    const trainer = new StageTrainer(config, 2, { teacher })
    const batch = syntheticBatch(8, 16, 1, 10)
    const step = async () => {
      const parts = trainer.step(batch, 1)
      await parts.total.data()
      tf.dispose(Object.values(parts))
    }
    await step()
    const before = tf.memory().numTensors
    for (let i = 0; i < 12; i++) await step()
    expect(tf.memory().numTensors).toBe(before)
    trainer.dispose()
    trainer.student.dispose()
    teacher.dispose()
    tf.dispose([batch.images, batch.labels])
  })
})

describe('the r2b chain on real images', () => {
  it('every stage learns, each teacher is the previous student, and nothing leaks', async () => {
    const baseline = tf.memory().numTensors
    const config = smallRun(30)
    const gen = runPipeline({ config, data })
    const records: EngineRecord[] = []
    let next = await gen.next()
    while (!next.done) {
      records.push(next.value)
      next = await gen.next()
    }
    next.value.final?.dispose()
    expect(tf.memory().numTensors).toBe(baseline)

    const ends = records.filter((r): r is StageEndRecord => r.kind === 'stage-end')
    expect(ends.map((r) => r.stage)).toEqual(['teacher', 'tanh', 'ban', 'bnn'])
    // 10 classes: chance is 10%. Stated margins after 30 steps a stage: at least twice chance, the real
    // teacher four times.
    const accuracy = Object.fromEntries(ends.map((r) => [r.stage, r.test?.top1]))
    const seen = JSON.stringify(accuracy)
    expect(accuracy.teacher, seen).toBeGreaterThan(0.4)
    expect(accuracy.tanh, seen).toBeGreaterThan(0.3)
    expect(accuracy.ban, seen).toBeGreaterThan(0.3)
    expect(accuracy.bnn, seen).toBeGreaterThan(0.2)

    const steps = records.filter((r) => r.kind === 'step')
    expect(steps).toHaveLength(4 * 30)
    for (const s of steps) {
      expect(Number.isFinite(s.loss.total)).toBe(true)
      expect(s.imagesPerSecond).toBeGreaterThan(0)
    }
    const tanhSteps = steps.filter((s) => s.stage === 'tanh')
    expect(tanhSteps.every((s) => s.loss.attention > 0 && s.loss.distillation > 0)).toBe(true)
    expect(steps.filter((s) => s.stage === 'bnn').every((s) => s.loss.attention === 0)).toBe(true)

    // Each teacher is the previous stage's final student: frozen, so its probe maps equal that student's.
    const attention = (stage: string) =>
      records.find((r): r is AttentionRecord => r.kind === 'attention' && r.stage === stage)!
    for (const [teacherStage, studentStage] of [
      ['teacher', 'tanh'],
      ['tanh', 'ban'],
      ['ban', 'bnn'],
    ]) {
      const previous = attention(teacherStage!)
      const current = attention(studentStage!)
      current.points.forEach((p, j) => {
        expect(p.teacher, `${studentStage} ${p.point}`).not.toBeNull()
        expect(Array.from(p.teacher!.data)).toEqual(Array.from(previous.points[j]!.student.data))
        expect(p.student.shape).toEqual([4, ...p.student.shape.slice(1)])
      })
    }

    const gates = records.filter((r): r is GateRecord => r.kind === 'gates')
    expect(gates.map((g) => g.stage)).toEqual(['tanh', 'ban', 'bnn'])
    for (const g of gates) {
      expect(g.gates).toHaveLength(16)
      expect(g.subset).toBeGreaterThanOrEqual(100)
      for (const block of g.gates) {
        expect(block.perProbe.shape).toEqual([4, block.mean.length])
        expect(block.mean.every((v) => v > 0 && v < 1)).toBe(true)
      }
    }
    const epochs = records.filter((r): r is EpochRecord => r.kind === 'epoch')
    const bnnFlips = epochs.find((e) => e.stage === 'bnn')!.flipRatios
    expect(bnnFlips).toHaveLength(16)
    expect(bnnFlips.some((f) => f.ratio > 0)).toBe(true)
    expect(epochs.find((e) => e.stage === 'teacher')!.flipRatios).toEqual([])

    // On-demand inspection of a saved checkpoint reproduces the recorded probe maps.
    const checkpoint = (stage: string) =>
      records.find((r): r is CheckpointRecord => r.kind === 'checkpoint' && r.stage === stage)!
    const probe = await data.testImages([attention('ban').probes[1]!])
    const inspected = await inspectImage({
      checkpoint: checkpoint('ban'),
      teacher: checkpoint('tanh'),
      images: probe.images as tf.Tensor4D,
    })
    tf.dispose([probe.images, probe.labels])
    const recorded = attention('ban').points[2]!
    const [, h, w] = recorded.student.shape as [number, number, number]
    const slice = (d: Float32Array) => Array.from(d.subarray(h * w, 2 * h * w))
    inspected.points[2]!.student.data.forEach((v, i) =>
      expect(v).toBeCloseTo(slice(recorded.student.data)[i]!, 4),
    )
    inspected.points[2]!.teacher!.data.forEach((v, i) =>
      expect(v).toBeCloseTo(slice(recorded.teacher!.data)[i]!, 4),
    )
    expect(inspected.gates).toHaveLength(16)
    expect(tf.memory().numTensors).toBe(baseline)
  }, 300_000)
})

describe('stop and resume', () => {
  /** Trains stage 0 straight, then again stopped at its first checkpoint and resumed from it. */
  async function stopAndResume(config: RunConfig) {
    const straight = await collect(runStage({ config, stageIndex: 0, data }))
    const straightEnd = straight.find((r): r is StageEndRecord => r.kind === 'stage-end')!

    const signal = { aborted: false }
    const first: EngineRecord[] = []
    const gen = runStage({ config, stageIndex: 0, data, signal })
    let next = await gen.next()
    let last: Checkpoint | null = null
    while (!next.done) {
      first.push(next.value)
      if (next.value.kind === 'checkpoint') {
        last = next.value
        signal.aborted = true
      }
      next = await gen.next()
    }
    next.value.dispose()
    const stopped = first.find((r): r is StageEndRecord => r.kind === 'stage-end')!
    expect(stopped.stopped).toBe(true)
    expect(last!.manifest.epochsCompleted).toBe(1)

    const resumed = await collect(runStage({ config, stageIndex: 0, data, resume: last }))
    const start = resumed.find((r) => r.kind === 'stage-start')!
    expect(start).toMatchObject({ startEpoch: 1 })
    const end = resumed.find((r): r is StageEndRecord => r.kind === 'stage-end')!
    expect(end.test?.top1).toBeCloseTo(straightEnd.test!.top1, 6)
    expect(end.test?.loss).toBeCloseTo(straightEnd.test!.loss, 4)
    const finalCheckpoint = (records: EngineRecord[]) =>
      records.filter((r): r is CheckpointRecord => r.kind === 'checkpoint').at(-1)!
    return { last: last!, straight: finalCheckpoint(straight), resumed: finalCheckpoint(resumed) }
  }

  const small = [
    'stages.0.epochs=2',
    'stages.0.stepsPerEpoch=3',
    'data.testLimit=50',
    'eval.probes=2',
    'model.width=0.0625',
  ]

  it('stops on request, then resumes from the last epoch checkpoint to the same result as an uninterrupted run', async () => {
    await stopAndResume(makeRunConfig({ preset: 'quick', pipeline: 'sb', set: small }))
  })

  it('an SGD teacher (the reference recipe, with momentum) resumes with its velocity', async () => {
    const config = makeRunConfig({
      preset: 'quick',
      pipeline: 'r2b',
      teacherRecipe: 'reference',
      set: [...small, 'stages.0.optimizer.momentum=0.9'],
    })
    expect(config.stages[0]?.optimizer).toMatchObject({ kind: 'sgd', learningRate: 0.1, momentum: 0.9 })
    const { last, straight, resumed } = await stopAndResume(config)
    expect(last.manifest.tensors.filter((t) => t.group === 'optimizer')[0]?.name).toMatch(/^velocity\//)
    // The resumed stage ends where the uninterrupted one did, to the bit.
    expect(new Uint8Array(resumed.data)).toEqual(new Uint8Array(straight.data))
  })
})
