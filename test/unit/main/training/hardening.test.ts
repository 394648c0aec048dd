/**
 * Training against what other processes and damaged inputs do: another process writing the run's status,
 * a stop right after a resume, datasets and configs that cannot train, a worker that dies mid-request.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { checkpointPath, type RunMeta } from '../../../../src/shared/runs'
import { UserError } from '../../../../src/shared/errors'
import { datasetDir, MANIFEST_FILE } from '../../../../src/main/datasets/store'
import { RunStore } from '../../../../src/main/runs/run-store'
import { inspectRun } from '../../../../src/main/training/inspect-run'
import { createRun } from '../../../../src/main/training/new-run'
import { Trainer } from '../../../../src/main/training/trainer'
import { launchWorkerProcess, type WorkerClient } from '../../../../src/main/training/worker-client'
import { importFashionSubset } from '../../../fixtures/fashion-subset'
import { startLockHolder } from '../../../support/served'
import { tinySettings } from '../../../support/tiny'
import { trainWithProgress } from '../../../../src/main/cli/commands/train'

let home: string
let store: RunStore
let datasetId: string
const trainers: Trainer[] = []
const workers: WorkerClient[] = []

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'r2b-train-harden-'))
  store = new RunStore(home)
  datasetId = (await importFashionSubset(home)).id
})
afterAll(async () => {
  await Promise.all([...trainers.map((t) => t.shutdown()), ...workers.map((w) => w.shutdown())])
})

const wasm = () => launchWorkerProcess({ env: { ...process.env, R2B_BACKEND: 'wasm' }, quiet: true })

function newTrainer(): Trainer {
  const trainer = new Trainer(store, wasm)
  trainers.push(trainer)
  return trainer
}

/** The strong baseline (ban → bnn), tiny; `steps` per epoch, 2 epochs each. */
function tinyRun(steps = 3, extra: string[] = []) {
  const set = [...tinySettings({ stages: 2, epochs: 2, steps }), ...extra]
  return createRun(store, { dataset: datasetId, pipeline: 'sb', preset: 'quick', set })
}

const statusOnDisk = (id: string) =>
  (JSON.parse(readFileSync(join(store.dir(id), 'run.json'), 'utf8')) as RunMeta).status

describe('the trainer owns the status of the run it trains', () => {
  it('overwrites a status another process wrote meanwhile, with its own, at the next record', async () => {
    const trainer = newTrainer()
    const run = await tinyRun()
    const seen: string[] = []
    let tampered = false
    trainer.on((event) => {
      if (event.type !== 'record' || event.record.kind !== 'epoch') return
      if (!tampered) {
        tampered = true
        // What another process's reconcile (or a careless edit) writes into run.json.
        void store.update(run.id, (m) => ({ ...m, status: 'interrupted', error: 'not really' }))
      } else seen.push(statusOnDisk(run.id))
    })
    const done = await trainer.train(run.id)
    expect(done.status).toBe('finished')
    expect(done.error).toBeNull()
    expect(seen.length).toBeGreaterThan(0)
    expect(seen.every((status) => status === 'running')).toBe(true)
  })

  it('keeps a stage’s last test score when a resumed stage is stopped before its first new epoch', async () => {
    const run = await tinyRun(20)
    const first = newTrainer()
    // Stop during the second epoch of the first stage: its score is the first epoch's.
    first.on((event) => {
      if (event.type === 'run' && event.run.id === run.id && event.run.stages[0]?.epochsCompleted === 1)
        void first.stop(run.id).catch(() => {})
    })
    const stopped = await first.train(run.id)
    expect(stopped.status).toBe('stopped')
    const scored = stopped.stages[0]!
    expect(scored).toMatchObject({ status: 'stopped', epochsCompleted: 1 })
    expect(scored.testTop1).toBeGreaterThan(0)
    // Resumed, then stopped at once: no epoch finishes, so there is no new score to record.
    const second = newTrainer()
    second.on((event) => {
      if (event.type === 'record' && event.record.kind === 'stage-start') void second.stop(run.id)
    })
    const again = await second.train(run.id)
    expect(again.status).toBe('stopped')
    expect(again.stages[0]).toMatchObject({
      status: 'stopped',
      epochsCompleted: 1,
      testTop1: scored.testTop1,
    })
    const ends = (await store.readLog(run.id)).filter((l) => l.kind === 'stage-end')
    expect(ends.at(-1)).toMatchObject({ kind: 'stage-end', test: null, stopped: true })
  })
})

describe('what cannot train is refused in one line, before anything changes', () => {
  it('a dataset without test images (as an older release could import), for new and queued runs', async () => {
    const run = await tinyRun()
    const file = join(datasetDir(datasetId, home), MANIFEST_FILE)
    const original = readFileSync(file, 'utf8')
    const manifest = JSON.parse(original) as { splits: { test: number } }
    manifest.splits.test = 0
    writeFileSync(file, JSON.stringify(manifest))
    try {
      await expect(tinyRun()).rejects.toThrow(/has no test images: import it again/)
      const trainer = newTrainer()
      await expect(trainer.enqueue(run.id)).rejects.toThrow(/has no test images/)
      expect((await store.read(run.id)).status).toBe('queued')
    } finally {
      writeFileSync(file, original)
    }
  })

  it('a fresh run whose train is refused (another process trains) is removed again, not left queued', async () => {
    const holder = await startLockHolder(home)
    try {
      await holder.acquire('another-run')
      const run = await tinyRun()
      await expect(trainWithProgress(store, run.id, true, { fresh: true })).rejects.toThrow(
        /another workbench process \(pid \d+\) is training run another-run/,
      )
      expect(await store.exists(run.id)).toBe(false)
    } finally {
      await holder.stop()
    }
  })

  it('a batch larger than the training split, an absurd width, a name that is empty or has a newline', async () => {
    await expect(tinyRun(3, ['stages.0.batchSize=5000'])).rejects.toThrow(
      /stage sb-ban: batch size 5000 is larger than the 600 training images/,
    )
    await expect(tinyRun(3, ['model.width=1e308'])).rejects.toThrow(/width is at most 8/)
    for (const name of ['', '  ', 'two\nlines', 'bell\u0007']) {
      await expect(createRun(store, { dataset: datasetId, pipeline: 'sb', name })).rejects.toThrow(UserError)
    }
  })
})

describe('inspection never waits on a worker that will not answer', () => {
  it('refuses a checkpoint manifest without stage and epoch at once, instead of hanging', async () => {
    const trainer = newTrainer()
    const run = await tinyRun()
    expect((await trainer.train(run.id)).status).toBe('finished')
    const [line] = await store.checkpoints(run.id)
    const file = join(
      store.dir(run.id),
      'checkpoints',
      checkpointPath(line!.stage, line!.epochsCompleted),
      'manifest.json',
    )
    const {
      stage: _s,
      epochsCompleted: _e,
      ...rest
    } = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>
    writeFileSync(file, JSON.stringify(rest))
    await expect(
      inspectRun(store, trainer.workerClient(), {
        run: run.id,
        image: 0,
        stage: line!.stage,
        epochsCompleted: line!.epochsCompleted,
      }),
    ).rejects.toThrow(/manifest\.json: stage: .*cannot be loaded/)
  })

  it('rejects a waiter when the worker exits before answering', async () => {
    const worker = wasm()
    workers.push(worker)
    await worker.waitFor('ready')
    const waiting = worker.waitForEvent((_event): _event is never => false, 'an answer that never comes')
    worker.kill('SIGKILL')
    await expect(waiting).rejects.toThrow(/exited \(SIGKILL\) before an answer that never comes/)
  })
})
