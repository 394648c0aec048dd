import { readFileSync, writeFileSync } from 'node:fs'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { checkpointPath, type RunMeta } from '../../../../src/shared/runs'
import { RunStore } from '../../../../src/main/runs/run-store'
import { createRun } from '../../../../src/main/training/new-run'
import { Trainer, type TrainerEvent } from '../../../../src/main/training/trainer'
import { launchWorkerProcess } from '../../../../src/main/training/worker-client'
import { importFashionSubset } from '../../../fixtures/fashion-subset'
import { tinySettings } from '../../../support/tiny'

let home: string
let store: RunStore
let datasetId: string

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'r2b-trainer-'))
  store = new RunStore(home)
  datasetId = (await importFashionSubset(home)).id
})

const trainers: Trainer[] = []
afterAll(async () => {
  await Promise.all(trainers.map((t) => t.shutdown()))
})

function newTrainer(): Trainer {
  const trainer = new Trainer(store, () =>
    launchWorkerProcess({ env: { ...process.env, R2B_BACKEND: 'wasm' }, quiet: true }),
  )
  trainers.push(trainer)
  return trainer
}

/** The whole R2B chain, tiny: 2 epochs of 3 steps per stage. */
function tinyRun(extra: string[] = []) {
  const set = [...tinySettings({ stages: 4, epochs: 2, steps: 3 }), ...extra]
  return createRun(store, { dataset: datasetId, pipeline: 'r2b', preset: 'quick', set })
}

/** Per stage: the epochs logged and the step indices logged, in order. */
async function logShape(runId: string) {
  const lines = await store.readLog(runId)
  const byStage: Record<string, { epochs: number[]; steps: number[] }> = {}
  for (const line of lines) {
    const entry = (byStage[line.stage] ??= { epochs: [], steps: [] })
    if (line.kind === 'epoch') entry.epochs.push(line.epoch as number)
    if (line.kind === 'step') entry.steps.push(line.step as number)
  }
  return byStage
}

async function finalCheckpoint(runId: string, stage: string): Promise<Float32Array> {
  const line = (await store.checkpoints(runId)).find((l) => l.stage === stage && l.final)
  if (!line) throw new Error(`no final checkpoint of ${stage}`)
  return new Float32Array((await store.readCheckpoint(runId, line)).data)
}

const complete = { epochs: [0, 1], steps: [0, 1, 2, 3, 4, 5] }
const allComplete = { teacher: complete, tanh: complete, ban: complete, bnn: complete }
let reference: RunMeta

