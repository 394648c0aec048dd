/**
 * A tampered, damaged or half-written run folder: every read names the file and the field in one line,
 * no stored path leads outside the run, and a run being trained elsewhere cannot be deleted.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync, existsSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { UserError } from '../../../../src/shared/errors'
import { makeRunConfig, ConfigError } from '../../../../src/shared/run-config'
import { checkpointPath, type RunMeta } from '../../../../src/shared/runs'
import type { GateRecord } from '../../../../src/shared/records'
import { RunStore } from '../../../../src/main/runs/run-store'
import { checkpointRecord } from './support'
import { Trainer } from '../../../../src/main/training/trainer'
import { launchWorkerProcess } from '../../../../src/main/training/worker-client'
import { startLockHolder, type LockHolder } from '../../../support/served'
import { importFashionSubset } from '../../../fixtures/fashion-subset'
import { refuseIfDatasetInUse } from '../../../../src/main/training/guards'

let home: string
let store: RunStore
const config = makeRunConfig({ preset: 'quick', pipeline: 'r2b' })
const holders: LockHolder[] = []

beforeEach(() => {
  home = mkdtempSync(join(tmpdir(), 'r2b-tamper-'))
  store = new RunStore(home)
})
afterEach(async () => {
  await Promise.all(holders.splice(0).map((h) => h.stop()))
})

const checkpoint = (stage: string, epochsCompleted: number) =>
  checkpointRecord(config, stage, epochsCompleted, [1, 2])

const gates = (epochsCompleted: number): GateRecord => ({
  kind: 'gates',
  stage: 'teacher',
  epochsCompleted,
  probes: [],
  subset: 0,
  gates: [],
})

/** A one-line user error that names `file` (and, when given, the field). */
async function expectOneLine(work: Promise<unknown>, pattern: RegExp): Promise<void> {
  const error = await work.then(
    () => null,
    (e: unknown) => e,
  )
  expect(error).toBeInstanceOf(UserError)
  expect((error as Error).message).toMatch(pattern)
  expect((error as Error).message).not.toContain('\n')
}

describe('stored paths stay inside the run', () => {
  it('refuses a snapshot index entry whose file leaves snapshots/', async () => {
    const run = await store.create(config)
    writeFileSync(join(home, 'secret.bin'), Buffer.from(Float32Array.from([42, 42]).buffer))
    await store.writeSnapshot(run.id, gates(1))
    const index = join(store.dir(run.id), 'snapshots', 'index.jsonl')
    const entry = JSON.parse(readFileSync(index, 'utf8').trim()) as Record<string, unknown>
    entry.file = '../../../secret.bin'
    entry.arrays = [{ name: 'x', shape: [2], offset: 0 }]
    writeFileSync(index, `${JSON.stringify(entry)}\n${JSON.stringify(entry)}\n`)
    await expectOneLine(
      store.snapshotIndex(run.id),
      /index\.jsonl: line 1 .*file: file must be <stage>\/<name>\.bin inside snapshots\//,
    )
  })

  it('refuses a forged entry a caller passes, instead of reading the file it names', async () => {
    const run = await store.create(config)
    await store.writeSnapshot(run.id, gates(1))
    const [entry] = await store.snapshotIndex(run.id)
    const forged = { ...entry!, file: '../../../secret.bin' }
    await expectOneLine(store.readSnapshot(run.id, forged), /not a snapshot of run .*file must be/)
  })

  it('refuses a format-1 checkpoint line whose path leaves checkpoints/, so resume never loads it', async () => {
    const run = await store.create(config)
    await store.writeCheckpoint(run.id, checkpoint('teacher', 1))
    const log = join(store.dir(run.id), 'events.jsonl')
    const { epochsCompleted, ...line } = JSON.parse(readFileSync(log, 'utf8').trim()) as Record<
      string,
      unknown
    >
    // Format 1 stored the folder in the line; format 2 derives it, so only an old line can name one.
    const old = { ...line, epoch: epochsCompleted, path: '../../../elsewhere/e1' }
    writeFileSync(log, `${JSON.stringify(old)}\n${JSON.stringify(old)}\n`)
    await expectOneLine(store.checkpoints(run.id), /events\.jsonl: line 1 .*path must be <stage>\/e<epoch>/)
  })

  it('refuses a dataset that is a path, from --set and from a tampered run.json', async () => {
    expect(() => makeRunConfig({ set: ['data.dataset=../../elsewhere/datasets/x'] })).toThrow(ConfigError)
    const run = await store.create(config)
    const file = join(store.dir(run.id), 'run.json')
    const meta = JSON.parse(readFileSync(file, 'utf8')) as RunMeta
    meta.config.data.dataset = '../../elsewhere/datasets/x'
    writeFileSync(file, JSON.stringify(meta))
    await expectOneLine(store.read(run.id), /run\.json: config\.data\.dataset: a dataset id is/)
  })
})

