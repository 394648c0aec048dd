import {
  appendFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { beforeEach, describe, expect, it } from 'vitest'
import type { AttentionRecord, GateRecord, StepRecord } from '../../../../src/shared/records'
import { makeRunConfig } from '../../../../src/shared/run-config'
import { RunStore } from '../../../../src/main/runs/run-store'
import { checkpointRecord } from './support'

let store: RunStore
beforeEach(() => {
  store = new RunStore(mkdtempSync(join(tmpdir(), 'r2b-runs-')))
})

const config = makeRunConfig({ preset: 'quick', pipeline: 'r2b' })

function step(stage: string, epoch: number, n: number): StepRecord {
  return {
    kind: 'step',
    stage,
    epoch,
    step: n,
    loss: { crossEntropy: 1, attention: 0.1, distillation: 0.2, total: 1.3 },
    learningRate: 1e-3,
    imagesPerSecond: 100,
  }
}

const checkpoint = (stage: string, epochsCompleted: number, values: number[]) =>
  checkpointRecord(config, stage, epochsCompleted, values)

describe('the run store', () => {
  it('creates a run whole, reads it back validated, lists, updates and deletes it', async () => {
    const run = await store.create(config)
    expect(run.status).toBe('queued')
    expect(run.stages.map((s) => s.name)).toEqual(config.stages.map((s) => s.name))
    expect(await store.read(run.id)).toEqual(run)
    const updated = await store.update(run.id, (m) => ({ ...m, status: 'running' }))
    expect(updated.status).toBe('running')
    expect((await store.list()).runs.map((r) => r.id)).toEqual([run.id])
    await store.remove(run.id)
    expect((await store.list()).runs).toEqual([])
    await expect(store.read(run.id)).rejects.toThrow(/no run/)
  })

  it("sweeps runs that a killed process left half created or half deleted, not a live process's", async () => {
    const run = await store.create(config)
    // 2^22 + 1 is above Linux's largest pid: no process has it.
    const dead = 2 ** 22 + 1
    const leftovers = [
      `.${dead}-20260101-000000-r2b-aaaa.tmp`,
      `.${dead}-20260101-000000-r2b-bbbb.deleted-1f2e`,
    ]
    const live = `.${process.pid}-20260101-000000-r2b-cccc.tmp`
    for (const name of [...leftovers, live])
      mkdirSync(join(store.root, name, 'snapshots'), { recursive: true })
    expect((await store.list()).runs.map((r) => r.id)).toEqual([run.id])
    for (const name of leftovers) expect(existsSync(join(store.root, name))).toBe(false)
    expect(readdirSync(store.root).sort()).toEqual([live, run.id].sort())
  })

  it('refuses ids that are not run ids (no path tricks)', async () => {
    await expect(store.read('../../etc')).rejects.toThrow(/not a run id/)
  })

  it('reports a run.json that fails validation, naming the file and field', async () => {
    const run = await store.create(config)
    const file = join(store.dir(run.id), 'run.json')
    writeFileSync(file, JSON.stringify({ ...run, status: 'exploded' }))
    await expect(store.read(run.id)).rejects.toThrow(/run\.json: status/)
  })

  it('appends log lines and ignores a torn last line', async () => {
    const run = await store.create(config)
    await store.appendLog(run.id, [step('teacher', 0, 0), step('teacher', 0, 1)])
    appendFileSync(join(store.dir(run.id), 'events.jsonl'), '{"kind":"step","stage":"tea')
    const lines = await store.readLog(run.id)
    expect(lines.map((l) => (l.kind === 'step' ? l.step : null))).toEqual([0, 1])
  })

  it('treats a corrupt line in the middle of the log as an error, not as a torn write', async () => {
    const run = await store.create(config)
    appendFileSync(
      join(store.dir(run.id), 'events.jsonl'),
      'garbage\n{"kind":"step","stage":"x","epoch":0}\n',
    )
    await expect(store.readLog(run.id)).rejects.toThrow(/line 1 is not a valid record/)
  })

  it('stores attention maps and gates as binary and reads back the same values', async () => {
    const run = await store.create(config)
    const attention: AttentionRecord = {
      kind: 'attention',
      stage: 'ban',
      epochsCompleted: 1,
      probes: [3, 7],
      form: 'larq',
      points: [
        {
          point: 'block_1',
          student: { shape: [2, 2, 2], data: Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]) },
          teacher: { shape: [2, 2, 2], data: Float32Array.from([8, 7, 6, 5, 4, 3, 2, 1]) },
        },
      ],
    }
    const gates: GateRecord = {
      kind: 'gates',
      stage: 'ban',
      epochsCompleted: 1,
      probes: [3, 7],
      subset: 64,
      gates: [
        {
          block: 'block_1a',
          mean: Float32Array.from([0.5, 0.25]),
          perProbe: { shape: [2, 2], data: Float32Array.from([0.1, 0.2, 0.3, 0.4]) },
        },
      ],
    }
    await store.writeSnapshot(run.id, attention)
    await store.writeSnapshot(run.id, gates)
    const index = await store.snapshotIndex(run.id)
    expect(index.map((e) => e.kind)).toEqual(['attention', 'gates'])
    expect(index.map((e) => e.file)).toEqual(['ban/attention-1.bin', 'ban/gates-1.bin'])
    // Read back, the records are the ones written: the same arrays, shapes and fields.
    expect(await store.readSnapshot(run.id, index[0]!)).toEqual(attention)
    expect(await store.readSnapshot(run.id, index[1]!)).toEqual(gates)
  })

  it('round-trips a checkpoint and refuses a corrupted one, saying which', async () => {
    const run = await store.create(config)
    const line = await store.writeCheckpoint(run.id, checkpoint('teacher', 1, [1, 2, 3]))
    const loaded = await store.readCheckpoint(run.id, line)
    expect([...new Float32Array(loaded.data)]).toEqual([1, 2, 3])
    expect(loaded.manifest.epochsCompleted).toBe(1)
    const file = join(store.dir(run.id), 'checkpoints', 'teacher', 'e1', 'data.bin')
    const bytes = readFileSync(file)
    bytes[0] = (bytes[0] ?? 0) ^ 0xff
    writeFileSync(file, bytes)
    await expect(store.readCheckpoint(run.id, line)).rejects.toThrow(
      /teacher\/e1 .* corrupted \(checksum mismatch/,
    )
  })

  it('rolls the log and the snapshot index back to the last checkpoint for a resume', async () => {
    const run = await store.create(config)
    await store.appendLog(run.id, [step('teacher', 0, 0), step('teacher', 0, 1)])
    // A snapshot and the checkpoint taken after the same epoch count the same epochs completed.
    const gates = (epochsCompleted: number): GateRecord => ({
      kind: 'gates',
      stage: 'teacher',
      epochsCompleted,
      probes: [],
      subset: 0,
      gates: [],
    })
    await store.writeSnapshot(run.id, gates(1))
    await store.writeCheckpoint(run.id, checkpoint('teacher', 1, [1]))
    // Epoch 2 was interrupted halfway: its steps and snapshot must go.
    await store.appendLog(run.id, [step('teacher', 1, 2), step('teacher', 1, 3)])
    await store.writeSnapshot(run.id, gates(2))
    await store.appendLog(run.id, [
      { kind: 'stage-end', stage: 'teacher', stageIndex: 0, test: null, seconds: 1, stopped: true },
    ])
    const last = await store.rollBackToLastCheckpoint(run.id)
    expect(last).toMatchObject({ stage: 'teacher', epochsCompleted: 1 })
    expect(
      (await store.readLog(run.id)).map(
        (l) => `${l.kind}:${l.kind === 'checkpoint' ? l.epochsCompleted : l.kind === 'step' ? l.step : ''}`,
      ),
    ).toEqual(['step:0', 'step:1', 'checkpoint:1'])
    expect((await store.snapshotIndex(run.id)).map((e) => e.epochsCompleted)).toEqual([1])
  })
})