describe('training runs through the worker', () => {
  it('trains the four R2B stages and stores their log, snapshots and checkpoints before announcing them', async () => {
    const trainer = newTrainer()
    const run = await tinyRun()
    const announced: TrainerEvent[] = []
    trainer.on(async (event) => {
      announced.push(event)
    })
    reference = await trainer.train(run.id)
    expect(reference.status).toBe('finished')
    expect(reference.stages.map((s) => [s.name, s.status, s.epochsCompleted])).toEqual([
      ['teacher', 'finished', 2],
      ['tanh', 'finished', 2],
      ['ban', 'finished', 2],
      ['bnn', 'finished', 2],
    ])
    expect(await logShape(run.id)).toEqual(allComplete)
    const index = await store.snapshotIndex(run.id)
    const attention = index.filter((e) => e.kind === 'attention')
    expect(attention).toHaveLength(8)
    // Stages with a teacher store both maps at all 8 transfer points.
    const tanh = await store.readSnapshot(
      run.id,
      attention.find((e) => e.stage === 'tanh')!,
    )
    expect(tanh.kind === 'attention' && tanh.points.filter((p) => p.teacher !== null)).toHaveLength(8)
    expect(index.filter((e) => e.kind === 'gates').map((e) => e.stage)).toEqual([
      'tanh',
      'tanh',
      'ban',
      'ban',
      'bnn',
      'bnn',
    ])
    expect((await store.checkpoints(run.id)).filter((l) => l.final).map((l) => l.stage)).toEqual([
      'teacher',
      'tanh',
      'ban',
      'bnn',
    ])
    // Every record the trainer announced had been written: the last epoch record is in the log.
    const lastEpoch = announced.filter((e) => e.type === 'record' && e.record.kind === 'epoch').at(-1)
    expect(lastEpoch).toMatchObject({ record: { stage: 'bnn', epoch: 1 } })
  })

  it('keeps the worker tensor count flat across epochs of a stage', async () => {
    const trainer = newTrainer()
    const run = await tinyRun([0, 1, 2, 3].map((i) => `stages.${i}.epochs=5`).concat(['eval.probes=0']))
    const memory: { stage: string; numTensors: number; rssBytes: number }[] = []
    trainer.on((event) => {
      if (event.type === 'memory') memory.push(event)
    })
    expect((await trainer.train(run.id)).status).toBe('finished')
    for (const stage of ['teacher', 'tanh', 'ban', 'bnn']) {
      const counts = memory.filter((m) => m.stage === stage).map((m) => m.numTensors)
      expect(counts).toHaveLength(5)
      expect(new Set(counts.slice(1)).size).toBe(1)
    }
    // Resident memory: the last two stages (ten epochs later) peak no more than 64 MB above the first
    // two. The tanh stage legitimately holds teacher and student at once, so the bound compares peaks
    // rather than a single early sample; a leak per step would grow across the ten later epochs.
    const peak = (stages: string[]) =>
      Math.max(...memory.filter((m) => stages.includes(m.stage)).map((m) => m.rssBytes))
    expect(peak(['ban', 'bnn']) - peak(['teacher', 'tanh'])).toBeLessThan(64 * 2 ** 20)
  })

  it('survives a worker killed with SIGKILL mid-epoch: interrupted, then resumed with nothing lost or repeated', async () => {
    const trainer = newTrainer()
    const run = await tinyRun()
    let killed = false
    trainer.on((event) => {
      if (
        !killed &&
        event.type === 'record' &&
        event.record.kind === 'step' &&
        event.record.stage === 'ban' &&
        event.record.step === 4
      ) {
        killed = true
        process.kill(trainer.workerClient().pid!, 'SIGKILL')
      }
    })
    const interrupted = await trainer.train(run.id)
    expect(interrupted.status).toBe('interrupted')
    expect(interrupted.error).toMatch(/worker was killed \(SIGKILL\).*resume/)
    // The resume point: the last checkpoint written before the kill (the worker may run a little ahead of
    // main, so it is ban's first or second epoch).
    const point = (await store.checkpoints(run.id)).at(-1)!
    expect(point.stage).toBe('ban')

    const resumed = await newTrainer().train(run.id)
    expect(resumed.status).toBe('finished')
    expect(await logShape(run.id)).toEqual(allComplete)
    expect((await store.readLog(run.id)).filter((l) => l.kind === 'resumed')).toMatchObject([
      { stage: 'ban', epochsCompleted: point.epochsCompleted },
    ])
    // Resuming replays the interrupted epoch exactly: the final weights equal an uninterrupted run's.
    expect(await finalCheckpoint(run.id, 'bnn')).toEqual(await finalCheckpoint(reference.id, 'bnn'))
  })

  it('pauses, resumes and stops on request; a stopped run resumes to the end', async () => {
    const trainer = newTrainer()
    const run = await tinyRun()
    const statuses: string[] = []
    trainer.on((event) => {
      if (event.type === 'run' && event.run.id === run.id) statuses.push(event.run.status)
      if (event.type === 'record' && event.record.kind === 'step') {
        const r = event.record
        if (r.stage === 'teacher' && r.step === 1) trainer.pause(run.id)
        if (r.stage === 'tanh' && r.step === 2) void trainer.stop(run.id)
      }
      if (event.type === 'run' && event.run.status === 'paused') {
        expect(statuses.at(-1)).toBe('paused')
        trainer.resume(run.id)
      }
    })
    const stopped = await trainer.train(run.id)
    expect(stopped.status).toBe('stopped')
    expect(statuses).toEqual(expect.arrayContaining(['running', 'paused', 'stopped']))
    expect((await store.read(run.id)).stages.map((s) => s.status)).toEqual([
      'finished',
      'stopped',
      'pending',
      'pending',
    ])
    const finished = await trainer.train(run.id)
    expect(finished.status).toBe('finished')
    expect(await logShape(run.id)).toEqual(allComplete)
  })

  it('queues a second run while one trains, and refuses a finished run', async () => {
    const trainer = newTrainer()
    const [a, b] = [await tinyRun(), await tinyRun()]
    const starts: string[] = []
    let firstStarted: () => void = () => {}
    const started = new Promise<void>((resolve) => (firstStarted = resolve))
    trainer.on((event) => {
      if (event.type === 'record' && event.record.kind === 'stage-start' && event.record.stageIndex === 0) {
        starts.push(event.runId)
        firstStarted()
      }
    })
    // Queued one after the other: a's checks finish before b's begin, so a is first in line.
    const first = (await trainer.enqueue(a.id)).done
    const second = (await trainer.enqueue(b.id)).done
    await started
    expect(trainer.activeRunId).toBe(a.id)
    expect(trainer.queued).toEqual([b.id])
    expect((await store.read(b.id)).status).toBe('queued')
    expect((await first).status).toBe('finished')
    expect((await second).status).toBe('finished')
    expect(starts).toEqual([a.id, b.id])
    await expect(trainer.train(a.id)).rejects.toThrow(/has finished: there is nothing to resume/)
  })

  it('refuses to resume from a corrupted checkpoint, says which, and changes nothing', async () => {
    const trainer = newTrainer()
    const run = await tinyRun()
    trainer.on((event) => {
      if (event.type === 'record' && event.record.kind === 'step' && event.record.stage === 'tanh')
        void trainer.stop(run.id)
    })
    expect((await trainer.train(run.id)).status).toBe('stopped')
    const last = (await store.checkpoints(run.id)).at(-1)!
    const where = checkpointPath(last.stage, last.epochsCompleted)
    const file = join(store.dir(run.id), 'checkpoints', where, 'data.bin')
    const bytes = readFileSync(file)
    bytes[100] = (bytes[100] ?? 0) ^ 1
    writeFileSync(file, bytes)
    const before = readFileSync(join(store.dir(run.id), 'events.jsonl'))
    const meta = await store.read(run.id)
    await expect(trainer.train(run.id)).rejects.toThrow(
      new RegExp(`checkpoint ${where} of run ${run.id} is corrupted`),
    )
    expect(readFileSync(join(store.dir(run.id), 'events.jsonl'))).toEqual(before)
    expect(await store.read(run.id)).toEqual(meta)
  })
})