describe('damaged files give one line that names them', () => {
  it('a truncated run.json', async () => {
    const run = await store.create(config)
    const file = join(store.dir(run.id), 'run.json')
    writeFileSync(file, readFileSync(file, 'utf8').slice(0, 100))
    await expectOneLine(store.read(run.id), /run\.json is not valid JSON/)
  })

  it('a missing events.jsonl', async () => {
    const run = await store.create(config)
    const file = join(store.dir(run.id), 'events.jsonl')
    writeFileSync(file, '')
    const { rmSync } = await import('node:fs')
    rmSync(file)
    await expectOneLine(store.readLog(run.id), /events\.jsonl is missing/)
  })

  it('a checkpoint manifest without stage and epoch, and one whose tensors overrun the payload', async () => {
    const run = await store.create(config)
    const line = await store.writeCheckpoint(run.id, checkpoint('teacher', 1))
    const file = join(
      store.dir(run.id),
      'checkpoints',
      checkpointPath(line.stage, line.epochsCompleted),
      'manifest.json',
    )
    const manifest = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>
    const { stage: _s, epochsCompleted: _e, ...rest } = manifest
    writeFileSync(file, JSON.stringify(rest))
    await expectOneLine(store.readCheckpoint(run.id, line), /manifest\.json: stage: .*cannot be loaded/)
    writeFileSync(
      file,
      JSON.stringify({ ...manifest, tensors: [{ name: 'w', group: 'weights', shape: [9], offset: 0 }] }),
    )
    await expectOneLine(store.readCheckpoint(run.id, line), /tensor w reaches beyond the payload/)
  })

  it('a snapshot file that is not whole float32 values', async () => {
    const run = await store.create(config)
    await store.writeSnapshot(run.id, gates(1))
    const [entry] = await store.snapshotIndex(run.id)
    writeFileSync(join(store.dir(run.id), 'snapshots', entry!.file), Buffer.from([1, 2, 3]))
    await expectOneLine(store.readSnapshot(run.id, entry!), /is 3 bytes, not whole float32 values/)
  })

  it('a run.json whose id is not its folder: refused, listed once as a problem, never written through', async () => {
    const first = await store.create(config)
    const copy = join(store.root, 'copied-run')
    mkdirSync(copy)
    for (const name of ['run.json', 'events.jsonl']) {
      writeFileSync(join(copy, name), readFileSync(join(store.dir(first.id), name)))
    }
    await expectOneLine(store.read('copied-run'), /says it is run ".*", but its folder is "copied-run"/)
    const { runs, problems } = await store.list()
    expect(runs.map((r) => r.id)).toEqual([first.id])
    expect(problems).toHaveLength(1)
  })
})

describe('half-written checkpoints and a run trained elsewhere', () => {
  it('sweeps checkpoint folders a killed writer left when the run is resumed', async () => {
    const run = await store.create(config)
    await store.writeCheckpoint(run.id, checkpoint('teacher', 1))
    const stageDir = join(store.dir(run.id), 'checkpoints', 'teacher')
    mkdirSync(join(stageDir, 'e2.0badc0de.tmp'))
    writeFileSync(join(stageDir, 'e2.0badc0de.tmp', 'data.bin'), 'half')
    await store.rollBackToLastCheckpoint(run.id)
    expect(readdirSync(stageDir)).toEqual(['e1'])
  })

  it('refuses to delete a run another process is training, and leaves it whole', async () => {
    const run = await store.create(config)
    const holder = await startLockHolder(home)
    holders.push(holder)
    await holder.acquire(run.id)
    await expectOneLine(store.remove(run.id), new RegExp(`run ${run.id} is training \\(pid ${holder.pid}\\)`))
    expect(existsSync(join(store.dir(run.id), 'run.json'))).toBe(true)
    await holder.release()
    await store.remove(run.id)
    expect(await store.exists(run.id)).toBe(false)
  })

  it('refuses to delete the dataset of a run another process trains', async () => {
    const dataset = await importFashionSubset(home, { train: 2, test: 1 })
    const run = await store.create(makeRunConfig({ set: [`data.dataset=${dataset.id}`] }))
    const holder = await startLockHolder(home)
    holders.push(holder)
    await holder.acquire(run.id)
    await expectOneLine(
      refuseIfDatasetInUse(home, dataset.id),
      new RegExp(`dataset ${dataset.id} is in use: run ${run.id} trains on it \\(pid ${holder.pid}\\)`),
    )
    await refuseIfDatasetInUse(home, 'another-dataset')
    await holder.release()
    await refuseIfDatasetInUse(home, dataset.id)
  })

  it('does not mark interrupted a run whose process took the lock while runs were being listed', async () => {
    const run = await store.create(config)
    const holder = await startLockHolder(home)
    holders.push(holder)
    // The other process starts training exactly between this process's reads: it takes the lock, then
    // says `running` (the trainer's order), while this one is listing runs.
    class RacingStore extends RunStore {
      override async list() {
        await holder.acquire(run.id)
        await store.update(run.id, (m) => ({ ...m, status: 'running' }))
        return super.list()
      }
    }
    const trainer = new Trainer(new RacingStore(home), () => launchWorkerProcess())
    expect(await trainer.reconcile()).toEqual([])
    expect((await store.read(run.id)).status).toBe('running')
  })
})
