/**
 * Nothing a user has is lost: a run folder in format 1 (written before docs/run-format.md) lists, shows,
 * resumes to the end, inspects, reports and exports; what it reads migrates to format 2 on read, and what
 * is written after is format 2.
 */
import { existsSync, readFileSync } from 'node:fs'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildReport } from '../../src/main/reports/html-report'
import { exportRun } from '../../src/main/deploy/export-run'
import { RunStore } from '../../src/main/runs/run-store'
import { inspectRun } from '../../src/main/training/inspect-run'
import { createRun } from '../../src/main/training/new-run'
import { Trainer } from '../../src/main/training/trainer'
import { launchWorkerProcess } from '../../src/main/training/worker-client'
import { downgradeToFormat1 } from '../fixtures/format-1'
import { importFashionSubset } from '../fixtures/fashion-subset'
import { tinySettings } from '../support/tiny'

let home: string
let store: RunStore
let runId: string
/** Where the stop landed (the worker may run a step or an epoch ahead of the request): the resume point. */
let stoppedAt: { stage: string; epochsCompleted: number; stages: number[] }
const trainers: Trainer[] = []
const newTrainer = () => {
  const trainer = new Trainer(store, () =>
    launchWorkerProcess({ env: { ...process.env, R2B_BACKEND: 'wasm' }, quiet: true }),
  )
  trainers.push(trainer)
  return trainer
}

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'r2b-format1-'))
  store = new RunStore(home)
  const dataset = await importFashionSubset(home)
  const set = tinySettings({ stages: 2, epochs: 2, steps: [3, 30] })
  const run = await createRun(store, { dataset: dataset.id, pipeline: 'sb', set })
  runId = run.id
  // Stopped after the first stage's first epoch: a run with something left to resume.
  const trainer = newTrainer()
  trainer.on((event) => {
    if (event.type === 'run' && event.run.id === runId && event.run.stages[0]?.epochsCompleted === 1)
      void trainer.stop(runId).catch(() => {})
  })
  const stopped = await trainer.train(runId)
  expect(stopped.status).toBe('stopped')
  const last = (await store.checkpoints(runId)).at(-1)!
  stoppedAt = {
    stage: last.stage,
    epochsCompleted: last.epochsCompleted,
    stages: stopped.stages.map((s) => s.epochsCompleted),
  }
  downgradeToFormat1(store.dir(runId))
})

afterAll(async () => {
  await Promise.all(trainers.map((t) => t.shutdown()))
})

describe('a run folder in format 1', () => {
  it('is format 1 on disk, and lists and reads as format 2', async () => {
    const onDisk = JSON.parse(readFileSync(join(store.dir(runId), 'run.json'), 'utf8'))
    expect(onDisk.version).toBe(1)
    expect(onDisk.stages.map((s: { epochsDone: number }) => s.epochsDone)).toEqual(stoppedAt.stages)
    const { runs, problems } = await store.list()
    expect(problems).toEqual([])
    expect(runs.map((r) => r.id)).toEqual([runId])
    expect(runs[0]).toMatchObject({
      version: 2,
      status: 'stopped',
      environment: { engine: 'tfjs', device: { kind: 'wasm' } },
    })
    expect(runs[0]!.stages.map((s) => s.epochsCompleted)).toEqual(stoppedAt.stages)
    expect((await store.checkpoints(runId)).at(-1)).toMatchObject({
      stage: stoppedAt.stage,
      epochsCompleted: stoppedAt.epochsCompleted,
    })
    const [attention] = await store.snapshotIndex(runId)
    expect(attention).toMatchObject({ kind: 'attention', stage: 'sb-ban', epochsCompleted: 1 })
    const record = await store.readSnapshot(runId, attention!)
    expect(record.kind === 'attention' && record.points).toHaveLength(8)
  })

  it('resumes to the end with nothing lost or repeated, writing format 2 from there on', async () => {
    const done = await newTrainer().train(runId)
    expect(done.status).toBe('finished')
    const log = await store.readLog(runId)
    for (const stage of ['sb-ban', 'sb-bnn'])
      expect(
        log.filter((l) => l.kind === 'epoch' && l.stage === stage).map((l) => l.kind === 'epoch' && l.epoch),
      ).toEqual([0, 1])
    expect(log.filter((l) => l.kind === 'resumed')).toEqual([
      { kind: 'resumed', stage: stoppedAt.stage, epochsCompleted: stoppedAt.epochsCompleted },
    ])
    const onDisk = JSON.parse(readFileSync(join(store.dir(runId), 'run.json'), 'utf8'))
    expect(onDisk.version).toBe(2)
    // The old snapshot files and the new ones live side by side, each found through its entry: those
    // taken before the stop keep format 1's names, those after have format 2's.
    const index = await store.snapshotIndex(runId)
    const order = ['sb-ban', 'sb-bnn']
    const before = (stage: string, n: number) =>
      order.indexOf(stage) < order.indexOf(stoppedAt.stage) ||
      (stage === stoppedAt.stage && n <= stoppedAt.epochsCompleted)
    const expected = order.flatMap((stage) =>
      [1, 2].map((n) => [
        stage,
        n,
        before(stage, n) ? `${stage}/e${n - 1}-attention.bin` : `${stage}/attention-${n}.bin`,
      ]),
    )
    expect(
      index.filter((e) => e.kind === 'attention').map((e) => [e.stage, e.epochsCompleted, e.file]),
    ).toEqual(expected)
  })

  it('inspects the format-1 checkpoint, reports and exports', async () => {
    const trainer = newTrainer()
    // The first checkpoint, written in format 1.
    const found = await inspectRun(store, trainer.workerClient(), {
      run: runId,
      image: 1,
      stage: 'sb-ban',
      epochsCompleted: 1,
    })
    expect(found.result.points).toHaveLength(8)
    const html = await buildReport(store, runId)
    expect(html).toContain('Attention maps, stage sb-ban, after epoch 2')
    const file = join(home, 'bnn.r2bx')
    const exported = await exportRun(store, runId, 'sb-bnn', file)
    expect(exported.epochsCompleted).toBe(2)
    expect(existsSync(file)).toBe(true)
  })
})
